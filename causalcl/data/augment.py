"""Batched SimCLR augmentations: every op acts on the whole batch on its device, no per-image loop.

The pipeline of SimCLR (Chen et al. 2020, https://arxiv.org/abs/2002.05709, appendix A), per sample:

1. random resized crop (area fraction ``s ~ U(scale)``, aspect ``r ~ logU(ratio)``, position uniform;
   10 tries, then the torchvision fallback) and horizontal flip with ``flip_p``, both done by ONE
   ``F.affine_grid`` + ``F.grid_sample`` (bilinear) with a per-sample affine matrix;
2. colour jitter with probability ``jitter_p``: brightness, contrast, saturation, hue with per-sample
   factors ``b, c, s ~ U[1-j, 1+j]``, ``h ~ U[-j_h, j_h]``, applied in a per-sample random order (as
   torchvision's ``ColorJitter``), clamping to [0,1] after each op. Hue is a rotation by ``2 pi h`` of
   the chroma plane (I, Q) of the YIQ colour space -- a linear 3x3 map per sample; it approximates
   torchvision's HSV hue shift (it keeps luma, HSV keeps value);
3. grayscale with ``grayscale_p`` (luma ``0.299 R + 0.587 G + 0.114 B``);
4. gaussian blur with ``blur_p``, ``sigma ~ U(blur_sigma)``, kernel side ``~10%`` of the output (odd,
   >= 3), separable, as a depthwise conv with one kernel per (sample, channel); reflect padding.

Seeded: all random numbers come from the given ``torch.Generator`` (drawn on its device, in a
fixed order), so the same generator state gives the same output.

Note: the crop is resampled bilinearly without an antialiasing prefilter (fine when the output is
about the input size, as for CIFAR-scale data; large downscaling factors alias).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["SimCLRAugment", "gaussian_blur", "rgb_to_grayscale", "yiq_hue_matrix"]

_LUMA = (0.299, 0.587, 0.114)
_RGB2YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64
)
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)


def rgb_to_grayscale(x: Tensor) -> Tensor:
    """Luma of ``(B,3,H,W)`` images, ``(B,1,H,W)``."""
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


_ON_DEVICE: dict[tuple[str, torch.device], Tensor] = {}


def _constant(name: str, device: torch.device) -> Tensor:
    """A module constant on ``device``, copied there once (a copy per call would be a host sync per batch)."""
    key = (name, torch.device(device))
    if key not in _ON_DEVICE:
        _ON_DEVICE[key] = {"yiq2rgb": _YIQ2RGB, "rgb2yiq": _RGB2YIQ}[name].to(device)
    return _ON_DEVICE[key]


def yiq_hue_matrix(hue: Tensor) -> Tensor:
    """Per-sample RGB->RGB matrices ``(B,3,3)`` rotating the YIQ chroma plane by ``2 pi hue``."""
    theta = 2 * math.pi * hue.double()
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.zeros(hue.shape[0], 3, 3, dtype=torch.float64, device=hue.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    yiq2rgb, rgb2yiq = _constant("yiq2rgb", hue.device), _constant("rgb2yiq", hue.device)
    return (yiq2rgb @ rot @ rgb2yiq).float()


def gaussian_blur(x: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Blur each image of ``x`` ``(B,C,H,W)`` with its own isotropic gaussian ``sigma`` ``(B,)``.

    Separable: a horizontal then a vertical depthwise conv over the ``B*C`` channels of the batch
    reshaped to one image (``groups = B*C``), kernel ``exp(-t^2 / 2 sigma^2)`` normalised, reflect padding.
    """
    if kernel_size % 2 != 1 or kernel_size < 1:
        raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
    b, c, h, w = x.shape
    if b == 0:
        return x
    half = kernel_size // 2
    t = torch.arange(kernel_size, device=x.device, dtype=x.dtype) - half
    k = torch.exp(-(t[None] ** 2) / (2 * sigma.to(x.dtype)[:, None] ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, dim=0)  # (B*C, K)
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (half, half, 0, 0), mode="reflect"), k.view(b * c, 1, 1, kernel_size), groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, half, half), mode="reflect"), k.view(b * c, 1, kernel_size, 1), groups=b * c)
    return y.view(b, c, h, w)


