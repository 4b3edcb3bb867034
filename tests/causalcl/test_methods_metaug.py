"""MetAug: the exact second-order MAG step, step isolation, training, checkpoints, Trainer logging."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from causalcl.losses import oucl
from causalcl.methods import CMC, METHODS, MetAug, MetAugOUCL
from causalcl.methods.metaug import PRESETS
from causalcl.models.backbones import ConvNetSmall
from causalcl.train import Config, Trainer, load_checkpoint
from causalcl.train.log import read_log


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks: one intra-op thread is ~40× faster than two on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyMLP(nn.Module):
    """A tiny MLP backbone on 8×8 images."""

    feature_dim = 6

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 6), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _views(n=6, size=8, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g, dtype=dtype)
    return [x, (x + 0.1 * torch.randn(x.shape, generator=g, dtype=dtype)).clamp(0, 1)]


def _small(name="metaug", **kw):
    """A small conv net (BN, and an aliased `last_conv` module) with small heads."""
    torch.manual_seed(0)
    kw = {"projector": (16, 8), **({"mag_hidden": (8,)} if name == "metaug" else {}), **kw}
    return METHODS[name](ConvNetSmall(widths=(8, 16)), **kw)


def _encoder_step(method, opt, views):
    out = method(views)
    opt.zero_grad()
    out["loss"].backward()
    opt.step()
    return out


def _mag_params(method):
    return [p.detach().clone() for p in method.mags.parameters()]


def _meta_case(base, margin_weight=1.0):
    torch.manual_seed(0)
    options = {"aug_weight": 1.0, "margin_weight": margin_weight, "gamma": 4.0, "margins": True,
               "mag_hidden": (5,), "inner_lr": 0.5}
    if base == "cmc":
        method = MetAug(ConvNetSmall(widths=(4,)), base="cmc", base_options={"projector": [4]}, **options)
    else:
        method = MetAug(TinyMLP(), projector=(8, 4), **options)
    method = method.double().train()
    for p in method.mags.parameters():  # non-trivial BN affine parameters of the MAGs
        p.data.add_(0.1 * torch.randn_like(p))
    return method, _views(dtype=torch.float64)


@pytest.mark.parametrize("base", ["simclr", "cmc"])
def test_second_order_meta_gradient_matches_central_finite_differences(base):
    """The reverse reference vs central differences of M(θ'(ω), ω); R_σ off (its σ± are detached targets,
    which a difference in ω would move)."""
    method, views = _meta_case(base, margin_weight=0.0)
    alpha, eps = 0.5, 1e-6
    params = list(method.mags.parameters())
    exact = torch.autograd.grad(method.meta_objective(views, alpha), params)

    def objective() -> float:
        return float(method.meta_objective(views, alpha).detach())

    g = torch.Generator().manual_seed(3)
    directions = [[torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params] for _ in range(2)]
    for k in range(6):  # single coordinates spread over the MAG tensors
        unit = [torch.zeros_like(p) for p in params]
        unit[(3 * k) % len(params)].view(-1)[k % params[(3 * k) % len(params)].numel()] = 1.0
        directions.append(unit)
    for v in directions:
        with torch.no_grad():
            for p, dv in zip(params, v, strict=True):
                p.add_(eps * dv)
        up = objective()
        with torch.no_grad():
            for p, dv in zip(params, v, strict=True):
                p.sub_(2 * eps * dv)
        down = objective()
        with torch.no_grad():
            for p, dv in zip(params, v, strict=True):
                p.add_(eps * dv)
        analytic = sum(float((ge * dv).sum()) for ge, dv in zip(exact, v, strict=True))
        assert (up - down) / (2 * eps) == pytest.approx(analytic, rel=1e-5, abs=1e-8)
    # the term through θ'(ω) matters: the first-order gradient is measurably different
    method.second_order = False
    first = torch.autograd.grad(method.meta_objective(views, alpha), params)
    gap = math.sqrt(sum(float(((a - b) ** 2).sum()) for a, b in zip(exact, first, strict=True)))
    assert gap > 1e-4 * math.sqrt(sum(float((a**2).sum()) for a in exact))


def test_meta_step_applies_the_meta_gradient_with_inner_lr_not_the_trainer_lr():
    method, views = _meta_case("simclr")
    method.meta_grad = "reverse"
    method.meta_optimizer = torch.optim.SGD(method.mags.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    twin = copy.deepcopy(method)
    twin.meta_optimizer = torch.optim.SGD(twin.mags.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    before = _mag_params(method)
    grads = torch.autograd.grad(method.meta_objective(views, 0.5), list(method.mags.parameters()))
    out = method.meta_step(views, 0.5)
    twin.meta_step(views, 123.0)  # α = inner_lr, the lr argument ignored
    for p0, g, p1, p2 in zip(before, grads, method.mags.parameters(), twin.mags.parameters(), strict=True):
        torch.testing.assert_close(p1.detach(), p0 - 0.1 * (g + 1e-4 * p0))
        torch.testing.assert_close(p2.detach(), p1.detach())
        assert p1.grad is None  # no stale MAG gradients left behind
    norm = math.sqrt(sum(float((g**2).sum()) for g in grads))
    assert out["meta_grad_norm"] == pytest.approx(norm) and norm > 0


def _flat(grads):
    return torch.cat([g.flatten() for g in grads])


@pytest.mark.parametrize("net", ["tiny-simclr", "tiny-cmc", "convnet"])
def test_forward_mode_meta_gradient_equals_reverse(net):
    """jvp (stage-1 gradient and embeddings reused) = reverse-over-reverse, float64, with and without BN."""
    if net == "convnet":
        torch.manual_seed(0)
        method = MetAug(ConvNetSmall(widths=(8, 16)), projector=(16, 8), mag_hidden=(8,), aug_weight=1.0,
                        margin_weight=1.0, gamma=4.0, inner_lr=0.5).double().train()
        views = _views(8, 16, dtype=torch.float64)
    else:
        method, views = _meta_case(net.split("-")[1])
    params = list(method.mags.parameters())
    reference = torch.autograd.grad(method.meta_objective(views, 0.5), params)
    out = method(views)
    out["loss"].backward()
    assert (method._tape is not None and method._tape.valid) == (net == "convnet")  # J_z·v from stage 1's tape
    inner = [p.grad.clone() for p in method._theta().values()]
    parts, _ = method.meta_gradients(views, 0.5, "jvp", inner)
    total = [a + b + c for a, b, c in zip(parts["aug"], parts["margin"], parts["lookahead"], strict=True)]
    assert all(float(_flat(parts[k]).norm()) > 0 for k in ("aug", "margin", "lookahead"))
    torch.testing.assert_close(_flat(total), _flat(reference), rtol=1e-6, atol=1e-12)
    again, _ = method.meta_gradients(views, 0.5, "jvp", None)  # nothing to reuse: recomputed, same result
    torch.testing.assert_close(_flat(again["lookahead"]), _flat(parts["lookahead"]), rtol=1e-6, atol=1e-12)
    # the margin term is the direct ω-gradient of λ_mi·R_σ at θ': its weight scales it linearly
    method.margin_weight = 2.0
    doubled, _ = method.meta_gradients(views, 0.5, "jvp", None)
    torch.testing.assert_close(_flat(doubled["margin"]), 2 * _flat(parts["margin"]))


def test_margin_is_not_in_the_encoder_loss():
    """R_σ belongs to the MAG objective: λ_mi changes neither the encoder loss nor its gradient."""
    views = _views(8, 16)
    grads = []
    for weight in (0.0, 5.0):
        method = _small(aug_weight=0.5, margin_weight=weight).train()
        out = method(views)
        out["loss"].backward()
        grads.append(_flat([p.grad for p in method.optim_parameters()]))
        assert out["margin_loss"] > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)


def test_presets():
    official = _small(preset="official")
    assert (official.aug_weight, official.margin_weight, official.margin_pos_weight, official.oucl_scale,
            official.inner_lr) == (1e-5, 1e-11, 1e-4, 16.0, 1e-3)
    assert isinstance(official.meta_optimizer, torch.optim.SGD)
    default = _small()
    assert (default.aug_weight, default.margin_weight) == (PRESETS["default"]["aug_weight"],
                                                           PRESETS["default"]["margin_weight"])
    assert _small(preset="official", aug_weight=0.3).aug_weight == 0.3  # an explicit value wins
    views = _views(8, 16)
    a, b = _small(oucl_scale=16.0).eval(), _small().eval()
    torch.testing.assert_close(a(views)["oucl_loss"], 16 * b(views)["oucl_loss"])
    with pytest.raises(ValueError, match="preset"):
        _small(preset="paper")


def test_mags_are_kept_out_of_the_trainer_optimiser():
    method = _small()
    mag_ids = {id(p) for p in method.mags.parameters()}
    encoder = list(method.optim_parameters())
    assert mag_ids and not mag_ids & {id(p) for p in encoder}
    assert len(encoder) + len(mag_ids) == len(list(method.parameters()))
    assert method.meta_optimizer.param_groups[0]["params"] == list(method.mags.parameters())


def test_encoder_step_leaves_mags_and_meta_step_leaves_encoder_and_buffers():
    method = _small(aug_weight=1.0, margin_weight=1.0)
    views = _views(8, 16)
    opt = torch.optim.Adam(method.optim_parameters(), lr=1e-2)
    mags = _mag_params(method)
    _encoder_step(method, opt, views)
    assert all(p.grad is None for p in method.mags.parameters())  # no gradient reaches ω in this stage
    for a, b in zip(mags, method.mags.parameters(), strict=True):
        assert torch.equal(a, b)
    encoder = {n: t.detach().clone() for n, t in method.state_dict().items()
               if isinstance(t, torch.Tensor) and not n.startswith("mags.")}
    mag_buffers = {n: b.clone() for n, b in method.mags.named_buffers()}
    out = method.meta_step(views, 1e-2)
    assert math.isfinite(out["meta_grad_norm"]) and out["meta_grad_norm"] > 0
    for n, t in method.state_dict().items():  # weights, and BN running statistics, of encoder and heads
        if n in encoder:
            assert torch.equal(t, encoder[n]), n
    for n, b in method.mags.named_buffers():  # the lookahead does not update the MAGs' BN statistics
        assert torch.equal(b, mag_buffers[n]), n
    assert not all(torch.equal(a, b) for a, b in zip(mags, method.mags.parameters(), strict=True))


@pytest.mark.parametrize("name", ["metaug", "metaug_oucl"])
def test_loss_lowers_over_a_few_steps(name):
    method = _small(name, **({"aug_weight": 0.1, "margin_weight": 0.1} if name == "metaug" else {}))
    views = _views(8, 16)
    opt = torch.optim.Adam(method.optim_parameters(), lr=3e-3)
    first = float(method(views)["loss"].detach())
    for _ in range(6):
        _encoder_step(method, opt, views)
        method.meta_step(views, 3e-3)
    assert float(method(views)["loss"].detach()) < first


def test_forward_terms_and_embeddings():
    method = _small(aug_weight=0.5, margin_weight=0.25).eval()
    views = _views(8, 16)
    out = method(views)
    z = method.projector(method.backbone(torch.cat(views)))
    z1, z2 = z.chunk(2)
    torch.testing.assert_close(out["embeddings"][0], z1)
    torch.testing.assert_close(out["oucl_loss"], oucl(z1, z2))
    torch.testing.assert_close(out["loss"], out["oucl_loss"] + 0.5 * out["aug_loss"])  # R_σ: the MAGs' objective
    assert out["aug_loss"] > 0 and out["margin_loss"] >= 0


def test_checkpoint_round_trip_carries_the_mag_optimiser(tmp_path):
    method = _small()
    views = _views(8, 16)
    opt = torch.optim.Adam(method.optim_parameters(), lr=1e-2)
    for _ in range(2):
        _encoder_step(method, opt, views)
        method.meta_step(views, 1e-2)
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other, fresh = _small(), _small()
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    fresh.load_state_dict({k: v for k, v in method.state_dict().items() if k != "_extra_state"}, strict=False)
    method.eval(), other.eval()
    torch.testing.assert_close(method(views)["loss"], other(views)["loss"], atol=0, rtol=0)
    state = other.meta_optimizer.state_dict()["state"]
    assert state and int(state[0]["step"]) == 2
    for m in (method, other, fresh):
        m.train().meta_step(views, 1e-2)
    for a, b in zip(method.mags.parameters(), other.mags.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    # without the optimiser state, Adam's next step differs: the round trip is what keeps them equal
    assert not all(torch.equal(a, c) for a, c in zip(method.mags.parameters(), fresh.mags.parameters(), strict=True))


def test_metaug_oucl_is_oucl_alone():
    method = _small("metaug_oucl", gamma=8.0)
    assert isinstance(method, MetAugOUCL) and method.mags is None and method.meta_optimizer is None
    views = _views(8, 16)
    method.eval()
    out = method(views)
    z1, z2 = out["embeddings"]
    torch.testing.assert_close(out["loss"], oucl(z1, z2, gamma=8.0))
    assert method.meta_step(views, 1e-3) == {}
    assert "aug_weight" not in MetAugOUCL.__init__.__code__.co_varnames


def test_cmc_base():
    torch.manual_seed(0)
    method = MetAug(ConvNetSmall(widths=(8,)), base="cmc", base_options={"projector": [8]}, mag_hidden=(8,))
    assert isinstance(method.base, CMC) and method.encoder is method.base.backbone
    views = method.make_views(lambda x, g: x.flip(-1), _views(8, 16)[0], None)
    assert views[0] is views[1]  # CMC's same crop, split into L and ab
    out = method(views)
    for a, b in zip(out["embeddings"], method.base.embed_views(views), strict=True):
        torch.testing.assert_close(a, b)
    encoder = {n: t.detach().clone() for n, t in method.named_parameters() if not n.startswith("mags.")}
    result = method.meta_step(views, 1e-2)
    assert result["meta_grad_norm"] > 0
    for n, t in method.named_parameters():
        if n in encoder:
            assert torch.equal(t, encoder[n]), n


class TinyData:
    def __init__(self, n=32, size=16):
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 3, size, size, generator=g)
        self.labels = torch.arange(n) % 4

    def __len__(self):
        return len(self.images)

    def get_batch(self, indices):
        return self.images[indices], self.labels[indices]


def _fit_tiny(tmp_path, **settings):
    """3 (or ``train.steps``) Trainer steps of a small MetAug on noisy copies of tiny images; the log."""
    config = Config()
    for key, value in {"train.steps": 3, "train.batch_size": 8, "train.log_every": 1, "optim.warmup_steps": 1,
                       "method.name": "metaug", **settings}.items():
        config.set(key, value)
    views = lambda images, _i, gen: [(images + 0.1 * torch.randn(images.shape, generator=gen)).clamp(0, 1)  # noqa: E731
                                     for _ in range(2)]
    Trainer(_small(), TinyData(), views, config, tmp_path).fit()
    return read_log(tmp_path / "train_log.csv")


def test_trainer_logs_meta_grad_norm_every_step(tmp_path):
    log = _fit_tiny(tmp_path)
    assert log["step"] == [1, 2, 3]
    assert all(math.isfinite(v) and v > 0 for v in log["meta_grad_norm"]) and len(log["meta_grad_norm"]) == 3
    assert {"oucl_loss", "aug_loss", "margin_loss", "meta_objective", "mag_grad_norm_aug", "mag_grad_norm_margin",
            "mag_grad_norm_lookahead"} <= set(log)
    assert all(v > 0 for k in ("mag_grad_norm_aug", "mag_grad_norm_margin", "mag_grad_norm_lookahead") for v in log[k])
    state = load_checkpoint(tmp_path / "checkpoint.pt")["model"]["_extra_state"]
    assert int(state["meta_optimizer"]["state"][0]["step"]) == 3


def test_unlogged_meta_step_skips_only_the_split_of_the_direct_terms():
    method, views = _meta_case("simclr")
    twin = copy.deepcopy(method)
    for m in (method, twin):
        m.meta_optimizer = torch.optim.SGD(m.mags.parameters(), lr=0.1)
        m(views)["loss"].backward()  # the stage-1 gradient the jvp path reuses
    logged, quiet = method.meta_step(views, 0.0), twin.meta_step(views, 0.0, log_terms=False)
    for p1, p2 in zip(method.mags.parameters(), twin.mags.parameters(), strict=True):
        torch.testing.assert_close(p2, p1, rtol=1e-12, atol=1e-14)  # the same update (float64)
    assert {"mag_grad_norm_aug", "mag_grad_norm_margin"} <= set(logged)
    assert set(quiet) == {"meta_grad_norm", "meta_objective", "mag_grad_norm_lookahead"}
    assert float(quiet["meta_grad_norm"]) == pytest.approx(float(logged["meta_grad_norm"]), rel=1e-10)


def test_trainer_asks_for_the_split_at_logged_steps_only(tmp_path, monkeypatch):
    asked = []
    original = MetAug.meta_step

    def spy(self, views, lr, *, log_terms=True):
        asked.append(log_terms)
        return original(self, views, lr, log_terms=log_terms)

    monkeypatch.setattr(MetAug, "meta_step", spy)
    log = _fit_tiny(tmp_path, **{"train.steps": 5, "train.log_every": 2})
    assert asked == [False, True, False, True, True]  # steps 1..5: rows at 2, 4 and the last
    assert log["step"] == [2, 4, 5] and len(log["mag_grad_norm_aug"]) == 3 and len(log["mag_grad_norm_margin"]) == 3


def test_bad_options():
    with pytest.raises(ValueError, match="base"):
        _small(base="nope")
    with pytest.raises(ValueError, match="gamma"):
        _small(gamma=0.0)
    with pytest.raises(ValueError, match="meta_optimizer"):
        _small(meta_optimizer="lbfgs")
    with pytest.raises(ValueError, match="inner_lr"):
        _small(inner_lr=-1.0)
    with pytest.raises(ValueError, match="meta_grad"):
        _small(meta_grad="forward")
    with pytest.raises(ValueError, match="base_options"):
        _small(base_options={"same_crop": False})
    with pytest.raises(ValueError, match="views"):
        _small()([torch.rand(4, 3, 16, 16)])
    assert METHODS["metaug"] is MetAug and METHODS["metaug_oucl"] is MetAugOUCL


def test_meta_step_runs_under_the_runs_autocast(tmp_path):
    log = _fit_tiny(tmp_path, **{"train.steps": 2, "train.amp": "bf16"})
    assert all(math.isfinite(v) and v > 0 for k in ("mag_grad_norm_aug", "mag_grad_norm_lookahead") for v in log[k])
