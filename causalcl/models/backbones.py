"""Backbones: a small CPU-friendly conv net and torchvision ResNets with an optional CIFAR stem, a small
(2+1)D video net and a GCN.

Every image builder returns an ``nn.Module`` mapping images (B, 3, H, W) to pooled features (B, D) and
exposes the feature width as ``module.feature_dim``. The last convolutional block is exposed as
``module.last_conv`` so CAM tools can hook it. ``video_small`` maps clips (B, T, 3, H, W) to (B, D)
(``causalcl.models.video``); ``gcn`` maps a graph batch (node features (N, F) + edge_index) to node
embeddings (N, D) (``causalcl.models.gcn``). ``BACKBONE_INPUTS`` says which input each one takes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from .gcn import GCN, gcn
from .video import VideoSmall, video_small


class ConvNetSmall(nn.Module):
    """A 6-layer conv-BN-ReLU net (widths 32-32-64-64-128-128, stride-2 every second layer).

    The CPU default: about 0.29M parameters, 128-d global-average-pooled features. Calibrated on the
    embedded ``shapes`` data (DESIGN.md §4.1).
    """

    def __init__(self, widths: tuple[int, ...] = (32, 32, 64, 64, 128, 128), in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for i, width in enumerate(widths):
            stride = 2 if i % 2 == 1 else 1
            layers += [
                nn.Conv2d(prev, width, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            prev = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = prev
        self.last_conv = self.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)


class _TorchvisionResNet(nn.Module):
    """Wraps a torchvision ResNet without its classifier; ``cifar_stem`` swaps in a 3×3 stride-1
    first convolution and drops the max-pool (the usual choice for 32-px images)."""

    def __init__(self, builder: Callable[..., nn.Module], cifar_stem: bool) -> None:
        super().__init__()
        net = builder(weights=None)
        if cifar_stem:
            net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        self.feature_dim = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net
        self.last_conv = net.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def convnet_small(**kwargs: object) -> nn.Module:
    """The small conv net (CPU default)."""
    return ConvNetSmall(**kwargs)  # type: ignore[arg-type]


def resnet18(cifar_stem: bool = False) -> nn.Module:
    """torchvision ResNet-18 (512-d features), randomly initialised."""
    from torchvision.models import resnet18 as tv_resnet18

    return _TorchvisionResNet(tv_resnet18, cifar_stem)


def resnet50(cifar_stem: bool = False) -> nn.Module:
    """torchvision ResNet-50 (2048-d features), randomly initialised."""
    from torchvision.models import resnet50 as tv_resnet50

    return _TorchvisionResNet(tv_resnet50, cifar_stem)


BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "convnet_small": convnet_small,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "video_small": video_small,
    "gcn": gcn,
}

#: the input each backbone takes: ``image`` (B, 3, H, W), ``video`` (B, T, 3, H, W) or ``graph`` (a graph batch)
BACKBONE_INPUTS: dict[str, str] = {"convnet_small": "image", "resnet18": "image", "resnet50": "image",
                                   "video_small": "video", "gcn": "graph"}


def build_backbone(name: str, *, cifar_stem: bool = False, channels_last: bool = True, **options: object) -> nn.Module:
    """Build a backbone by name; ``channels_last`` converts its memory format (faster on CPU; the video net's
    convolutions are 2-D, so it applies there too). ``cifar_stem`` is for the ResNets; ``options`` go to the
    builder (e.g. ``in_features=`` of ``gcn``, which must equal the dataset's node-feature width, or ``widths=``).

    Raises:
        ValueError: an unknown name (the valid ones are listed) or an option the builder does not take (named).
    """
    if name not in BACKBONES:
        raise ValueError(f"backbone: unknown name {name!r}; valid names are {sorted(BACKBONES)}")
    builder = BACKBONES[name]
    if name in ("resnet18", "resnet50"):
        options = {"cifar_stem": cifar_stem, **options}
    target = {"convnet_small": ConvNetSmall, "video_small": VideoSmall, "gcn": GCN}.get(name, builder)
    accepted = [p for p in inspect.signature(target).parameters if p != "self"]
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise ValueError(f"backbone options: {unknown} are not arguments of backbone {name!r}; valid: {accepted}")
    net = builder(**options)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net
