"""MoCo's queue InfoNCE (`info_nce_queue`) against a loop-by-loop reference of its formula."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import unit, views

from causalcl.losses import NonFiniteEmbeddingError, info_nce_queue

CASES = [(2, 3, 1, 0.2), (3, 4, 5, 0.1), (5, 8, 7, 1.0), (8, 4, 16, 0.07)]


def _queue(k: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(k, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def naive_moco(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, t: float) -> torch.Tensor:
    n = q.shape[0]
    total = torch.zeros((), dtype=torch.float64)
    for i in range(n):
        qi, ki = unit(q[i]), unit(k[i].detach())
        numerator = torch.exp((qi * ki).sum() / t)
        denominator = numerator
        for j in range(queue.shape[0]):
            denominator = denominator + torch.exp((qi * unit(queue[j].detach())).sum() / t)
        total = total - torch.log(numerator / denominator)
    return total / n


@pytest.mark.parametrize("n,d,size,t", CASES)
def test_matches_naive_value_and_gradient(n: int, d: int, size: int, t: float) -> None:
    q, k = views(n, d, seed=n * 10 + d)
    queue = _queue(size, d, seed=size)
    a, b = q.clone().requires_grad_(), q.clone().requires_grad_()
    got, want = info_nce_queue(a, k, queue, temperature=t), naive_moco(b, k, queue, t)
    torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
    got.backward()
    want.backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-9, rtol=1e-7)


def test_keys_and_queue_receive_no_gradient() -> None:
    q, k = views(4, 3, seed=1)
    q, k = q.requires_grad_(), k.requires_grad_()
    queue = _queue(6, 3, seed=2).requires_grad_()
    info_nce_queue(q, k, queue).backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert k.grad is None and queue.grad is None


@pytest.mark.parametrize("t", [0.1, 0.2, 1.0])
def test_aligned_keys_orthogonal_queue_closed_form(t: float) -> None:
    n, size = 3, 5
    q = torch.eye(n, 8, dtype=torch.float64)
    queue = torch.eye(8, dtype=torch.float64)[n:n + size]  # orthogonal to every query
    expected = math.log(1 + size * math.exp(-1 / t))
    assert info_nce_queue(q, 2 * q, queue, temperature=t).item() == pytest.approx(expected, abs=1e-12)


def test_scale_invariant_and_permutation_of_queue() -> None:
    q, k = views(6, 5, seed=3)
    queue = _queue(9, 5, seed=4)
    base = info_nce_queue(q, k, queue, temperature=0.3)
    scale = torch.rand(6, 1, dtype=torch.float64) + 0.1
    torch.testing.assert_close(info_nce_queue(3 * q, scale * k, 7 * queue, temperature=0.3), base, atol=1e-12, rtol=0)
    torch.testing.assert_close(info_nce_queue(q, k, queue.flip(0), temperature=0.3), base, atol=1e-12, rtol=0)


def test_more_similar_negatives_raise_the_loss() -> None:
    q, k = views(4, 3, seed=5)
    far = -q.repeat(2, 1)
    near = q.repeat(2, 1) + 0.01
    assert info_nce_queue(q, k, near) > info_nce_queue(q, k, far)


def test_queue_dtype_is_cast_to_queries() -> None:
    q, k = views(4, 3, seed=6)
    queue = _queue(5, 3, seed=7)
    got = info_nce_queue(q.float(), k.float(), queue, temperature=0.2)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(info_nce_queue(q, k, queue, temperature=0.2).item(), rel=1e-5)


def test_gradcheck() -> None:
    q, k = views(3, 4, seed=8)
    queue = _queue(4, 4, seed=9)
    assert torch.autograd.gradcheck(lambda a: info_nce_queue(a, k, queue, temperature=0.4), (q.requires_grad_(),))


def test_bad_inputs() -> None:
    q, k = views(4, 3, seed=10)
    queue = _queue(5, 3, seed=11)
    with pytest.raises(ValueError, match="q"):
        info_nce_queue(q[0], k, queue)
    with pytest.raises(ValueError, match="k must have the same shape"):
        info_nce_queue(q, k[:3], queue)
    with pytest.raises(ValueError, match="k must have the same dtype"):
        info_nce_queue(q, k.float(), queue)
    with pytest.raises(ValueError, match="queue"):
        info_nce_queue(q, k, queue[:, :2])
    with pytest.raises(ValueError, match="queue"):
        info_nce_queue(q, k, queue[:0])
    with pytest.raises(ValueError, match="queue"):
        info_nce_queue(q, k, queue.long())
    with pytest.raises(ValueError, match="temperature"):
        info_nce_queue(q, k, queue, temperature=0.0)
    bad = queue.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(NonFiniteEmbeddingError, match="queue"):
        info_nce_queue(q, k, bad)
    k_bad = k.clone()
    k_bad[1, 1] = float("inf")
    with pytest.raises(NonFiniteEmbeddingError, match="k"):
        info_nce_queue(q, k_bad, queue)
