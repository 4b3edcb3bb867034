import pytest
import torch
import torch.nn.functional as F

from causalcl.data.augment import SimCLRAugment
from causalcl.losses import swav_loss
from causalcl.methods import METHODS
from causalcl.models import build_backbone


def _method(**kw):
    torch.manual_seed(0)
    kw = {"projector": (32, 16), "num_prototypes": 8, "freeze_prototypes_steps": 0, **kw}
    return METHODS["swav"](build_backbone("convnet_small", channels_last=False), **kw)


def _images():
    return torch.rand(12, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def _views():
    g = torch.Generator().manual_seed(1)
    x = _images()
    return [x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)]


def _train(method, views, steps, lr=1e-2):
    opt = torch.optim.Adam(method.parameters(), lr=lr)
    method.train()
    for _ in range(steps):
        out = method(views)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        method.on_step_end(method.steps_done + 1, steps)


def test_registered_and_forward_equals_the_loss():
    assert METHODS["swav"].name == "swav"
    method = _method(temperature=0.2)
    method.eval()
    views = _views()
    out = method(views)
    z = F.normalize(method.projector(method.backbone(torch.cat(views))), dim=1)
    w = method.prototypes.weight
    torch.testing.assert_close(w.norm(dim=1), torch.ones(8))  # unit prototypes from the start
    want = swav_loss([zv @ w.T for zv in z.chunk(2)], temperature=0.2)
    torch.testing.assert_close(out["loss"], want)
    torch.testing.assert_close(out["embeddings"][0], z[:12])


def test_adam_steps_lower_the_loss_and_keep_prototypes_unit():
    method = _method()
    views = _views()
    method.train()
    first = float(method(views)["loss"].detach())
    _train(method, views, 5, lr=1e-3)
    assert float(method(views)["loss"].detach()) < first
    torch.testing.assert_close(method.prototypes.weight.norm(dim=1), torch.ones(8))


def test_prototypes_frozen_for_the_first_steps_then_trained():
    method = _method(freeze_prototypes_steps=2)
    views = _views()
    start = method.prototypes.weight.detach().clone()
    method.train()
    out = method(views)
    out["loss"].backward()
    assert method.prototypes.weight.grad is not None and not method.prototypes.weight.grad.any()
    assert method.projector[0].weight.grad.abs().sum() > 0  # the rest trains
    method.zero_grad()
    _train(method, views, 2)
    torch.testing.assert_close(method.prototypes.weight, start, atol=1e-6, rtol=0)
    assert not method.prototypes_frozen
    method(views)["loss"].backward()
    assert method.prototypes.weight.grad.abs().sum() > 0
    _train(method, views, 1)
    assert (method.prototypes.weight - start).abs().max() > 1e-4


def test_multi_crop_views_and_loss():
    method = _method(num_crops=(2, 3), small_crop_size=8)
    assert method.num_views == 5
    aug = SimCLRAugment(16)
    views = method.make_views(aug, _images(), torch.Generator().manual_seed(0))
    assert [tuple(v.shape) for v in views] == [(12, 3, 16, 16)] * 2 + [(12, 3, 8, 8)] * 3
    method.eval()
    out = method(views)
    z = [F.normalize(method.projector(method.backbone(v)), dim=1) for v in views]
    want = swav_loss([zv @ method.prototypes.weight.T for zv in z], assign_crops=(0, 1))
    torch.testing.assert_close(out["loss"], want, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="SimCLRAugment"):
        method.make_views(lambda x, g=None: x, _images())
    with pytest.raises(ValueError, match="num_crops"):
        method(views[:2])


def test_checkpoint_round_trip(tmp_path):
    method = _method(freeze_prototypes_steps=10)
    _train(method, _views(), 3)
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method(freeze_prototypes_steps=10)
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert other.steps_done == 3 and other.prototypes_frozen
    method.eval(), other.eval()
    torch.testing.assert_close(method(_views())["loss"], other(_views())["loss"])


def test_bad_options():
    with pytest.raises(ValueError, match="temperature"):
        _method(temperature=0)
    with pytest.raises(ValueError, match="epsilon"):
        _method(epsilon=-1)
    with pytest.raises(ValueError, match="num_crops"):
        _method(num_crops=(1, 2))
    with pytest.raises(ValueError, match="small_crop_scale"):
        _method(small_crop_scale=(0.5, 0.1))
    with pytest.raises(ValueError, match="freeze_prototypes_steps"):
        _method(freeze_prototypes_steps=-1)


