"""Debiased (Chuang et al.) and HCL (Robinson et al.) losses against loop references of the
official-code formulas, closed forms and reductions."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import check_value_and_grad, unit, views

from causalcl.losses import debiased_info_nce, hard_info_nce, info_nce

CASES = [(2, 3, 0.5, 0.1), (3, 4, 0.1, 0.05), (5, 8, 1.0, 0.3), (8, 4, 0.2, 0.1), (4, 3, 0.5, 0.9)]


def naive_hcl(
    z1: torch.Tensor, z2: torch.Tensor, t: float, tau_plus: float, beta: float | None, detach: bool = False
) -> torch.Tensor:
    """beta=None: debiased (Chuang et al.); otherwise HCL. Explicit loops over anchors and negatives."""
    n = z1.shape[0]
    m = 2 * n - 2
    e = [unit(z1[i]) for i in range(n)] + [unit(z2[i]) for i in range(n)]
    total = torch.zeros((), dtype=torch.float64)
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        pos = torch.exp((e[i] * e[p]).sum() / t)
        negs, imps = [], []
        for k in range(2 * n):
            if k in (i, p):
                continue
            s = (e[i] * e[k]).sum()
            negs.append(torch.exp(s / t))
            w_s = s.detach() if detach else s
            imps.append(torch.exp(beta * w_s / t) if beta is not None else torch.ones((), dtype=s.dtype))
        assert len(negs) == m
        reweight = sum(w * x for w, x in zip(imps, negs, strict=True)) / (sum(imps) / m)
        ng = (-tau_plus * m * pos + reweight) / (1 - tau_plus)
        ng = torch.clamp(ng, min=m * math.exp(-1 / t))
        total = total - torch.log(pos / (pos + ng))
    return total / (2 * n)


@pytest.mark.parametrize("n,d,t,tp", CASES)
def test_debiased_matches_naive(n: int, d: int, t: float, tp: float) -> None:
    z1, z2 = views(n, d, seed=n + 100 * d)
    check_value_and_grad(
        lambda a, b: debiased_info_nce(a, b, temperature=t, tau_plus=tp),
        lambda a, b: naive_hcl(a, b, t, tp, None),
        z1,
        z2,
    )


@pytest.mark.parametrize("n,d,t,tp", CASES)
@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_hard_matches_naive(n: int, d: int, t: float, tp: float, beta: float) -> None:
    z1, z2 = views(n, d, seed=n + 100 * d + 7)
    check_value_and_grad(
        lambda a, b: hard_info_nce(a, b, temperature=t, tau_plus=tp, beta=beta),
        lambda a, b: naive_hcl(a, b, t, tp, beta),
        z1,
        z2,
    )


def test_hard_detached_weights_match_naive_and_change_the_gradient() -> None:
    z1, z2 = views(5, 4, seed=11)
    check_value_and_grad(
        lambda a, b: hard_info_nce(a, b, temperature=0.5, tau_plus=0.1, beta=2.0, detach_weights=True),
        lambda a, b: naive_hcl(a, b, 0.5, 0.1, 2.0, detach=True),
        z1,
        z2,
    )
    a = z1.clone().requires_grad_()
    hard_info_nce(a, z2, beta=2.0).backward()
    b = z1.clone().requires_grad_()
    hard_info_nce(b, z2, beta=2.0, detach_weights=True).backward()
    assert not torch.allclose(a.grad, b.grad, atol=1e-6)


@pytest.mark.parametrize("tp", [0.0, 0.1, 0.5])
def test_hard_beta_zero_equals_debiased(tp: float) -> None:
    z1, z2 = views(6, 5, seed=3)
    torch.testing.assert_close(
        hard_info_nce(z1, z2, temperature=0.3, tau_plus=tp, beta=0.0),
        debiased_info_nce(z1, z2, temperature=0.3, tau_plus=tp),
        atol=1e-12,
        rtol=0,
    )


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_debiased_tau_plus_zero_equals_info_nce(t: float) -> None:
    z1, z2 = views(7, 3, seed=4)
    torch.testing.assert_close(
        debiased_info_nce(z1, z2, temperature=t, tau_plus=0.0),
        info_nce(z1, z2, temperature=t),
        atol=1e-12,
        rtol=0,
    )


@pytest.mark.parametrize("tp", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("t", [0.5, 1.0])
def test_debiased_aligned_orthogonal_closed_form(tp: float, t: float) -> None:
    # s_pos = 1, every s_neg = 0: Ng = max(M (1 - tau+ e^{1/t}) / (1 - tau+), M e^{-1/t}).
    n = 4
    m = 2 * n - 2
    z = torch.eye(n, 5, dtype=torch.float64)
    ng = max(m * (1 - tp * math.exp(1 / t)) / (1 - tp), m * math.exp(-1 / t))
    expected = math.log(1 + ng * math.exp(-1 / t))
    assert debiased_info_nce(z, z, temperature=t, tau_plus=tp).item() == pytest.approx(expected, abs=1e-12)
    # Every negative is equally hard, so HCL's reweighting changes nothing.
    assert hard_info_nce(z, z, temperature=t, tau_plus=tp, beta=2.0).item() == pytest.approx(
        expected, abs=1e-12
    )


def test_hard_large_beta_keeps_only_the_hardest_negative() -> None:
    # beta -> infinity: reweight -> M * max_k exp(s_k / t).
    z1, z2 = views(4, 3, seed=5)
    t, tp, m = 0.5, 0.1, 6
    got = hard_info_nce(z1, z2, temperature=t, tau_plus=tp, beta=2000.0)
    e = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    sim = e @ e.T
    total = 0.0
    for i in range(8):
        p = (i + 4) % 8
        hardest = max(sim[i, k].item() for k in range(8) if k not in (i, p))
        pos = math.exp(sim[i, p].item() / t)
        ng = max((-tp * m * pos + m * math.exp(hardest / t)) / (1 - tp), m * math.exp(-1 / t))
        total += -math.log(pos / (pos + ng))
    assert got.item() == pytest.approx(total / 8, abs=1e-7)


def test_symmetric_and_scale_invariant() -> None:
    z1, z2 = views(6, 5, seed=6)
    for fn in (debiased_info_nce, hard_info_nce):
        base = fn(z1, z2)
        torch.testing.assert_close(fn(z2, z1), base, atol=1e-12, rtol=0)
        torch.testing.assert_close(fn(0.01 * z1, 50.0 * z2), base, atol=1e-12, rtol=0)


def test_float32_small_temperature_is_stable() -> None:
    # exp(s / t) overflows float32 at t = 0.01; the log-space evaluation must not.
    z1, z2 = views(8, 16, seed=7)
    z2 = z1 + 3.0 * torch.randn(8, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    for fn in (debiased_info_nce, hard_info_nce):
        got = fn(z1.float(), z2.float(), temperature=0.01)
        assert torch.isfinite(got)
        assert got.item() == pytest.approx(fn(z1, z2, temperature=0.01).item(), rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("tp", [0.1, 0.9])
def test_gradcheck(tp: float) -> None:
    z1, z2 = views(3, 4, seed=8)
    args = (z1.requires_grad_(), z2.requires_grad_())
    assert torch.autograd.gradcheck(lambda a, b: debiased_info_nce(a, b, temperature=0.4, tau_plus=tp), args)
    assert torch.autograd.gradcheck(lambda a, b: hard_info_nce(a, b, temperature=0.4, tau_plus=tp), args)
