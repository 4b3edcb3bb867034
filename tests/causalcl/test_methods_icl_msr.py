import math

import pytest
import torch
from torch import nn

from causalcl.losses import msr_loss
from causalcl.methods import ICLMSR, METHODS
from causalcl.methods.bilevel import InertMechanismWarning
from causalcl.methods.icl_msr import SHARE_FLOOR, SHARE_PATIENCE
from causalcl.models import build_backbone
from causalcl.train import Config, Trainer
from causalcl.train.log import read_log

TERMS = ("uni_loss", "meta_ct_loss", "meta_grad_norm", "meta_lookahead_grad_norm", "meta_lookahead_share")
HEADS = {"simclr": {"projector": (8, 4)}, "byol": {"projector": (8, 4), "predictor_hidden": 8},
         "moco": {"projector": (8, 4), "queue_size": 16}, "ressl": {"projector": (8, 4), "queue_size": 16}}


class TinyBackbone(nn.Module):
    """A smooth 1-layer backbone on 8×8 images, for finite differences in float64."""

    feature_dim = 6

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, self.feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(x.flatten(1)))


def _views(n=4, size=8, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g, dtype=dtype)
    return [x, (x + 0.1 * torch.randn(x.shape, generator=g, dtype=dtype)).clamp(0, 1)]


def _tiny(base="simclr", **kw):
    torch.manual_seed(0)
    return ICLMSR(TinyBackbone(), base=base, base_options=HEADS.get(base, {}), msr_hidden=8, **kw).double()


def _small(base="simclr", **kw):
    torch.manual_seed(0)
    return ICLMSR(build_backbone("convnet_small", channels_last=False), base=base, base_options=HEADS.get(base, {}),
                  msr_hidden=16, **kw)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny graphs run several times faster on one thread on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("base", ["simclr", "byol", "moco"])
def test_second_order_meta_gradient_matches_finite_differences(base):
    """∇_φ of L_ct(θ¹(φ)) [+ γ·L_uni(φ)] by autograd vs central differences along random directions."""
    method = _tiny(base, gamma=0.3)
    method.train()
    views, alpha, eps = _views(dtype=torch.float64), 0.5, 1e-6
    phi = list(method.msr.parameters())
    g = torch.Generator().manual_seed(3)

    def objective(lookahead_only):
        outer, uni, _ = method.meta_objective(views, alpha)
        return outer if lookahead_only else outer + method.gamma * uni

    def shifted(direction, scale, lookahead_only):
        with torch.no_grad():
            for p, d in zip(phi, direction, strict=True):
                p.add_(scale * d)
        value = float(objective(lookahead_only).detach())
        with torch.no_grad():
            for p, d in zip(phi, direction, strict=True):
                p.sub_(scale * d)
        return value

    for lookahead_only in (True, False):
        grads = torch.autograd.grad(objective(lookahead_only), phi)
        assert float(torch.cat([gr.flatten() for gr in grads]).norm()) > 1e-6
        for _ in range(3):
            direction = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in phi]
            analytic = sum(float((gr * d).sum()) for gr, d in zip(grads, direction, strict=True))
            numeric = (shifted(direction, eps, lookahead_only) - shifted(direction, -eps, lookahead_only)) / (2 * eps)
            assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_meta_step_logs_the_gradient_norms_of_its_objective():
    method = _tiny(alpha=0.01, meta_grad="reverse")
    views = _views(dtype=torch.float64)
    phi = list(method.msr.parameters())
    outer, uni, _ = method.meta_objective(views, 0.01)
    look = torch.autograd.grad(outer, phi, retain_graph=True)
    whole = torch.autograd.grad(outer + method.gamma * uni, phi)
    before = [p.detach().clone() for p in phi]
    terms = method.meta_step(views, lr=123.0)  # the Trainer's lr is not the lookahead step
    norm = lambda gs: float(torch.cat([g.flatten() for g in gs]).norm())  # noqa: E731
    assert terms["meta_lookahead_grad_norm"] == pytest.approx(norm(look), rel=1e-9)
    assert terms["meta_grad_norm"] == pytest.approx(norm(whole), rel=1e-9)
    assert terms["meta_lookahead_share"] == pytest.approx(norm(look) / norm(whole), rel=1e-9)
    assert terms["uni_loss"] == pytest.approx(float(uni.detach()))
    assert terms["meta_ct_loss"] == pytest.approx(float(outer.detach()))
    assert all(not torch.equal(b, p) for b, p in zip(before, phi, strict=True))  # f_msr stepped
    assert all(p.grad is None for p in phi)


