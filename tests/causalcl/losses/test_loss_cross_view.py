"""The cross-view InfoNCE (DirectCLR, CMC) against a loop reference of its formula."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import unit, views

from causalcl.losses import cross_view_info_nce, info_nce


def naive_cross_view(z1: torch.Tensor, z2: torch.Tensor, t: float) -> torch.Tensor:
    n = z1.shape[0]
    u = [unit(z1[i]) for i in range(n)]
    v = [unit(z2[i]) for i in range(n)]
    total = torch.zeros((), dtype=torch.float64)
    for a, b in ((u, v), (v, u)):
        for i in range(n):
            denominator = sum(torch.exp((a[i] * b[k]).sum() / t) for k in range(n))
            total = total - torch.log(torch.exp((a[i] * b[i]).sum() / t) / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("n,d,t", [(2, 3, 0.1), (4, 5, 0.07), (7, 2, 0.5)])
def test_cross_view_matches_naive_value_and_gradient(n, d, t) -> None:
    z1, z2 = views(n, d, seed=20 + n)
    a1, a2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    b1, b2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    got, want = cross_view_info_nce(a1, a2, t), naive_cross_view(b1, b2, t)
    torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
    got.backward()
    want.backward()
    torch.testing.assert_close(a1.grad, b1.grad, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(a2.grad, b2.grad, atol=1e-9, rtol=1e-7)


def test_cross_view_closed_forms_and_difference_from_nt_xent() -> None:
    n, t = 4, 0.2
    z = torch.eye(n, 6, dtype=torch.float64)  # aligned pairs, orthogonal negatives
    assert cross_view_info_nce(z, z, t).item() == pytest.approx(math.log(1 + (n - 1) * math.exp(-1 / t)), abs=1e-12)
    ones = torch.ones(n, 3, dtype=torch.float64)
    assert cross_view_info_nce(ones, ones, t).item() == pytest.approx(math.log(n), abs=1e-12)
    z1, z2 = views(n, 5, seed=30)
    assert abs(cross_view_info_nce(z1, z2, t).item() - info_nce(z1, z2, t).item()) > 1e-3
    torch.testing.assert_close(cross_view_info_nce(z2, z1, t), cross_view_info_nce(z1, z2, t), atol=1e-12, rtol=0)


def test_cross_view_bad_inputs() -> None:
    z1, z2 = views(4, 3, seed=31)
    with pytest.raises(ValueError, match="z2"):
        cross_view_info_nce(z1, z2[:3])
    with pytest.raises(ValueError, match="temperature"):
        cross_view_info_nce(z1, z2, 0.0)