# --- the queue, "SwAV + Hard", BatchNorm option (issue 15) -------------------------------------------------
def _scores_of(method, views):
    z = F.normalize(method.projector(method.backbone(torch.cat(views))), dim=1).chunk(2)
    return z, [zv @ method.prototypes.weight.T for zv in z]


def test_queue_fills_after_the_start_step_and_is_used_once_full():
    method = _method(queue_length=24, queue_start_step=1)
    assert method.queue.shape == (2, 24, 16) and not method.queue_in_use
    views = _views()
    method.eval()
    torch.testing.assert_close(method(views)["loss"], swav_loss(_scores_of(method, views)[1]))
    method.on_step_end(1, 10)  # step 1 is not past queue_start_step: nothing enters
    assert method.queue_filled == 0 and not method.queue.any()
    z_per_step = []
    for step in (2, 3):
        method(views)
        z_per_step.append([zc.detach().clone() for zc in method._pending])
        method.on_step_end(step, 10)
    assert method.queue_filled == 24 and method.queue_in_use  # 2 × 12 rows
    for crop in (0, 1):  # newest rows first
        torch.testing.assert_close(method.queue[crop], torch.cat([z_per_step[1][crop], z_per_step[0][crop]]))
    with torch.no_grad():  # the untrained net embeds every image alike: other rows show the queue's effect
        method.queue.copy_(F.normalize(torch.randn(2, 24, 16, generator=torch.Generator().manual_seed(5)), dim=2))
    out = method(views)
    _, scores = _scores_of(method, views)
    queue_scores = [method.queue[c] @ method.prototypes.weight.T for c in (0, 1)]
    want = swav_loss(scores, queue_scores=queue_scores)
    torch.testing.assert_close(out["loss"], want)
    assert not torch.allclose(out["loss"], swav_loss(scores))
    before = method.queue.clone()
    method(views)  # forward changes no state
    torch.testing.assert_close(method.queue, before, atol=0, rtol=0)


def test_queue_trains_and_round_trips_through_a_checkpoint(tmp_path):
    method = _method(queue_length=24)
    views = _views()
    method.train()
    _train(method, views, 4, lr=1e-3)
    assert method.queue_in_use and method.steps_done == 4
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method(queue_length=24)
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert other.queue_filled == 24 and torch.equal(other.queue, method.queue) and other.queue_in_use
    method.eval(), other.eval()
    torch.testing.assert_close(method(views)["loss"], other(views)["loss"])
    # a checkpoint of a run without the queue still loads into SwAV without one
    plain = _method()
    _method().load_state_dict(plain.state_dict())


def test_hard_and_debiased_losses_reweight_the_other_prototypes():
    views = _views()
    for loss, options, kw in (("hard", None, {"beta": 1.0, "tau_plus": 0.1, "detach_weights": False}),
                              ("hard", {"beta": 2.0, "tau_plus": 0.0}, {"beta": 2.0, "tau_plus": 0.0,
                                                                       "detach_weights": False}),
                              ("debiased", {"tau_plus": 0.05}, {"tau_plus": 0.05})):
        method = _method(loss=loss, loss_options=options)
        assert method.loss_options == kw
        method.eval()
        out = method(views)
        _, scores = _scores_of(method, views)
        torch.testing.assert_close(out["loss"], swav_loss(scores, **kw))
        assert not torch.allclose(out["loss"], swav_loss(scores))
        out["loss"].backward()
        assert torch.isfinite(method.prototypes.weight.grad).all()


def test_projector_bn_option():
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in _method().projector.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in _method(projector_bn=False).projector.modules())


def test_bad_queue_and_loss_options():
    for kw, match in [({"queue_length": -1}, "queue_length"), ({"queue_start_step": -2}, "queue_start_step"),
                      ({"queue_length": 1.5}, "queue_length"), ({"loss": "dcl"}, "loss: name must be one of"),
                      ({"loss": "swav", "loss_options": {"beta": 1.0}}, "loss_options"),
                      ({"loss": "hard", "loss_options": {"beta": -1.0}}, "loss_options.beta"),
                      ({"loss": "debiased", "loss_options": {"tau_plus": 1.0}}, "loss_options.tau_plus"),
                      ({"loss": "hard", "loss_options": {"detach_weights": 1}}, "loss_options.detach_weights")]:
        with pytest.raises(ValueError, match=match):
            _method(**kw)
