import pytest
import torch
from method_checks import assert_loss_drops, assert_state_round_trip

from causalcl.losses import SIMCLR_LOSSES, info_nce
from causalcl.methods import METHODS, get_method
from causalcl.models import build_backbone


def _method(**kw):
    torch.manual_seed(0)
    return METHODS["simclr"](build_backbone("convnet_small", channels_last=False), projector=(32, 16), **kw)


def _views():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(16, 3, 16, 16, generator=g)
    return [x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)]


def test_registry_is_a_plain_dict():
    assert type(METHODS) is dict and METHODS["simclr"].name == "simclr"
    with pytest.raises(ValueError, match="simclr"):
        get_method("nope")


def test_forward_equals_info_nce_on_projections():
    method = _method(temperature=0.3)
    method.eval()
    views = _views()
    out = method(views)
    z = method.projector(method.backbone(torch.cat(views)))
    torch.testing.assert_close(out["loss"], info_nce(*z.chunk(2), temperature=0.3))


@pytest.mark.parametrize("loss", sorted(SIMCLR_LOSSES))
def test_every_loss_option_lowers_the_loss(loss):
    method = _method(loss=loss)
    views = _views()
    assert_loss_drops(method, views, steps=8, lr=1e-3)


def test_checkpoint_round_trip(tmp_path):
    method = _method()
    assert_state_round_trip(method, _method(), _views(), tmp_path)


def test_bad_options():
    with pytest.raises(ValueError, match="temperature"):
        _method(temperature=0)
    with pytest.raises(ValueError, match="loss_options"):
        _method(loss="debiased", loss_options={"betta": 1.0})
    with pytest.raises(ValueError, match="infonce"):
        _method(loss="nope")
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(4, 3, 16, 16)])
