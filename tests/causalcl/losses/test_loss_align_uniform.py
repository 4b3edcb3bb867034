"""Alignment / uniformity (Wang & Isola) against loop references and closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import unit, views

from causalcl.losses import align_uniform, alignment, uniformity


def naive_alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float) -> torch.Tensor:
    n = z1.shape[0]
    total = torch.zeros((), dtype=torch.float64)
    for i in range(n):
        diff = unit(z1[i]) - unit(z2[i])
        total = total + torch.sqrt((diff * diff).sum()) ** alpha
    return total / n


def naive_uniformity(z: torch.Tensor, t: float) -> torch.Tensor:
    n = z.shape[0]
    x = [unit(z[i]) for i in range(n)]
    total, pairs = torch.zeros((), dtype=torch.float64), 0
    for i in range(n):
        for j in range(i + 1, n):
            diff = x[i] - x[j]
            total = total + torch.exp(-t * (diff * diff).sum())
            pairs += 1
    return torch.log(total / pairs)


@pytest.mark.parametrize("n,d", [(2, 3), (5, 4), (9, 8)])
@pytest.mark.parametrize("alpha", [1.0, 1.5, 2.0, 3.0])
def test_alignment_matches_naive(n: int, d: int, alpha: float) -> None:
    z1, z2 = views(n, d, seed=n + d)
    torch.testing.assert_close(
        alignment(z1, z2, alpha=alpha), naive_alignment(z1, z2, alpha), atol=1e-9, rtol=1e-9
    )


@pytest.mark.parametrize("n,d", [(2, 3), (5, 4), (9, 8)])
@pytest.mark.parametrize("t", [0.5, 2.0, 3.0])
def test_uniformity_matches_naive(n: int, d: int, t: float) -> None:
    z, _ = views(n, d, seed=n * d)
    a, b = z.clone().requires_grad_(), z.clone().requires_grad_()
    got, want = uniformity(a, t=t), naive_uniformity(b, t)
    torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
    got.backward()
    want.backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-9, rtol=1e-7)


def test_align_uniform_combination() -> None:
    z1, z2 = views(6, 5, seed=1)
    want = (
        3.0 * naive_alignment(z1, z2, 2.0) + 0.5 * (naive_uniformity(z1, 3.0) + naive_uniformity(z2, 3.0)) / 2
    )
    got = align_uniform(z1, z2, alpha=2, t=3, align_weight=3.0, unif_weight=0.5)
    torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)


def test_closed_forms() -> None:
    z = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert alignment(z, 3 * z).item() == pytest.approx(0.0, abs=1e-12)
    assert alignment(z, -z, alpha=2).item() == pytest.approx(4.0, abs=1e-12)
    assert alignment(z, -z, alpha=1.5).item() == pytest.approx(2**1.5, abs=1e-12)
    # Two antipodal points: ||x - y||^2 = 4.
    assert uniformity(
        torch.tensor([[1.0, 0.0], [-2.0, 0.0]], dtype=torch.float64), t=2
    ).item() == pytest.approx(-8.0)
    # Regular simplex of n points (rows of I_n centred): pairwise ||x_i - x_j||^2 = 2 + 2/(n-1).
    n = 5
    simplex = torch.eye(n, dtype=torch.float64) - 1.0 / n
    assert uniformity(simplex, t=2).item() == pytest.approx(-2 * (2 + 2 / (n - 1)), abs=1e-12)
    # Collapsed embeddings: every distance 0, log(1) = 0.
    assert uniformity(torch.ones(4, 3, dtype=torch.float64)).item() == pytest.approx(0.0, abs=1e-12)
    assert math.isclose(align_uniform(z, z).item(), 0.5 * 2 * uniformity(z).item(), abs_tol=1e-12)


def test_symmetric_and_scale_and_permutation_invariant() -> None:
    z1, z2 = views(7, 4, seed=3)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(alignment(z2, z1), alignment(z1, z2), atol=1e-12, rtol=0)
    torch.testing.assert_close(align_uniform(z2, z1), align_uniform(z1, z2), atol=1e-12, rtol=0)
    torch.testing.assert_close(align_uniform(5 * z1, z2 / 4), align_uniform(z1, z2), atol=1e-12, rtol=0)
    torch.testing.assert_close(uniformity(z1[perm]), uniformity(z1), atol=1e-12, rtol=0)


@pytest.mark.parametrize("alpha", [1.5, 2.0])
def test_gradcheck(alpha: float) -> None:
    z1, z2 = views(3, 4, seed=4)
    args = (z1.requires_grad_(), z2.requires_grad_())
    assert torch.autograd.gradcheck(lambda a, b: alignment(a, b, alpha=alpha), args)
    assert torch.autograd.gradcheck(lambda a: uniformity(a, t=2), (args[0],))
    assert torch.autograd.gradcheck(lambda a, b: align_uniform(a, b, alpha=alpha, t=2), args)


def test_alignment_gradient_is_finite_for_identical_views() -> None:
    z = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).requires_grad_()
    alignment(z, z.detach().clone()).backward()
    assert torch.isfinite(z.grad).all()
