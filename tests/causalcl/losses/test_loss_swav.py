"""SwAV: Sinkhorn-Knopp marginals and a loop reference, and the swapped-prediction loss by loops."""

from __future__ import annotations

import math

import pytest
import torch

from causalcl.losses import NonFiniteEmbeddingError, sinkhorn_knopp, swav_loss


def scores(b: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.nn.functional.normalize(torch.randn(b, 6, generator=g, dtype=torch.float64), dim=1)
    c = torch.nn.functional.normalize(torch.randn(k, 6, generator=g, dtype=torch.float64), dim=1)
    return z @ c.T


def naive_sinkhorn(s: torch.Tensor, eps: float, iters: int) -> torch.Tensor:
    """Algorithm 1 of the paper with explicit loops, on Q (K x B), no max shift."""
    b, k = s.shape
    q = [[math.exp(float(s[n, j]) / eps) for n in range(b)] for j in range(k)]
    total = sum(sum(row) for row in q)
    q = [[v / total for v in row] for row in q]
    for _ in range(iters):
        for j in range(k):  # prototypes: mass 1/K each
            r = sum(q[j])
            q[j] = [v / r / k for v in q[j]]
        for n in range(b):  # samples: mass 1/B each
            col = sum(q[j][n] for j in range(k))
            for j in range(k):
                q[j][n] = q[j][n] / col / b
    return torch.tensor([[q[j][n] * b for j in range(k)] for n in range(b)], dtype=torch.float64)


@pytest.mark.parametrize("b,k,eps,iters", [(4, 3, 0.05, 3), (6, 10, 0.5, 1), (8, 5, 0.1, 7), (3, 2, 1.0, 3)])
def test_sinkhorn_matches_loop_reference(b: int, k: int, eps: float, iters: int) -> None:
    s = scores(b, k, seed=b + k)
    torch.testing.assert_close(sinkhorn_knopp(s, eps, iters), naive_sinkhorn(s, eps, iters), atol=1e-12, rtol=1e-9)


@pytest.mark.parametrize("b,k", [(16, 4), (8, 8), (5, 12)])
def test_sinkhorn_marginals(b: int, k: int) -> None:
    s = scores(b, k, seed=3)
    q = sinkhorn_knopp(s, 0.05, 3)
    torch.testing.assert_close(q.sum(1), torch.ones(b, dtype=torch.float64), atol=1e-12, rtol=0)  # rows: 1
    assert (q >= 0).all()
    q = sinkhorn_knopp(s, 0.3, 2000)  # many iterations: equipartition, columns B/K
    torch.testing.assert_close(q.sum(1), torch.ones(b, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(q.sum(0), torch.full((k,), b / k, dtype=torch.float64), atol=1e-8, rtol=0)


def test_sinkhorn_equipartition_beats_argmax() -> None:
    # every sample prefers prototype 0; the codes still spread the batch over both prototypes
    s = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]], dtype=torch.float64)
    q = sinkhorn_knopp(s, 0.05, 3)
    assert q[0, 0] > 0.9 and q[3, 1] > 0.9


def test_sinkhorn_is_shift_invariant_and_stable() -> None:
    s = scores(6, 4, seed=1)
    torch.testing.assert_close(sinkhorn_knopp(s + 50.0, 0.05, 3), sinkhorn_knopp(s, 0.05, 3), atol=1e-12, rtol=0)
    q = sinkhorn_knopp((s * 100).float(), 0.01, 3)  # exp(1e4) overflows, exp(-2e4) underflows: log domain
    assert torch.isfinite(q).all()
    assert not sinkhorn_knopp(s.requires_grad_(), 0.05, 3).requires_grad


def naive_swav_loss(s: list[torch.Tensor], t: float, eps: float, iters: int, assign: tuple[int, ...]):
    v_count, (n, k) = len(s), s[0].shape
    total = torch.zeros((), dtype=torch.float64)
    for a in assign:
        q = naive_sinkhorn(s[a].detach(), eps, iters)
        sub = torch.zeros((), dtype=torch.float64)
        for v in range(v_count):
            if v == a:
                continue
            for i in range(n):
                log_z = torch.log(sum(torch.exp(s[v][i, j] / t) for j in range(k)))
                for j in range(k):
                    sub = sub - q[i, j] * (s[v][i, j] / t - log_z) / n
        total = total + sub / (v_count - 1)
    return total / len(assign)


@pytest.mark.parametrize("crops,assign", [(2, (0, 1)), (4, (0, 1)), (3, (1,))])
def test_loss_matches_naive_value_and_gradient(crops: int, assign: tuple[int, ...]) -> None:
    s = [scores(5, 4, seed=10 + v) for v in range(crops)]
    a = [x.clone().requires_grad_() for x in s]
    b = [x.clone().requires_grad_() for x in s]
    got = swav_loss(a, temperature=0.1, epsilon=0.05, sinkhorn_iterations=3, assign_crops=assign)
    want = naive_swav_loss(b, 0.1, 0.05, 3, assign)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-9)
    got.backward()
    want.backward()
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.grad, y.grad, atol=1e-10, rtol=1e-7)


def test_two_crops_is_symmetric() -> None:
    s1, s2 = scores(6, 5, seed=1), scores(6, 5, seed=2)
    torch.testing.assert_close(swav_loss([s1, s2]), swav_loss([s2, s1]), atol=1e-12, rtol=0)


def test_gradcheck_of_the_predicting_crop() -> None:
    # codes are targets (no gradient), so check d/d(scores of the crop that predicts them) only
    s0, s1 = scores(4, 3, seed=7), scores(4, 3, seed=8).requires_grad_()
    assert torch.autograd.gradcheck(lambda b: swav_loss([s0, b], temperature=0.5, assign_crops=(0,)), (s1,))
    assert not swav_loss([s0.requires_grad_(), s1.detach()], assign_crops=(0,)).requires_grad


def test_bad_inputs() -> None:
    s1, s2 = scores(4, 3, seed=0), scores(4, 3, seed=1)
    with pytest.raises(ValueError, match="scores"):
        swav_loss([s1])
    with pytest.raises(ValueError, match="shape"):
        swav_loss([s1, s2[:, :2]])
    with pytest.raises(ValueError, match="temperature"):
        swav_loss([s1, s2], temperature=0)
    with pytest.raises(ValueError, match="epsilon"):
        sinkhorn_knopp(s1, epsilon=-1.0)
    with pytest.raises(ValueError, match="sinkhorn_iterations"):
        swav_loss([s1, s2], sinkhorn_iterations=0)
    with pytest.raises(ValueError, match="assign_crops"):
        swav_loss([s1, s2], assign_crops=(0, 2))
    bad = s1.clone()
    bad[1, 1] = float("inf")
    with pytest.raises(NonFiniteEmbeddingError):
        swav_loss([bad, s2])