def _stage1(method, views):
    """The Trainer's stage 1: forward and backward, leaving ∇_θ L_to in p.grad (no optimiser step)."""
    for p in method.parameters():
        p.grad = None
    method(views)["loss"].backward()


@pytest.mark.parametrize("net", ["tiny", "convnet"])
@pytest.mark.parametrize("base", ["simclr", "byol", "moco", "ressl"])
def test_forward_mode_meta_gradient_equals_reverse(base, net):
    """jvp (reusing the stage-1 gradient and embeddings) = reverse-over-reverse, float64, with and without BN."""
    if net == "tiny":
        method, views = _tiny(base, gamma=0.3), _views(dtype=torch.float64)
    else:
        method, views = _small(base, gamma=0.3).double(), _views(6, 16, dtype=torch.float64)
    method.train()
    phi = list(method.msr.parameters())
    outer, uni, _ = method.meta_objective(views, 0.5)
    reference = torch.autograd.grad(outer, phi, retain_graph=True)
    reference_uni = torch.autograd.grad(method.gamma * uni, phi)
    _stage1(method, views)
    assert method._stage1.usable(views, method._theta()[1])
    assert (method._tape is not None and method._tape.valid) == (net == "convnet")  # J_z·v from stage 1's tape
    inner = [p.grad.clone() for p in method._theta()[1]]
    look, g_uni, outer_fm, uni_fm = method.forward_mode_meta_gradients(views, 0.5, "jvp", inner)
    flat = lambda gs: torch.cat([g.flatten() for g in gs])  # noqa: E731
    assert float(flat(reference).norm()) > 1e-8
    torch.testing.assert_close(flat(look), flat(reference), rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(flat(g_uni), flat(reference_uni), rtol=1e-9, atol=1e-14)
    torch.testing.assert_close(outer_fm, outer.detach()), torch.testing.assert_close(uni_fm, uni.detach())
    # without a usable stage 1 (no backward), the gradient is recomputed: same result
    again = method.forward_mode_meta_gradients(views, 0.5, "jvp", None)[0]
    torch.testing.assert_close(flat(again), flat(reference), rtol=1e-6, atol=1e-12)
    # a central difference of the embeddings is close but not exact (ReLU kinks, curvature)
    _stage1(method, views)
    fd = method.forward_mode_meta_gradients(views, 0.5, "finite_difference", inner)[0]
    assert float((flat(fd) - flat(reference)).norm() / flat(reference).norm()) < 0.2


@pytest.mark.parametrize("base", ["simclr", "byol", "moco", "ressl"])
def test_online_embeddings_are_the_bases(base):
    method = _small(base).train()
    views = _views(6, 16)
    z1, z2 = method.base(views)["embeddings"][:2]
    names, params = method._theta()
    e1, e2 = method._embed(views, {k: p for k, p in zip(names, params, strict=True)})
    torch.testing.assert_close(e1, z1), torch.testing.assert_close(e2, z2)


def test_stale_stage1_is_not_reused():
    """An optimiser step between forward and meta_step changes θ: the stored gradient is not used."""
    method = _tiny()
    views = _views(dtype=torch.float64)
    _stage1(method, views)
    with torch.no_grad():
        for p in method._theta()[1]:
            p.add_(0.01)
    assert not method._stage1.usable(views, method._theta()[1])
    other = _tiny()
    with torch.no_grad():
        for p in other._theta()[1]:
            p.add_(0.01)
    a = method.forward_mode_meta_gradients(views, 0.5, "jvp", [p.grad for p in method._theta()[1]])[0]
    b = other.forward_mode_meta_gradients(views, 0.5, "jvp", None)[0]
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y)


