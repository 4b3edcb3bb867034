"""LooC's per-space InfoNCE (`looc_space_loss`, `looc_loss`) against loop-by-loop references."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import unit

from causalcl.losses import looc_loss, looc_space_loss


def _data(b: int, k: int, d: int, q_size: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, d, generator=g, dtype=torch.float64)
    keys = q.unsqueeze(0) + 0.9 * torch.randn(k, b, d, generator=g, dtype=torch.float64)
    queue = torch.randn(q_size, d, generator=g, dtype=torch.float64)
    return q, keys, queue


def naive_space(q: torch.Tensor, keys: torch.Tensor, queue: torch.Tensor, positive: int | None, t: float):
    b, k = q.shape[0], keys.shape[0]
    total = torch.zeros((), dtype=torch.float64)
    for i in range(b):
        s_keys = [(unit(q[i]) * unit(keys[j, i])).sum() / t for j in range(k)]
        s_queue = [(unit(q[i]) * unit(queue[u])).sum() / t for u in range(queue.shape[0])]
        neg = sum(torch.exp(s) for s in s_queue)
        if positive is None:
            for j in range(k):
                total = total - torch.log(torch.exp(s_keys[j]) / (torch.exp(s_keys[j]) + neg)) / k
        else:
            denom = sum(torch.exp(s) for s in s_keys) + neg
            total = total - torch.log(torch.exp(s_keys[positive]) / denom)
    return total / b


@pytest.mark.parametrize("positive", [None, 0, 1, 2])
@pytest.mark.parametrize("b,d,q_size,t", [(3, 4, 5, 0.2), (2, 3, 1, 0.5)])
def test_space_loss_matches_naive_value_and_gradient(positive, b, d, q_size, t) -> None:
    q, keys, queue = _data(b, 3, d, q_size, seed=b * 10 + d)
    qa, qb = q.clone().requires_grad_(), q.clone().requires_grad_()
    ka, kb = keys.clone().requires_grad_(), keys.clone().requires_grad_()
    got, want = looc_space_loss(qa, ka, queue, positive, t), naive_space(qb, kb, queue, positive, t)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-9)
    got.backward()
    want.backward()
    torch.testing.assert_close(qa.grad, qb.grad, atol=1e-10, rtol=1e-7)
    torch.testing.assert_close(ka.grad, kb.grad, atol=1e-10, rtol=1e-7)


def test_closed_form_orthogonal_case() -> None:
    # q = e0; keys k_0 = e1, k_1 = e0 (identical to q); queue = {e2}: every other similarity is 0
    e = torch.eye(3, dtype=torch.float64)
    q, keys, queue = e[:1], torch.stack([e[1:2], e[:1]]), e[2:3]
    t = 0.5
    # space "variant to augmentation 1": positive k_1 (sim 1), negatives k_0 and the queue (sim 0)
    want = -math.log(math.exp(2) / (math.exp(2) + 2))
    assert looc_space_loss(q, keys, queue, 1, t).item() == pytest.approx(want, abs=1e-12)
    # invariant space: mean of -log(e^{s_j} / (e^{s_j} + 1)) over k_0 (s = 0) and k_1 (s = 2)
    want0 = 0.5 * (math.log(2) + math.log((math.exp(2) + 1) / math.exp(2)))
    assert looc_space_loss(q, keys, queue, None, t).item() == pytest.approx(want0, abs=1e-12)
    assert looc_space_loss(q, keys, None, None, t).item() == pytest.approx(0.0, abs=1e-12)


def test_looc_loss_is_the_mean_over_spaces() -> None:
    q, keys, queue = _data(3, 3, 4, 4, seed=1)
    queries = [q, 2 * q + 0.1, q - 0.3]
    all_keys = [keys, keys.flip(0), keys * 0.5 + 0.2]
    want = (looc_space_loss(queries[0], all_keys[0], queue, None, 0.3)
            + looc_space_loss(queries[1], all_keys[1], queue, 1, 0.3)
            + looc_space_loss(queries[2], all_keys[2], queue, 2, 0.3)) / 3
    torch.testing.assert_close(looc_loss(queries, all_keys, [queue] * 3, temperature=0.3), want)


def test_gradcheck() -> None:
    q, keys, queue = _data(2, 3, 3, 2, seed=2)
    assert torch.autograd.gradcheck(lambda a, k: looc_space_loss(a, k, queue, 2, 0.4),
                                    (q.requires_grad_(), keys.requires_grad_()))


def test_bad_inputs() -> None:
    q, keys, queue = _data(3, 3, 4, 4, seed=3)
    with pytest.raises(ValueError, match="keys"):
        looc_space_loss(q, keys[:, :2], queue, None)
    with pytest.raises(ValueError, match="positive"):
        looc_space_loss(q, keys, queue, 3)
    with pytest.raises(ValueError, match="queue"):
        looc_space_loss(q, keys, queue[:, :2], None)
    with pytest.raises(ValueError, match="temperature"):
        looc_space_loss(q, keys, queue, None, temperature=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        looc_space_loss(torch.full_like(q, float("nan")), keys, queue, None)
    with pytest.raises(ValueError, match="keys"):
        looc_loss([q, q, q], [keys, keys], [queue] * 3)
    with pytest.raises(ValueError, match="queues"):
        looc_loss([q, q, q], [keys] * 3, [queue])
