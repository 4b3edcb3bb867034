"""The SimCLR loss family on MoCo's queue and CMC's cross-view negatives (``causalcl.losses.variants``) against
loop-by-loop references of the module docstring's formulas, reductions to the plain forms, and option checks."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import unit, views

from causalcl.losses import (
    SIMCLR_LOSSES,
    VARIANT_LOSSES,
    cross_view_info_nce,
    cross_view_variant_loss,
    info_nce_queue,
    queue_variant_loss,
    variant_options,
)

CASES = [(2, 3, 1, 0.2), (3, 4, 5, 0.1), (5, 8, 7, 0.5), (6, 4, 16, 0.07)]
#: one option set per variant (defaults where the variant has options worth varying)
OPTIONS: dict[str, list[dict]] = {
    "infonce": [{}],
    "debiased": [{"tau_plus": 0.1}, {"tau_plus": 0.3}],
    "hard": [{"tau_plus": 0.1, "beta": 1.0}, {"tau_plus": 0.05, "beta": 3.0}, {"beta": 0.5, "detach_weights": True}],
    "dcl": [{}],
    "dclw": [{"weight_sigma": 0.5}, {"weight_sigma": 2.0}],
    "hard_threshold": [{}, {"top_k": 1}, {"threshold": 0.0}],
    "align_uniform": [{}, {"alpha": 1.0, "t": 3.0, "align_weight": 3.0, "unif_weight": 0.5}],
    "triplet": [{}, {"negatives": "all", "margin": 0.2}],
}
VARIANTS = [(name, opts) for name in VARIANT_LOSSES for opts in OPTIONS[name]]


def _queue(k: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(k, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _with_t(name: str, opts: dict, t: float) -> dict:
    return {"temperature": t, **opts} if "temperature" in variant_options(name) else dict(opts)


def _value(s: torch.Tensor) -> float:
    return float(s.detach())


def naive_anchor(name: str, pos: torch.Tensor, negs: list[torch.Tensor], o: dict,
                 w: torch.Tensor | None) -> torch.Tensor:
    """ℓ of one anchor from its positive cosine and the list of its negative cosines, written from the formulas."""
    m = len(negs)
    if name in ("infonce", "debiased", "hard"):
        t = o["temperature"]
        e_pos = torch.exp(pos / t)
        e_neg = [torch.exp(s / t) for s in negs]
        if name == "infonce":
            return -torch.log(e_pos / (e_pos + sum(e_neg)))
        if name == "debiased":
            reweight = sum(e_neg)
        else:
            imp = [torch.exp(o["beta"] * (s.detach() if o.get("detach_weights") else s) / t) for s in negs]
            reweight = m * sum(wi * x for wi, x in zip(imp, e_neg, strict=True)) / sum(imp)
        ng = (reweight - o["tau_plus"] * m * e_pos) / (1 - o["tau_plus"])
        ng = torch.clamp(ng, min=m * math.exp(-1 / t))
        return -torch.log(e_pos / (e_pos + ng))
    if name in ("dcl", "dclw"):
        t = o["temperature"]
        weight = 1.0 if w is None else w
        return -weight * pos / t + torch.log(sum(torch.exp(s / t) for s in negs))
    if name == "hard_threshold":
        t = o["temperature"]
        if o.get("threshold") is not None:
            kept = [s for s in negs if _value(s) >= o["threshold"]]
        else:
            k = o.get("top_k") or max(1, m // 4)
            kept = sorted(negs, key=_value, reverse=True)[:k]
        e_pos = torch.exp(pos / t)
        return -torch.log(e_pos / (e_pos + sum(torch.exp(s / t) for s in kept)))
    if name == "triplet":
        margin = o.get("margin", 0.5)
        if o.get("negatives", "hardest") == "hardest":
            return torch.clamp(max(negs, key=_value) - pos + margin, min=0.0)
        return sum(torch.clamp(s - pos + margin, min=0.0) for s in negs) / m
    raise AssertionError(name)


def _dclw_weights(pair_pos: list[torch.Tensor], o: dict, name: str) -> list[torch.Tensor | None]:
    if name != "dclw":
        return [None] * len(pair_pos)
    e = [torch.exp(s.detach() / o["weight_sigma"]) for s in pair_pos]
    mean = sum(e) / len(e)
    return [2 - x / mean for x in e]


def naive_queue(name: str, q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, o: dict) -> torch.Tensor:
    n = q.shape[0]
    qs = [unit(q[i]) for i in range(n)]
    ks = [unit(k[i].detach()) for i in range(n)]
    ns = [unit(queue[j].detach()) for j in range(queue.shape[0])]
    if name == "align_uniform":
        a = o.get("alpha", 2)
        align = sum(((qs[i] - ks[i]) ** 2).sum() ** (a / 2) for i in range(n)) / n
        d = [((qs[i] - nj) ** 2).sum() for i in range(n) for nj in ns]
        if o.get("intra_batch", True):
            d += [((qs[i] - qs[j]) ** 2).sum() for i in range(n) for j in range(i + 1, n)]
        unif = torch.log(sum(torch.exp(-o.get("t", 2) * x) for x in d) / len(d))
        return o.get("align_weight", 1.0) * align + o.get("unif_weight", 1.0) * unif
    pos = [(qs[i] * ks[i]).sum() for i in range(n)]
    weights = _dclw_weights(pos, o, name)
    total = torch.zeros((), dtype=torch.float64)
    for i in range(n):
        negs = [(qs[i] * nj).sum() for nj in ns]
        total = total + naive_anchor(name, pos[i], negs, o, weights[i])
    return total / n


def naive_cross_view(name: str, z1: torch.Tensor, z2: torch.Tensor, o: dict) -> torch.Tensor:
    n = z1.shape[0]
    u = [unit(z1[i]) for i in range(n)]
    v = [unit(z2[i]) for i in range(n)]
    pos = [(u[i] * v[i]).sum() for i in range(n)]
    weights = _dclw_weights(pos, o, name)
    total = torch.zeros((), dtype=torch.float64)
    for anchors, others in ((u, v), (v, u)):
        for i in range(n):
            negs = [(anchors[i] * others[k]).sum() for k in range(n) if k != i]
            total = total + naive_anchor(name, (anchors[i] * others[i]).sum(), negs, o, weights[i])
    return total / (2 * n)


def _check(fn, ref, *tensors: torch.Tensor, grad_of: tuple[int, ...]) -> None:
    a = [x.clone().requires_grad_(i in grad_of) for i, x in enumerate(tensors)]
    b = [x.clone().requires_grad_(i in grad_of) for i, x in enumerate(tensors)]
    got, want = fn(*a), ref(*b)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    got.backward()
    want.backward()
    for i in grad_of:
        torch.testing.assert_close(a[i].grad, b[i].grad, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("n,d,size,t", CASES)
@pytest.mark.parametrize("name,opts", VARIANTS)
def test_queue_variants_match_naive_value_and_gradient(name: str, opts: dict, n: int, d: int, size: int,
                                                       t: float) -> None:
    if name == "hard_threshold" and opts.get("top_k", 0) > size:
        pytest.skip("top_k above the queue size")
    q, k = views(n, d, seed=n * 10 + d)
    queue = _queue(size, d, seed=size)
    o = _with_t(name, opts, t)
    full = variant_options(name, o, layout="queue")
    _check(lambda a, b, c: queue_variant_loss(a, b, c, name, **o),
           lambda a, b, c: naive_queue(name, a, b, c, full), q, k, queue, grad_of=(0,))


@pytest.mark.parametrize("n,d,t", [(2, 3, 0.2), (3, 4, 0.1), (5, 8, 0.5), (7, 4, 0.07)])
@pytest.mark.parametrize("name,opts", [v for v in VARIANTS if v[0] != "align_uniform"])
def test_cross_view_variants_match_naive_value_and_gradient(name: str, opts: dict, n: int, d: int, t: float) -> None:
    if name == "hard_threshold" and opts.get("top_k", 0) > n - 1:
        pytest.skip("top_k above the N - 1 negatives")
    z1, z2 = views(n, d, seed=n * 7 + d)
    o = _with_t(name, opts, t)
    full = variant_options(name, o, layout="cross_view")
    _check(lambda a, b: cross_view_variant_loss(a, b, name, **o),
           lambda a, b: naive_cross_view(name, a, b, full), z1, z2, grad_of=(0, 1))


def test_cross_view_align_uniform_is_simclr_align_uniform() -> None:
    z1, z2 = views(5, 4, seed=3)
    opts = {"alpha": 1.5, "t": 3.0, "align_weight": 2.0, "unif_weight": 0.5}
    torch.testing.assert_close(cross_view_variant_loss(z1, z2, "align_uniform", **opts),
                               SIMCLR_LOSSES["align_uniform"](z1, z2, **opts), atol=0, rtol=0)


def test_infonce_is_the_plain_loss_of_each_layout() -> None:
    q, k = views(5, 4, seed=1)
    queue = _queue(9, 4, seed=2)
    torch.testing.assert_close(queue_variant_loss(q, k, queue, temperature=0.3),
                               info_nce_queue(q, k, queue, temperature=0.3), atol=0, rtol=0)
    torch.testing.assert_close(cross_view_variant_loss(q, k, temperature=0.3),
                               cross_view_info_nce(q, k, temperature=0.3), atol=0, rtol=0)


@pytest.mark.parametrize("layout", ["queue", "cross_view"])
def test_reductions_debiased_to_infonce_and_hard_to_debiased(layout: str) -> None:
    q, k = views(6, 5, seed=4)
    queue = _queue(11, 5, seed=5)

    def loss(name: str, **o) -> torch.Tensor:
        if layout == "queue":
            return queue_variant_loss(q, k, queue, name, temperature=0.2, **o)
        return cross_view_variant_loss(q, k, name, temperature=0.2, **o)

    torch.testing.assert_close(loss("debiased", tau_plus=0.0), loss("infonce"), atol=1e-12, rtol=0)
    torch.testing.assert_close(loss("hard", tau_plus=0.1, beta=0.0), loss("debiased", tau_plus=0.1),
                               atol=1e-12, rtol=0)
    assert not torch.allclose(loss("hard", beta=2.0), loss("debiased"))


def test_keys_and_queue_receive_no_gradient_in_every_variant() -> None:
    q, k = views(4, 3, seed=6)
    queue = _queue(6, 3, seed=7)
    for name in VARIANT_LOSSES:
        a, b, c = q.clone().requires_grad_(), k.clone().requires_grad_(), queue.clone().requires_grad_()
        queue_variant_loss(a, b, c, name).backward()
        assert a.grad is not None and torch.isfinite(a.grad).all(), name
        assert b.grad is None and c.grad is None, name


def test_hard_queue_gradcheck() -> None:
    q, k = views(3, 4, seed=8)
    queue = _queue(5, 4, seed=9)
    assert torch.autograd.gradcheck(lambda a: queue_variant_loss(a, k, queue, "hard", temperature=0.4, beta=2.0),
                                    (q.requires_grad_(),))


def test_small_temperature_is_finite_in_float32() -> None:
    q, k = views(8, 16, seed=10)
    queue = _queue(64, 16, seed=11)
    for name in ("debiased", "hard", "dcl", "hard_threshold"):
        value = queue_variant_loss(q.float(), k.float(), queue.float(), name, temperature=0.02)
        assert torch.isfinite(value), name


def test_variant_options_defaults_and_temperature() -> None:
    assert VARIANT_LOSSES == tuple(SIMCLR_LOSSES)
    assert variant_options("hard", None, 0.2) == {"temperature": 0.2, "tau_plus": 0.1, "beta": 1.0,
                                                  "detach_weights": False}
    assert variant_options("hard", {"temperature": 0.7}, 0.2)["temperature"] == 0.7  # options win
    assert "temperature" not in variant_options("triplet", None, 0.2)
    assert variant_options("align_uniform", layout="queue")["intra_batch"] is True
    assert "intra_batch" not in variant_options("align_uniform", layout="cross_view")
    assert variant_options("dclw")["weight_sigma"] == 0.5


@pytest.mark.parametrize("loss,options,match", [
    ("nope", None, "loss: name must be one of"),
    (None, None, "loss"),
    ("hard", {"tau": 0.1}, "loss_options: \\['tau'\\]"),
    ("align_uniform", {"intra_batch": True, "temperature": 0.1}, "loss_options"),
    ("debiased", {"tau_plus": 1.0}, "loss_options.tau_plus"),
    ("hard", {"beta": -1.0}, "loss_options.beta"),
    ("hard", {"detach_weights": "yes"}, "loss_options.detach_weights"),
    ("dcl", {"temperature": 0.0}, "loss_options.temperature"),
    ("dclw", {"weight_sigma": None}, "loss_options.weight_sigma"),
    ("hard_threshold", {"top_k": 0}, "loss_options.top_k"),
    ("hard_threshold", {"top_k": 2, "threshold": 0.1}, "exclusive"),
    ("hard_threshold", {"threshold": 2.0}, "loss_options.threshold"),
    ("triplet", {"negatives": "semi"}, "loss_options.negatives"),
    ("triplet", {"margin": -0.1}, "loss_options.margin"),
    ("align_uniform", {"t": 0}, "loss_options.t"),
])
def test_bad_options_name_the_argument(loss, options, match) -> None:
    with pytest.raises(ValueError, match=match):
        variant_options(loss, options, 0.2)


def test_bad_inputs() -> None:
    q, k = views(4, 3, seed=12)
    queue = _queue(5, 3, seed=13)
    with pytest.raises(ValueError, match="layout"):
        variant_options("hard", layout="bank")
    with pytest.raises(ValueError, match="top_k must be an int in \\[1, M = 5\\]"):
        queue_variant_loss(q, k, queue, "hard_threshold", top_k=6)
    with pytest.raises(ValueError, match="top_k must be an int in \\[1, M = 3\\]"):
        cross_view_variant_loss(q, k, "hard_threshold", top_k=4)
    with pytest.raises(ValueError, match="queue"):
        queue_variant_loss(q, k, queue[:, :2], "hard")
    with pytest.raises(ValueError, match="k must have the same shape"):
        queue_variant_loss(q, k[:3], queue, "debiased")
    with pytest.raises(ValueError, match="z2"):
        cross_view_variant_loss(q, k[:3], "hard")
