"""Causal objects: structural causal models, style interventions, the backdoor adjustment and the
meta semantic regularizer (DESIGN §5.1)."""

from .backdoor import BackdoorAdjustment
from .msr import MetaSemanticRegularizer
from .scm import SCM, Intervention, Variable, derive_rng, uniform_choice
from .style import StyleIntervention

__all__ = [
    "SCM",
    "BackdoorAdjustment",
    "Intervention",
    "MetaSemanticRegularizer",
    "StyleIntervention",
    "Variable",
    "derive_rng",
    "uniform_choice",
]