class SimCLRAugment:
    """SimCLR's augmentation pipeline for batches of float images (see the module docstring).

    Args:
        image_size: output side ``S``.
        scale, ratio: random-resized-crop ranges (area fraction, aspect ratio w/h).
        flip_p: probability of a horizontal flip.
        jitter: (brightness, contrast, saturation, hue) strengths; jitter_p: probability of jitter.
        grayscale_p: probability of grayscale.
        blur_p: probability of blur (0 for CIFAR-scale images, 0.5 for larger ones); blur_sigma: range.
        blur_kernel: kernel side (default: 10% of ``S``, odd, >= 3).

    Example:
        >>> aug = SimCLRAugment(32)
        >>> v1, v2 = aug.views(torch.rand(8, 3, 32, 32), 2, torch.Generator().manual_seed(0))
        >>> tuple(v1.shape)
        (8, 3, 32, 32)
    """

    def __init__(
        self,
        image_size: int,
        scale: tuple[float, float] = (0.2, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip_p: float = 0.5,
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_p: float = 0.0,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        blur_kernel: int | None = None,
    ) -> None:
        if int(image_size) != image_size or image_size < 1:
            raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < lo <= hi <= 1, got {scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < lo <= hi, got {ratio}")
        for name, p in (
            ("flip_p", flip_p),
            ("jitter_p", jitter_p),
            ("grayscale_p", grayscale_p),
            ("blur_p", blur_p),
        ):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {p}")
        if len(jitter) != 4 or min(jitter) < 0 or jitter[3] > 0.5:
            raise ValueError(f"jitter must be 4 non-negative strengths with hue <= 0.5, got {jitter}")
        if not 0 < blur_sigma[0] <= blur_sigma[1]:
            raise ValueError(f"blur_sigma must satisfy 0 < lo <= hi, got {blur_sigma}")
        self.image_size = int(image_size)
        self.scale, self.ratio = (float(scale[0]), float(scale[1])), (float(ratio[0]), float(ratio[1]))
        self.flip_p, self.jitter, self.jitter_p = (
            float(flip_p),
            tuple(float(j) for j in jitter),
            float(jitter_p),
        )
        self.grayscale_p, self.blur_p, self.blur_sigma = float(grayscale_p), float(blur_p), blur_sigma
        k = blur_kernel if blur_kernel is not None else max(3, int(round(0.1 * image_size)) // 2 * 2 + 1)
        if k % 2 != 1 or k < 1:
            raise ValueError(f"blur_kernel must be odd and positive, got {k}")
        self.blur_kernel = k

    def __repr__(self) -> str:
        return (
            f"SimCLRAugment(image_size={self.image_size}, scale={self.scale}, ratio={self.ratio}, "
            f"flip_p={self.flip_p}, jitter={self.jitter}, jitter_p={self.jitter_p}, "
            f"grayscale_p={self.grayscale_p}, blur_p={self.blur_p}, blur_sigma={self.blur_sigma})"
        )

    # ------------------------------------------------------------------ sampling helpers
    @staticmethod
    def _rand(gen: torch.Generator | None, device: torch.device, *shape: int) -> Tensor:
        src = gen.device if gen is not None else device
        return torch.rand(*shape, generator=gen, device=src).to(device)

    def _crop_theta(
        self, b: int, h: int, w: int, gen: torch.Generator | None, device: torch.device
    ) -> Tensor:
        """Affine matrices ``(B,2,3)`` mapping output to input coordinates (crop + flip)."""
        tries = 10
        lo, hi = self.scale
        area = lo + (hi - lo) * self._rand(gen, device, b, tries)
        lr0, lr1 = math.log(self.ratio[0]), math.log(self.ratio[1])
        ratio = torch.exp(lr0 + (lr1 - lr0) * self._rand(gen, device, b, tries))
        pos = self._rand(gen, device, b, 2)
        flip = self._rand(gen, device, b) < self.flip_p
        cw = torch.sqrt(area * h * w * ratio) / w  # crop width / image width
        ch = torch.sqrt(area * h * w / ratio) / h
        ok = (cw <= 1) & (ch <= 1)
        first = ok.float().argmax(1, keepdim=True)  # first valid try (0 if none)
        cw, ch = cw.gather(1, first)[:, 0], ch.gather(1, first)[:, 0]
        # torchvision's fallback when no try fits: central crop with the ratio clamped into range
        in_ratio = w / h
        if in_ratio < self.ratio[0]:
            fw, fh = 1.0, (w / self.ratio[0]) / h
        elif in_ratio > self.ratio[1]:
            fw, fh = (h * self.ratio[1]) / w, 1.0
        else:
            fw, fh = 1.0, 1.0
        any_ok = ok.any(1)
        cw = torch.where(any_ok, cw, torch.full_like(cw, fw))
        ch = torch.where(any_ok, ch, torch.full_like(ch, fh))
        cx = (1 - cw) * pos[:, 0] + cw / 2  # crop centre in [0, 1]
        cy = (1 - ch) * pos[:, 1] + ch / 2
        cx = torch.where(any_ok, cx, torch.full_like(cx, 0.5))
        cy = torch.where(any_ok, cy, torch.full_like(cy, 0.5))
        theta = torch.zeros(b, 2, 3, device=device)
        theta[:, 0, 0] = torch.where(flip, -cw, cw)
        theta[:, 0, 2] = 2 * cx - 1
        theta[:, 1, 1] = ch
        theta[:, 1, 2] = 2 * cy - 1
        return theta

    # ------------------------------------------------------------------ colour ops
    @staticmethod
    def _brightness(x: Tensor, f: Tensor) -> Tensor:
        return (x * f.view(-1, 1, 1, 1)).clamp_(0, 1)

    @staticmethod
    def _contrast(x: Tensor, f: Tensor) -> Tensor:
        mean = rgb_to_grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
        f = f.view(-1, 1, 1, 1)
        return (f * x + (1 - f) * mean).clamp_(0, 1)

    @staticmethod
    def _saturation(x: Tensor, f: Tensor) -> Tensor:
        f = f.view(-1, 1, 1, 1)
        return (f * x + (1 - f) * rgb_to_grayscale(x)).clamp_(0, 1)

    @staticmethod
    def _hue(x: Tensor, h: Tensor) -> Tensor:
        m = yiq_hue_matrix(h)
        b, c, hh, ww = x.shape
        return torch.bmm(m, x.reshape(b, c, hh * ww)).view(b, c, hh, ww).clamp_(0, 1)

    def _jitter_constants(self, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(lo, hi) of the four factors, which ops are active, and the luma rows, on ``device``: made once."""
        cache = self.__dict__.setdefault("_jitter_cache", {})  # shared by copies (CMC, ReSSL): keyed by the strengths
        key = (torch.device(device), dtype, tuple(self.jitter))
        if key not in cache:
            j = self.jitter
            bounds = torch.tensor([[max(0.0, 1 - j[0]), max(0.0, 1 - j[1]), max(0.0, 1 - j[2]), -j[3]],
                                   [1 + j[0], 1 + j[1], 1 + j[2], j[3]]])
            active = torch.tensor([v > 0 for v in j])
            luma = torch.tensor(_LUMA, dtype=dtype).expand(3, 3)  # every row: the luma weights
            cache[key] = (bounds[0].to(device), bounds[1].to(device), active.to(device), luma.to(device))
        return cache[key]

    def _jitter(self, x: Tensor, gen: torch.Generator | None) -> Tensor:
        """Colour jitter without a host synchronisation: in each of the 4 slots, every sample gets one of the ops
        (its own in its random order), written as a per-sample 3x3 colour map plus an offset, ``M x + c``:
        brightness ``f I``; contrast ``f I`` and ``c = (1 - f) mean(luma(x))``; saturation ``f I + (1 - f) 1 lumaᵀ``;
        hue the YIQ rotation; then clamped to [0, 1] as torchvision clamps after each op. Samples without jitter (or
        whose op of the slot has strength 0) keep their pixels exactly. The same random draws, in the same order,
        as the earlier per-op version (a boolean selection per op: 16 host syncs per view on a GPU); its results
        agree to float rounding (saturation's luma sum is now a matrix product)."""
        b, device = x.shape[0], x.device
        apply = self._rand(gen, device, b) < self.jitter_p
        u = self._rand(gen, device, b, 4)
        order = torch.argsort(self._rand(gen, device, b, 4), dim=1)  # per-sample op order
        lo, hi, active, luma = self._jitter_constants(device, x.dtype)
        factors = lo + (hi - lo) * u  # (B, 4): brightness, contrast, saturation, hue
        eye = torch.eye(3, dtype=x.dtype, device=device)
        flat = x.reshape(b, 3, -1)
        for slot in range(4):
            op = order[:, slot]
            on = (apply & active[op]).view(b, 1, 1)
            f = factors.gather(1, op[:, None]).to(x.dtype).view(b, 1, 1)
            scaled = f * eye  # brightness and contrast
            maps = torch.where((op == 2).view(b, 1, 1), scaled + (1 - f) * luma, scaled)
            maps = torch.where((op == 3).view(b, 1, 1), yiq_hue_matrix(f.view(b)).to(x.dtype), maps)
            mean = (flat * luma[0].view(1, 3, 1)).sum(1).mean(1).view(b, 1, 1)  # mean luma per image
            offset = torch.where((op == 1).view(b, 1, 1), (1 - f) * mean, torch.zeros_like(mean))
            flat = torch.where(on, (torch.bmm(maps, flat) + offset).clamp_(0, 1), flat)
        return flat.view_as(x)

    # ------------------------------------------------------------------ public API
    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Augment a batch: float ``(B,3,H,W)`` in [0,1] (uint8 is scaled by 1/255) -> ``(B,3,S,S)``."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        elif not images.is_floating_point():
            raise ValueError(f"expected float or uint8 images, got {images.dtype}")
        b, _, h, w = images.shape
        device = images.device
        s = self.image_size
        theta = self._crop_theta(b, h, w, generator, device).to(images.dtype)
        grid = F.affine_grid(theta, [b, 3, s, s], align_corners=False)
        x = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
        x = self._jitter(x, generator)
        gray = self._rand(generator, device, b) < self.grayscale_p
        x = torch.where(gray.view(-1, 1, 1, 1), rgb_to_grayscale(x).expand_as(x), x)
        blur = self._rand(generator, device, b) < self.blur_p
        lo, hi = self.blur_sigma
        sigma = lo + (hi - lo) * self._rand(generator, device, b)
        if self.blur_p > 0:
            sel = blur.nonzero(as_tuple=True)[0]
            if sel.numel():
                x = x.clone()
                x[sel] = gaussian_blur(x[sel], sigma[sel], self.blur_kernel)
        return x.clamp_(0, 1)

    def views(
        self, images: Tensor, n_views: int = 2, generator: torch.Generator | None = None
    ) -> list[Tensor]:
        """``n_views`` independent augmentations of the same batch."""
        if n_views < 1:
            raise ValueError(f"n_views must be >= 1, got {n_views}")
        return [self(images, generator) for _ in range(n_views)]
