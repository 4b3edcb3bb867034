import pytest
import torch
import torch.nn.functional as F

from causalcl.losses import nnclr_loss
from causalcl.methods import METHODS, NNCLR
from causalcl.models import build_backbone


def _method(seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("queue_size", 24)
    return METHODS["nnclr"](build_backbone("convnet_small", channels_last=False), projector=(32, 16),
                            predictor_hidden=32, **kw)


def _views(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(8, 3, 16, 16, generator=g)
    return [x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)]


def _train_step(method, opt, views, step=1, total=10):
    out = method(views)
    opt.zero_grad()
    out["loss"].backward()
    opt.step()
    method.on_step_end(step, total)
    return out


def test_registered():
    assert METHODS["nnclr"] is NNCLR and NNCLR.name == "nnclr"


def test_forward_equals_nnclr_loss_on_projections_and_predictions():
    method = _method(temperature=0.3)
    method.eval()
    views = _views()
    method(views)
    method.on_step_end(1, 10)  # one batch in the support set
    out = method(views)
    z = method.projector(method.backbone(torch.cat(views)))
    p1, p2 = method.predictor(z).chunk(2)
    z1, z2 = z.chunk(2)
    torch.testing.assert_close(out["loss"], nnclr_loss(z1, z2, p1, p2, method.support(), 0.3))
    torch.testing.assert_close(method.support(), F.normalize(z1.detach(), dim=1))
    torch.testing.assert_close(out["embeddings"][0], z1)


def test_first_step_uses_each_projection_as_its_own_neighbour():
    method = _method()
    method.eval()
    assert method.support().shape == (0, 16)
    views = _views()
    out = method(views)
    z = method.projector(method.backbone(torch.cat(views)))
    p1, p2 = method.predictor(z).chunk(2)
    z1, z2 = z.chunk(2)
    torch.testing.assert_close(out["loss"], nnclr_loss(z1, z2, p1, p2, z1[:0], 0.1))


def test_forward_does_not_change_the_support_set_and_on_step_end_fills_it_fifo():
    method = _method(queue_size=20)
    opt = torch.optim.SGD(method.parameters(), lr=0.01)
    before = method.queue.queue.clone()
    method(_views())["loss"].backward()
    assert torch.equal(method.queue.queue, before) and int(method.queue_filled) == 0
    enqueued = []
    for step in range(3):
        out = method(_views(step))
        enqueued.append(F.normalize(out["embeddings"][0].detach(), dim=1))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        method.on_step_end(step, 10)
        assert int(method.queue_filled) == min(8 * (step + 1), 20)
    # FIFO of z1: 24 entries into K = 20 — step 2's last 4 rows wrapped around onto step 0's first 4
    want = torch.cat([enqueued[2][4:], enqueued[0][4:], enqueued[1], enqueued[2][:4]])
    torch.testing.assert_close(method.queue.queue, want)
    assert int(method.queue.ptr) == 4


def test_gradients_reach_backbone_projector_and_predictor():
    method = _method()
    method.on_step_end(0, 1)
    method(_views())
    method.on_step_end(1, 10)
    method(_views())["loss"].backward()
    for module in (method.backbone, method.projector, method.predictor):
        assert all(p.grad is not None for p in module.parameters())


def test_a_few_steps_lower_the_loss():
    method = _method(queue_size=8)
    views = _views()
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    method.train()
    _train_step(method, opt, views, 0)
    first = float(method(views)["loss"].detach())
    for step in range(1, 9):
        _train_step(method, opt, views, step)
    assert float(method(views)["loss"].detach()) < first


def test_checkpoint_round_trip_carries_the_support_set(tmp_path):
    method = _method()
    opt = torch.optim.SGD(method.parameters(), lr=0.01)
    for step in range(2):
        _train_step(method, opt, _views(step), step)
    state = method.state_dict()
    assert {"queue.queue", "queue.ptr", "queue_filled"} <= set(state) and int(state["queue_filled"]) == 16
    torch.save(state, tmp_path / "m.pt")
    other = _method(seed=5)
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert int(other.queue_filled) == 16
    torch.testing.assert_close(other.support(), method.support())
    method.eval(), other.eval()
    torch.testing.assert_close(method(_views())["loss"], other(_views())["loss"])


@pytest.mark.parametrize("kwargs,name", [
    ({"temperature": 0.0}, "temperature"), ({"queue_size": 0}, "queue_size"), ({"queue_size": True}, "queue_size"),
    ({"queue_size": 8.5}, "queue_size"), ({"projector": ()}, "projector"), ({"projector": (32, 0)}, "projector"),
    ({"predictor_hidden": 0}, "predictor_hidden"),
])
def test_bad_options(kwargs, name):
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=name):
        NNCLR(build_backbone("convnet_small", channels_last=False), **kwargs)


def test_bad_views():
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(4, 3, 16, 16)])
