import pytest
import torch
from method_checks import assert_state_round_trip
from torch import nn

from causalcl.losses import dim_loss
from causalcl.methods import DIM, METHODS
from causalcl.models import build_backbone


def _method(backbone="convnet_small", **kw):
    torch.manual_seed(0)
    kw.setdefault("projector", (32, 16))
    return METHODS["dim"](build_backbone(backbone, channels_last=False), **kw)


def _views(n=8, size=16):
    return [torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1))]


def test_registered():
    assert METHODS["dim"] is DIM and DIM.name == "dim" and DIM.num_views == 1


@pytest.mark.parametrize("estimator", ["jsd", "infonce"])
def test_forward_is_dim_loss_on_the_last_conv_map_and_pooled_feature_of_one_pass(estimator):
    method = _method(estimator=estimator)
    method.eval()
    calls = []
    method.backbone.register_forward_hook(lambda m, i, o: calls.append(1))
    views = _views()
    out = method(views)
    assert calls == [1]  # one backbone pass gives both features
    fmap, y = method.features(views[0])
    assert fmap.shape == (8, 128, 2, 2) and y.shape == (8, 128)
    torch.testing.assert_close(y, fmap.mean(dim=(2, 3)))  # the global feature pools the local map
    local = method.local_head(fmap).flatten(2).transpose(1, 2)
    torch.testing.assert_close(out["loss"], dim_loss(local, method.global_head(y), estimator))
    assert not method.backbone.last_conv._forward_hooks  # the capture hook is removed


def test_resnet_backbone_gives_its_layer4_map():
    method = _method("resnet18")
    fmap, y = method.features(_views(n=2, size=32)[0])
    assert fmap.shape == (2, 512, 1, 1) and y.shape == (2, 512)


@pytest.mark.parametrize("estimator", ["jsd", "infonce"])
def test_a_few_steps_lower_the_loss_and_reach_every_part(estimator):
    method = _method(estimator=estimator)
    views = _views()
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    first = float(method(views)["loss"].detach())
    for step in range(8):
        opt.zero_grad()
        method(views)["loss"].backward()
        if step == 0:
            for name, p in method.named_parameters():
                assert p.grad is not None and torch.isfinite(p.grad).all(), name
        opt.step()
    assert float(method(views)["loss"].detach()) < first


def test_checkpoint_round_trip(tmp_path):
    method = _method()
    assert_state_round_trip(method, _method(), _views(), tmp_path)


class _NoLastConv(nn.Module):
    feature_dim = 4

    def forward(self, x):
        return x.mean(dim=(2, 3)).repeat(1, 2)[:, :4]


class _WrongMap(_NoLastConv):
    def __init__(self):
        super().__init__()
        self.last_conv = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return torch.cat([self.last_conv(x).mean(dim=(2, 3))] * 2, 1)


@pytest.mark.parametrize("kwargs,name", [({"estimator": "dv"}, "estimator"), ({"projector": (32,)}, "projector"),
                                         ({"projector": (32, 0)}, "projector"),
                                         ({"projector": (8, 4, 2)}, "projector")])
def test_bad_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _method(**kwargs)


def test_bad_backbones_and_views():
    with pytest.raises(ValueError, match="last_conv"):
        DIM(_NoLastConv())
    with pytest.raises(ValueError, match="last_conv"):
        DIM(_WrongMap(), projector=(4, 4))(_views())
    with pytest.raises(ValueError, match="views"):
        _method()([])
