"""ReLIC's loss (`relic_terms`, `relic_kl`, `relic_loss`) against loop-by-loop references."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import unit

from causalcl.losses import relic_kl, relic_logits, relic_loss, relic_terms


def _rand(v: int, n: int, d: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, d, generator=g, dtype=torch.float64)
    return [base + 0.8 * torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(v)]


def naive_dist(u: torch.Tensor, w: torch.Tensor, t: float) -> list[list[torch.Tensor]]:
    """p[i][j] = exp(cos(u_i, w_j)/t) / sum_m exp(cos(u_i, w_m)/t), by loops."""
    n = u.shape[0]
    rows = []
    for i in range(n):
        e = [torch.exp((unit(u[i]) * unit(w[j])).sum() / t) for j in range(n)]
        total = sum(e)
        rows.append([e[j] / total for j in range(n)])
    return rows


def naive_kl(p: list[list[torch.Tensor]], q: list[list[torch.Tensor]], mode: str) -> torch.Tensor:
    n = len(p)
    total = torch.zeros((), dtype=torch.float64)
    for i in range(n):
        neg_entropy = torch.zeros((), dtype=torch.float64)
        cross = torch.zeros((), dtype=torch.float64)
        for j in range(n):
            pij = p[i][j].detach() if mode == "target" else p[i][j]
            neg_entropy = neg_entropy + pij * torch.log(pij)
            cross = cross + pij * torch.log(q[i][j])
        if mode == "entropy":
            neg_entropy = neg_entropy.detach()
        total = total + neg_entropy - cross
    return total / n


def naive_terms(online: list[torch.Tensor], target: list[torch.Tensor], t: float, mode: str):
    v = len(online)
    pairs = [(a, b) for a in range(v) for b in range(v) if a != b]
    dist = {pr: naive_dist(online[pr[0]], target[pr[1]], t) for pr in pairs}
    n = online[0].shape[0]
    infonce = torch.zeros((), dtype=torch.float64)
    for pr in pairs:
        for i in range(n):
            infonce = infonce - torch.log(dist[pr][i][i]) / (n * len(pairs))
    kl = torch.zeros((), dtype=torch.float64)
    count = 0
    for a in pairs:
        for b in pairs:
            if a != b:
                kl = kl + naive_kl(dist[a], dist[b], mode)
                count += 1
    return infonce, kl / count


def test_two_view_hand_example() -> None:
    # N = 2, D = 2, unit vectors at known angles: the four cosines are cos of angle differences
    ang1, ang2 = [0.0, math.pi / 2], [math.pi / 6, math.pi]
    z1 = torch.tensor([[math.cos(a), math.sin(a)] for a in ang1], dtype=torch.float64)
    z2 = torch.tensor([[math.cos(a), math.sin(a)] for a in ang2], dtype=torch.float64)
    t = 0.5

    def softmax_row(vals: list[float]) -> list[float]:
        e = [math.exp(x / t) for x in vals]
        return [x / sum(e) for x in e]

    p12 = [softmax_row([math.cos(ang1[i] - ang2[j]) for j in range(2)]) for i in range(2)]
    p21 = [softmax_row([math.cos(ang2[i] - ang1[j]) for j in range(2)]) for i in range(2)]

    def kl(p: list[list[float]], q: list[list[float]]) -> float:
        return sum(p[i][j] * math.log(p[i][j] / q[i][j]) for i in range(2) for j in range(2)) / 2

    want_infonce = -(math.log(p12[0][0]) + math.log(p12[1][1]) + math.log(p21[0][0]) + math.log(p21[1][1])) / 4
    want_kl = 0.5 * (kl(p12, p21) + kl(p21, p12))
    infonce, got_kl = relic_terms([z1, z2], [z1, z2], temperature=t)
    assert infonce.item() == pytest.approx(want_infonce, abs=1e-12)
    assert got_kl.item() == pytest.approx(want_kl, abs=1e-12)
    assert want_kl > 1e-3  # the example is not degenerate
    assert relic_loss([z1, z2], [z1, z2], temperature=t, alpha=2.0).item() == pytest.approx(
        want_infonce + 2 * want_kl, abs=1e-12)


@pytest.mark.parametrize("mode", ["entropy", "none", "target"])
@pytest.mark.parametrize("v,n,d,t,shared", [(2, 3, 4, 0.5, True), (2, 4, 3, 0.2, False), (3, 3, 2, 1.0, True)])
def test_matches_naive_value_and_gradient(mode: str, v: int, n: int, d: int, t: float, shared: bool) -> None:
    online = _rand(v, n, d, seed=v * 100 + n * 10 + d)
    target = online if shared else _rand(v, n, d, seed=7)
    a = [x.clone().requires_grad_() for x in online]
    b = [x.clone().requires_grad_() for x in online]
    ta = a if shared else [x.clone().requires_grad_() for x in target]
    tb = b if shared else [x.clone().requires_grad_() for x in target]
    got = relic_terms(a, ta, temperature=t, stop_gradient=mode)
    want = naive_terms(b, tb, t, mode)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-9)
    (got[0] + 0.7 * got[1]).backward()
    (want[0] + 0.7 * want[1]).backward()
    for x, y in zip(a + ([] if shared else ta), b + ([] if shared else tb), strict=True):
        torch.testing.assert_close(x.grad, y.grad, atol=1e-10, rtol=1e-7)


def test_stop_gradient_modes_share_the_value_but_not_the_gradient() -> None:
    lp, lq = torch.randn(2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grads = {}
    values = {}
    for mode in ("entropy", "none", "target"):
        p, q = lp.clone().requires_grad_(), lq.clone().requires_grad_()
        out = relic_kl(p, q, mode)
        out.backward()
        values[mode], grads[mode] = out.item(), (p.grad, q.grad)
    assert values["entropy"] == pytest.approx(values["none"], abs=1e-12)
    assert values["target"] == pytest.approx(values["none"], abs=1e-12)
    assert grads["target"][0] is None  # p fully detached
    torch.testing.assert_close(grads["target"][1], grads["none"][1])  # q's gradient does not depend on sg of p
    assert not torch.allclose(grads["entropy"][0], grads["none"][0])


def test_kl_vanishes_for_identical_views_with_a_shared_network() -> None:
    z = _rand(1, 5, 3, seed=1)[0]
    _, kl = relic_terms([z, z.clone()], [z, z.clone()])
    assert kl.item() == pytest.approx(0.0, abs=1e-12)


def test_gradcheck() -> None:
    online = [x.requires_grad_() for x in _rand(2, 2, 3, seed=3)]
    target = [x.requires_grad_() for x in _rand(2, 2, 3, seed=4)]
    assert torch.autograd.gradcheck(
        lambda a, b, c, e: relic_loss([a, b], [c, e], temperature=0.4, alpha=1.5, stop_gradient="none"),
        (*online, *target))


def test_logits_and_bad_inputs() -> None:
    u, w = _rand(2, 4, 3, seed=5)
    expected = torch.tensor([[(unit(u[i]) * unit(w[j])).sum().item() / 0.25 for j in range(4)] for i in range(4)],
                            dtype=torch.float64)
    torch.testing.assert_close(relic_logits(u, w, 0.25), expected)
    with pytest.raises(ValueError, match="V >= 2"):
        relic_terms([u], [w])
    with pytest.raises(ValueError, match="stop_gradient"):
        relic_terms([u, w], [u, w], stop_gradient="both")
    with pytest.raises(ValueError, match="temperature"):
        relic_terms([u, w], [u, w], temperature=0.0)
    with pytest.raises(ValueError, match="alpha"):
        relic_loss([u, w], [u, w], alpha=-1.0)
    with pytest.raises(ValueError, match="z2"):
        relic_terms([u, w], [u, w[:3]])
    with pytest.raises(ValueError, match="NaN"):
        relic_terms([u, torch.full_like(w, float("nan"))], [u, w])


def _descend_p(mode: str, steps: int = 200, lr: float = 16.0) -> tuple[float, float, float, float, float]:
    """Plain gradient descent on p's logits under ``relic_kl(p, q, mode)`` with q's logits fixed (the loss is
    the mean over 8 rows, hence the step 16 = 2 per row).

    Returns (KL at start, KL at end, H(p) at start, H(p) at end, H(q))."""
    g = torch.Generator().manual_seed(0)
    lq = 2.0 * torch.randn(8, 16, generator=g, dtype=torch.float64)  # fixed, no gradient
    lp = torch.randn(8, 16, generator=g, dtype=torch.float64).requires_grad_()

    def entropy(logits: torch.Tensor) -> float:
        logp = torch.log_softmax(logits.detach(), 1)
        return float(-(logp.exp() * logp).sum(1).mean())

    kl0, hp0 = relic_kl(lp.detach(), lq).item(), entropy(lp)
    opt = torch.optim.SGD([lp], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        relic_kl(lp, lq, mode).backward()
        opt.step()
    return kl0, relic_kl(lp.detach(), lq).item(), hp0, entropy(lp), entropy(lq)


def test_default_kl_gradient_moves_p_towards_q() -> None:
    """The default (exact KL) gradient drives p to q: KL → 0 and H(p) → H(q), not 0."""
    assert relic_kl.__defaults__ == ("none",)
    kl0, kl1, _, hp1, hq = _descend_p("none")
    assert kl0 > 0.5 and kl1 < 1e-2 * kl0
    assert hp1 == pytest.approx(hq, abs=0.05) and hq > 0.5


def test_entropy_stop_gradient_sharpens_p_instead() -> None:
    """The "entropy" mode's gradient is the cross-entropy H(p, q)'s: with q fixed it collapses p to a
    one-hot (H(p) → 0) while the KL stays large, so it is told apart from the default."""
    kl0, kl1, hp0, hp1, hq = _descend_p("entropy")
    assert hp1 < 0.05 < 1.0 < hq and hp1 < 0.05 * hp0
    assert kl1 > 0.3 * kl0


def test_target_stop_gradient_gives_p_no_gradient() -> None:
    lp = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    lq = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    relic_kl(lp, lq, "target").backward()
    assert lp.grad is None and lq.grad is not None and lq.grad.abs().sum() > 0