def test_low_lookahead_share_warns_once():
    method = _tiny(alpha=1e-9, gamma=10.0)
    views = _views(dtype=torch.float64)
    with pytest.warns(InertMechanismWarning, match="method.alpha") as record:
        for _ in range(SHARE_PATIENCE + 5):
            _stage1(method, views)
            assert method.meta_step(views, lr=1e-3)["meta_lookahead_share"] < SHARE_FLOOR
    assert len([w for w in record if issubclass(w.category, InertMechanismWarning)]) == 1


def test_forward_is_base_loss_plus_lambda_msr_with_fixed_strata():
    method = _tiny(lam=0.7, temperature=0.3)
    views = _views(dtype=torch.float64)
    out = method(views)
    base = method.base(views)
    z1, z2 = base["embeddings"]
    h = (method.base.backbone(views[0]) + method.base.backbone(views[1])) / 2
    want = msr_loss(z1, z2, method.msr(h), 0.3)
    torch.testing.assert_close(out["msr_loss"], want.detach())
    torch.testing.assert_close(out["ct_loss"], base["loss"].detach())
    torch.testing.assert_close(out["loss"], base["loss"] + 0.7 * want)
    out["loss"].backward()
    assert all(p.grad is None for p in method.msr.parameters())  # stage 1 leaves f_msr alone


def test_optim_parameters_exclude_f_msr_and_defaults():
    method = _small()
    ids = {id(p) for p in method.optim_parameters()}
    assert ids and not ids & {id(p) for p in method.msr.parameters()}
    assert ids == {id(p) for p in method.base.parameters() if p.requires_grad}
    assert (method.lam, method.gamma, method.alpha, method.meta_lr) == (1.0, 0.02, 0.03, 1e-3)
    assert method.meta_grad == "jvp"
    assert method.msr.strata == "batch" and method.temperature == 0.5 and method.encoder is method.backbone
    assert _small("moco").temperature == 0.2  # the base's own default τ
    assert METHODS["icl_msr"] is ICLMSR


def test_meta_step_does_not_touch_the_base_state():
    method = _small("moco")
    views = _views(8)
    method(views)
    before = {k: v.clone() for k, v in method.base.state_dict().items()}
    method.meta_step(views, lr=0.05)
    after = method.base.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights, BN statistics, queue
    assert all(p.is_leaf for p in method.base.parameters())


@pytest.mark.parametrize("base", ["simclr", "byol", "moco", "ressl"])
def test_steps_lower_the_loss_and_log_positive_lookahead_gradients(base):
    method = _small(base, alpha=0.05)
    views = _views(8)
    opt = torch.optim.Adam(method.optim_parameters(), lr=2e-3)
    msr_before = [p.detach().clone() for p in method.msr.parameters()]
    method.train()
    losses = []
    for _ in range(5):
        out = method(views)
        losses.append(float(out["loss"].detach()))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        terms = method.meta_step(views, lr=2e-3)  # no on_step_end: EMA targets and queues stay fixed
        assert set(TERMS) <= set(terms) and all(math.isfinite(terms[k]) for k in TERMS)
        assert terms["meta_lookahead_grad_norm"] > 0 and terms["meta_grad_norm"] > 0
    assert float(method(views)["loss"].detach()) < losses[0]
    assert any(not torch.equal(a, b) for a, b in zip(msr_before, method.msr.parameters(), strict=True))


def test_learned_strata():
    method = _tiny(strata="learned", n_strata=5)
    views = _views(dtype=torch.float64)
    assert method.msr(None).shape == (5, 4)
    assert math.isfinite(float(method(views)["msr_loss"]))
    assert method.meta_step(views, lr=0.1)["meta_lookahead_grad_norm"] > 0


