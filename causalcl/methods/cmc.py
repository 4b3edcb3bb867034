"""CMC, Contrastive Multiview Coding (Tian, Krishnan, Isola; ECCV 2020, arXiv 1906.05849).

Two views of an image are its channels in the CIE Lab colour space: the lightness L (1 channel) and
the colour ab (2 channels), each with its own encoder and projection head. With unit projections
u_i = g_L(f_L(L_i)) and v_i = g_ab(f_ab(ab_i)), the loss is the two-view "full graph" contrast
L(L → ab) + L(ab → L), here in its in-batch softmax form (``causalcl.losses.cross_view_info_nce``):

    L = 1/(2N) Σ_i [ −log softmax_k(u_i·v_k / τ)_i − log softmax_k(v_i·u_k / τ)_i ],

each anchor against the N embeddings of the other view. ``loss=`` swaps in any loss of the SimCLR family
on these cross-view candidates (``causalcl.losses.variants.cross_view_variant_loss``, ``loss_options``
passed through, τ the method's ``temperature``), e.g. the seed rows "CMC + Debiased" and "CMC + Hard" of
MetAug's table: with s⁺ = u_i·v_i and the M = N − 1 negatives s_ik = u_i·v_k (k ≠ i), and likewise from v_i,

    debiased   ℓ = −log( e^{s⁺/τ} / (e^{s⁺/τ} + Ng) ),  Ng = max{(Σ_k e^{s_ik/τ} − τ⁺·M·e^{s⁺/τ})/(1 − τ⁺), M·e^{−1/τ}}
    hard       the same with Σ_k e^{s_ik/τ} → M·Σ_k w_ik e^{s_ik/τ},  w_ik = softmax_k(β·s_ik/τ)   (HCL)

(dcl, dclw, hard_threshold, triplet likewise; align_uniform is SimCLR's), averaged over the 2N anchors.
MetAug does not say how its rows were run (its code, built on CMC's, uses a memory bank); here the negatives
are the in-batch ones, as for ``infonce``. The paper draws its K negatives from a
memory bank (NCE or a K+1-way softmax, K = 16384); this in-batch form needs no bank, works under
DDP on the gathered global batch, and is what the mean of the two directions becomes for K = N − 1.

Encoders. Each is a deep copy of the given backbone whose first ``nn.Conv2d`` is rebuilt, freshly
initialised, with 1 (L) or 2 (ab) input channels (same width, kernel, stride, padding). The
``encoder`` is a ``LabEncoder``: RGB images (B, 3, H, W) in [0, 1] → Lab → ``cat(f_L(L), f_ab(ab))``,
``feature_dim`` = the sum of both widths; its ``last_conv`` (the block Grad-CAM hooks) is the L
encoder's, since shape lives in lightness, so CAM maps explain the L half of the features only.

Colour conversion (``rgb_to_lab``): sRGB (D65, 2° observer, as ``skimage.color.rgb2lab``) →
linear RGB → XYZ → Lab; the encoders see each channel scaled to about [−1, 1] by the extremes of
the sRGB gamut in Lab, L ∈ [0, 100], a ∈ [−86.183, 98.233], b ∈ [−107.857, 94.478], as CMC's data
pipeline does. No gradient is needed through it (it acts on input images).

Views. CMC splits ONE augmented crop into L and ab: ``same_crop=True`` (default) makes one
augmentation per image and passes it as both views; ``same_crop=False`` takes L from view 1 and ab
from view 2 (two independent crops). Grayscale augmentation empties the ab view, so ``make_views``
switches it off unless ``keep_grayscale=True``.

Defaults: τ = 0.07 (the paper's), loss ``infonce``, a linear head to 128 per view (``projector=(128,)``;
with hidden widths each hidden layer has BatchNorm unless ``projector_bn=False``).
``embed_views(views) -> (z_L, z_ab)`` returns the unit projections (MetAug builds on it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributed import gather
from ..losses._common import check_temperature
from ..losses.variants import cross_view_variant_loss, variant_options
from ..models.heads import MLPHead
from .base import Method

# sRGB (D65) → XYZ matrix and the D65 reference white, as in skimage.color
_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_WHITE = (0.95047, 1.0, 1.08883)
_EPS, _KAPPA = 216 / 24389, 841 / 108  # CIE: f(t) = t^(1/3) above (6/29)^3, else t·841/108 + 4/29
# extremes of the sRGB gamut in Lab (CMC's normalisation to about [-1, 1])
_LAB_LOW, _LAB_HIGH = (0.0, -86.183, -107.857), (100.0, 98.233, 94.478)


def rgb_to_lab(images: Tensor) -> Tensor:
    """CIE Lab (D65) of sRGB images (B, 3, H, W) in [0, 1]: L in [0, 100], a and b about ±100.

    Values outside [0, 1] are clamped first. Computed in (at least) float32, outside autocast.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected RGB batches of shape (B, 3, H, W), got {tuple(images.shape)}")
    dtype = torch.promote_types(images.dtype, torch.float32)
    with torch.autocast(images.device.type, enabled=False):
        c = images.to(dtype).clamp(0.0, 1.0)
        lin = torch.where(c > 0.04045, ((c + 0.055) / 1.055).pow(2.4), c / 12.92)
        r, g, b = lin.unbind(1)
        xyz = [(m[0] * r + m[1] * g + m[2] * b) / w for m, w in zip(_RGB_TO_XYZ, _WHITE, strict=True)]
        fx, fy, fz = (torch.where(t > _EPS, t.clamp_min(_EPS).pow(1 / 3), t * _KAPPA + 4 / 29) for t in xyz)
        return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def normalized_lab(images: Tensor) -> Tensor:
    """``rgb_to_lab`` with each channel mapped linearly from its sRGB-gamut range to [-1, 1]."""
    lab = rgb_to_lab(images)
    low = lab.new_tensor(_LAB_LOW).view(1, 3, 1, 1)
    high = lab.new_tensor(_LAB_HIGH).view(1, 3, 1, 1)
    return (2 * lab - (low + high)) / (high - low)


