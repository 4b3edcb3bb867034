import numpy as np
import pytest
import torch
from skimage.color import rgb2lab
from torch import nn

from causalcl.data.augment import SimCLRAugment
from causalcl.losses import VARIANT_LOSSES, cross_view_info_nce, cross_view_variant_loss
from causalcl.methods import METHODS
from causalcl.methods.cmc import normalized_lab, rebuild_first_conv, rgb_to_lab
from causalcl.models import build_backbone


def _method(**kw):
    torch.manual_seed(0)
    return METHODS["cmc"](build_backbone("convnet_small", channels_last=False), projector=(16,), **kw)


def _views():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 16, 16, generator=g)
    return [x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)]


def _first_conv(module: nn.Module) -> nn.Conv2d:
    return next(m for m in module.modules() if isinstance(m, nn.Conv2d))


def test_rgb_to_lab_matches_skimage():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 9, 7, generator=g, dtype=torch.float64)
    x[0, :, 0, :] = torch.tensor([0.0, 0.002, 0.04045, 0.05, 0.5, 0.999, 1.0], dtype=torch.float64)  # dark + edges
    x[1] = x[1] ** 6  # many values below the linear / cube-root thresholds
    got = rgb_to_lab(x).permute(0, 2, 3, 1).numpy()
    want = np.stack([rgb2lab(img) for img in x.permute(0, 2, 3, 1).numpy()])
    np.testing.assert_allclose(got, want, atol=2e-3, rtol=0)
    assert rgb_to_lab(x.float()).dtype == torch.float32
    with pytest.raises(ValueError, match="images"):
        rgb_to_lab(torch.rand(2, 1, 4, 4))


def test_normalized_lab_spans_about_minus_one_to_one():
    corners = torch.tensor([[int(c) for c in f"{i:03b}"] for i in range(8)], dtype=torch.float64)
    lab = normalized_lab(corners.view(8, 3, 1, 1))
    assert lab.min() >= -1 - 1e-3 and lab.max() <= 1 + 1e-3
    assert lab[:, 0].min() == pytest.approx(-1) and lab[:, 0].max() == pytest.approx(1)  # black, white
    assert lab[:, 1:].abs().max() > 0.95  # the gamut extremes are reached


def test_one_encoder_per_view_with_1_and_2_input_channels():
    method = _method()
    enc = method.encoder
    assert _first_conv(enc.encoder_l).in_channels == 1 and _first_conv(enc.encoder_ab).in_channels == 2
    ids_l = {id(p) for p in enc.encoder_l.parameters()}
    assert not ids_l & {id(p) for p in enc.encoder_ab.parameters()}
    assert enc.encoder_l(torch.rand(2, 1, 16, 16)).shape == (2, 128)
    assert enc.encoder_ab(torch.rand(2, 2, 16, 16)).shape == (2, 128)
    resnet = rebuild_first_conv(build_backbone("resnet18", cifar_stem=True, channels_last=True), 2)
    conv = resnet.net.conv1
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (2, 64, (3, 3), (1, 1))
    with pytest.raises(ValueError, match="backbone"):
        rebuild_first_conv(nn.Sequential(nn.Linear(3, 4)), 1)


def test_encoder_maps_rgb_to_feature_dim_columns_and_exposes_last_conv():
    method = _method()
    method.eval()
    enc = method.encoder
    x = _views()[0]
    with torch.no_grad():
        feats = enc(x)
        lab = normalized_lab(x)
        want = torch.cat([enc.encoder_l(lab[:, :1]), enc.encoder_ab(lab[:, 1:])], dim=1)
    assert enc.feature_dim == method.feature_dim == 256 and feats.shape == (8, 256)
    torch.testing.assert_close(feats, want)
    assert any(m is enc.last_conv for m in enc.encoder_l.modules())
    from evaluations.grounding import grad_cam

    cams = grad_cam(enc, x[:4], enc.last_conv, "similarity", positive_views=_views()[1][:4])
    assert cams.shape == (4, 16, 16) and torch.isfinite(cams).all()


