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
from .debiased import debiased_info_nce, hard_info_nce
from .decoupled import decoupled_info_nce, decoupled_weighted_info_nce
from .hard_threshold import hard_threshold_info_nce
from .infonce import info_nce
from .triplet import triplet

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
    "align_uniform",
    "alignment",
    "debiased_info_nce",
    "decoupled_info_nce",
    "decoupled_weighted_info_nce",
    "get_simclr_loss",
    "hard_info_nce",
    "hard_threshold_info_nce",
    "info_nce",
    "triplet",
    "uniformity",
]
