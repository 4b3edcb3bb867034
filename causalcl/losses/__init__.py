"""Pure contrastive loss functions (no state), one file per family.

Every loss takes the two views' projections ``z1, z2`` of shape (N, D) (row i of each is a positive
pair), L2-normalises rows inside, validates its inputs (``ValueError`` naming the argument) and
returns the mean over anchors (SimCLR's 1/(2N) sum of l_i). ``SIMCLR_LOSSES`` maps the SimCLR
``loss=`` option names to these functions; ``get_simclr_loss`` looks one up.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from ._common import NonFiniteEmbeddingError
from .align_uniform import align_uniform, alignment, uniformity
from .barlow_twins import barlow_twins_loss, barlow_twins_terms, cross_correlation
from .cross_view import cross_view_info_nce
from .debiased import debiased_info_nce, hard_info_nce
from .decoupled import decoupled_info_nce, decoupled_weighted_info_nce
from .hard_threshold import hard_threshold_info_nce
from .infonce import info_nce
from .looc import looc_loss, looc_space_loss
from .moco import info_nce_queue
from .msr import msr_log_conditionals, msr_loss, uniformity_of_strata
from .oucl import margin_injection, oucl, oucl_from_scores, pair_scores
from .regression import byol_loss, negative_cosine
from .relic import relic_kl, relic_logits, relic_loss, relic_terms
from .ressl import ressl_loss
from .swav import sinkhorn_knopp, swav_loss
from .triplet import triplet
from .wmse import WhiteningError, whiten, wmse_loss

SIMCLR_LOSSES: dict[str, Callable[..., Tensor]] = {
    "infonce": info_nce,
    "debiased": debiased_info_nce,
    "hard": hard_info_nce,
    "dcl": decoupled_info_nce,
    "dclw": decoupled_weighted_info_nce,
    "hard_threshold": hard_threshold_info_nce,
    "align_uniform": align_uniform,
    "triplet": triplet,
}


def get_simclr_loss(name: str) -> Callable[..., Tensor]:
    """Return the loss ``f(z1, z2, **options)`` registered under ``name`` in ``SIMCLR_LOSSES``.

    Options are the keyword parameters of that function (e.g. ``temperature``, ``tau_plus``,
    ``beta``); ``align_uniform`` and ``triplet`` take no temperature.

    Raises:
        ValueError: unknown name; the message lists the valid names.
    """
    if not isinstance(name, str) or name not in SIMCLR_LOSSES:
        raise ValueError(f"loss: name must be one of {sorted(SIMCLR_LOSSES)}, got {name!r}")
    return SIMCLR_LOSSES[name]


__all__ = [
    "SIMCLR_LOSSES",
    "NonFiniteEmbeddingError",
    "WhiteningError",
    "align_uniform",
    "alignment",
    "barlow_twins_loss",
    "barlow_twins_terms",
    "byol_loss",
    "cross_correlation",
    "cross_view_info_nce",
    "debiased_info_nce",
    "decoupled_info_nce",
    "decoupled_weighted_info_nce",
    "get_simclr_loss",
    "hard_info_nce",
    "hard_threshold_info_nce",
    "info_nce",
    "info_nce_queue",
    "looc_loss",
    "looc_space_loss",
    "margin_injection",
    "msr_log_conditionals",
    "msr_loss",
    "negative_cosine",
    "oucl",
    "oucl_from_scores",
    "pair_scores",
    "relic_kl",
    "relic_logits",
    "relic_loss",
    "relic_terms",
    "ressl_loss",
    "sinkhorn_knopp",
    "swav_loss",
    "triplet",
    "uniformity",
    "uniformity_of_strata",
    "whiten",
    "wmse_loss",
]
