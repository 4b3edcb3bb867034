import pytest
import torch
from method_checks import assert_loss_drops

from causalcl.losses import wmse_loss
from causalcl.methods import METHODS
from causalcl.models import build_backbone


def _method(**kw):
    torch.manual_seed(0)
    kw = {"projector": (32, 4), "w_size": 8, **kw}
    return METHODS["wmse"](build_backbone("convnet_small", channels_last=False), **kw)


def _views():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(16, 3, 16, 16, generator=g)
    return [x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)]


def test_registered_and_forward_equals_the_loss():
    assert METHODS["wmse"].name == "wmse"
    method = _method(seed=2)
    method.eval()
    views = _views()
    out = method(views)
    z = method.projector(method.backbone(torch.cat(views)))
    want = wmse_loss(*z.chunk(2), w_size=8, generator=torch.Generator().manual_seed(2 * 1_000_003))
    torch.testing.assert_close(out["loss"], want)
    assert [tuple(e.shape) for e in out["embeddings"]] == [(16, 4), (16, 4)]


def test_forward_is_pure_and_sub_batches_follow_the_step():
    method = _method()
    method.eval()
    views = _views()
    a, b = method(views)["loss"], method(views)["loss"]
    torch.testing.assert_close(a, b)  # same step: same sub-batches
    method.on_step_end(1, 10)
    assert method.steps_done == 1
    assert not torch.allclose(method(views)["loss"], a)  # new step: new sub-batches


def test_adam_steps_lower_the_loss():
    method = _method()
    views = _views()
    assert_loss_drops(method, views, steps=5, lr=1e-3)


def test_checkpoint_round_trip(tmp_path):
    method = _method()
    method.train()
    method(_views())
    method.on_step_end(5, 10)
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method()
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert other.steps_done == 5
    method.eval(), other.eval()
    torch.testing.assert_close(method(_views())["loss"], other(_views())["loss"])


def test_bad_options():
    with pytest.raises(ValueError, match="w_size"):
        _method(w_size=1)
    with pytest.raises(ValueError, match="w_iter"):
        _method(w_iter=0)
    with pytest.raises(ValueError, match="eps"):
        _method(eps=-0.1)
    with pytest.raises(ValueError, match="w_size"):  # 16 samples cannot whiten 32 dimensions
        _method(projector=(32, 32), w_size=16)(_views())
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(4, 3, 16, 16)])
