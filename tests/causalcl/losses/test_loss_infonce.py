"""NT-Xent (`info_nce`) against a loop-by-loop reference of SimCLR's formula."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import unit, views

from causalcl.losses import info_nce

CASES = [(2, 3, 0.5), (3, 4, 0.1), (5, 8, 1.0), (8, 4, 0.2), (6, 2, 0.07)]


def naive_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> torch.Tensor:
    n = z1.shape[0]
    e = [unit(z1[i]) for i in range(n)] + [unit(z2[i]) for i in range(n)]
    total = torch.zeros((), dtype=torch.float64)
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        numerator = torch.exp((e[i] * e[p]).sum() / t)
        denominator = torch.zeros((), dtype=torch.float64)
        for k in range(2 * n):
            if k != i:
                denominator = denominator + torch.exp((e[i] * e[k]).sum() / t)
        total = total - torch.log(numerator / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("n,d,t", CASES)
def test_matches_naive_value_and_gradient(n: int, d: int, t: float) -> None:
    z1, z2 = views(n, d, seed=n * 10 + d)
    a1, a2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    b1, b2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    got, want = info_nce(a1, a2, temperature=t), naive_nt_xent(b1, b2, t)
    torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
    got.backward()
    want.backward()
    torch.testing.assert_close(a1.grad, b1.grad, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(a2.grad, b2.grad, atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("n", [2, 5])
@pytest.mark.parametrize("t", [0.1, 0.5])
def test_identical_embeddings_give_log_2n_minus_1(n: int, t: float) -> None:
    z = torch.ones(n, 3, dtype=torch.float64)
    assert info_nce(z, 2 * z, temperature=t).item() == pytest.approx(math.log(2 * n - 1), abs=1e-12)


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_aligned_orthogonal_closed_form(t: float) -> None:
    n = 4
    z = torch.eye(n, 6, dtype=torch.float64)
    expected = math.log(1 + (2 * n - 2) * math.exp(-1 / t))
    assert info_nce(z, z, temperature=t).item() == pytest.approx(expected, abs=1e-12)


def test_symmetric_and_scale_invariant() -> None:
    z1, z2 = views(6, 5, seed=1)
    base = info_nce(z1, z2, temperature=0.3)
    torch.testing.assert_close(info_nce(z2, z1, temperature=0.3), base, atol=1e-12, rtol=0)
    scale = torch.rand(6, 1, dtype=torch.float64) * 10 + 0.1
    torch.testing.assert_close(info_nce(3.7 * z1, scale * z2, temperature=0.3), base, atol=1e-12, rtol=0)


def test_permuting_pairs_leaves_loss_unchanged() -> None:
    z1, z2 = views(7, 4, seed=2)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(info_nce(z1[perm], z2[perm]), info_nce(z1, z2), atol=1e-12, rtol=0)


def test_float32_small_temperature_is_finite() -> None:
    z1, z2 = views(8, 16, seed=3)
    z2 = z1 + 3.0 * torch.randn(8, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    got = info_nce(z1.float(), z2.float(), temperature=0.01)
    assert torch.isfinite(got)
    assert got.item() == pytest.approx(info_nce(z1, z2, temperature=0.01).item(), rel=1e-4, abs=1e-5)


def test_gradcheck() -> None:
    z1, z2 = views(3, 4, seed=4)
    assert torch.autograd.gradcheck(
        lambda a, b: info_nce(a, b, temperature=0.4), (z1.requires_grad_(), z2.requires_grad_())
    )
