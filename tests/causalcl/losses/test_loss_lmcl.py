"""LMCL's distance polarization regularizer and objective against loop-by-loop references."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import check_value_and_grad, unit, views

from causalcl.losses import debiased_info_nce, distance_polarization, info_nce, lmcl_loss

CASES = [(2, 3, 0.25, 0.5), (3, 4, 0.1, 0.6), (5, 8, 0.0, 0.3), (8, 4, 0.4, 1.0)]


def naive_polarization(z1: torch.Tensor, z2: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    z = [unit(r) for r in torch.cat([z1, z2])]
    m = len(z)
    total = torch.zeros((), dtype=torch.float64)
    for i in range(m):
        for k in range(m):
            if i == k:
                continue
            d = ((z[i] - z[k]) ** 2).sum() / 4  # = (1 − cos)/2 for unit vectors
            if lo < d < hi:
                total = total + (torch.minimum(d - lo, hi - d) / ((hi - lo) / 2)) ** 2
    return total / (m * (m - 1))


def naive_info_nce(z1: torch.Tensor, z2: torch.Tensor, t: float) -> torch.Tensor:
    z = [unit(r) for r in torch.cat([z1, z2])]
    n, total = z1.shape[0], torch.zeros((), dtype=torch.float64)
    for i in range(2 * n):
        pos = torch.exp((z[i] * z[(i + n) % (2 * n)]).sum() / t)
        den = sum(torch.exp((z[i] * z[k]).sum() / t) for k in range(2 * n) if k != i)
        total = total - torch.log(pos / den)
    return total / (2 * n)


@pytest.mark.parametrize("n,d,lo,hi", CASES)
def test_polarization_matches_naive_value_and_gradient(n: int, d: int, lo: float, hi: float) -> None:
    z1, z2 = views(n, d, seed=n * 10 + d)
    check_value_and_grad(lambda a, b: distance_polarization(a, b, lo, hi),
                         lambda a, b: naive_polarization(a, b, lo, hi), z1, z2)


@pytest.mark.parametrize("n,d,lo,hi", CASES)
def test_lmcl_with_infonce_matches_naive(n: int, d: int, lo: float, hi: float) -> None:
    z1, z2 = views(n, d, seed=n + d)
    check_value_and_grad(
        lambda a, b: lmcl_loss(a, b, temperature=0.3, tau_plus=0.0, delta_plus=lo, delta_minus=hi, weight=7.0),
        lambda a, b: naive_info_nce(a, b, 0.3) + 7.0 * naive_polarization(a, b, lo, hi), z1, z2)


def test_lmcl_is_debiased_plus_weighted_polarization() -> None:
    z1, z2 = views(6, 5, seed=3)
    got = lmcl_loss(z1, z2, temperature=0.4, tau_plus=0.1, delta_plus=0.2, delta_minus=0.6, weight=3.0)
    want = debiased_info_nce(z1, z2, 0.4, 0.1) + 3.0 * distance_polarization(z1, z2, 0.2, 0.6)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    torch.testing.assert_close(lmcl_loss(z1, z2, temperature=0.4, tau_plus=0.0, weight=0.0), info_nce(z1, z2, 0.4),
                               atol=1e-12, rtol=0)


def test_polarized_distances_cost_nothing_and_the_gap_midpoint_costs_the_most() -> None:
    e = torch.eye(4, dtype=torch.float64)
    # orthogonal unit vectors: d = 1/2 between distinct rows, 0 within a pair (z1 = z2)
    assert distance_polarization(e[:2], e[:2], 0.25, 0.5).item() == 0.0
    # cos = 0.5 → d = 0.25, the midpoint of (0, 0.5): each cross pair costs (0.25 / h)² = 1 (h = 0.25);
    # 8 of the 4·3 ordered pairs cross between the two directions, the other 4 are identical rows (d = 0)
    a = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(3) / 2]], dtype=torch.float64)
    value = distance_polarization(a[:1].repeat(2, 1), a[1:].repeat(2, 1), 0.0, 0.5).item()
    assert value == pytest.approx(8 / 12, abs=1e-12)
    # four unit vectors at pairwise cos 0.5 (rows of the Cholesky factor of their Gram matrix): every pair at the
    # midpoint, R = 1, its maximum
    z = torch.linalg.cholesky(torch.full((4, 4), 0.5, dtype=torch.float64) + 0.5 * torch.eye(4, dtype=torch.float64))
    assert distance_polarization(z[:2], z[2:], 0.0, 0.5).item() == pytest.approx(1.0, abs=1e-12)


def test_polarization_pulls_close_pairs_and_pushes_far_ones() -> None:
    # pair at cos 0.8 (d 0.1): in the gap (0.05, 0.5) nearer delta_plus → the gradient brings the rows closer
    close = torch.tensor([[1.0, 0.0], [0.8, 0.6]], dtype=torch.float64, requires_grad=True)
    distance_polarization(close[:1].repeat(2, 1), close[1:].repeat(2, 1), 0.05, 0.5).backward()
    assert close.grad is not None
    step = close.detach() - 0.1 * close.grad
    assert torch.nn.functional.cosine_similarity(step[:1], step[1:]).item() > 0.8
    # pair at cos −0.6 (d 0.8): in the gap (0.05, 0.9) nearer delta_minus → pushed further apart
    far = torch.tensor([[1.0, 0.0], [-0.6, 0.8]], dtype=torch.float64, requires_grad=True)
    distance_polarization(far[:1].repeat(2, 1), far[1:].repeat(2, 1), 0.05, 0.9).backward()
    step = far.detach() - 0.1 * far.grad
    assert torch.nn.functional.cosine_similarity(step[:1], step[1:]).item() < -0.6


@pytest.mark.parametrize("kwargs,name", [({"delta_plus": -0.1}, "delta_plus"), ({"delta_plus": 1.0}, "delta_plus"),
                                         ({"delta_minus": 1.5}, "delta_minus"),
                                         ({"delta_plus": 0.5, "delta_minus": 0.4}, "delta_minus"),
                                         ({"weight": -1.0}, "weight"), ({"temperature": 0.0}, "temperature"),
                                         ({"tau_plus": 1.0}, "tau_plus")])
def test_bad_options_are_named(kwargs: dict, name: str) -> None:
    z1, z2 = views(4, 3, seed=1)
    with pytest.raises(ValueError, match=name):
        lmcl_loss(z1, z2, **kwargs)