def rebuild_first_conv(module: nn.Module, in_channels: int) -> nn.Module:
    """In place: replace the first ``nn.Conv2d`` of ``module`` by a fresh one taking ``in_channels``."""
    found = next(((name, m) for name, m in module.named_modules() if isinstance(m, nn.Conv2d)), None)
    if found is None or not found[0]:
        raise ValueError(f"backbone: expected a module containing an nn.Conv2d, got {type(module).__name__}")
    name, conv = found
    if conv.groups != 1:
        raise ValueError(f"backbone: the first convolution {name!r} is grouped (groups={conv.groups})")
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                    dilation=conv.dilation, bias=conv.bias is not None, padding_mode=conv.padding_mode,
                    device=conv.weight.device, dtype=conv.weight.dtype)
    if not conv.weight.is_contiguous() and conv.weight.is_contiguous(memory_format=torch.channels_last):
        new = new.to(memory_format=torch.channels_last)
    parent, _, leaf = name.rpartition(".")
    setattr(module.get_submodule(parent) if parent else module, leaf, new)
    return module


class LabEncoder(nn.Module):
    """RGB images → ``cat(encoder_l(L), encoder_ab(ab))`` of their normalised Lab channels."""

    def __init__(self, encoder_l: nn.Module, encoder_ab: nn.Module) -> None:
        super().__init__()
        self.encoder_l, self.encoder_ab = encoder_l, encoder_ab
        self.dim_l, self.dim_ab = int(encoder_l.feature_dim), int(encoder_ab.feature_dim)
        self.feature_dim = self.dim_l + self.dim_ab

    @property
    def last_conv(self) -> nn.Module:
        """The L encoder's last convolutional block (for Grad-CAM)."""
        return self.encoder_l.last_conv

    def forward(self, images: Tensor) -> Tensor:
        lab = normalized_lab(images).to(images.dtype)
        return torch.cat([self.encoder_l(lab[:, :1]), self.encoder_ab(lab[:, 1:])], dim=1)


class CMC(Method):
    """Two-view CMC on L and ab with one encoder and one head per view.

    Args:
        backbone: template of both encoders (an RGB backbone; its first conv is rebuilt per view).
        temperature: τ of the cross-view InfoNCE.
        projector: widths of each view's head after its encoder width (default one Linear to 128).
        same_crop: L and ab from the same augmented image (CMC) instead of two independent crops.
        keep_grayscale: keep the augmentation's grayscale step (off by default: it empties ab).
        loss: one of ``causalcl.losses.SIMCLR_LOSSES``' names, on the cross-view candidates.
        loss_options: extra keyword arguments of that loss (e.g. ``{"tau_plus": 0.1}``).
        projector_bn: BatchNorm on the heads' hidden layers (none with the default linear head).
    """

    name = "cmc"
    #: takes them: L from one counterfactual, ab from another (``same_crop`` would share the style in both)
    interventional_refusal = None

    def __init__(self, backbone: nn.Module, *, temperature: float = 0.07, projector: Sequence[int] = (128,),
                 same_crop: bool = True, keep_grayscale: bool = False, loss: str = "infonce",
                 loss_options: dict[str, Any] | None = None, projector_bn: bool = True) -> None:
        super().__init__(backbone)
        self.temperature = check_temperature(temperature)
        self.loss_name = loss
        self.loss_options = variant_options(loss, loss_options, self.temperature, layout="cross_view")
        self.same_crop, self.keep_grayscale = bool(same_crop), bool(keep_grayscale)
        encoder_ab = rebuild_first_conv(copy.deepcopy(backbone), 2)
        encoder_l = rebuild_first_conv(backbone, 1)
        self.backbone = LabEncoder(encoder_l, encoder_ab)
        self.feature_dim = self.backbone.feature_dim
        self.projector_l = MLPHead([self.backbone.dim_l, *projector], hidden_bn=projector_bn)
        self.projector_ab = MLPHead([self.backbone.dim_ab, *projector], hidden_bn=projector_bn)

    def make_views(self, augment: Callable[..., Tensor], images: Tensor,
                   generator: torch.Generator | None = None) -> list[Tensor]:
        """[view for L, view for ab]: one crop twice (``same_crop``) or two independent crops."""
        if not self.keep_grayscale and getattr(augment, "grayscale_p", 0.0) > 0:
            augment = copy.copy(augment)
            augment.grayscale_p = 0.0  # type: ignore[attr-defined]
        first = augment(images, generator)
        return [first, first] if self.same_crop else [first, augment(images, generator)]

    def embed_views(self, views: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Unit projections (z_L of view 1's L channel, z_ab of view 2's ab channels), each (B, D)."""
        self.check_views(views, 2)
        lab1 = normalized_lab(views[0]).to(views[0].dtype)
        lab2 = lab1 if views[1] is views[0] else normalized_lab(views[1]).to(views[1].dtype)
        z_l = self.projector_l(self.backbone.encoder_l(lab1[:, :1]))
        z_ab = self.projector_ab(self.backbone.encoder_ab(lab2[:, 1:]))
        return F.normalize(z_l, dim=1), F.normalize(z_ab, dim=1)

    def forward(self, views: list[Tensor]) -> dict[str, Tensor]:
        z_l, z_ab = self.embed_views(views)
        loss = cross_view_variant_loss(gather(z_l), gather(z_ab), self.loss_name, **self.loss_options)
        return {"loss": loss, "embeddings": [z_l, z_ab]}
