import math

import pytest
import torch
import torch.nn.functional as F

from causalcl.losses import VARIANT_LOSSES, info_nce_queue, queue_variant_loss
from causalcl.methods import METHODS, MoCo
from causalcl.methods.momentum import cosine_momentum
from causalcl.models import build_backbone


def _method(seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("queue_size", 64)
    return METHODS["moco"](build_backbone("convnet_small", channels_last=False), projector=(32, 16), **kw)


def _views():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 16, 16, generator=g)
    return [x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)]


def _train_step(method, opt, views, step=1, total=10):
    out = method(views)
    opt.zero_grad()
    out["loss"].backward()
    opt.step()
    method.on_step_end(step, total)
    return out


def _state(method):
    return {k: v.clone() for k, v in method.state_dict().items()}


def test_registered():
    assert METHODS["moco"] is MoCo and MoCo.name == "moco"


@pytest.mark.parametrize("symmetric", [True, False])
def test_forward_equals_info_nce_queue(symmetric):
    method = _method(symmetric=symmetric, temperature=0.3)
    method.eval()
    views = _views()
    out = method(views)
    q1, q2 = method.projector(method.backbone(torch.cat(views))).chunk(2)
    k1, k2 = method.key_projector(method.key_backbone(torch.cat(views))).chunk(2)
    queue = method.queue()
    want = info_nce_queue(q1, k2, queue, 0.3)
    if symmetric:
        want = 0.5 * (want + info_nce_queue(q2, k1, queue, 0.3))
    torch.testing.assert_close(out["loss"], want)
    torch.testing.assert_close(out["embeddings"][0], q1)
    torch.testing.assert_close(out["embeddings"][1], q2)


def test_forward_does_not_mutate_queue_or_key_encoder():
    method = _method()
    before = _state(method)
    method(_views())["loss"].backward()
    after = method.state_dict()
    for key, value in before.items():
        if key.startswith(("queue.", "key_projector.", "key_backbone.")) and "running" not in key \
                and "num_batches" not in key:
            assert torch.equal(after[key], value), key


def test_key_encoder_has_no_gradients_and_is_not_optimised():
    method = _method()
    method(_views())["loss"].backward()
    keys = list(method.key_backbone.parameters()) + list(method.key_projector.parameters())
    assert all(p.grad is None and not p.requires_grad for p in keys)
    optimised = {id(p) for p in method.optim_parameters()}
    assert not optimised & {id(p) for p in keys}
    assert all(p.grad is not None for p in method.projector.parameters())


@pytest.mark.parametrize("symmetric,per_step", [(True, 16), (False, 8)])
def test_on_step_end_enqueues_the_normalised_keys(symmetric, per_step):
    method = _method(symmetric=symmetric)
    method.train()
    views = _views()
    method(views)
    batch = torch.cat(views) if symmetric else views[1]  # the batch the key encoder saw in forward
    expected = F.normalize(method.key_projector(method.key_backbone(batch)), dim=1)
    method.on_step_end(1, 10)
    assert int(method.queue.ptr) == per_step
    torch.testing.assert_close(method.queue()[:per_step], expected, atol=1e-6, rtol=1e-5)
    method.on_step_end(2, 10)  # no new forward: nothing more enters
    assert int(method.queue.ptr) == per_step


def test_key_encoder_moves_toward_the_online_encoder():
    method = _method(momentum=0.9)
    opt = torch.optim.Adam(method.optim_parameters(), lr=1e-2)
    out = method(_views())
    opt.zero_grad()
    out["loss"].backward()
    opt.step()
    online, key = method.projector[0].weight.detach(), method.key_projector[0].weight
    gap = (key - online).clone()
    assert gap.abs().sum() > 0
    method.on_step_end(1, 10)
    torch.testing.assert_close(key - online, 0.9 * gap, atol=1e-7, rtol=1e-5)


def test_adam_steps_lower_the_loss():
    method = _method()
    method.train()
    views = _views()
    initial_queue = {k: v.clone() for k, v in method.queue.state_dict().items()}
    opt = torch.optim.Adam(method.optim_parameters(), lr=1e-3)
    first = float(method(views)["loss"].detach())
    for step in range(1, 9):
        _train_step(method, opt, views, step)
    # the queue now holds keys of this very batch (hard negatives); compare against the same negatives
    method.queue.load_state_dict(initial_queue)
    assert float(method(views)["loss"].detach()) < first


