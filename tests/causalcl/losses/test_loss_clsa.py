"""CLSA's distributional divergence loss L_D against a loop-by-loop reference of its formula."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import unit

from causalcl.losses import NonFiniteEmbeddingError, clsa_ddm_loss


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def naive_ddm(q_weak, q_strong, k, queue, t):
    """-1/N sum_i sum_c p_c(.|q'_i) log p_c(.|q''_i) over the candidates [k_i, n_1..n_K]."""
    total = torch.zeros((), dtype=torch.float64)
    for i in range(q_weak.shape[0]):
        candidates = [unit(k[i])] + [unit(queue[j]) for j in range(queue.shape[0])]
        weak = [torch.exp((unit(q_weak[i].detach()) * c).sum() / t) for c in candidates]
        strong = [torch.exp((unit(q_strong[i]) * c).sum() / t) for c in candidates]
        for wc, sc in zip(weak, strong, strict=True):
            total = total - (wc / sum(weak)) * torch.log(sc / sum(strong))
    return total / q_weak.shape[0]


@pytest.mark.parametrize("n,d,size,t", [(2, 3, 1, 0.2), (3, 4, 5, 0.1), (5, 8, 7, 1.0), (6, 4, 16, 0.07)])
def test_matches_naive_value_and_gradient(n, d, size, t) -> None:
    q_weak, q_strong, k, queue = (_randn(n, d, seed=1), _randn(n, d, seed=2), _randn(n, d, seed=3),
                                  _randn(size, d, seed=4))
    a, b = q_strong.clone().requires_grad_(), q_strong.clone().requires_grad_()
    got, want = clsa_ddm_loss(q_weak, a, k, queue, temperature=t), naive_ddm(q_weak, b, k, queue, t)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    got.backward()
    want.backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-10, rtol=1e-8)


def test_only_the_strong_query_receives_gradient() -> None:
    q_weak, q_strong, k, queue = (_randn(4, 3, seed=5).requires_grad_(), _randn(4, 3, seed=6).requires_grad_(),
                                  _randn(4, 3, seed=7).requires_grad_(), _randn(6, 3, seed=8).requires_grad_())
    clsa_ddm_loss(q_weak, q_strong, k, queue).backward()
    assert q_strong.grad is not None and q_strong.grad.abs().sum() > 0
    assert q_weak.grad is None and k.grad is None and queue.grad is None


@pytest.mark.parametrize("size", [1, 5, 100])
def test_uniform_distributions_give_log_of_the_candidates(size) -> None:
    """Queries orthogonal to the key and to every queued key: both distributions are uniform over 1 + K."""
    q = torch.eye(3, 8, dtype=torch.float64)
    k = torch.eye(8, dtype=torch.float64)[3:6]
    queue = torch.eye(8, dtype=torch.float64)[6:7].expand(size, -1)
    assert float(clsa_ddm_loss(q, q, k, queue)) == pytest.approx(math.log(1 + size), abs=1e-12)


def test_gibbs_inequality_minimum_at_the_weak_distribution() -> None:
    q_weak, k, queue = _randn(5, 4, seed=9), _randn(5, 4, seed=10), _randn(8, 4, seed=11)
    at_weak = clsa_ddm_loss(q_weak, q_weak, k, queue)  # = the entropy of the weak distribution
    for seed in range(5):
        assert clsa_ddm_loss(q_weak, _randn(5, 4, seed=20 + seed), k, queue) > at_weak


def test_scale_invariant() -> None:
    q_weak, q_strong, k, queue = _randn(4, 3, seed=12), _randn(4, 3, seed=13), _randn(4, 3, seed=14), \
        _randn(5, 3, seed=15)
    base = clsa_ddm_loss(q_weak, q_strong, k, queue, temperature=0.3)
    torch.testing.assert_close(clsa_ddm_loss(2 * q_weak, 3 * q_strong, 4 * k, 5 * queue, temperature=0.3), base,
                               atol=1e-12, rtol=0)


@pytest.mark.parametrize("kwargs,name", [
    ({"q_strong": torch.randn(3, 4)}, "z2"),
    ({"k": torch.randn(4, 5)}, "k"),
    ({"queue": torch.randn(6, 3)}, "queue"),
    ({"queue": torch.zeros(0, 4)}, "queue"),
    ({"queue": torch.zeros(6, 4, dtype=torch.long)}, "queue"),
    ({"temperature": -1.0}, "temperature"),
])
def test_bad_arguments_name_the_argument(kwargs, name) -> None:
    args = {"q_weak": torch.randn(4, 4), "q_strong": torch.randn(4, 4), "k": torch.randn(4, 4),
            "queue": torch.randn(6, 4), "temperature": 0.2, **kwargs}
    with pytest.raises(ValueError, match=name):
        clsa_ddm_loss(**args)


def test_non_finite_queue_is_refused() -> None:
    queue = torch.randn(6, 4)
    queue[0, 0] = float("inf")
    with pytest.raises(NonFiniteEmbeddingError, match="queue"):
        clsa_ddm_loss(torch.randn(4, 4), torch.randn(4, 4), torch.randn(4, 4), queue)
