"""The shared EMA / queue utilities of ``causalcl.methods.momentum``."""

import math

import pytest
import torch
from torch import nn

from causalcl.methods.momentum import FeatureQueue, cosine_momentum, ema_update_, frozen_copy


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def test_frozen_copy_is_an_independent_copy_without_gradients():
    online = _net(0)
    target = frozen_copy(online)
    assert all(not p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in online.parameters())
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        assert torch.equal(t, o) and t.data_ptr() != o.data_ptr()


@pytest.mark.parametrize("m", [0.0, 0.5, 0.99, 1.0])
def test_ema_update_matches_the_hand_formula_and_copies_buffers(m):
    online, target = _net(0), frozen_copy(_net(1))
    online.train()
    online(torch.randn(8, 3))  # move the online BN running statistics
    before = [p.clone() for p in target.parameters()]
    ema_update_(target, online, m)
    for t, t0, o in zip(target.parameters(), before, online.parameters(), strict=True):
        torch.testing.assert_close(t, m * t0 + (1 - m) * o.detach(), atol=1e-7, rtol=0)
    for tb, ob in zip(target.buffers(), online.buffers(), strict=True):
        assert torch.equal(tb, ob)
    assert all(not p.requires_grad for p in target.parameters())


def test_repeated_ema_updates_converge_geometrically():
    online, target = _net(0), frozen_copy(_net(1))
    gap0 = (target[0].weight - online[0].weight).detach().clone()
    for _ in range(3):
        ema_update_(target, online, 0.9)
    torch.testing.assert_close(target[0].weight - online[0].weight.detach(), 0.9**3 * gap0, atol=1e-6, rtol=0)


def test_ema_update_rejects_bad_arguments():
    with pytest.raises(ValueError, match="momentum"):
        ema_update_(_net(0), _net(1), 1.5)
    with pytest.raises(ValueError, match="parameter"):
        ema_update_(nn.Linear(3, 4), _net(1), 0.5)


def test_cosine_momentum_schedule():
    assert cosine_momentum(0.99, 0, 100) == pytest.approx(0.99, abs=1e-15)
    assert cosine_momentum(0.99, 100, 100) == pytest.approx(1.0, abs=1e-15)
    assert cosine_momentum(0.99, 50, 100) == pytest.approx(0.995, abs=1e-12)
    k, total, base = 17, 60, 0.9
    assert cosine_momentum(base, k, total) == pytest.approx(1 - (1 - base) * (math.cos(math.pi * k / total) + 1) / 2)
    values = [cosine_momentum(0.9, s, 20) for s in range(21)]
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))
    assert cosine_momentum(0.9, -5, 20) == pytest.approx(0.9) and cosine_momentum(0.9, 99, 20) == pytest.approx(1.0)


def test_queue_starts_as_unit_vectors_and_rejects_bad_sizes():
    queue = FeatureQueue(6, 4)
    assert queue.size == 6 and int(queue.ptr) == 0
    torch.testing.assert_close(queue().norm(dim=1), torch.ones(6))
    with pytest.raises(ValueError, match="size"):
        FeatureQueue(0, 4)


def test_queue_is_fifo_and_wraps_around():
    queue = FeatureQueue(5, 2)
    keys = torch.arange(14, dtype=torch.float32).reshape(7, 2)
    queue.enqueue(keys[0:2])
    queue.enqueue(keys[2:4])
    assert int(queue.ptr) == 4
    torch.testing.assert_close(queue()[:4], keys[:4])
    queue.enqueue(keys[4:6])  # rows 4 and 0: the oldest key (keys[0]) is replaced first
    assert int(queue.ptr) == 1
    torch.testing.assert_close(queue(), torch.stack([keys[5], keys[1], keys[2], keys[3], keys[4]]))
    queue.enqueue(keys[6:7])
    assert int(queue.ptr) == 2
    torch.testing.assert_close(queue()[1], keys[6])


def test_queue_keeps_the_newest_keys_of_a_large_batch():
    queue = FeatureQueue(3, 2)
    keys = torch.randn(7, 2)
    queue.enqueue(keys)
    torch.testing.assert_close(queue(), keys[-3:])
    assert int(queue.ptr) == 0


def test_queue_state_dict_carries_queue_and_pointer():
    queue = FeatureQueue(5, 3)
    queue.enqueue(torch.randn(3, 3, requires_grad=True))
    state = queue.state_dict()
    assert set(state) == {"queue", "ptr"}
    other = FeatureQueue(5, 3)
    other.load_state_dict(state)
    assert torch.equal(other(), queue()) and int(other.ptr) == 3
    assert not queue().requires_grad
