import pytest
import torch
from torch import nn

from causalcl.losses import cross_view_info_nce, info_nce
from causalcl.methods import METHODS
from causalcl.models import build_backbone


def _method(**kw):
    torch.manual_seed(0)
    return METHODS["directclr"](build_backbone("convnet_small", channels_last=False), **kw)


def _views():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 16, 16, generator=g)
    return [x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)]


class _Tail(nn.Module):
    """A backbone whose dimensions >= d0 are replaced by an arbitrary function of the input."""

    def __init__(self, backbone: nn.Module, d0: int, scale: float) -> None:
        super().__init__()
        self.backbone, self.d0, self.scale, self.feature_dim = backbone, d0, scale, backbone.feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.backbone(x)
        tail = self.scale * torch.randn(r.shape[0], r.shape[1] - self.d0, generator=torch.Generator().manual_seed(5))
        return torch.cat([r[:, : self.d0], tail], dim=1)


def test_registered_and_no_projector():
    method = _method()
    assert METHODS["directclr"].name == "directclr"
    assert {name for name, _ in method.named_children()} == {"backbone"}


@pytest.mark.parametrize("negatives,loss_fn", [("cross_view", cross_view_info_nce), ("all", info_nce)])
def test_loss_is_infonce_on_the_first_d0_dimensions(negatives, loss_fn):
    method = _method(d0=12, temperature=0.2, negatives=negatives)
    method.eval()
    views = _views()
    with torch.no_grad():
        out = method(views)
        r1, r2 = method.backbone(views[0]), method.backbone(views[1])
        torch.testing.assert_close(out["loss"], loss_fn(r1[:, :12], r2[:, :12], temperature=0.2))
        torch.testing.assert_close(out["embeddings"][0], r1[:, :12])
        # the full representation gives a different number: the loss really truncates
        assert abs(float(out["loss"]) - float(loss_fn(r1, r2, temperature=0.2))) > 1e-4


def test_dimensions_beyond_d0_do_not_enter_the_loss():
    torch.manual_seed(0)
    backbone = build_backbone("convnet_small", channels_last=False)
    losses = []
    for scale in (0.0, 1.0, 100.0):
        method = METHODS["directclr"](_Tail(backbone, 16, scale), d0=16)
        method.eval()
        losses.append(method(_views())["loss"])
    torch.testing.assert_close(losses[1], losses[0])
    torch.testing.assert_close(losses[2], losses[0])
    # and their gradient is zero: only the first d0 columns of r receive any
    method = _method(d0=16)
    method.eval()
    r = method.backbone(torch.cat(_views())).detach().requires_grad_()
    z1, z2 = r[:, :16].chunk(2)
    cross_view_info_nce(z1, z2, temperature=0.1).backward()
    assert r.grad[:, 16:].abs().max() == 0 and r.grad[:, :16].abs().max() > 0


def test_a_few_adam_steps_lower_the_loss():
    method = _method()
    views = _views()
    opt = torch.optim.Adam(method.optim_parameters(), lr=1e-3)
    method.train()
    first = float(method(views)["loss"].detach())
    for _ in range(6):
        out = method(views)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert float(method(views)["loss"].detach()) < first


def test_checkpoint_round_trip(tmp_path):
    method = _method(d0=20)
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method(d0=20)
    nn.init.normal_(other.backbone.features[0].weight)  # make sure loading really restores it
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    method.eval(), other.eval()
    torch.testing.assert_close(method(_views())["loss"], other(_views())["loss"])


def test_bad_options():
    for kw, match in [({"d0": 0}, "d0"), ({"d0": 129}, "d0"), ({"d0": 2.5}, "d0"), ({"temperature": 0}, "temperature"),
                      ({"negatives": "same_view"}, "negatives")]:
        with pytest.raises(ValueError, match=match):
            _method(**kw)
    assert _method(d0=128).d0 == 128
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(4, 3, 16, 16)])
