"""MetAug's OUCL and margin-injected regulariser against loop-by-loop references of their formulas."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import unit, views

import causalcl.losses as losses
from causalcl.losses import NonFiniteEmbeddingError, margin_injection, oucl, oucl_from_scores, pair_scores


def d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((unit(a) * unit(b)).sum() + 1) / 2


def naive_pair_scores(z1, z2):
    n = z1.shape[0]
    pos = [[d(z1[i], z2[i])] for i in range(n)]
    neg = [[d(z1[i], z2[k]) for k in range(n) if k != i] + [d(z1[k], z2[i]) for k in range(n) if k != i]
           for i in range(n)]
    return pos, neg


def naive_oucl(pos, neg, gamma, margins, adaptive, m, beta):
    """Mean over anchors of (1/γ) log(1 + Σ_p Σ_n exp(γ[a_n (s_n − Δ_n) − a_p (s_p − Δ_p)]))."""
    dp, dn = (1 - m, m) if margins else (0.0, 0.0)
    total = torch.zeros((), dtype=torch.float64)
    for ps, ns in zip(pos, neg, strict=True):
        inner = torch.ones((), dtype=torch.float64)
        for sp in ps:
            ap = max((1 - sp.item()) / beta + m, 0.0) if adaptive else 1.0
            for sn in ns:
                an = max(sn.item() / beta + m, 0.0) if adaptive else 1.0
                inner = inner + torch.exp(gamma * (an * (sn - dn) - ap * (sp - dp)))
        total = total + torch.log(inner) / gamma
    return total / len(pos)


CASES = [  # n, dim, gamma, margins, adaptive, m, beta
    (2, 3, 16.0, False, False, 0.25, 1.0),
    (4, 5, 16.0, True, False, 0.25, 1.0),
    (5, 4, 16.0, False, True, 0.25, 1.0),
    (3, 6, 8.0, True, True, 0.4, 0.5),
    (6, 2, 2.0, True, True, 0.1, 2.0),
]


@pytest.mark.parametrize("n,dim,gamma,margins,adaptive,m,beta", CASES)
def test_matches_naive_value_and_gradient(n, dim, gamma, margins, adaptive, m, beta) -> None:
    z1, z2 = views(n, dim, seed=n * 7 + dim)
    a1, a2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    b1, b2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    got = oucl(a1, a2, gamma=gamma, margins=margins, adaptive=adaptive, m=m, beta=beta)
    want = naive_oucl(*naive_pair_scores(b1, b2), gamma, margins, adaptive, m, beta)
    torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
    got.backward()
    want.backward()
    torch.testing.assert_close(a1.grad, b1.grad, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(a2.grad, b2.grad, atol=1e-9, rtol=1e-7)


def test_pair_scores_layout() -> None:
    z1, z2 = views(4, 3, seed=3)
    pos, neg = pair_scores(z1, z2)
    want_pos, want_neg = naive_pair_scores(z1, z2)
    assert pos.shape == (4, 1) and neg.shape == (4, 6)
    torch.testing.assert_close(pos, torch.stack([torch.stack(r) for r in want_pos]))
    torch.testing.assert_close(neg, torch.stack([torch.stack(r) for r in want_neg]))


@pytest.mark.parametrize("n", [2, 5])
def test_identical_embeddings_closed_forms(n: int) -> None:
    z = torch.ones(n, 3, dtype=torch.float64)  # every score d = 1
    g, m, b = 16.0, 0.25, 0.5
    assert oucl(z, z, gamma=g).item() == pytest.approx(math.log(1 + 2 * n - 2) / g, abs=1e-12)
    # adaptive: a_p = [(1 - 1)/β + m]_+ = m, a_n = 1/β + m, logit γ(a_n - a_p) = γ/β
    got = oucl(z, z, gamma=g, adaptive=True, m=m, beta=b).item()
    assert got == pytest.approx(math.log(1 + (2 * n - 2) * math.exp(g / b)) / g, rel=1e-12)


def test_default_is_infonce_with_temperature_one_eighth_on_cosines() -> None:
    z1, z2 = views(5, 4, seed=11)
    c = torch.nn.functional.normalize(z1, dim=1) @ torch.nn.functional.normalize(z2, dim=1).T
    total = 0.0
    for i in range(5):
        negs = torch.cat([c[i, torch.arange(5) != i], c[torch.arange(5) != i, i]])
        total += torch.log1p(torch.exp((negs - c[i, i]) / 0.125).sum()) / 16
    torch.testing.assert_close(oucl(z1, z2), total / 5)


def test_margins_are_a_constant_shift_without_adaptive_weights() -> None:
    pos, neg = pair_scores(*views(4, 3, seed=2))
    m = 0.3  # γ[(s_n − m) − (s_p − 1 + m)] = γ[s_n + 1 − 2m − s_p]
    torch.testing.assert_close(oucl_from_scores(pos, neg, margins=True, m=m), oucl_from_scores(pos, neg + 1 - 2 * m))
    assert not torch.allclose(oucl_from_scores(pos, neg, margins=True, m=m), oucl_from_scores(pos, neg))


def _value_and_grad(**kw):
    z1, z2 = views(6, 4, seed=5)
    z1.requires_grad_()
    loss = oucl(z1, z2, **kw)
    loss.backward()
    return loss.detach(), z1.grad


def test_adaptive_weights_change_loss_and_gradient() -> None:
    plain = _value_and_grad()
    weighted = _value_and_grad(adaptive=True)
    other_beta = _value_and_grad(adaptive=True, beta=0.5)
    other_m = _value_and_grad(adaptive=True, m=0.5)
    for a, b in [(plain, weighted), (weighted, other_beta), (weighted, other_m)]:
        assert not torch.allclose(a[0], b[0], rtol=1e-4)
        assert not torch.allclose(a[1], b[1], rtol=1e-3, atol=1e-6)
    # β only enters through the weights: without them it changes nothing
    torch.testing.assert_close(_value_and_grad(beta=0.5), plain, atol=0, rtol=0)


def test_adaptive_weights_are_detached() -> None:
    pos, neg = pair_scores(*views(4, 3, seed=8))
    p, n = pos.clone().requires_grad_(), neg.clone().requires_grad_()
    oucl_from_scores(p, n, adaptive=True).backward()
    ap, an = (1 - pos) + 0.25, neg + 0.25  # the weights as constants (β = 1, m = 0.25)
    q, r = pos.clone().requires_grad_(), neg.clone().requires_grad_()
    ((torch.nn.functional.softplus(torch.logsumexp(16 * an * r, 1) + torch.logsumexp(-16 * ap * q, 1)) / 16).mean()
     .backward())
    torch.testing.assert_close(p.grad, q.grad)
    torch.testing.assert_close(n.grad, r.grad)


def test_gradcheck_scores() -> None:
    g = torch.Generator().manual_seed(0)
    pos = torch.rand(3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    neg = torch.rand(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    # without adaptive weights: gradcheck's numerical derivative would also move the (detached) weights
    assert torch.autograd.gradcheck(lambda p, n: oucl_from_scores(p, n, gamma=4.0, margins=True), (pos, neg))


def naive_margin(pos, neg, pos_aug, neg_aug, w):
    a = pos.shape[0]
    hp, hn = 0.0, 0.0
    for i in range(a):
        lo, hi = min(pos[i]), max(neg[i])
        s_plus, s_minus = min(lo, hi), max(lo, hi)
        hp = hp + sum(torch.clamp(x - s_plus, min=0) for x in pos_aug[i]) / (a * pos_aug.shape[1])
        hn = hn + sum(torch.clamp(s_minus - x, min=0) for x in neg_aug[i]) / (a * neg_aug.shape[1])
    return w * hp + hn


@pytest.mark.parametrize("w", [1.0, 1e-4])
def test_margin_injection_matches_naive_value_and_gradient(w: float) -> None:
    g = torch.Generator().manual_seed(4)
    tensors = [torch.rand(5, k, generator=g, dtype=torch.float64) for k in (1, 8, 3, 24)]
    a = [t.clone().requires_grad_() for t in tensors]
    b = [t.clone().requires_grad_() for t in tensors]
    got, want = margin_injection(*a, pos_weight=w), naive_margin(*b, w)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)
    got.backward()
    want.backward()
    for x, y in zip(a, b, strict=True):  # σ is not detached: the original scores get gradients too
        torch.testing.assert_close(x.grad, y.grad, atol=1e-12, rtol=1e-10)
    assert a[0].grad.abs().sum() + a[1].grad.abs().sum() > 0


def test_margin_injection_by_hand() -> None:
    t = lambda *v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    # separated (min pos 0.9 > max neg 0.4): σ+ = 0.4, σ- = 0.9
    r = margin_injection(t(0.9), t(0.1, 0.4), t(0.5, 0.3), t(0.8, 0.95))
    assert r.item() == pytest.approx((0.1 + 0.0) / 2 + (0.1 + 0.0) / 2)
    # overlapping (min pos 0.3 < max neg 0.6): σ+ = 0.3, σ- = 0.6
    r = margin_injection(t(0.3), t(0.6, 0.2), t(0.5, 0.2), t(0.5, 0.7), pos_weight=2.0)
    assert r.item() == pytest.approx(2.0 * (0.2 + 0.0) / 2 + (0.1 + 0.0) / 2)


def test_validation() -> None:
    z1, z2 = views(4, 3, seed=1)
    pos, neg = pair_scores(z1, z2)
    with pytest.raises(ValueError, match="gamma"):
        oucl(z1, z2, gamma=0)
    with pytest.raises(ValueError, match="beta"):
        oucl(z1, z2, adaptive=True, beta=-1)
    with pytest.raises(ValueError, match="m must"):
        oucl(z1, z2, m=-0.1)
    with pytest.raises(NonFiniteEmbeddingError, match="z1"):
        oucl(z1 * float("nan"), z2)
    with pytest.raises(ValueError, match="z2"):
        oucl(z1, z2[:3])
    with pytest.raises(ValueError, match="neg"):
        oucl_from_scores(pos, neg[:2])
    with pytest.raises(ValueError, match="pos"):
        oucl_from_scores(pos.squeeze(1), neg)
    with pytest.raises(ValueError, match="neg_aug"):
        margin_injection(pos, neg, pos, neg[:, :0])
    with pytest.raises(ValueError, match="pos_aug"):
        margin_injection(pos, neg, pos[:2], neg[:2])
    with pytest.raises(ValueError, match="pos_weight"):
        margin_injection(pos, neg, pos, neg, pos_weight=-1.0)


def test_exported() -> None:
    for name in ("oucl", "oucl_from_scores", "margin_injection", "pair_scores"):
        assert name in losses.__all__ and getattr(losses, name) is not None
