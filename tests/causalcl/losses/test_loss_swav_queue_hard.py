"""SwAV's queue (``swav_loss(queue_scores=…)``) and hard / debiased reweighting over the prototypes
(``prototype_log_probs``, "SwAV + Hard") against loop references of their formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from causalcl.losses import prototype_log_probs, sinkhorn_knopp, swav_loss


def _scores(n: int, k: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, k, generator=g, dtype=torch.float64) * 2 - 1) * scale


def naive_log_probs(s: torch.Tensor, t: float, beta: float | None, tau_plus: float,
                    detach: bool = False) -> torch.Tensor:
    """log p̃[n, k] with explicit loops over samples, targets k and negatives j != k."""
    n, kk = s.shape
    m = kk - 1
    rows = []
    for i in range(n):
        row = []
        for k in range(kk):
            pos = torch.exp(s[i, k] / t)
            negs, imps = [], []
            for j in range(kk):
                if j == k:
                    continue
                negs.append(torch.exp(s[i, j] / t))
                w_s = s[i, j].detach() if detach else s[i, j]
                imps.append(torch.exp(beta * w_s / t) if beta is not None else torch.ones((), dtype=s.dtype))
            reweight = sum(w * x for w, x in zip(imps, negs, strict=True)) / (sum(imps) / m)
            ng = (reweight - tau_plus * m * pos) / (1 - tau_plus)
            ng = torch.clamp(ng, min=m * math.exp(-1 / t))
            row.append(torch.log(pos / (pos + ng)))
        rows.append(torch.stack(row))
    return torch.stack(rows)


CASES = [(3, 2, 0.1, 0.0, 1.0), (4, 5, 0.1, 0.1, 1.0), (5, 7, 0.5, 0.05, 3.0), (2, 4, 1.0, 0.3, 0.5),
         (6, 3, 0.05, 0.1, 2.0)]


@pytest.mark.parametrize("n,k,t,tp,beta", CASES)
@pytest.mark.parametrize("mode", ["hard", "hard_detached", "debiased"])
def test_prototype_log_probs_match_naive(n: int, k: int, t: float, tp: float, beta: float, mode: str) -> None:
    s = _scores(n, k, seed=n * 13 + k)
    b = None if mode == "debiased" else beta
    detach = mode == "hard_detached"
    a, r = s.clone().requires_grad_(), s.clone().requires_grad_()
    got = prototype_log_probs(a, t, beta=b, tau_plus=tp, detach_weights=detach)
    want = naive_log_probs(r, t, b, tp, detach)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    weights = torch.rand(n, k, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (got * weights).sum().backward()
    (want * weights).sum().backward()
    torch.testing.assert_close(a.grad, r.grad, atol=1e-10, rtol=1e-8)


def test_plain_path_is_log_softmax_and_beta_zero_is_debiased() -> None:
    s = _scores(5, 6, seed=2)
    torch.testing.assert_close(prototype_log_probs(s, 0.1), F.log_softmax(s / 0.1, dim=1), atol=0, rtol=0)
    # the reweighted formula with beta = 0, tau+ = 0 is the softmax again (other arithmetic)
    torch.testing.assert_close(prototype_log_probs(s, 0.1, beta=0.0), F.log_softmax(s / 0.1, dim=1),
                               atol=1e-12, rtol=0)
    torch.testing.assert_close(prototype_log_probs(s, 0.1, beta=0.0, tau_plus=0.2),
                               prototype_log_probs(s, 0.1, tau_plus=0.2), atol=1e-12, rtol=0)


def test_hard_weights_raise_the_loss_of_close_prototypes() -> None:
    s = _scores(4, 8, seed=3)
    plain = -prototype_log_probs(s, 0.1)
    hard = -prototype_log_probs(s, 0.1, beta=2.0)
    # the hard estimate weighs the most similar negatives up: every term grows (Ng >= the plain sum)
    assert (hard >= plain - 1e-12).all() and (hard > plain).any()


def test_leave_one_out_is_stable_for_a_dominant_prototype() -> None:
    s = torch.full((2, 3000), -0.2, dtype=torch.float64)
    s[:, 0] = 1.0
    want = naive_log_probs(s[:, :40], 0.05, 2.0, 0.1)[:, :3]  # same rows, fewer prototypes: a float64 reference
    got64 = prototype_log_probs(s[:, :40], 0.05, beta=2.0, tau_plus=0.1)[:, :3]
    torch.testing.assert_close(got64, want, atol=1e-10, rtol=1e-10)
    got32 = prototype_log_probs(s.float(), 0.05, beta=2.0, tau_plus=0.1)
    assert torch.isfinite(got32).all()
    torch.testing.assert_close(got32.double(), prototype_log_probs(s, 0.05, beta=2.0, tau_plus=0.1),
                               atol=1e-4, rtol=1e-5)


def test_swav_loss_with_queue_uses_sinkhorn_over_queue_and_batch() -> None:
    n, k, length = 6, 5, 10
    s = [_scores(n, k, seed=i).requires_grad_() for i in range(2)]
    qs = [_scores(length, k, seed=10 + i) for i in range(2)]
    got = swav_loss(s, temperature=0.2, queue_scores=qs)
    total = torch.zeros((), dtype=torch.float64)
    for a, b in ((0, 1), (1, 0)):
        q = sinkhorn_knopp(torch.cat([qs[a], s[a].detach()]))[-n:]
        log_p = F.log_softmax(s[b] / 0.2, dim=1)
        total = total - sum(q[i, j] * log_p[i, j] for i in range(n) for j in range(k)) / n
    torch.testing.assert_close(got, total / 2, atol=1e-12, rtol=1e-12)
    assert not torch.allclose(got, swav_loss(s, temperature=0.2))  # the queue changes the codes
    torch.testing.assert_close(swav_loss(s, queue_scores=[None, None]), swav_loss(s), atol=0, rtol=0)
    got.backward()
    assert all(x.grad is not None for x in s)


def test_swav_loss_hard_matches_naive() -> None:
    n, k = 5, 6
    s = [_scores(n, k, seed=20 + i) for i in range(2)]
    a = [x.clone().requires_grad_() for x in s]
    r = [x.clone().requires_grad_() for x in s]
    got = swav_loss(a, temperature=0.1, beta=1.0, tau_plus=0.1)
    total = torch.zeros((), dtype=torch.float64)
    for c, o in ((0, 1), (1, 0)):
        q = sinkhorn_knopp(r[c].detach())
        total = total - (q * naive_log_probs(r[o], 0.1, 1.0, 0.1)).sum() / n
    want = total / 2
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    got.backward()
    want.backward()
    for x, y in zip(a, r, strict=True):
        torch.testing.assert_close(x.grad, y.grad, atol=1e-10, rtol=1e-8)


def test_bad_arguments() -> None:
    s = [_scores(4, 5, seed=i) for i in range(2)]
    with pytest.raises(ValueError, match="queue_scores: expected one entry per assigned crop"):
        swav_loss(s, queue_scores=[_scores(3, 5, seed=3)])
    with pytest.raises(ValueError, match="queue_scores\\[1\\]"):
        swav_loss(s, queue_scores=[None, _scores(3, 4, seed=3)])
    with pytest.raises(ValueError, match="tau_plus"):
        swav_loss(s, tau_plus=1.0)
    with pytest.raises(ValueError, match="beta"):
        prototype_log_probs(s[0], beta=-1.0)
    with pytest.raises(ValueError, match="K >= 2"):
        prototype_log_probs(_scores(3, 1, seed=0), beta=1.0)