def test_checkpoint_round_trip_includes_meta_optimizer(tmp_path):
    method = _small()
    views = _views(8)
    opt = torch.optim.SGD(method.optim_parameters(), lr=0.01)
    for _ in range(2):
        out = method(views)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        method.meta_step(views, lr=0.01)
    assert method.meta_optimizer.state_dict()["state"]
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _small()
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    state, loaded = method.meta_optimizer.state_dict(), other.meta_optimizer.state_dict()
    assert state["state"].keys() == loaded["state"].keys()
    for k in state["state"]:
        for name, value in state["state"][k].items():
            torch.testing.assert_close(loaded["state"][k][name], value)
    torch.testing.assert_close(method(views)["loss"], other(views)["loss"])
    method.meta_step(views, lr=0.01), other.meta_step(views, lr=0.01)  # identical Adam steps of f_msr
    for a, b in zip(method.msr.parameters(), other.msr.parameters(), strict=True):
        torch.testing.assert_close(a, b)


class TinyData:
    def __init__(self, n=32, size=8):
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 3, size, size, generator=g)

    def __len__(self):
        return len(self.images)

    def get_batch(self, indices):
        return self.images[indices], torch.zeros(len(indices), dtype=torch.long)


def _noisy_views(images, _indices, gen):
    return [(images + 0.1 * torch.randn(images.shape, generator=gen)).clamp(0, 1) for _ in range(2)]


@pytest.mark.parametrize("base", ["simclr", "moco"])
def test_trainer_logs_meta_terms_every_step(tmp_path, base):
    config = Config()
    for key, value in {"train.steps": 3, "train.batch_size": 8, "train.log_every": 1, "optim.warmup_steps": 1}.items():
        config.set(key, value)
    result = Trainer(_small(base), TinyData(), _noisy_views, config, tmp_path).fit()
    assert result.steps == 3
    log = read_log(tmp_path / "train_log.csv")
    assert {"msr_loss", "ct_loss", *TERMS} <= set(log)
    assert log["step"] == [1, 2, 3]
    assert all(math.isfinite(v) and v > 0 for v in log["meta_lookahead_grad_norm"])


def test_bad_options():
    with pytest.raises(ValueError, match="base"):
        _small("nope")
    with pytest.raises(ValueError, match="base"):
        ICLMSR(build_backbone("convnet_small", channels_last=False), base="metaug")
    with pytest.raises(ValueError, match="lam"):
        _small(lam=-1)
    with pytest.raises(ValueError, match="alpha"):
        _small(alpha=0)
    with pytest.raises(ValueError, match="negatives"):
        _small(negatives="same")
    with pytest.raises(ValueError, match="meta_grad"):
        _small(meta_grad="forward")
    with pytest.raises(ValueError, match="fd_radius"):
        _small(fd_radius=0)
    with pytest.raises(ValueError, match="n_strata"):
        _small(strata="learned")
    with pytest.raises(TypeError, match="nope"):
        ICLMSR(build_backbone("convnet_small", channels_last=False), base_options={"nope": 1})


def test_meta_step_runs_under_the_runs_autocast(tmp_path):
    """train.amp=bf16 on CPU: the forward-mode meta step runs inside the Trainer's autocast."""
    config = Config()
    for key, value in {"train.steps": 2, "train.batch_size": 8, "train.log_every": 1, "optim.warmup_steps": 1,
                       "train.amp": "bf16"}.items():
        config.set(key, value)
    Trainer(_small(), TinyData(), _noisy_views, config, tmp_path).fit()
    log = read_log(tmp_path / "train_log.csv")
    assert all(math.isfinite(v) and v > 0 for v in log["meta_lookahead_grad_norm"])


TARGET_NETWORKS = {"byol": "target_backbone", "moco": "key_backbone", "ressl": "teacher_backbone"}


@pytest.mark.parametrize("base", sorted(TARGET_NETWORKS))
def test_outer_forward_reuses_stage1_targets(base):
    """The base takes back its own "targets" (same loss); the jvp meta step never runs the target network again."""
    method = _small(base).train()
    views = _views(6, 16)
    out = method.base(views)
    again = method.base(views, targets=out["targets"])
    torch.testing.assert_close(again["loss"], out["loss"])
    calls = []
    getattr(method.base, TARGET_NETWORKS[base]).register_forward_hook(lambda *_: calls.append(1))
    _stage1(method, views)
    assert len(calls) == 1  # stage 1's own target forward
    method.meta_step(views, lr=1e-3)
    assert len(calls) == 1  # none in the meta step: its outer forward at θ¹ reuses stage 1's targets
