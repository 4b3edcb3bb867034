"""Pure contrastive loss functions (no state), one file per family.

Every loss takes the two views' projections ``z1, z2`` of shape (N, D) (row i of each is a positive
pair), L2-normalises rows inside, validates its inputs (``ValueError`` naming the argument) and
returns the mean over anchors (SimCLR's 1/(2N) sum of l_i). ``SIMCLR_LOSSES`` maps the SimCLR
``loss=`` option names to these functions; ``get_simclr_loss`` looks one up.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from ._common import NonFiniteEmbeddingError, deferred_value_checks, value_checks_deferred
from .align_uniform import align_uniform, alignment, uniformity
from .barlow_twins import barlow_twins_loss, barlow_twins_terms, cross_correlation
from .clsa import clsa_ddm_loss
from .cpc import cpc_loss
from .cross_view import cross_view_info_nce
from .debiased import debiased_info_nce, hard_info_nce
from .decoupled import decoupled_info_nce, decoupled_weighted_info_nce
from .dgi import dgi_loss, dgi_readout, dgi_scores
from .dim import dim_loss, dim_scores
from .hard_threshold import hard_threshold_info_nce
from .hsic import hsic, kernel_matrix, ssl_hsic_loss, ssl_hsic_terms
from .infonce import info_nce
from .instance import instance_nce, instance_nce_normalizer, instance_softmax
from .lmcl import distance_polarization, lmcl_loss
from .looc import looc_loss, looc_space_loss
from .moco import info_nce_queue
from .msr import msr_log_conditionals, msr_loss, uniformity_of_strata
from .nnclr import nearest_neighbours, nnclr_loss
from .oucl import margin_injection, oucl, oucl_from_scores, pair_scores
from .regression import byol_loss, negative_cosine
from .relic import relic_kl, relic_logits, relic_loss, relic_terms
from .ressl import ressl_loss
from .rotation import rotation_loss
from .swav import prototype_log_probs, sinkhorn_knopp, swav_loss
from .taco import taco_loss, taco_terms
from .triplet import triplet
from .variants import _SIMCLR_FORMS, VARIANT_LOSSES, cross_view_variant_loss, queue_variant_loss, variant_options
from .wmse import WhiteningError, whiten, wmse_loss

#: the SimCLR loss family by name (the table ``causalcl.losses.variants`` also lays over MoCo's and CMC's negatives)
SIMCLR_LOSSES: dict[str, Callable[..., Tensor]] = dict(_SIMCLR_FORMS)


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
    "VARIANT_LOSSES",
    "NonFiniteEmbeddingError",
    "deferred_value_checks",
    "value_checks_deferred",
    "WhiteningError",
    "align_uniform",
    "alignment",
    "barlow_twins_loss",
    "barlow_twins_terms",
    "byol_loss",
    "clsa_ddm_loss",
    "cpc_loss",
    "cross_correlation",
    "cross_view_info_nce",
    "cross_view_variant_loss",
    "debiased_info_nce",
    "decoupled_info_nce",
    "decoupled_weighted_info_nce",
    "dgi_loss",
    "dgi_readout",
    "dgi_scores",
    "dim_loss",
    "dim_scores",
    "distance_polarization",
    "get_simclr_loss",
    "hard_info_nce",
    "hard_threshold_info_nce",
    "hsic",
    "info_nce",
    "info_nce_queue",
    "instance_nce",
    "instance_nce_normalizer",
    "instance_softmax",
    "kernel_matrix",
    "lmcl_loss",
    "looc_loss",
    "looc_space_loss",
    "margin_injection",
    "msr_log_conditionals",
    "msr_loss",
    "nearest_neighbours",
    "negative_cosine",
    "nnclr_loss",
    "oucl",
    "oucl_from_scores",
    "pair_scores",
    "prototype_log_probs",
    "queue_variant_loss",
    "relic_kl",
    "relic_logits",
    "relic_loss",
    "relic_terms",
    "ressl_loss",
    "rotation_loss",
    "sinkhorn_knopp",
    "ssl_hsic_loss",
    "ssl_hsic_terms",
    "swav_loss",
    "taco_loss",
    "taco_terms",
    "triplet",
    "uniformity",
    "uniformity_of_strata",
    "variant_options",
    "whiten",
    "wmse_loss",
]
