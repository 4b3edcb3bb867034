"""Every loss rejects bad inputs with a ValueError that names the offending argument."""

from __future__ import annotations

import math

import pytest
import torch

from causalcl.losses import (
    align_uniform,
    alignment,
    debiased_info_nce,
    decoupled_info_nce,
    decoupled_weighted_info_nce,
    hard_info_nce,
    hard_threshold_info_nce,
    info_nce,
    triplet,
    uniformity,
)

PAIR_LOSSES = [
    info_nce,
    debiased_info_nce,
    hard_info_nce,
    decoupled_info_nce,
    decoupled_weighted_info_nce,
    hard_threshold_info_nce,
    alignment,
    align_uniform,
    triplet,
]


def _z(n: int = 4, d: int = 3) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(n * d))


def _bad_pairs() -> list[tuple[object, object, str]]:
    nan, inf = _z(), _z()
    nan[1, 2] = math.nan
    inf[0, 0] = math.inf
    return [
        (_z(4, 3), _z(5, 3), "z2"),  # shape mismatch (N)
        (_z(4, 3), _z(4, 2), "z2"),  # shape mismatch (D)
        (_z(1, 3), _z(1, 3), "z1"),  # N < 2
        (_z(4, 3)[0], _z(4, 3)[0], "z1"),  # 1-D
        (_z(4, 3).unsqueeze(0), _z(4, 3).unsqueeze(0), "z1"),  # 3-D
        (_z(4, 3), torch.ones(4, 3, dtype=torch.long), "z2"),  # integer dtype
        (_z(4, 3), _z(4, 3).double(), "z2"),  # dtype mismatch
        (nan, _z(), "z1"),
        (_z(), inf, "z2"),
        ([[1.0, 2.0], [3.0, 4.0]], _z(2, 2), "z1"),  # not a tensor
    ]


@pytest.mark.parametrize("fn", PAIR_LOSSES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("case", range(10))
def test_bad_embeddings_name_the_argument(fn, case: int) -> None:
    z1, z2, name = _bad_pairs()[case]
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        fn(z1, z2)


@pytest.mark.parametrize(
    "fn,kwargs,name",
    [
        (info_nce, {"temperature": 0.0}, "temperature"),
        (info_nce, {"temperature": -0.5}, "temperature"),
        (info_nce, {"temperature": math.nan}, "temperature"),
        (info_nce, {"temperature": math.inf}, "temperature"),
        (info_nce, {"temperature": "0.5"}, "temperature"),
        (debiased_info_nce, {"temperature": 0}, "temperature"),
        (debiased_info_nce, {"tau_plus": 1.0}, "tau_plus"),
        (debiased_info_nce, {"tau_plus": -0.1}, "tau_plus"),
        (hard_info_nce, {"tau_plus": 1.5}, "tau_plus"),
        (hard_info_nce, {"beta": -1.0}, "beta"),
        (hard_info_nce, {"beta": math.nan}, "beta"),
        (hard_info_nce, {"temperature": -1}, "temperature"),
        (decoupled_info_nce, {"temperature": 0.0}, "temperature"),
        (decoupled_info_nce, {"weight_sigma": 0.0}, "weight_sigma"),
        (decoupled_info_nce, {"weight_sigma": -0.5}, "weight_sigma"),
        (decoupled_weighted_info_nce, {"weight_sigma": None}, "weight_sigma"),
        (hard_threshold_info_nce, {"top_k": 2, "threshold": 0.1}, "top_k"),
        (hard_threshold_info_nce, {"top_k": 0}, "top_k"),
        (hard_threshold_info_nce, {"top_k": 7}, "top_k"),  # 2N - 2 = 6 negatives
        (hard_threshold_info_nce, {"top_k": 2.0}, "top_k"),
        (hard_threshold_info_nce, {"threshold": 1.5}, "threshold"),
        (hard_threshold_info_nce, {"threshold": math.nan}, "threshold"),
        (hard_threshold_info_nce, {"temperature": 0.0}, "temperature"),
        (alignment, {"alpha": 0.0}, "alpha"),
        (align_uniform, {"t": -2.0}, "t"),
        (align_uniform, {"alpha": -1.0}, "alpha"),
        (align_uniform, {"align_weight": math.nan}, "align_weight"),
        (align_uniform, {"unif_weight": math.inf}, "unif_weight"),
        (triplet, {"margin": -0.1}, "margin"),
        (triplet, {"negatives": "semi-hard"}, "negatives"),
    ],
)
def test_bad_options_name_the_argument(fn, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        fn(_z(), _z(), **kwargs)


def test_uniformity_validation() -> None:
    for z in (_z(1, 3), _z(4, 3)[0], torch.full((3, 2), math.nan), torch.ones(3, 2, dtype=torch.int32)):
        with pytest.raises(ValueError, match=r"\bz\b"):
            uniformity(z)
    for t in (0.0, -1.0, math.inf):
        with pytest.raises(ValueError, match=r"\bt\b"):
            uniformity(_z(), t=t)


def test_valid_edge_options_are_accepted() -> None:
    z1, z2 = _z(), _z()
    assert torch.isfinite(debiased_info_nce(z1, z2, tau_plus=0.0))
    assert torch.isfinite(hard_info_nce(z1, z2, tau_plus=0.999, beta=0))
    assert torch.isfinite(hard_threshold_info_nce(z1, z2, top_k=6))
    assert torch.isfinite(hard_threshold_info_nce(z1, z2, threshold=-1))
    assert torch.isfinite(triplet(z1, z2, margin=0))
    assert torch.isfinite(info_nce(z1, z2, temperature=1))
