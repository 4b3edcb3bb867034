"""Causal objects: structural causal models and interventions (DESIGN §5.1)."""

from .scm import SCM, Intervention, Variable, derive_rng, uniform_choice

__all__ = ["SCM", "Intervention", "Variable", "derive_rng", "uniform_choice"]
