"""``FramePooled``: an image backbone read on clips, the mean of its frame features (issue 16).

For clips ``x`` of shape (B, T, 3, H, W) and an image backbone f: (N, 3, H, W) → (N, D),

    FramePooled(f)(x)_b = 1/T Σ_t f(x_{b,t})                                   (B, D)

with all B·T frames in one backbone call. It is the clip representation of an image method trained on the frames
of a clip dataset (SimCLR on ``moving_shapes``' frames) and of CPC on clips (each frame encoded alone, CPC v2's
mean pooling of its latents), so every encoder on a clip dataset maps clips to one vector per clip.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FramePooled"]


class FramePooled(nn.Module):
    """Clips (B, T, 3, H, W) → the mean over frames of ``backbone``'s features (B, D); see the module docstring.

    Attributes:
        backbone: the wrapped image backbone (its parameters are this module's, not a copy).
        feature_dim: the backbone's width D.

    Raises:
        ValueError: a backbone without ``feature_dim``, or an input that is not (B, T, C, H, W).
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        if not hasattr(backbone, "feature_dim"):
            raise ValueError("backbone: expected an image backbone with a 'feature_dim' attribute")
        self.backbone = backbone
        self.feature_dim = int(backbone.feature_dim)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if not isinstance(clips, torch.Tensor) or clips.ndim != 5:
            shape = tuple(clips.shape) if isinstance(clips, torch.Tensor) else type(clips).__name__
            raise ValueError(f"clips: expected a (B, T, C, H, W) tensor, got {shape}")
        b, t = clips.shape[:2]
        z = self.backbone(clips.flatten(0, 1))
        if z.ndim == 4:  # an unpooled feature map
            z = z.mean(dim=(2, 3))
        return z.reshape(b, t, -1).mean(dim=1)
