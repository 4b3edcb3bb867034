"""Wang & Liu's hard contrastive loss against a loop reference (top-k and absolute threshold)."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import check_value_and_grad, unit, views

from causalcl.losses import hard_threshold_info_nce, info_nce

CASES = [(2, 3, 0.2), (3, 4, 0.1), (5, 8, 0.5), (8, 4, 1.0)]


def naive_hard(
    z1: torch.Tensor, z2: torch.Tensor, t: float, top_k: int | None, threshold: float | None
) -> torch.Tensor:
    n = z1.shape[0]
    e = [unit(z1[i]) for i in range(n)] + [unit(z2[i]) for i in range(n)]
    total = torch.zeros((), dtype=torch.float64)
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        sims = [(e[i] * e[k]).sum() for k in range(2 * n) if k not in (i, p)]
        if threshold is None:
            kept = sorted(sims, key=lambda s: s.item(), reverse=True)[:top_k]
        else:
            kept = [s for s in sims if s.item() >= threshold]
        pos = torch.exp((e[i] * e[p]).sum() / t)
        denominator = pos
        for s in kept:
            denominator = denominator + torch.exp(s / t)
        total = total - torch.log(pos / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("n,d,t", CASES)
@pytest.mark.parametrize("top_k", [1, 2, None])
def test_top_k_matches_naive(n: int, d: int, t: float, top_k: int | None) -> None:
    z1, z2 = views(n, d, seed=n * 5 + d)
    k = max(1, (2 * n - 2) // 4) if top_k is None else top_k
    check_value_and_grad(
        lambda a, b: hard_threshold_info_nce(a, b, temperature=t, top_k=top_k),
        lambda a, b: naive_hard(a, b, t, k, None),
        z1,
        z2,
    )


@pytest.mark.parametrize("n,d,t", CASES)
@pytest.mark.parametrize("threshold", [-1.0, -0.2, 0.0, 0.3, 1.0])
def test_threshold_matches_naive(n: int, d: int, t: float, threshold: float) -> None:
    z1, z2 = views(n, d, seed=n * 5 + d + 1)
    check_value_and_grad(
        lambda a, b: hard_threshold_info_nce(a, b, temperature=t, threshold=threshold),
        lambda a, b: naive_hard(a, b, t, None, threshold),
        z1,
        z2,
    )


def test_keeping_every_negative_is_info_nce() -> None:
    z1, z2 = views(5, 4, seed=2)
    want = info_nce(z1, z2, temperature=0.2)
    torch.testing.assert_close(hard_threshold_info_nce(z1, z2, top_k=8), want, atol=1e-12, rtol=0)
    torch.testing.assert_close(hard_threshold_info_nce(z1, z2, threshold=-1.0), want, atol=1e-12, rtol=0)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_aligned_orthogonal_closed_form(k: int) -> None:
    n, t = 4, 0.2
    z = torch.eye(n, 6, dtype=torch.float64)
    expected = math.log(1 + k * math.exp(-1 / t))
    assert hard_threshold_info_nce(z, z, temperature=t, top_k=k).item() == pytest.approx(expected, abs=1e-12)
    # every negative has similarity 0: threshold 0 keeps all six, 0.5 keeps none (loss 0).
    assert hard_threshold_info_nce(z, z, temperature=t, threshold=0.0).item() == pytest.approx(
        math.log(1 + 6 * math.exp(-1 / t)), abs=1e-12
    )
    assert hard_threshold_info_nce(z, z, temperature=t, threshold=0.5).item() == pytest.approx(0.0, abs=1e-15)


def test_symmetric_and_scale_invariant() -> None:
    z1, z2 = views(6, 5, seed=3)
    for kw in ({}, {"top_k": 3}, {"threshold": 0.1}):
        base = hard_threshold_info_nce(z1, z2, **kw)
        torch.testing.assert_close(hard_threshold_info_nce(z2, z1, **kw), base, atol=1e-12, rtol=0)
        torch.testing.assert_close(hard_threshold_info_nce(7 * z1, z2 / 3, **kw), base, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kw", [{"top_k": 2}, {"threshold": 0.0}])
def test_gradcheck(kw: dict) -> None:
    z1, z2 = views(3, 4, seed=4)
    assert torch.autograd.gradcheck(
        lambda a, b: hard_threshold_info_nce(a, b, temperature=0.3, **kw),
        (z1.requires_grad_(), z2.requires_grad_()),
    )
