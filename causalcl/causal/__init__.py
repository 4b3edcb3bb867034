"""Causal objects: structural causal models, style interventions (among them the background swap
do(background = b′) for images with masks, DESIGN §5.3a), the backdoor adjustment and the meta semantic
regularizer (DESIGN §5.1)."""

from .backdoor import BackdoorAdjustment
from .background import (
    BACKGROUND_SOURCES,
    DONOR_FILLS,
    MASK_INTERVENTIONS,
    BackgroundSwap,
    background_swap,
    background_swap_intervention,
    procedural_backgrounds,
)
from .msr import MetaSemanticRegularizer
from .scm import SCM, Intervention, Variable, derive_rng, uniform_choice
from .style import StyleIntervention

__all__ = [
    "BACKGROUND_SOURCES",
    "DONOR_FILLS",
    "MASK_INTERVENTIONS",
    "SCM",
    "BackgroundSwap",
    "BackdoorAdjustment",
    "Intervention",
    "MetaSemanticRegularizer",
    "StyleIntervention",
    "Variable",
    "background_swap",
    "background_swap_intervention",
    "derive_rng",
    "procedural_backgrounds",
    "uniform_choice",
]
