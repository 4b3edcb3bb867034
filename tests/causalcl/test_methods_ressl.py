import pytest
import torch
import torch.nn.functional as F

from causalcl.data.augment import SimCLRAugment
from causalcl.losses import ressl_loss
from causalcl.methods import METHODS
from causalcl.methods.momentum import cosine_momentum
from causalcl.methods.ressl import weak_augment
from causalcl.models import build_backbone


def _method(**kw):
    torch.manual_seed(0)
    kw.setdefault("queue_size", 32)
    return METHODS["ressl"](build_backbone("convnet_small", channels_last=False), projector=(32, 16), **kw)


def _views():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 16, 16, generator=g)
    return [x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)]


def _adam_steps(method, views, steps=5, hooks=False):
    opt = torch.optim.Adam(method.optim_parameters(), lr=1e-3)
    for step in range(steps):
        out = method(views)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        if hooks:
            method.on_step_end(step + 1, steps)


def test_registered_and_teacher_starts_as_a_frozen_copy():
    method = _method()
    assert METHODS["ressl"].name == "ressl"
    for pt, ps in zip(method.teacher_backbone.parameters(), method.backbone.parameters(), strict=True):
        assert not pt.requires_grad and torch.equal(pt, ps)
    assert all(p.requires_grad for p in method.optim_parameters())
    assert len(list(method.optim_parameters())) == len(list(method.backbone.parameters())) + len(
        list(method.projector.parameters()))


def test_forward_equals_ressl_loss_of_student_view1_and_teacher_view2():
    method = _method(tau_s=0.2, tau_t=0.05)
    method.eval()
    views = _views()
    out = method(views)
    z1 = method.projector(method.backbone(views[0]))
    t2 = F.normalize(method.teacher_projector(method.teacher_backbone(views[1])), dim=1)
    torch.testing.assert_close(out["loss"], ressl_loss(z1, t2, method.queue.queue, 0.2, 0.05))
    torch.testing.assert_close(out["embeddings"][0], z1)
    assert out["embeddings"][1].shape == z1.shape


def test_symmetric_option_averages_both_directions():
    method = _method(symmetric=True)
    method.eval()
    views = _views()
    z1, z2 = (method.projector(method.backbone(v)) for v in views)
    t1, t2 = (method.teacher(v) for v in views)
    q = method.queue.queue
    want = 0.5 * (ressl_loss(z1, t2, q) + ressl_loss(z2, t1, q))
    torch.testing.assert_close(method(views)["loss"], want)


def test_forward_changes_no_state_and_on_step_end_updates_teacher_and_queue():
    method = _method(momentum=0.9)
    views = _views()
    before = {k: v.clone() for k, v in method.state_dict().items()}
    method(views)
    method(views)
    for k, v in method.state_dict().items():
        if "running" not in k and "num_batches" not in k:  # BN statistics move in train mode
            assert torch.equal(v, before[k]), k
    _adam_steps(method, views, steps=1)
    keys = method._pending_keys.clone()
    student = [p.detach().clone() for p in method.backbone.parameters()]
    teacher = [p.detach().clone() for p in method.teacher_backbone.parameters()]
    method.on_step_end(1, 10)
    for pt, p0, ps in zip(method.teacher_backbone.parameters(), teacher, student, strict=True):
        torch.testing.assert_close(pt, 0.9 * p0 + 0.1 * ps)
    torch.testing.assert_close(method.queue.queue[:8], keys)
    assert int(method.queue.ptr) == 8 and method._pending_keys is None
    torch.testing.assert_close(keys.norm(dim=1), torch.ones(8))


def test_weak_teacher_view():
    aug = SimCLRAugment(16)
    weak = weak_augment(aug)
    assert (weak.jitter_p, weak.grayscale_p, weak.blur_p) == (0.0, 0.0, 0.0)
    assert aug.jitter_p == 0.8 and weak.scale == aug.scale and weak.flip_p == aug.flip_p
    plain = lambda x, g=None: x  # noqa: E731
    assert weak_augment(plain) is plain
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    views = _method().make_views(aug, x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    strong = aug(x, g)
    torch.testing.assert_close(views[0], strong)
    torch.testing.assert_close(views[1], weak(x, g))
    same = _method(weak_teacher_view=False).make_views(aug, x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    torch.testing.assert_close(same[0], aug(x, g))
    torch.testing.assert_close(same[1], aug(x, g))


def test_a_few_adam_steps_lower_the_loss():
    method = _method()
    method.train()
    views = _views()
    first = float(method(views)["loss"].detach())
    _adam_steps(method, views)
    assert float(method(views)["loss"].detach()) < first


def test_checkpoint_round_trip_carries_teacher_and_queue(tmp_path):
    method = _method()
    method.train()
    _adam_steps(method, _views(), steps=2, hooks=True)
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method()
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert torch.equal(other.queue.queue, method.queue.queue) and int(other.queue.ptr) == 16
    method.eval(), other.eval()
    torch.testing.assert_close(method(_views())["loss"], other(_views())["loss"])


def test_bad_options():
    for kw, match in [({"tau_s": 0}, "tau_s"), ({"tau_t": -1}, "tau_t"), ({"momentum": 1.5}, "momentum"),
                      ({"queue_size": 1}, "queue_size")]:
        with pytest.raises(ValueError, match=match):
            _method(**kw)
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(4, 3, 16, 16)])


# --- momentum schedule (issue 15) ----------------------------------------------------------------------
def test_cosine_momentum_schedule_is_the_default_and_constant_an_option():
    total = 8
    method = _method(momentum=0.9)
    assert method.momentum_schedule == "cosine"
    for step in range(1, total + 1):
        teacher = [p.detach().clone() for p in method.teacher_projector.parameters()]
        with torch.no_grad():
            for p in method.projector.parameters():
                p.add_(0.01)
        student = [p.detach().clone() for p in method.projector.parameters()]
        method.on_step_end(step, total)
        m = cosine_momentum(0.9, step - 1, total)
        assert method.current_momentum == pytest.approx(m, abs=1e-15)
        for pt, t0, ps in zip(method.teacher_projector.parameters(), teacher, student, strict=True):
            torch.testing.assert_close(pt, m * t0 + (1 - m) * ps, atol=1e-7, rtol=1e-6)
    assert float(method(_views())["momentum"]) == pytest.approx(method.current_momentum)
    assert method.current_momentum > 0.996  # 1 − 0.1·(cos(7π/8) + 1)/2
    constant = _method(momentum=0.9, momentum_schedule="constant")
    for step in (1, 4, 8):
        constant.on_step_end(step, total)
        assert constant.current_momentum == 0.9
    with pytest.raises(ValueError, match="momentum_schedule"):
        _method(momentum_schedule="step")
