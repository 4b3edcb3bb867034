"""Grad-CAM: equal to a direct captum call, CAM for GAP + linear, side-effect free, bad inputs refused."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from evaluations import linear_probe
from evaluations.grounding import grad_cam


class _Encoder(nn.Module):
    """conv-BN-ReLU, conv-ReLU (the CAM layer, stride 2), global average pooling -> (N, 6) features."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.last_conv = nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU())
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.last_conv(self.stem(x)).mean(dim=(2, 3)))


class _Classifier(nn.Module):
    def __init__(self, num_classes: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.backbone = _Encoder(dropout)
        self.head = nn.Linear(6, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def _images(n: int = 6, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _direct(forward_func, layer, x, target=None, extra=None) -> torch.Tensor:
    attr = LayerGradCam(forward_func, layer).attribute(
        x, target=target, additional_forward_args=extra, relu_attributions=True
    )
    return LayerAttribution.interpolate(attr, x.shape[2:], interpolate_mode="bilinear")[:, 0].detach()


def _model(seed: int = 0, **kw) -> _Classifier:
    torch.manual_seed(seed)
    model = _Classifier(**kw)
    with torch.no_grad():  # non-trivial BN statistics, so train and eval mode differ
        model.backbone.stem[1].running_mean.uniform_(-0.5, 0.5)
        model.backbone.stem[1].running_var.uniform_(0.5, 2.0)
    return model


def test_classifier_targets_equal_direct_captum_call():
    model, x = _model(), _images()
    targets = torch.tensor([0, 1, 2, 2, 1, 0])
    cams = grad_cam(model, x, model.backbone.last_conv, targets)
    model.eval()
    ref = _direct(model, model.backbone.last_conv, x, targets)
    assert cams.shape == (6, 16, 16)
    assert bool((cams >= 0).all()) and float(cams.max()) > 0
    torch.testing.assert_close(cams, ref, rtol=0, atol=0)


def test_predicted_class_and_list_targets_and_batching():
    model, x = _model(1), _images(7, seed=1)
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    by_default = grad_cam(model, x, model.backbone.last_conv)
    by_index = grad_cam(model, x, model.backbone.last_conv, pred.tolist(), batch_size=3)
    torch.testing.assert_close(by_default, _direct(model, model.backbone.last_conv, x, pred), rtol=0, atol=0)
    torch.testing.assert_close(by_index, by_default, rtol=1e-5, atol=1e-7)
    other = grad_cam(model, x, model.backbone.last_conv, (pred + 1) % 3)
    assert not torch.allclose(other, by_default)


def test_probe_targets_equal_direct_captum_call():
    torch.manual_seed(2)
    enc = _Encoder()
    x = _images(24, seed=2)
    with torch.no_grad():
        feats = enc.eval()(x)
    y = torch.arange(24) % 3
    probe = linear_probe(feats, y, feats, y, weight_decay=1e-3, max_iter=50).classifier
    targets = torch.tensor([2, 0, 1, 1] * 6)
    cams = grad_cam(enc, x, enc.last_conv, targets, probe=probe, batch_size=10)
    ref = _direct(lambda t: probe(enc(t)), enc.last_conv, x, targets)
    torch.testing.assert_close(cams, ref, rtol=1e-5, atol=1e-7)
    predicted = grad_cam(enc, x, enc.last_conv, probe=probe)
    with torch.no_grad():
        pred = probe(enc(x)).argmax(dim=1)
    torch.testing.assert_close(predicted, _direct(lambda t: probe(enc(t)), enc.last_conv, x, pred))


def test_similarity_targets_equal_hand_built_forward_func():
    torch.manual_seed(3)
    enc = _Encoder().eval()
    x = _images(5, seed=3)
    pos = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(4))).clamp(0, 1)
    cams = grad_cam(enc, x, enc.last_conv, "similarity", positive_views=pos, batch_size=2)
    with torch.no_grad():
        keys = enc(pos)

    def score(t: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(enc(t), keys, dim=1)

    ref = _direct(score, enc.last_conv, x)
    torch.testing.assert_close(cams, ref, rtol=1e-5, atol=1e-7)
    assert float(cams.max()) > 0
    # the positive views matter: another set of views gives other maps
    other = grad_cam(enc, x, enc.last_conv, "similarity", positive_views=pos.flip(0))
    assert not torch.allclose(other, cams)


def test_gap_linear_grad_cam_is_classic_cam():
    """GAP + linear: dy^c/dA^k_ij = w^c_k / Z, so Grad-CAM = ReLU(sum_k w^c_k A^k) / Z (Z = h * w)."""
    torch.manual_seed(5)
    enc = _Encoder().double().eval()
    probe = nn.Linear(6, 4).double()
    x = _images(4, size=12, seed=5).double()
    targets = torch.tensor([0, 1, 2, 3])
    cams = grad_cam(enc, x, enc.last_conv, targets, probe=probe)
    with torch.no_grad():
        acts = enc.last_conv(enc.stem(x))  # (N, 6, 6, 6)
        w = probe.weight[targets]  # (N, 6)
        classic = F.relu(torch.einsum("nk,nkij->nij", w, acts))[:, None]
        classic = F.interpolate(classic, (12, 12), mode="bilinear")[:, 0]
    z = acts.shape[2] * acts.shape[3]
    assert float(classic.max()) > 0
    torch.testing.assert_close(cams * z, classic, rtol=1e-10, atol=1e-12)


def test_modes_restored_and_parameter_grads_untouched():
    model, x = _model(6), _images(4, seed=6)
    model.train()
    model.head.eval()  # a mixed state must come back as it was
    flags = {name: m.training for name, m in model.named_modules()}
    sentinel = {name: torch.full_like(p, 7.0) for name, p in model.named_parameters() if "head" in name}
    for name, p in model.named_parameters():
        p.grad = sentinel.get(name)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    grad_cam(model, x, model.backbone.last_conv, [0, 1, 2, 0])
    grad_cam(model, x, model.backbone.last_conv, "similarity", positive_views=x.flip(0), probe=None)
    assert {name: m.training for name, m in model.named_modules()} == flags
    for name, p in model.named_parameters():
        if name in sentinel:
            assert p.grad is sentinel[name] and bool((p.grad == 7.0).all())
        else:
            assert p.grad is None, name
        assert torch.equal(p.detach(), before[name])
    assert not x.requires_grad


def test_any_conv_layer_works():
    model, x = _model(7), _images(3, size=20, seed=7)
    cams = grad_cam(model, x, model.backbone.stem[0], [1, 1, 1])
    model.eval()
    torch.testing.assert_close(cams, _direct(model, model.backbone.stem[0], x, torch.tensor([1, 1, 1])))
    assert cams.shape == (3, 20, 20)


def test_bad_inputs():
    model, x = _model(8), _images(4, seed=8)
    layer = model.backbone.last_conv
    with pytest.raises(ValueError, match="positive_views"):
        grad_cam(model.backbone, x, model.backbone.last_conv, "similarity")
    with pytest.raises(ValueError, match="positive_views"):
        grad_cam(model.backbone, x, model.backbone.last_conv, "similarity", positive_views=x[:2])
    with pytest.raises(ValueError, match="targets"):
        grad_cam(model, x, layer, [0, 1, 2])  # 3 targets for 4 images
    with pytest.raises(ValueError, match="targets"):
        grad_cam(model, x, layer, [0, 1, 2, 3])  # class 3 of 3 logits
    with pytest.raises(ValueError, match="targets"):
        grad_cam(model, x, layer, "similarty", positive_views=x)
    with pytest.raises(ValueError, match="images"):
        grad_cam(model, x[:, :1], layer)
    with pytest.raises(ValueError, match="images"):
        grad_cam(model, (x * 255).to(torch.uint8), layer)
    with pytest.raises(ValueError, match="images"):
        grad_cam(model, torch.full_like(x, float("nan")), layer)
    with pytest.raises(ValueError, match="target_layer"):
        grad_cam(model, x, nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match="batch_size"):
        grad_cam(model, x, layer, batch_size=0)

    class _MapEncoder(nn.Module):  # returns a feature map, not logits
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return self.conv(t)

    enc = _MapEncoder()
    with pytest.raises(ValueError, match="probe="):
        grad_cam(enc, x, enc.conv)
    with pytest.raises(ValueError, match="model"):
        grad_cam(enc, x, enc.conv, "similarity", positive_views=x)
