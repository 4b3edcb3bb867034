"""NNCLR's nearest-neighbour look-up and loss against loop-by-loop references of their formulas."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import unit, views

from causalcl.losses import NonFiniteEmbeddingError, nearest_neighbours, nnclr_loss

CASES = [(2, 3, 1, 0.1), (3, 4, 5, 0.2), (5, 8, 7, 1.0), (8, 4, 16, 0.07), (4, 3, 0, 0.5)]


def _support(k: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(k, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def naive_nn(z: torch.Tensor, support: torch.Tensor) -> list[torch.Tensor]:
    """For each z_i the unit support row of smallest Euclidean distance to the unit z_i (z_i itself if empty)."""
    out = []
    for i in range(z.shape[0]):
        zi = unit(z[i].detach())
        best, best_d = zi, math.inf
        for j in range(support.shape[0]):
            qj = unit(support[j])
            d = float(((zi - qj) ** 2).sum())
            if d < best_d:
                best, best_d = qj, d
        out.append(best)
    return out


def naive_direction(z: torch.Tensor, p: torch.Tensor, support: torch.Tensor, t: float) -> torch.Tensor:
    nn = naive_nn(z, support)
    n = z.shape[0]
    total = torch.zeros((), dtype=torch.float64)
    for i in range(n):
        numerator = torch.exp((nn[i] * unit(p[i])).sum() / t)
        denominator = torch.zeros((), dtype=torch.float64)
        for k in range(n):
            denominator = denominator + torch.exp((nn[i] * unit(p[k])).sum() / t)
        total = total - torch.log(numerator / denominator)
    return total / n


def naive_nnclr(z1, z2, p1, p2, support, t):
    return 0.5 * (naive_direction(z1, p2, support, t) + naive_direction(z2, p1, support, t))


@pytest.mark.parametrize("n,d,k,t", CASES)
def test_matches_naive_value_and_gradient(n: int, d: int, k: int, t: float) -> None:
    z1, z2 = views(n, d, seed=n * 10 + d)
    p1, p2 = views(n, d, seed=n * 10 + d + 1)
    support = _support(k, d, seed=k + 3)
    a = [p.clone().requires_grad_() for p in (p1, p2)]
    b = [p.clone().requires_grad_() for p in (p1, p2)]
    got, want = nnclr_loss(z1, z2, *a, support, temperature=t), naive_nnclr(z1, z2, *b, support, t)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    got.backward()
    want.backward()
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.grad, y.grad, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("k", [0, 1, 6])
def test_nearest_neighbours_match_the_loop(k: int) -> None:
    z, _ = views(5, 4, seed=k)
    support = _support(k, 4, seed=9)
    got = nearest_neighbours(z, support)
    for row, want in zip(got, naive_nn(z, support), strict=True):
        torch.testing.assert_close(row, want, atol=1e-12, rtol=0)


def test_only_predictions_receive_gradients() -> None:
    z1, z2 = (v.requires_grad_() for v in views(4, 3, seed=1))
    p1, p2 = (v.requires_grad_() for v in views(4, 3, seed=2))
    support = _support(6, 3, seed=3).requires_grad_()
    nnclr_loss(z1, z2, p1, p2, support).backward()
    assert z1.grad is None and z2.grad is None and support.grad is None
    assert p1.grad.abs().sum() > 0 and p2.grad.abs().sum() > 0


def test_support_holding_the_other_views_gives_the_cross_view_loss() -> None:
    """A support row equal to each z (and far from the rest) makes NN(z_i) = ẑ_i: the loss then only
    depends on z, p — the closed form with identity positives."""
    n, t = 3, 0.5
    z = torch.eye(n, 4, dtype=torch.float64)
    p = torch.eye(n, 4, dtype=torch.float64)  # p_k orthogonal to z_i for k != i
    expected = math.log(1 + (n - 1) * math.exp(-1 / t))  # −log(e^{1/t} / (e^{1/t} + (n−1)·e^0))
    assert nnclr_loss(z, z, p, p, 5 * z, temperature=t).item() == pytest.approx(expected, abs=1e-12)


def test_scale_and_support_order_invariance() -> None:
    z1, z2 = views(5, 4, seed=4)
    p1, p2 = views(5, 4, seed=5)
    support = _support(9, 4, seed=6)
    base = nnclr_loss(z1, z2, p1, p2, support, temperature=0.2)
    torch.testing.assert_close(nnclr_loss(2 * z1, 3 * z2, 4 * p1, p2, 7 * support, temperature=0.2), base,
                               atol=1e-12, rtol=0)
    torch.testing.assert_close(nnclr_loss(z1, z2, p1, p2, support.flip(0), temperature=0.2), base, atol=1e-12, rtol=0)


def test_bad_inputs() -> None:
    z1, z2 = views(4, 3, seed=7)
    support = _support(5, 3, seed=8)
    with pytest.raises(ValueError, match="temperature"):
        nnclr_loss(z1, z2, z1, z2, support, temperature=0)
    with pytest.raises(ValueError, match="p2"):
        nnclr_loss(z1, z2, z1, z2[:3], support)
    with pytest.raises(ValueError, match="support"):
        nnclr_loss(z1, z2, z1, z2, support[:, :2])
    with pytest.raises(ValueError, match="support"):
        nnclr_loss(z1, z2, z1, z2, torch.ones(5, 3, dtype=torch.long))
    with pytest.raises(NonFiniteEmbeddingError, match="support"):
        nnclr_loss(z1, z2, z1, z2, torch.full((2, 3), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="z1"):
        nnclr_loss(z1[:1], z2[:1], z1[:1], z2[:1], support)