def test_forward_is_cross_view_info_nce_of_unit_projections():
    method = _method(temperature=0.2)
    method.eval()
    views = _views()
    with torch.no_grad():
        out = method(views)
        z_l, z_ab = method.embed_views(views)
        lab1, lab2 = normalized_lab(views[0]), normalized_lab(views[1])
        want_l = method.projector_l(method.encoder.encoder_l(lab1[:, :1]))
        want_ab = method.projector_ab(method.encoder.encoder_ab(lab2[:, 1:]))
    torch.testing.assert_close(z_l.norm(dim=1), torch.ones(8))
    torch.testing.assert_close(z_l, want_l / want_l.norm(dim=1, keepdim=True))
    torch.testing.assert_close(z_ab, want_ab / want_ab.norm(dim=1, keepdim=True))
    torch.testing.assert_close(out["loss"], cross_view_info_nce(z_l, z_ab, temperature=0.2))


def test_make_views_same_crop_and_no_grayscale():
    aug = SimCLRAugment(16, grayscale_p=1.0, jitter_p=0.0)
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    v = _method().make_views(aug, x, torch.Generator().manual_seed(3))
    assert v[0] is v[1] and aug.grayscale_p == 1.0
    assert (v[0][:, 0] - v[0][:, 1]).abs().max() > 1e-3  # not gray
    two = _method(same_crop=False, keep_grayscale=True).make_views(aug, x, torch.Generator().manual_seed(3))
    assert not torch.equal(two[0], two[1])
    torch.testing.assert_close(two[0][:, 0], two[0][:, 1])  # gray kept


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
    method = _method()
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method()
    nn.init.normal_(_first_conv(other.encoder.encoder_ab).weight)
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    method.eval(), other.eval()
    torch.testing.assert_close(method(_views())["loss"], other(_views())["loss"])
    torch.testing.assert_close(method.encoder(_views()[0]), other.encoder(_views()[0]))


def test_bad_options():
    with pytest.raises(ValueError, match="temperature"):
        _method(temperature=0)
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(4, 1, 16, 16), torch.rand(4, 1, 16, 16)])


# --- loss variants on the cross-view candidates: "CMC + Debiased", "CMC + Hard" (issue 15) ----------------
@pytest.mark.parametrize("loss", VARIANT_LOSSES)
def test_loss_variants_on_cross_view_negatives(loss):
    method = _method(temperature=0.2, loss=loss)
    method.eval()
    views = _views()
    out = method(views)
    with torch.no_grad():
        z_l, z_ab = method.embed_views(views)
    torch.testing.assert_close(out["loss"], cross_view_variant_loss(z_l, z_ab, loss, **method.loss_options))
    if "temperature" in method.loss_options:
        assert method.loss_options["temperature"] == 0.2
    out["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in method.projector_l.parameters())


def test_debiased_and_hard_rows_differ_from_plain_cmc():
    views = _views()
    losses = {}
    for loss, options in (("infonce", None), ("debiased", {"tau_plus": 0.1}), ("hard", {"beta": 1.0})):
        method = _method(loss=loss, loss_options=options)
        method.eval()
        losses[loss] = float(method(views)["loss"].detach())
    assert len({round(v, 6) for v in losses.values()}) == 3


def test_projector_bn_option():
    with_bn = METHODS["cmc"](build_backbone("convnet_small", channels_last=False), projector=(32, 16))
    without = METHODS["cmc"](build_backbone("convnet_small", channels_last=False), projector=(32, 16),
                             projector_bn=False)
    assert any(isinstance(m, nn.BatchNorm1d) for m in with_bn.projector_l.modules())
    assert not any(isinstance(m, nn.BatchNorm1d) for m in without.projector_ab.modules())


def test_bad_loss_options():
    with pytest.raises(ValueError, match="loss: name must be one of"):
        _method(loss="nce")
    with pytest.raises(ValueError, match="loss_options"):
        _method(loss="debiased", loss_options={"beta": 1.0})
    with pytest.raises(ValueError, match="loss_options.tau_plus"):
        _method(loss="hard", loss_options={"tau_plus": -0.1})
