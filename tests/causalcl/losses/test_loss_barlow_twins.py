"""Barlow Twins loss against a loop-by-loop reference of its formula (cross-correlation by hand)."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import check_value_and_grad, views

from causalcl.losses import NonFiniteEmbeddingError, barlow_twins_loss, barlow_twins_terms, cross_correlation


def naive_cross_correlation(z1: torch.Tensor, z2: torch.Tensor, eps: float) -> list[list[torch.Tensor]]:
    n, d = z1.shape

    def standardized(z: torch.Tensor) -> list[list[torch.Tensor]]:
        cols = []
        for i in range(d):
            mean = sum(z[b, i] for b in range(n)) / n
            var = sum((z[b, i] - mean) ** 2 for b in range(n)) / n  # biased
            cols.append([(z[b, i] - mean) / torch.sqrt(var + eps) for b in range(n)])
        return cols

    a, b = standardized(z1), standardized(z2)
    return [[sum(a[i][k] * b[j][k] for k in range(n)) / n for j in range(d)] for i in range(d)]


def naive_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float, scale: float = 1.0, eps: float = 1e-5):
    c = naive_cross_correlation(z1, z2, eps)
    d = len(c)
    on = sum((1 - c[i][i]) ** 2 for i in range(d))
    off = sum(c[i][j] ** 2 for i in range(d) for j in range(d) if i != j)
    return scale * (on + lambd * off)


@pytest.mark.parametrize("n,d,lambd", [(2, 3, 5e-3), (5, 4, 0.1), (8, 2, 1.0), (6, 6, 0.0)])
def test_matches_naive_value_and_gradient(n: int, d: int, lambd: float) -> None:
    z1, z2 = views(n, d, seed=n * 10 + d)
    check_value_and_grad(lambda a, b: barlow_twins_loss(a, b, lambd, scale_loss=0.3),
                         lambda a, b: naive_loss(a, b, lambd, 0.3), z1, z2)


def test_cross_correlation_by_hand() -> None:
    z1, z2 = views(7, 3, seed=4)
    want = torch.stack([torch.stack(row) for row in naive_cross_correlation(z1, z2, 1e-5)])
    torch.testing.assert_close(cross_correlation(z1, z2), want, atol=1e-12, rtol=1e-10)
    # equals BatchNorm1d(affine=False) in training mode, as in the official code
    bn = torch.nn.BatchNorm1d(3, affine=False).double()
    torch.testing.assert_close(cross_correlation(z1, z2), bn(z1).T @ bn(z2) / 7, atol=1e-12, rtol=1e-10)


def test_identical_views_have_unit_diagonal_and_known_terms() -> None:
    z, _ = views(9, 4, seed=5)
    on, off = barlow_twins_terms(z, z, eps=0.0)
    assert on.item() == pytest.approx(0.0, abs=1e-20)
    c = torch.corrcoef(z.T)
    assert off.item() == pytest.approx(float((c**2).sum() - 4), rel=1e-10)


def test_decorrelated_identical_views_give_zero() -> None:
    # columns of a scaled Hadamard-like matrix: zero mean, unit biased variance, uncorrelated
    h = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64)
    assert barlow_twins_loss(h, 3 * h + 2, eps=0.0).item() == pytest.approx(0.0, abs=1e-20)


def test_symmetric_and_affine_invariant() -> None:
    z1, z2 = views(6, 5, seed=1)
    base = barlow_twins_loss(z1, z2, 0.05)
    torch.testing.assert_close(barlow_twins_loss(z2, z1, 0.05), base, atol=1e-12, rtol=0)
    scale = torch.rand(1, 5, dtype=torch.float64) * 10 + 0.1
    shifted = barlow_twins_loss(scale * z1 + 3.0, z2 - 1.0, 0.05, eps=0.0)
    torch.testing.assert_close(shifted, barlow_twins_loss(z1, z2, 0.05, eps=0.0), atol=1e-10, rtol=0)


def test_gradcheck() -> None:
    z1, z2 = views(4, 3, seed=2)
    z1.requires_grad_(), z2.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: barlow_twins_loss(a, b, 0.2), (z1, z2))


def test_half_precision_is_computed_in_float32() -> None:
    z1, z2 = views(16, 8, seed=3)
    got = barlow_twins_loss(z1.bfloat16(), z2.bfloat16())
    assert got.dtype == torch.float32 and math.isfinite(got.item())


def test_bad_inputs() -> None:
    z1, z2 = views(4, 3, seed=0)
    with pytest.raises(ValueError, match="lambd"):
        barlow_twins_loss(z1, z2, -1.0)
    with pytest.raises(ValueError, match="scale_loss"):
        barlow_twins_loss(z1, z2, scale_loss=0.0)
    with pytest.raises(ValueError, match="eps"):
        cross_correlation(z1, z2, eps=-1e-3)
    with pytest.raises(ValueError, match="z2"):
        barlow_twins_loss(z1, z2[:, :2])
    bad = z1.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(NonFiniteEmbeddingError):
        barlow_twins_loss(bad, z2)
