"""DCL / DCLW (Yeh et al.) against loop references of the decoupled formula."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import check_value_and_grad, unit, views

from causalcl.losses import decoupled_info_nce, decoupled_weighted_info_nce

CASES = [(2, 3, 0.1), (3, 4, 0.5), (5, 8, 1.0), (8, 4, 0.2)]


def naive_weights(z1: torch.Tensor, z2: torch.Tensor, sigma: float) -> list[float]:
    """w_i = 2 - exp(s_i / sigma) / mean_j exp(s_j / sigma), as plain floats (constants)."""
    n = z1.shape[0]
    s = [float((unit(z1[i]) * unit(z2[i])).sum()) for i in range(n)]
    mean = sum(math.exp(v / sigma) for v in s) / n
    return [2 - math.exp(v / sigma) / mean for v in s]


def naive_dcl(z1: torch.Tensor, z2: torch.Tensor, t: float, weights: list[float] | None) -> torch.Tensor:
    n = z1.shape[0]
    e = [unit(z1[i]) for i in range(n)] + [unit(z2[i]) for i in range(n)]
    total = torch.zeros((), dtype=torch.float64)
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        w = 1.0 if weights is None else weights[i % n]
        neg_sum = torch.zeros((), dtype=torch.float64)
        count = 0
        for k in range(2 * n):
            if k not in (i, p):
                neg_sum = neg_sum + torch.exp((e[i] * e[k]).sum() / t)
                count += 1
        assert count == 2 * n - 2
        total = total - w * (e[i] * e[p]).sum() / t + torch.log(neg_sum)
    return total / (2 * n)


@pytest.mark.parametrize("n,d,t", CASES)
def test_dcl_matches_naive(n: int, d: int, t: float) -> None:
    z1, z2 = views(n, d, seed=n * 3 + d)
    check_value_and_grad(
        lambda a, b: decoupled_info_nce(a, b, temperature=t), lambda a, b: naive_dcl(a, b, t, None), z1, z2
    )


@pytest.mark.parametrize("n,d,t", CASES)
@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_dclw_matches_naive_with_detached_weights(n: int, d: int, t: float, sigma: float) -> None:
    # The reference holds w_i as constants: equal gradients mean the library's weights are detached.
    z1, z2 = views(n, d, seed=n * 3 + d + 1)
    w = naive_weights(z1, z2, sigma)
    check_value_and_grad(
        lambda a, b: decoupled_info_nce(a, b, temperature=t, weight_sigma=sigma),
        lambda a, b: naive_dcl(a, b, t, w),
        z1,
        z2,
    )


def test_dclw_weights_are_not_constant_on_generic_inputs() -> None:
    # Guards the factor N: without it w_i ~= 2 and DCLW ~= DCL with a doubled positive term.
    z1, z2 = views(6, 4, seed=2)
    w = naive_weights(z1, z2, 0.5)
    assert sum(w) / len(w) == pytest.approx(1.0, abs=1e-12)
    assert max(w) - min(w) > 0.1
    dcl, dclw = decoupled_info_nce(z1, z2), decoupled_info_nce(z1, z2, weight_sigma=0.5)
    assert abs(dcl.item() - dclw.item()) > 1e-3


def test_dclw_equals_dcl_when_positive_similarities_are_equal() -> None:
    # z2_i = cos(theta) x_i + sin(theta) u_i, u_i a unit vector orthogonal to x_i: every s_i = cos(theta).
    g = torch.Generator().manual_seed(3)
    x = torch.nn.functional.normalize(torch.randn(6, 5, generator=g, dtype=torch.float64), dim=1)
    u = torch.randn(6, 5, generator=g, dtype=torch.float64)
    u = torch.nn.functional.normalize(u - (u * x).sum(1, keepdim=True) * x, dim=1)
    z2 = math.cos(0.8) * x + math.sin(0.8) * u
    for t in (0.1, 0.5):
        torch.testing.assert_close(
            decoupled_info_nce(x, z2, temperature=t, weight_sigma=0.5),
            decoupled_info_nce(x, z2, temperature=t),
            atol=1e-12,
            rtol=0,
        )


@pytest.mark.parametrize("t", [0.1, 0.5])
def test_aligned_orthogonal_closed_form(t: float) -> None:
    n = 4
    z = torch.eye(n, 6, dtype=torch.float64)
    expected = -1 / t + math.log(2 * n - 2)
    assert decoupled_info_nce(z, z, temperature=t).item() == pytest.approx(expected, abs=1e-12)
    assert decoupled_info_nce(z, z, temperature=t, weight_sigma=0.5).item() == pytest.approx(
        expected, abs=1e-12
    )


def test_symmetric_and_scale_invariant_and_dclw_alias() -> None:
    z1, z2 = views(6, 5, seed=4)
    for sigma in (None, 0.5):
        base = decoupled_info_nce(z1, z2, weight_sigma=sigma)
        torch.testing.assert_close(decoupled_info_nce(z2, z1, weight_sigma=sigma), base, atol=1e-12, rtol=0)
        torch.testing.assert_close(
            decoupled_info_nce(4 * z1, z2 / 9, weight_sigma=sigma), base, atol=1e-12, rtol=0
        )
    torch.testing.assert_close(
        decoupled_weighted_info_nce(z1, z2), decoupled_info_nce(z1, z2, weight_sigma=0.5), atol=0, rtol=0
    )


def test_gradcheck_dcl() -> None:
    z1, z2 = views(3, 4, seed=5)
    assert torch.autograd.gradcheck(
        lambda a, b: decoupled_info_nce(a, b, temperature=0.3), (z1.requires_grad_(), z2.requires_grad_())
    )


def test_gradcheck_dclw_with_frozen_weights() -> None:
    # The weights are detached, so DCLW's gradient is that of DCL with fixed w: check the library's
    # analytic gradient against finite differences of the frozen-weight objective.
    z1, z2 = views(3, 4, seed=6)
    w = naive_weights(z1, z2, 0.5)
    a1, a2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    decoupled_info_nce(a1, a2, temperature=0.3, weight_sigma=0.5).backward()
    assert torch.autograd.gradcheck(
        lambda a, b: naive_dcl(a, b, 0.3, w), (z1.requires_grad_(), z2.requires_grad_())
    )
    eps = 1e-6
    for grad, which in ((a1.grad, 0), (a2.grad, 1)):
        for idx in [(0, 0), (1, 2), (2, 3)]:
            plus, minus = (
                [z1.detach().clone(), z2.detach().clone()],
                [z1.detach().clone(), z2.detach().clone()],
            )
            plus[which][idx] += eps
            minus[which][idx] -= eps
            fd = (naive_dcl(*plus, 0.3, w) - naive_dcl(*minus, 0.3, w)).item() / (2 * eps)
            assert grad[idx].item() == pytest.approx(fd, abs=1e-6)
