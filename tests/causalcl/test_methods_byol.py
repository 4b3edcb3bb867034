import pytest
import torch

from causalcl.losses import byol_loss
from causalcl.methods import BYOL, METHODS
from causalcl.methods.momentum import cosine_momentum
from causalcl.models import build_backbone


def _method(seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("projector", (32, 16))
    kw.setdefault("predictor_hidden", 32)
    return METHODS["byol"](build_backbone("convnet_small", channels_last=False), **kw)


def _views():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 16, 16, generator=g)
    return [x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)]


def _target_params(method):
    return list(method.target_backbone.parameters()) + list(method.target_projector.parameters())


def _train_step(method, opt, views, step, total=10):
    out = method(views)
    opt.zero_grad()
    out["loss"].backward()
    opt.step()
    method.on_step_end(step, total)
    return out


def test_registered_and_head_widths():
    assert METHODS["byol"] is BYOL and BYOL.name == "byol"
    method = _method(projector=(24, 8), predictor_hidden=12)
    assert method.projector.widths == [128, 24, 8] and method.predictor.widths == [8, 12, 8]


def test_forward_equals_symmetrised_byol_loss():
    method = _method()
    method.eval()
    views = _views()
    out = method(views)
    x = torch.cat(views)
    z = method.projector(method.backbone(x))
    p1, p2 = method.predictor(z).chunk(2)
    t1, t2 = method.target_projector(method.target_backbone(x)).chunk(2)
    torch.testing.assert_close(out["loss"], byol_loss(p1, t2) + byol_loss(p2, t1))
    torch.testing.assert_close(torch.cat(out["embeddings"]), z)
    assert out["momentum"].item() == pytest.approx(0.99)


def test_target_has_no_gradients_and_forward_leaves_it_unchanged():
    method = _method()
    before = [p.clone() for p in _target_params(method)]
    method(_views())["loss"].backward()
    assert all(p.grad is None and not p.requires_grad for p in _target_params(method))
    assert all(torch.equal(p, b) for p, b in zip(_target_params(method), before, strict=True))
    assert not {id(p) for p in method.optim_parameters()} & {id(p) for p in _target_params(method)}
    assert all(p.grad is not None for p in method.predictor.parameters())


@pytest.mark.parametrize("step", [1, 6])
def test_target_moves_toward_online_with_the_cosine_momentum(step):
    method = _method(base_momentum=0.9)
    opt = torch.optim.Adam(method.optim_parameters(), lr=1e-2)
    out = method(_views())
    opt.zero_grad()
    out["loss"].backward()
    opt.step()
    online, target = method.projector[0].weight.detach(), method.target_projector[0].weight
    gap = (target - online).clone()
    assert gap.abs().sum() > 0
    method.on_step_end(step, 10)
    tau = cosine_momentum(0.9, step - 1, 10)  # the first update uses the base momentum
    torch.testing.assert_close(target - online, tau * gap, atol=1e-7, rtol=1e-5)
    for tb, ob in zip(method.target_backbone.buffers(), method.backbone.buffers(), strict=True):
        assert torch.equal(tb, ob)
    assert method(_views())["momentum"].item() == pytest.approx(tau)


def test_adam_steps_lower_the_loss():
    method = _method()
    method.train()
    views = _views()
    opt = torch.optim.Adam(method.optim_parameters(), lr=1e-3)
    first = float(method(views)["loss"].detach())
    for step in range(1, 9):
        _train_step(method, opt, views, step)
    assert float(method(views)["loss"].detach()) < first


def test_checkpoint_round_trip_includes_target_and_momentum(tmp_path):
    method = _method()
    opt = torch.optim.Adam(method.optim_parameters(), lr=1e-3)
    for step in range(1, 4):
        _train_step(method, opt, _views(), step)
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method(seed=5)
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert all(torch.equal(a, b) for a, b in zip(_target_params(other), _target_params(method), strict=True))
    method.eval(), other.eval()
    a, b = method(_views()), other(_views())
    torch.testing.assert_close(a["loss"], b["loss"])
    assert b["momentum"].item() == pytest.approx(cosine_momentum(0.99, 2, 10))


def test_bad_options():
    with pytest.raises(ValueError, match="base_momentum"):
        _method(base_momentum=-0.1)
    with pytest.raises(ValueError, match="predictor_hidden"):
        _method(predictor_hidden=0)
    with pytest.raises(ValueError, match="projector"):
        _method(projector=())
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(4, 3, 16, 16)])
