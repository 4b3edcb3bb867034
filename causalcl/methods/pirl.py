"""PIRL: Pretext-Invariant Representation Learning (Misra, van der Maaten, "Self-Supervised Learning of
Pretext-Invariant Representations", CVPR 2020, arXiv 1912.01991), with the jigsaw pretext transform.

An image I and its jigsaw transform I^t (a 3x3 grid of patches, shuffled) are encoded by the shared backbone
phi: the image representation f(v_I) = W_f phi(I); the jigsaw representation g(v_{I^t}) = W_g [W_p phi(p_1); ...;
W_p phi(p_9)], each patch encoded separately by phi, projected by W_p, concatenated in the shuffled order and
projected by W_g (all linear, 128-d, as the paper / VISSL's heads). A memory bank holds m_I, an exponential
moving average of f(v_I) per training item. The loss (eq. 5), each term contrasting a representation with the
memory entry m_I of the same image against m noise entries of the bank, is

    L = lambda * L(m_I, g(v_{I^t})) + (1 - lambda) * L(m_I, f(v_I)),      lambda = 0.5 (the paper's),

with L (``loss=``) either
* ``"infonce"`` (default): InfoNCE over the 1 + m candidates [m_I | noise], cross-entropy with target m_I
  (``causalcl.losses.info_nce_queue``; VISSL's ``loss_type: cross_entropy``), or
* ``"nce"`` (the paper's eq. 3-4): NPID's NCE (``causalcl.losses.instance_nce``), its constant Z estimated once,
  on the first step, from the image term's scores and shared by both terms (VISSL: one NCEAverage serves both);
  ``normalizer_momentum`` makes Z a moving average instead (see ``causalcl.methods.npid``).
Why InfoNCE by default: on the embedded ``shapes`` data (1024 items, 16 px, batch 128, 120 AdamW steps) the NCE
image term diverged (111 -> 4714; kNN 12.1 %, chance 12.5 %) as NPID's NCE does there; with a moving-average Z
(0.99) it stayed near 11-20 (kNN 14.1 %); InfoNCE went 8.6 -> 6.3 (kNN 17.7 %).
After the optimiser step m_I <- normalize(0.5 m_I + 0.5 f(v_I)).

Views (``make_views``): view 0 is the standard augmentation of I; view 1 is a second standard augmentation
turned into a jigsaw puzzle image by ``jigsaw``: the view is cut into a g x g grid of cells (side c = S // g), a
random p x p patch is taken in each cell (p = round(c * 64/85), the paper's 64 px patch in an 85 px cell, so
neighbouring patches never touch), resampled to c x c and the g^2 patches are placed in a random order per
image -- a (B, 3, S, S) image whose tiles ``forward`` cuts back into patches (one batch of B g^2 patches
through the backbone). VISSL's recipe also jitters colour per patch; here colour varies per image (the view's
own augmentation) -- the patches keep the pipeline the user configured, background swaps included.

Item indices, DDP and the memory bank: as NPID (``causalcl.methods.npid``): one noise draw of m indices per
step, shared by the batch; features gathered, every rank updates the same bank.

Defaults: tau = 0.07, momentum 0.5, 128-d, lambda 0.5, a 3x3 grid (the paper); m = 4096 noise entries (the
paper: 32000 on ImageNet; 4096 is NPID's and fits CIFAR-scale sets); InfoNCE (above).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributed import gather, gather_no_grad
from ..losses import info_nce_queue, instance_nce
from .base import Method
from .memory_bank import MemoryBank
from .npid import check_bank_options

if TYPE_CHECKING:
    from ..data.interventional import InterventionalViews

LOSSES = ("infonce", "nce")


def _rand(gen: torch.Generator | None, device: torch.device, *shape: int) -> Tensor:
    src = gen.device if gen is not None else device
    return torch.rand(*shape, generator=gen, device=src).to(device)


def jigsaw(images: Tensor, generator: torch.Generator | None = None, grid: int = 3,
           patch_fraction: float = 64 / 85) -> Tensor:
    """The jigsaw puzzle of each image of ``images`` (B, 3, S, S'), same shape (see the module docstring).

    Tile t = (row, col) of the output shows, resampled to the cell size, a random ``round(c * patch_fraction)``
    square patch of source cell ``perm_b[t]``, ``perm_b`` a random permutation per image. Rows and columns
    beyond ``grid * c`` are zero. One ``grid_sample`` for the batch; every random number from ``generator``."""
    b, _, h, w = images.shape
    ch, cw = h // grid, w // grid
    if ch < 1 or cw < 1:
        raise ValueError(f"images: a {grid}x{grid} jigsaw needs images of at least {grid} px, got {h}x{w}")
    ph, pw = max(1, round(ch * patch_fraction)), max(1, round(cw * patch_fraction))
    device, cells = images.device, grid * grid
    perm = torch.argsort(_rand(generator, device, b, cells), dim=1)  # tile t shows source cell perm[:, t]
    offset = _rand(generator, device, b, cells, 2)
    off_y = torch.floor(offset[..., 0] * (ch - ph + 1)).clamp(max=ch - ph)
    off_x = torch.floor(offset[..., 1] * (cw - pw + 1)).clamp(max=cw - pw)
    ys, xs = torch.arange(grid * ch, device=device), torch.arange(grid * cw, device=device)
    tile = ((ys // ch)[:, None] * grid + (xs // cw)[None, :]).flatten()  # (GH * GW,) tile of each pixel
    src = perm[:, tile]
    oy, ox = off_y[:, tile], off_x[:, tile]
    uy = (ys % ch)[:, None].expand(-1, grid * cw).flatten().to(images.dtype)
    ux = (xs % cw)[None, :].expand(grid * ch, -1).flatten().to(images.dtype)
    # source pixel indices (fractional), clamped to the patch: crop then resize, as a resized crop does
    y0, x0 = (src // grid) * ch + oy, (src % grid) * cw + ox
    y = torch.minimum(torch.maximum(y0 + (uy + 0.5) * (ph / ch) - 0.5, y0), y0 + ph - 1)
    x = torch.minimum(torch.maximum(x0 + (ux + 0.5) * (pw / cw) - 0.5, x0), x0 + pw - 1)
    coords = torch.stack([(2 * x + 1) / w - 1, (2 * y + 1) / h - 1], dim=-1).view(b, grid * ch, grid * cw, 2)
    out = F.grid_sample(images, coords.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    return F.pad(out, (0, w - grid * cw, 0, h - grid * ch))


class PIRL(Method):
    """PIRL with the jigsaw pretext task and a memory bank.

    Args:
        backbone: the shared encoder phi (images and patches).
        temperature: tau of the NCE.
        loss: ``"infonce"`` (InfoNCE over [m_I | noise]) or ``"nce"`` (NPID's NCE, Z estimated once).
        loss_lambda: lambda, the weight of the jigsaw term (the image term gets 1 - lambda), in [0, 1].
        num_negatives: m, noise entries of the bank per step.
        momentum: of the memory-bank update, in [0, 1).
        embedding_dim: width of f, g, the per-patch projection and the bank.
        grid: the jigsaw grid side (3: nine patches).
        patch_fraction: patch side / cell side, in (0, 1] (64/85 as the paper; 1 = touching patches).
        normalizer_momentum: ``None`` (default): Z estimated once; mu in [0, 1): a moving average (as NPID).
    """

    name = "pirl"

    def __init__(self, backbone: nn.Module, *, temperature: float = 0.07, loss: str = "infonce",
                 loss_lambda: float = 0.5, num_negatives: int = 4096, momentum: float = 0.5,
                 embedding_dim: int = 128, grid: int = 3, patch_fraction: float = 64 / 85,
                 normalizer_momentum: float | None = None) -> None:
        super().__init__(backbone)
        check_bank_options(temperature, momentum, num_negatives, normalizer_momentum)
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {list(LOSSES)}, got {loss!r}")
        if isinstance(loss_lambda, bool) or not isinstance(loss_lambda, int | float) or not 0 <= loss_lambda <= 1:
            raise ValueError(f"loss_lambda: expected a weight in [0, 1], got {loss_lambda!r}")
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
            raise ValueError(f"grid: expected an int >= 2, got {grid!r}")
        if isinstance(patch_fraction, bool) or not isinstance(patch_fraction, int | float) \
                or not 0 < patch_fraction <= 1:
            raise ValueError(f"patch_fraction: expected a fraction in (0, 1], got {patch_fraction!r}")
        self.temperature, self.loss_name, self.loss_lambda = float(temperature), loss, float(loss_lambda)
        self.num_negatives, self.momentum = num_negatives, float(momentum)
        self.normalizer_momentum = None if normalizer_momentum is None else float(normalizer_momentum)
        self.grid, self.patch_fraction = grid, float(patch_fraction)
        self.memory = MemoryBank(embedding_dim)  # validates embedding_dim
        self.image_head = nn.Linear(self.feature_dim, embedding_dim)  # f
        self.patch_head = nn.Linear(self.feature_dim, embedding_dim)  # W_p, per patch
        self.jigsaw_head = nn.Linear(grid * grid * embedding_dim, embedding_dim)  # g
        self._indices: Tensor | None = None
        self._pending: tuple[Tensor, Tensor, Tensor | None] | None = None  # indices, features, new Z

    def bind_dataset(self, num_items: int) -> None:
        self.memory.allocate(num_items)

    def set_batch_indices(self, indices: Tensor) -> None:
        self._indices = indices

    def jigsaw(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return jigsaw(images, generator, self.grid, self.patch_fraction)

    def make_views(self, augment: Callable[..., Tensor], images: Tensor,
                   generator: torch.Generator | None = None) -> list[Tensor]:
        """[augment(I), jigsaw(augment(I))]."""
        return [augment(images, generator), self.jigsaw(augment(images, generator), generator)]

    def make_interventional_views(self, views: InterventionalViews, images: Tensor, indices: Tensor,
                                  generator: torch.Generator) -> list[Tensor]:
        """Two counterfactuals; the second becomes the jigsaw puzzle."""
        first, second = views(images, indices, generator, 2)
        return [first, self.jigsaw(second, generator)]

    def patches(self, puzzle: Tensor) -> Tensor:
        """The g^2 tiles of each puzzle image, (B * g^2, 3, c, c'), tile-major per image (row by row)."""
        b, c, h, w = puzzle.shape
        g = self.grid
        ch, cw = h // g, w // g
        tiles = puzzle[:, :, :g * ch, :g * cw].reshape(b, c, g, ch, g, cw).permute(0, 2, 4, 1, 3, 5)
        return tiles.reshape(b * g * g, c, ch, cw)

    def forward(self, views: list[Tensor]) -> dict[str, Tensor]:
        self.check_views(views, 2)
        image, puzzle = views[0], views[1]
        indices = self.memory.check_indices(self._indices, image.shape[0], self.name)
        f = self.image_head(self.backbone(image))
        patch = self.patch_head(self.backbone(self.patches(puzzle)))
        g = self.jigsaw_head(patch.reshape(image.shape[0], -1))
        f_all, g_all, idx_all = gather(f), gather(g), gather_no_grad(indices)  # the global batch under DDP
        bank = self.memory()
        positive, negatives = bank[idx_all], bank[self.memory.noise(self.num_negatives)]
        new_z = None
        if self.loss_name == "infonce":  # in the bank's precision or wider (the heads may run in bf16 under AMP)
            dtype = torch.promote_types(f_all.dtype, bank.dtype)
            jigsaw_loss = info_nce_queue(g_all.to(dtype), positive.to(dtype), negatives, self.temperature)
            image_loss = info_nce_queue(f_all.to(dtype), positive.to(dtype), negatives, self.temperature)
        else:
            new_z = self.memory.next_normalizer(f_all, positive, negatives, self.temperature, self.normalizer_momentum)
            normalizer = float(self.memory.normalizer if new_z is None else new_z)  # new_z: kept by on_step_end
            options = {"num_items": self.memory.num_items, "normalizer": normalizer, "temperature": self.temperature}
            jigsaw_loss = instance_nce(g_all, positive, negatives, **options)
            image_loss = instance_nce(f_all, positive, negatives, **options)
        loss = self.loss_lambda * jigsaw_loss + (1 - self.loss_lambda) * image_loss
        self._pending = (idx_all, F.normalize(f_all.detach(), dim=1), new_z)
        return {"loss": loss, "jigsaw_loss": jigsaw_loss.detach(), "image_loss": image_loss.detach(),
                "embeddings": [f, g]}

    def on_step_end(self, step: int, total_steps: int) -> None:
        """m_I <- normalize(m m_I + (1 - m) f(v_I)) at the last forward's items; Z is kept once estimated."""
        self.memory.apply(self._pending, self.momentum)
        self._pending = None
