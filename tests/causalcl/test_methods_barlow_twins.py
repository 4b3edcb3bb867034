import pytest
import torch
from method_checks import assert_loss_drops

from causalcl.losses import barlow_twins_loss
from causalcl.methods import METHODS
from causalcl.models import build_backbone


def _method(**kw):
    torch.manual_seed(0)
    return METHODS["barlow_twins"](build_backbone("convnet_small", channels_last=False), projector=(32, 16), **kw)


def _views():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(16, 3, 16, 16, generator=g)
    return [x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)]


def test_registered_and_forward_equals_the_loss():
    assert METHODS["barlow_twins"].name == "barlow_twins"
    method = _method(lambd=0.01, scale_loss=0.5)
    method.eval()
    views = _views()
    out = method(views)
    z = method.projector(method.backbone(torch.cat(views)))
    torch.testing.assert_close(out["loss"], barlow_twins_loss(*z.chunk(2), 0.01, scale_loss=0.5))
    torch.testing.assert_close(out["loss"], 0.5 * (out["on_diag"] + 0.01 * out["off_diag"]))
    assert [tuple(e.shape) for e in out["embeddings"]] == [(16, 16), (16, 16)]


def test_adam_steps_lower_the_loss():
    method = _method()
    views = _views()
    assert_loss_drops(method, views, steps=5, lr=1e-3)


def test_checkpoint_round_trip(tmp_path):
    method = _method()
    method.train()
    method(_views())  # move the BN running statistics away from their initial values
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method(lambd=5e-3)
    torch.manual_seed(3)
    other.projector[0].weight.data.normal_()
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    method.eval(), other.eval()
    torch.testing.assert_close(method(_views())["loss"], other(_views())["loss"])


def test_bad_options():
    with pytest.raises(ValueError, match="lambd"):
        _method(lambd=-1.0)
    with pytest.raises(ValueError, match="scale_loss"):
        _method(scale_loss=0)
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(4, 3, 16, 16)])
