import pytest
import torch

from causalcl.models import MLPHead, build_backbone


@pytest.mark.parametrize("channels_last", [True, False])
def test_convnet_small_features(channels_last):
    net = build_backbone("convnet_small", channels_last=channels_last)
    out = net(torch.rand(4, 3, 32, 32))
    assert out.shape == (4, net.feature_dim) == (4, 128)


def test_resnet18_cifar_stem_keeps_resolution():
    net = build_backbone("resnet18", cifar_stem=True)
    assert net.net.conv1.stride == (1, 1) and isinstance(net.net.maxpool, torch.nn.Identity)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 512)
    plain = build_backbone("resnet18", cifar_stem=False)
    assert plain.net.conv1.stride == (2, 2)


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ValueError, match="convnet_small"):
        build_backbone("vgg")


def test_mlp_head_structure():
    head = MLPHead([8, 16, 4])
    layers = [type(m).__name__ for m in head]
    assert layers == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert head(torch.rand(5, 8)).shape == (5, 4)
    with pytest.raises(ValueError, match="widths"):
        MLPHead([8])
