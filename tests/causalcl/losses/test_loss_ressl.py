"""ReSSL's relational loss against a loop reference of its formula."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import unit, views

from causalcl.losses import ressl_loss


def _queue(k: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(k, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def naive_ressl(zs: torch.Tensor, zt: torch.Tensor, queue: torch.Tensor, tau_s: float, tau_t: float) -> torch.Tensor:
    n, k = zs.shape[0], queue.shape[0]
    keys = [unit(queue[j]) for j in range(k)]
    total = torch.zeros((), dtype=torch.float64)
    for i in range(n):
        s, t = unit(zs[i]), unit(zt[i].detach())
        et = [torch.exp((t * keys[j]).sum() / tau_t) for j in range(k)]
        es = [torch.exp((s * keys[j]).sum() / tau_s) for j in range(k)]
        zt_sum, zs_sum = sum(et), sum(es)
        for j in range(k):
            total = total - (et[j] / zt_sum) * torch.log(es[j] / zs_sum)
    return total / n


@pytest.mark.parametrize("n,d,k,tau_s,tau_t", [(2, 3, 4, 0.1, 0.04), (5, 4, 7, 0.2, 0.1), (3, 6, 16, 1.0, 0.5)])
def test_ressl_matches_naive_value_and_gradient(n, d, k, tau_s, tau_t) -> None:
    zs, zt = views(n, d, seed=n + d + k)
    queue = _queue(k, d, seed=k)
    a, b = zs.clone().requires_grad_(), zs.clone().requires_grad_()
    got, want = ressl_loss(a, zt, queue, tau_s, tau_t), naive_ressl(b, zt, queue, tau_s, tau_t)
    torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
    got.backward()
    want.backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-9, rtol=1e-7)


def test_ressl_gradcheck_and_teacher_gets_no_gradient() -> None:
    zs, zt = views(3, 4, seed=5)
    queue = _queue(6, 4, seed=6)
    zs.requires_grad_()
    assert torch.autograd.gradcheck(lambda s: ressl_loss(s, zt, queue, 0.1, 0.04), (zs,))
    teacher = zt.clone().requires_grad_()
    ressl_loss(zs, teacher, queue).backward()
    assert teacher.grad is None


def test_ressl_equals_kl_plus_teacher_entropy_and_is_minimal_at_equal_distributions() -> None:
    zs, zt = views(4, 5, seed=7)
    queue = _queue(8, 5, seed=8)
    u = lambda z: z / z.norm(dim=1, keepdim=True)  # noqa: E731
    pt = torch.softmax(u(zt) @ u(queue).T / 0.04, dim=1)
    ps = torch.softmax(u(zs) @ u(queue).T / 0.1, dim=1)
    kl = (pt * (pt.log() - ps.log())).sum(1).mean()
    entropy = -(pt * pt.log()).sum(1).mean()
    torch.testing.assert_close(ressl_loss(zs, zt, queue), kl + entropy, atol=1e-10, rtol=0)
    # equal temperatures and identical embeddings: KL = 0, the loss is the entropy
    same = ressl_loss(zt, zt, queue, 0.1, 0.1)
    pt = torch.softmax(u(zt) @ u(queue).T / 0.1, dim=1)
    torch.testing.assert_close(same, -(pt * pt.log()).sum(1).mean(), atol=1e-10, rtol=0)


def test_ressl_uniform_queue_gives_log_k() -> None:
    zs, zt = views(3, 4, seed=9)
    queue = torch.ones(5, 4, dtype=torch.float64)  # every key identical: both distributions uniform
    assert ressl_loss(zs, zt, queue).item() == pytest.approx(math.log(5), abs=1e-12)


def test_ressl_scale_invariant_and_float32_finite() -> None:
    zs, zt = views(4, 8, seed=10)
    queue = _queue(32, 8, seed=11)
    base = ressl_loss(zs, zt, queue)
    torch.testing.assert_close(ressl_loss(5 * zs, 0.2 * zt, 3 * queue), base, atol=1e-12, rtol=0)
    got = ressl_loss(zs.float(), zt.float(), queue.float())
    assert got.dtype == torch.float32 and got.item() == pytest.approx(base.item(), rel=1e-5)
    half = ressl_loss(zs.bfloat16(), zt.bfloat16(), queue.bfloat16())
    assert half.dtype == torch.float32 and torch.isfinite(half)


@pytest.mark.parametrize("bad,match", [
    (dict(queue=torch.randn(5, 3, dtype=torch.float64)), "queue"),
    (dict(queue=torch.randn(1, 4, dtype=torch.float64)), "queue"),
    (dict(queue=torch.full((5, 4), math.nan, dtype=torch.float64)), "queue"),
    (dict(z_teacher=torch.randn(3, 4, dtype=torch.float64)), "z2"),
    (dict(tau_s=0.0), "tau_s"),
    (dict(tau_t=-1.0), "tau_t"),
])
def test_ressl_bad_inputs(bad, match) -> None:
    zs, zt = views(4, 4, seed=12)
    kwargs = dict(z_student=zs, z_teacher=zt, queue=_queue(5, 4, seed=13), tau_s=0.1, tau_t=0.04)
    kwargs.update(bad)
    with pytest.raises(ValueError, match=match):
        ressl_loss(**kwargs)
