"""A small (2+1)D convolutional video backbone (``video_small``) for clips ``(B, T, 3, H, W)``.

R(2+1)D (Tran, Wang, Torresani, Ray, LeCun, Paluri; CVPR 2018, "A Closer Look at Spatiotemporal
Convolutions for Action Recognition") factorises a ``t × k × k`` 3-D convolution into a spatial
``1 × k × k`` convolution followed by a temporal ``t × 1 × 1`` one, each with BN + ReLU. Here the frames
stay folded into the batch, ``(B·T, C, H, W)``, between the layers: the spatial convolution is a plain
``Conv2d`` (channels-last friendly on CPU) and the temporal one is :class:`TemporalConv`, a ``t × 1 × 1``
``conv3d`` (zero padding in time, stride 1) on a copy-free ``(B, C, T, H, W)`` view of the frames.

Default: a 32-wide spatial stem at full resolution, then 3 (2+1)D blocks of widths 32-64-128 with spatial
strides 2-2-2 and temporal kernel 3 (about 0.17M parameters, ~7.6M multiply-adds per 32-px frame, less
than half of ``convnet_small``'s: TaCo passes M + 1 = 6 clips of 8 frames per sample), global average pool
over time and space → 128-d features. ``last_conv`` is the last block; its output is one map per frame,
``(B·T, 128, H/8, W/8)`` with clip ``b``'s frame ``t`` at row ``b·T + t`` (per-frame CAM).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TemporalConv", "VideoSmall", "video_small"]


class TemporalConv(nn.Module):
    """``Conv3d(c_in, c_out, kernel=(k, 1, 1), padding=(k // 2, 0, 0), bias=False)`` on frames folded into the
    batch: input ``(B·T, c_in, H, W)`` with ``frames = T``, output ``(B·T, c_out, H, W)``.

    The frames are viewed as ``(B, c_in, T, H, W)`` without a copy when the input is channels-last (its memory
    order ``(B, T, H, W, C)`` is then channels-last-3d, the fast path of ``conv3d`` on CPU) and the output is
    viewed back the same way. The weight is kept 4-D, ``(c_out, c_in, k, 1)``, so that converting the module to
    channels-last (``build_backbone``) leaves it valid.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3) -> None:
        super().__init__()
        if isinstance(kernel, bool) or int(kernel) != kernel or kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"temporal_kernel must be an odd positive integer, got {kernel!r}")
        self.kernel = int(kernel)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, self.kernel, 1))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)  # nn.Conv3d's default initialisation

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        bt, c, h, w = x.shape
        y = x.reshape(bt // frames, frames, c, h, w).permute(0, 2, 1, 3, 4)
        y = F.conv3d(y, self.weight.unsqueeze(-1), padding=(self.kernel // 2, 0, 0))
        return y.permute(0, 2, 1, 3, 4).reshape(bt, -1, h, w)


class _Block(nn.Module):
    """Spatial conv 3×3 (stride s) → BN → ReLU → temporal conv k×1×1 → BN → ReLU, frames folded."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, temporal_kernel: int) -> None:
        super().__init__()
        self.spatial = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.temporal = TemporalConv(out_channels, out_channels, temporal_kernel)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        x = F.relu(self.bn1(self.spatial(x)), inplace=True)
        return F.relu(self.bn2(self.temporal(x, frames)), inplace=True)


class VideoSmall(nn.Module):
    """The small (2+1)D video backbone (see the module docstring): ``(B, T, 3, H, W)`` → ``(B, feature_dim)``.

    Args:
        widths: output channels of the (2+1)D blocks.
        strides: spatial stride of each block (same length as ``widths``).
        temporal_kernel: odd size of the temporal convolutions.
        stem: width of a spatial-only 3×3 conv-BN-ReLU at full resolution before the blocks (0: none).
        in_channels: channels of the frames (3).

    Raises:
        ValueError: bad arguments (named), or an input that is not ``(B, T, in_channels, H, W)``.
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 128), strides: Sequence[int] = (2, 2, 2),
                 temporal_kernel: int = 3, stem: int = 32, in_channels: int = 3) -> None:
        super().__init__()
        widths, strides = [int(w) for w in widths], [int(s) for s in strides]
        if not widths or min(widths) < 1:
            raise ValueError(f"widths: expected at least one positive width, got {widths}")
        if len(strides) != len(widths) or min(strides) < 1:
            raise ValueError(f"strides: expected {len(widths)} positive strides (one per width), got {strides}")
        if isinstance(stem, bool) or int(stem) != stem or stem < 0:
            raise ValueError(f"stem: expected a width >= 0, got {stem!r}")
        self.in_channels = int(in_channels)
        prev = self.in_channels
        self.stem = nn.Identity()
        if stem:
            self.stem = nn.Sequential(nn.Conv2d(prev, int(stem), 3, padding=1, bias=False), nn.BatchNorm2d(int(stem)),
                                      nn.ReLU(inplace=True))
            prev = int(stem)
        blocks = []
        for width, stride in zip(widths, strides, strict=True):
            blocks.append(_Block(prev, width, stride, temporal_kernel))
            prev = width
        self.blocks = nn.ModuleList(blocks)
        self.feature_dim = prev
        self.last_conv = self.blocks[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[2] != self.in_channels:
            raise ValueError(f"x: expected clips of shape (B, T, {self.in_channels}, H, W), got {tuple(x.shape)}")
        b, t = x.shape[:2]
        y = x.reshape(b * t, *x.shape[2:])
        if self.blocks[0].spatial.weight.is_contiguous(memory_format=torch.channels_last):
            y = y.contiguous(memory_format=torch.channels_last)
        y = self.stem(y)
        for block in self.blocks:
            y = block(y, t)
        return y.reshape(b, t, *y.shape[1:]).mean(dim=(1, 3, 4))


def video_small(**kwargs: object) -> nn.Module:
    """The small (2+1)D video backbone (128-d features for clips ``(B, T, 3, H, W)``)."""
    return VideoSmall(**kwargs)  # type: ignore[arg-type]
