"""CPC v2 on a grid of patches (van den Oord, Li, Vinyals, "Representation Learning with Contrastive Predictive
Coding", arXiv 1807.03748, 2018; Hénaff, Srinivas, De Fauw, Razavi, Doersch, Eslami, van den Oord, "Data-Efficient
Image Recognition with Contrastive Predictive Coding", ICML 2020, arXiv 1905.09272).

Each image is cut into a G×G grid of overlapping square patches (32 px → 7×7 patches of 8 px, stride 4); all
patches of the batch pass through the backbone in one call, giving latents z (B, G, G, D). A sequence view of the
grid, (B, T, P, D) with T the sequence axis and P the positions per step (direction ``"down"``: T = rows top to
bottom, P = columns), goes through an autoregressive context network, c_t = g_ar(z_{≤t}) (``CausalContext``: a
stack of causal convolutions over (T, P) — masked along T, any column — or a GRU down each column), and one
linear map W_k per offset k = 1..K predicts the latent k steps ahead. The loss is InfoNCE against every patch of
the (global) batch (``causalcl.losses.cpc_loss``)::

    ℓ = −log( exp((W_k c_{t,p})ᵀ z_{t+k,p}) / Σ_{all patches j of the batch} exp((W_k c_{t,p})ᵀ z_j) ),
    L = mean over directions of 1/K Σ_k mean_{b,t,p} ℓ

Clips (context over frames; chosen by the input's shape, 5-D (B, T, 3, H, W) views): each frame is encoded alone
by the backbone (an image backbone: a (2+1)D net would mix future frames into z_t and make the prediction
trivial), z_t = f(x_t) with z laid out as (B, T, P = 1, D), the same causal context runs over the frames,
c_t = g_ar(z_{≤t}), and W_k predicts the frame k steps ahead against every frame of the (global) batch, those
of the same clip included::

    ℓ_{b,t,k} = −log( exp((W_k c_{b,t})ᵀ z_{b,t+k}) / Σ_{frames (b', t') of the batch} exp((W_k c_{b,t})ᵀ z_{b',t'}) ),
    L = 1/K Σ_k mean_{b, t < T−k} ℓ_{b,t,k}                      (K ≤ T − 1)

Direction ``"down"`` reads the frames forward in time, ``"up"`` backward; ``"right"``/``"left"`` (grid columns)
do not apply to clips. The view is one draw of the image augmentation, the same for every frame of a clip
(``clip_consistent``). The evaluated clip representation is the mean of the frame latents,
1/T Σ_t f(x_t) (``causalcl.models.FramePooled``), as CPC v2 pools its patch latents.

Defaults and why: grid 7 with half-overlapping patches of 2·H/(G+1) px (the papers' 7×7 grid of 64-px patches,
stride 32, scaled); K = 3 offsets (on 7 rows the furthest offset still has 4 source rows; the loss cost grows
with Σ_k (G − k)); context: 2 causal conv layers of width 256, kernel 3 (rows t−2..t) × 3 columns (CPC v2 uses a
PixelCNN-style masked conv net); ``directions=("down",)`` (CPC v1; CPC v2 adds bottom-up and horizontal predictions:
``directions=["down", "up", "right", "left"]``, each with its own context network and W_k); ``norm="batch"``
keeps the backbone as built, so it is the same encoder as every other method in a side-by-side run
(``norm="layer"`` swaps each BatchNorm2d for a GroupNorm with one group — layer norm over (C, H, W) — as CPC v2
does to stop batch statistics leaking between patches). Not implemented: CPC v2's per-patch augmentation (the
view is augmented as a whole). With ``--views interventional`` the one view is a counterfactual do(style = s').

Cost: the backbone sees G²·P² pixels per image, 49·64 = 3136 at 32 px against SimCLR's 2·1024 (1.53×), and the
loss scores Σ_k (G − k)·G·B = 105·B predictions (K = 3) against all 49·B patches (SimCLR: 2B × 2B). Measured on 2
busy CPU cores (``benchmarks/step_cost.py``, convnet_small, batch 128, 32 px): the step is ≈ 4× SimCLR's (3.3–4.8
over four noisy runs); the backbone pass over the patches costs ≈ 1.2× SimCLR's backbone pass and the loss
(13440 × 6272 logits) ≈ 1.5–1.8× it. The loss cost scales with B² and with Σ_k (G − k): ``max_offset=1`` keeps
6/15 of it; each added direction adds one such loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data.temporal import clip_consistent
from ..distributed import gather
from ..losses import cpc_loss
from .base import Method

DIRECTIONS = ("down", "up", "right", "left")
CONTEXTS = ("conv", "gru")
NORMS = ("batch", "layer")


class CausalConv(nn.Module):
    """Conv over (T, P) on (B, C, T, P) whose output at step t sees steps t−kt+1..t only (padded above, not below)."""

    def __init__(self, in_dim: int, out_dim: int, kernel: tuple[int, int]) -> None:
        super().__init__()
        self.kt, self.kp = kernel
        self.conv = nn.Conv2d(in_dim, out_dim, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.kp // 2, (self.kp - 1) // 2, self.kt - 1, 0)))


class CausalContext(nn.Module):
    """Autoregressive context over a generic sequence axis: (B, T, P, D_in) → (B, T, P, dim), c[:, t] a function
    of x[:, :t+1] only. ``kind="conv"``: ``layers`` causal convs (first in→dim, then residual dim→dim, ReLU);
    ``kind="gru"``: a GRU of ``layers`` layers along T for each position p separately."""

    def __init__(self, in_dim: int, dim: int, *, kind: str = "conv", layers: int = 2,
                 kernel: tuple[int, int] = (3, 3)) -> None:
        super().__init__()
        self.kind = kind
        if kind == "gru":
            self.gru = nn.GRU(in_dim, dim, num_layers=layers, batch_first=True)
        else:
            self.convs = nn.ModuleList(CausalConv(in_dim if i == 0 else dim, dim, kernel) for i in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, p, d = x.shape
        if self.kind == "gru":
            out, _ = self.gru(x.transpose(1, 2).reshape(b * p, t, d))
            return out.reshape(b, p, t, -1).transpose(1, 2)
        h = x.permute(0, 3, 1, 2)  # (B, D, T, P)
        for i, conv in enumerate(self.convs):
            h = F.relu(conv(h)) if i == 0 else h + F.relu(conv(h))
        return h.permute(0, 2, 3, 1)


def orient(z: torch.Tensor, direction: str) -> torch.Tensor:
    """The grid latents (B, rows, cols, D) as a sequence (B, T, P, D) read in ``direction``."""
    if direction in ("right", "left"):
        z = z.transpose(1, 2)
    return z.flip(1) if direction in ("up", "left") else z


def layer_norm_(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d inside ``module`` (in place) by GroupNorm(1, C): layer norm over (C, H, W)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.GroupNorm(1, child.num_features, eps=child.eps, affine=child.affine))
        else:
            layer_norm_(child)
    return module


class CPC(Method):
    """CPC v2 on a grid of patches of each image, or over the frames of each clip (5-D views).

    Args:
        backbone: the patch encoder (all patches in one call; on clips, the frame encoder); its pooled output is z.
        grid: G ≥ 2, patches per row and per column.
        patch_size: patch side in px; ``None``: 2·min(H, W)/(G+1) (half-overlapping, spanning the image). The
            strides are (H − patch)//(G − 1) and (W − patch)//(G − 1).
        max_offset: K ≥ 1, offsets k = 1..K predicted (K ≤ G − 1).
        context: ``"conv"`` (causal conv stack) or ``"gru"`` (column-wise GRU).
        context_dim: width of the context c.
        context_layers: conv layers / GRU layers of the context network.
        directions: one or more of ``DIRECTIONS`` (the sequence order of the grid), each with its own context
            network and W_k.
        norm: ``"batch"`` (the backbone as built) or ``"layer"`` (its BatchNorm2d → GroupNorm(1, C)).
    """

    name = "cpc"
    num_views = 1
    #: images (a grid of patches) or clips (the frames: context over time); see the module docstring
    input_kinds = ("image", "video")
    #: on clips each frame is encoded alone: the backbone takes images
    clip_backbone_kind = "image"

    def __init__(self, backbone: nn.Module, *, grid: int = 7, patch_size: int | None = None, max_offset: int = 3,
                 context: str = "conv", context_dim: int = 256, context_layers: int = 2,
                 directions: Sequence[str] = ("down",), norm: str = "batch") -> None:
        super().__init__(backbone)
        for key, value, low in (("grid", grid, 2), ("max_offset", max_offset, 1), ("context_dim", context_dim, 1),
                                ("context_layers", context_layers, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{key}: expected an integer >= {low}, got {value!r}")
        if max_offset > grid - 1:
            raise ValueError(f"max_offset: expected at most grid - 1 = {grid - 1}, got {max_offset}")
        if patch_size is not None and (isinstance(patch_size, bool) or not isinstance(patch_size, int)
                                       or patch_size < 1):
            raise ValueError(f"patch_size: expected a positive integer or None, got {patch_size!r}")
        if context not in CONTEXTS:
            raise ValueError(f"context: expected one of {CONTEXTS}, got {context!r}")
        directions = (directions,) if isinstance(directions, str) else tuple(directions)
        if not directions or any(d not in DIRECTIONS for d in directions) or len(set(directions)) < len(directions):
            raise ValueError(f"directions: expected distinct names from {DIRECTIONS}, got {list(directions)}")
        if norm not in NORMS:
            raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")
        if norm == "layer":
            layer_norm_(self.backbone)
        self.grid, self.patch_size, self.max_offset, self.directions = grid, patch_size, max_offset, directions
        self.contexts = nn.ModuleList(CausalContext(self.feature_dim, context_dim, kind=context, layers=context_layers)
                                      for _ in directions)
        self.predictors = nn.ModuleList(
            nn.ModuleList(nn.Linear(context_dim, self.feature_dim, bias=False) for _ in range(max_offset))
            for _ in directions)

    def geometry(self, height: int, width: int) -> tuple[int, int, int]:
        """(patch, row stride, column stride) in px for an image of ``height`` × ``width``."""
        g = self.grid
        patch = self.patch_size if self.patch_size is not None else 2 * min(height, width) // (g + 1)
        if patch < 1 or patch > min(height, width) or min(height, width) - patch < g - 1:
            raise ValueError(f"views: {height}x{width} images cannot hold a {g}x{g} grid of {patch}-px patches with "
                             f"stride >= 1 (lower method.grid or set method.patch_size)")
        return patch, (height - patch) // (g - 1), (width - patch) // (g - 1)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) → (B·G·G, 3, patch, patch), row-major over the grid of each image."""
        b, c, h, w = x.shape
        g = self.grid
        patch, sh, sw = self.geometry(h, w)
        tiles = x.unfold(2, patch, sh).unfold(3, patch, sw)[:, :, :g, :g]  # (B, C, G, G, patch, patch)
        tiles = tiles.permute(0, 2, 3, 1, 4, 5).reshape(b * g * g, c, patch, patch)
        if x.is_contiguous(memory_format=torch.channels_last):
            tiles = tiles.contiguous(memory_format=torch.channels_last)
        return tiles

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """The grid of patch latents (B, G, G, D), one backbone call for the whole batch."""
        return self.backbone(self.patches(x)).view(x.shape[0], self.grid, self.grid, self.feature_dim)

    def make_views(self, augment: Callable[..., torch.Tensor], images: torch.Tensor,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """One view: ``augment`` on images, or on clips with the same draw for every frame of a clip."""
        if images.ndim == 5:
            return [clip_consistent(augment, images, generator)]
        return super().make_views(augment, images, generator)

    def frame_latents(self, clips: torch.Tensor) -> torch.Tensor:
        """The frame latents of clips (B, T, 3, H, W) as a sequence (B, T, 1, D), one backbone call for all frames.

        Raises:
            ValueError: clips that are not (B, T, 3, H, W) with T > max_offset, or a grid direction (named)."""
        if clips.ndim != 5 or clips.shape[2] != 3 or clips.shape[1] <= self.max_offset:
            raise ValueError(f"views: expected clips (B, T, 3, H, W) with T > max_offset = {self.max_offset} frames, "
                             f"got {tuple(clips.shape)}")
        grid_only = [d for d in self.directions if d in ("right", "left")]
        if grid_only:
            raise ValueError(f"directions: {grid_only} read grid columns; clips are read along time ('down' = "
                             "forward, 'up' = backward)")
        b, t = clips.shape[:2]
        z = self.backbone(clips.flatten(0, 1))
        return z.view(b, t, 1, self.feature_dim)

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        if isinstance(views, list | tuple) and len(views) >= 1 and getattr(views[0], "ndim", 0) == 5:
            z = self.frame_latents(views[0])  # (B, T, 1, D): orient() reads T forward ("down") or backward ("up")
        else:
            self.check_views(views, 1)
            z = self.latents(views[0])
        out: dict[str, torch.Tensor] = {}
        losses = []
        for direction, context, heads in zip(self.directions, self.contexts, self.predictors, strict=True):
            seq = orient(z, direction)
            c = context(seq)
            t = seq.shape[1]
            preds = [heads[k - 1](c[:, : t - k]) for k in range(1, self.max_offset + 1)]
            losses.append(cpc_loss(gather(seq), [gather(p) for p in preds]))  # every patch of the global batch
            if len(self.directions) > 1:
                out[f"loss_{direction}"] = losses[-1].detach()
        out["loss"] = torch.stack(losses).mean()
        return out