def test_checkpoint_round_trip_includes_queue_and_key_encoder(tmp_path):
    method = _method()
    opt = torch.optim.Adam(method.optim_parameters(), lr=1e-3)
    for step in range(1, 4):
        _train_step(method, opt, _views(), step)
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method(seed=5)
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert torch.equal(other.queue(), method.queue()) and int(other.queue.ptr) == int(method.queue.ptr) == 48
    method.eval(), other.eval()
    torch.testing.assert_close(method(_views())["loss"], other(_views())["loss"])


def test_bad_options():
    with pytest.raises(ValueError, match="temperature"):
        _method(temperature=0)
    with pytest.raises(ValueError, match="momentum"):
        _method(momentum=1.5)
    with pytest.raises(ValueError, match="queue_size"):
        _method(queue_size=0)
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(4, 3, 16, 16)])


# --- loss variants on the queue's negatives, momentum schedule (issue 15) ---------------------------------

@pytest.mark.parametrize("loss", VARIANT_LOSSES)
def test_loss_variants_use_the_queue_as_negatives(loss):
    options = {"tau_plus": 0.05, "beta": 2.0} if loss == "hard" else None
    method = _method(loss=loss, loss_options=options, temperature=0.3)
    method.eval()
    views = _views()
    out = method(views)
    q1, q2 = method.projector(method.backbone(torch.cat(views))).chunk(2)
    k1, k2 = method.key_projector(method.key_backbone(torch.cat(views))).chunk(2)
    queue = method.queue()
    opts = method.loss_options
    want = 0.5 * (queue_variant_loss(q1, k2, queue, loss, **opts) + queue_variant_loss(q2, k1, queue, loss, **opts))
    torch.testing.assert_close(out["loss"], want)
    if "temperature" in opts:
        assert opts["temperature"] == 0.3
    if loss == "hard":
        assert (opts["tau_plus"], opts["beta"]) == (0.05, 2.0)
    out["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in method.projector.parameters())


def test_hard_loss_differs_from_infonce_and_trains_finite():
    views = _views()
    plain, hard = _method(), _method(loss="hard")
    plain.eval(), hard.eval()
    assert not torch.allclose(plain(views)["loss"], hard(views)["loss"])
    hard.train()
    opt = torch.optim.Adam(hard.optim_parameters(), lr=1e-3)
    for step in range(1, 5):
        assert torch.isfinite(_train_step(hard, opt, views, step)["loss"])
    assert int(hard.queue.ptr) == 0 and all(torch.isfinite(p).all() for p in hard.parameters())  # 4 × 16 keys


def test_cosine_momentum_schedule_is_the_default_and_constant_an_option():
    total = 10
    method = _method(momentum=0.9)
    assert method.momentum_schedule == "cosine"
    assert float(method(_views())["momentum"]) == pytest.approx(0.9)  # before any update
    for step in range(1, total + 1):
        key = [p.detach().clone() for p in method.key_projector.parameters()]
        with torch.no_grad():  # move the online network so each EMA update is visible
            for p in method.projector.parameters():
                p.add_(0.01)
        online = [p.detach().clone() for p in method.projector.parameters()]
        method.on_step_end(step, total)
        m = cosine_momentum(0.9, step - 1, total)
        assert method.current_momentum == pytest.approx(m, abs=1e-15)
        for pk, k0, po in zip(method.key_projector.parameters(), key, online, strict=True):
            torch.testing.assert_close(pk, m * k0 + (1 - m) * po, atol=1e-7, rtol=1e-6)
    assert method.current_momentum == pytest.approx(1 - 0.1 * (math.cos(math.pi * 9 / 10) + 1) / 2)
    assert float(method(_views())["momentum"]) == pytest.approx(method.current_momentum)
    constant = _method(momentum=0.9, momentum_schedule="constant")
    for step in (1, 5, 10):
        constant.on_step_end(step, total)
        assert constant.current_momentum == 0.9


def test_bad_loss_and_schedule_options():
    with pytest.raises(ValueError, match="loss: name must be one of"):
        _method(loss="nce")
    with pytest.raises(ValueError, match="loss_options"):
        _method(loss="hard", loss_options={"gamma": 1.0})
    with pytest.raises(ValueError, match="loss_options.tau_plus"):
        _method(loss="debiased", loss_options={"tau_plus": 1.5})
    with pytest.raises(ValueError, match="momentum_schedule"):
        _method(momentum_schedule="linear")
