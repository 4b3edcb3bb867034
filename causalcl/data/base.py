"""In-memory image datasets: the common tensor dataset and the SCM-backed (embedded) dataset.

Every dataset in :mod:`causalcl.data` keeps all images in one uint8 tensor ``(N, 3, H, W)`` so that
the trainer can draw a batch with one indexing op (:meth:`TensorImageDataset.get_batch`) instead of
going through a ``DataLoader`` of per-item calls.
"""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..causal.scm import SCM, Seed, derive_rng
from .cache import cached_arrays

__all__ = ["SPLITS", "check_split", "TensorImageDataset", "SCMImageDataset", "NOISE_CHUNK"]

SPLITS = ("train", "probe", "test")
#: noise is drawn in chunks of this many samples, each chunk seeded by (seed, split, chunk index), so
#: sample ``i`` does not depend on the dataset size ``n``.
NOISE_CHUNK = 1024


def check_split(split: str, valid: Sequence[str] = SPLITS) -> str:
    """Return ``split`` or raise ``ValueError`` naming the valid splits."""
    if split not in valid:
        raise ValueError(f"unknown split {split!r}; valid splits: {list(valid)}")
    return split


def _as_index_tensor(indices: Any) -> Tensor:
    idx = torch.as_tensor(indices).cpu()
    if idx.ndim != 1 or idx.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise ValueError(
            f"indices must be a 1-D integer tensor, got shape {tuple(idx.shape)} dtype {idx.dtype}"
        )
    return idx.long()


class TensorImageDataset(Dataset):
    """A labelled image dataset held in memory.

    A clip dataset (class attribute ``video = True``, e.g. ``moving_shapes``) holds ``T`` frames per item:
    images uint8 ``(N, T, 3, H, W)``, masks bool ``(N, T, H, W)``, item images float ``(T, 3, H, W)``.

    Attributes:
        images: uint8 ``(N, 3, H, W)`` (``(N, T, 3, H, W)`` for clips).
        labels: int64 ``(N,)`` in ``[0, num_classes)``.
        masks: bool ``(N, H, W)`` foreground masks, or ``None``.
        latents: dict name -> ``(N,)`` tensor (int64 or float32) of ground-truth factors, or ``None``.
        class_names: one name per class; ``num_classes = len(class_names)``.
        split: the split it was built for.

    Items (``dataset[i]``) are dicts ``{"image": float (3,H,W) in [0,1], "label": int}`` plus ``"mask"``
    (bool (H,W)) and ``"latents"`` (dict of python numbers) when available.

    Raises:
        ValueError: empty dataset, wrong dtype/channel count, labels outside ``[0, C)``, masks or
            latents of the wrong shape.
    """

    #: items are clips ``(T, 3, H, W)`` rather than images ``(3, H, W)``
    video: bool = False

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        class_names: Sequence[str],
        masks: Tensor | None = None,
        latents: Mapping[str, Tensor] | None = None,
        split: str = "train",
    ) -> None:
        if images.ndim != (5 if self.video else 4) or images.shape[0] == 0:
            layout = "(N>0, T, 3, H, W)" if self.video else "(N>0, 3, H, W)"
            raise ValueError(f"empty dataset or bad image tensor: expected {layout}, got {tuple(images.shape)}")
        if images.shape[-3] != 3:
            raise ValueError(f"images must have 3 channels (RGB), got {images.shape[-3]}")
        if images.dtype != torch.uint8:
            raise ValueError(f"images must be uint8, got {images.dtype}")
        n = images.shape[0]
        labels = torch.as_tensor(labels).long()
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
        if not class_names:
            raise ValueError("class_names is empty")
        if labels.min() < 0 or labels.max() >= len(class_names):
            raise ValueError(
                f"labels must lie in [0, {len(class_names)}), got range "
                f"[{int(labels.min())}, {int(labels.max())}]"
            )
        if masks is not None:
            masks = torch.as_tensor(masks).bool()
            want = (n, *images.shape[1:-3], *images.shape[-2:])
            if masks.shape != want:
                raise ValueError(f"masks must have shape {want}, got {tuple(masks.shape)}")
        if latents is not None:
            for k, v in latents.items():
                if v.shape != (n,):
                    raise ValueError(f"latent {k!r} must have shape ({n},), got {tuple(v.shape)}")
        self.images = images.contiguous()
        self.labels = labels
        self.masks = masks
        self.latents = dict(latents) if latents is not None else None
        self.class_names = list(class_names)
        self.split = split

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        """Height of the images (all embedded datasets are square)."""
        return int(self.images.shape[-2])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def _index(self, i: int) -> int:
        i = int(i)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for dataset of size {n}")
        return i % n

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = self._index(i)
        item: dict[str, Any] = {"image": self.images[i].float() / 255.0, "label": int(self.labels[i])}
        if self.masks is not None:
            item["mask"] = self.masks[i]
        if self.latents is not None:
            item["latents"] = {k: v[i].item() for k, v in self.latents.items()}
        return item

    def get_batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        """Images float ``(B,3,H,W)`` (clips: ``(B,T,3,H,W)``) in [0,1] and labels long ``(B,)`` for a 1-D index
        tensor."""
        idx = _as_index_tensor(indices)
        return self.images[idx].float().div_(255.0), self.labels[idx]

    def __repr__(self) -> str:
        n, h, w = self.images.shape[0], *self.images.shape[-2:]
        frames = f", frames={self.images.shape[1]}" if self.video else ""
        extra = frames + (", masks" if self.masks is not None else "") + (
            ", latents" if self.latents is not None else ""
        )
        name = type(self).__name__
        return f"{name}(split={self.split!r}, n={n}, size={h}x{w}, classes={self.num_classes}{extra})"


def _to_numpy(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    return value


class SCMImageDataset(TensorImageDataset, metaclass=ABCMeta):
    """A dataset generated from an SCM plus a renderer, with true interventions.

    Subclasses build the base SCM (:meth:`build_scm`), sample the renderer's own exogenous noise
    (:meth:`sample_render_noise`: texture phases, crop offsets...) and render a batch of variable
    values (:meth:`render`). This class draws the noise deterministically per
    ``(seed, split, index)``, caches the rendered arrays (:mod:`causalcl.data.cache`), and re-renders
    the stored noise under ``do(...)`` in :meth:`intervene` / :meth:`intervene_batch`.

    Attributes:
        scm: the SCM of this split (for ``probe``/``test`` the intervened one).
        noise: the exogenous noise of every SCM variable, numpy arrays with leading dim ``N``.
        render_noise: the renderer's exogenous noise, numpy arrays with leading dim ``N``.
    """

    name: str = "scm"
    label_var: str = "cls"
    #: the latents that wrap around, name -> period (an angle: 2π, a hue: 1): the identifiability read-out
    #: regresses their point on the unit circle instead of the raw value
    latent_periods: dict[str, float] = {}
    #: circular latents identifiable only up to a symmetry that depends on a categorical latent: name -> (that
    #: latent, {level: order}) (a square's rotation repeats every quarter turn: order 4; 0: invisible)
    latent_symmetries: dict[str, tuple[str, dict[int, int]]] = {}
    split_codes = {"train": 0, "probe": 1, "test": 2}
    render_batch: int = 512

    # -- to implement -----------------------------------------------------------------------
    @abstractmethod
    def build_scm(self) -> SCM:
        """The SCM of the training environment."""

    @abstractmethod
    def split_scm(self, scm: SCM, split: str) -> SCM:
        """The SCM of ``split`` (``probe``/``test``: the confounding edge cut by an intervention)."""

    def sample_render_noise(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        return {}

    @abstractmethod
    def render(
        self, values: Mapping[str, np.ndarray], render_noise: Mapping[str, np.ndarray]
    ) -> tuple[Tensor, Tensor]:
        """Return images float ``(B,3,H,W)`` in [0,1] and masks bool ``(B,H,W)`` (a clip dataset:
        ``(B,T,3,H,W)`` and ``(B,T,H,W)``)."""

    @abstractmethod
    def generation_params(self) -> dict[str, Any]:
        """Every parameter the rendered arrays depend on (the cache key)."""

    # -- construction -------------------------------------------------------------------------
    def _generate(
        self, split: str, n: int, seed: int, class_names: Sequence[str], cache: bool, cache_root: Any
    ) -> None:
        check_split(split)
        if int(n) != n or n <= 0:
            raise ValueError(f"empty dataset: n must be a positive integer, got {n!r}")
        if int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed, self.n = int(seed), int(n)
        self.base_scm = self.build_scm()
        self.scm = self.split_scm(self.base_scm, split)
        key = (self.seed, self.split_codes[split])
        self.noise = _chunked(lambda m, s: self.scm.sample_noise(m, s), n, key)
        self.render_noise = _chunked(
            lambda m, s: self.sample_render_noise(derive_rng(s, "render"), m), n, key
        )
        values = self.scm.evaluate(self.noise, n=n)
        labels = np.asarray(values[self.label_var], dtype=np.int64)

        def build() -> dict[str, np.ndarray]:
            imgs, masks = [], []
            for lo in range(0, n, self.render_batch):
                sl = slice(lo, min(n, lo + self.render_batch))
                im, ma = self.render(_slice(values, sl), _slice(self.render_noise, sl))
                imgs.append(_quantise(im))
                masks.append(ma)
            return {"images": torch.cat(imgs).numpy(), "masks": torch.cat(masks).numpy(), "labels": labels}

        params = {**self.generation_params(), "split": split, "n": n, "seed": self.seed}
        arrays = cached_arrays(self.name, params, build, root=cache_root, enabled=cache)
        if not np.array_equal(arrays["labels"], labels):  # stale entry: never trust it
            arrays = build()
        latents = {k: _latent_tensor(v) for k, v in values.items()}
        super().__init__(
            torch.from_numpy(arrays["images"]),
            torch.from_numpy(labels),
            class_names,
            masks=torch.from_numpy(arrays["masks"]),
            latents=latents,
            split=split,
        )

    # -- interventions ------------------------------------------------------------------------
    def _values(self, idx: np.ndarray, assignments: Mapping[str, Any], seed: Seed) -> dict[str, np.ndarray]:
        fixed: dict[str, Any] = {}
        for k, v in assignments.items():
            v = _to_numpy(v)
            if callable(v):
                v = np.asarray(v(derive_rng(seed, f"intervene({k})"), len(idx)))
            fixed[k] = v
        noise = _slice(self.noise, idx)
        return self.scm.evaluate(noise, interventions=fixed or None, n=len(idx))

    def intervene_batch(
        self, indices: Any, seed: Seed = 0, return_masks: bool = False, **assignments: Any
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Render samples ``indices`` from their stored noise under ``do(**assignments)``.

        Each assignment is a constant, a per-sample array/tensor of length ``B``, or a callable
        ``(rng, B) -> array`` drawn with ``seed``. Returns images float ``(B,3,H,W)`` in [0,1]
        (quantised to uint8 levels like the stored images), plus masks if ``return_masks``.
        With no assignment the result equals ``get_batch(indices)[0]``.
        """
        idx = _as_index_tensor(indices).numpy() % len(self)
        values = self._values(idx, assignments, seed)
        imgs, masks = [], []
        for lo in range(0, len(idx), self.render_batch):
            sl = slice(lo, lo + self.render_batch)
            im, ma = self.render(_slice(values, sl), _slice(_slice(self.render_noise, idx), sl))
            imgs.append(_quantise(im).float().div_(255.0))
            masks.append(ma)
        images = torch.cat(imgs)
        return (images, torch.cat(masks)) if return_masks else images

    def intervene(self, index: int, **assignments: Any) -> dict[str, Any]:
        """The item ``index`` re-rendered from the same exogenous noise under ``do(**assignments)``.

        Example: ``ds.intervene(i, bg_texture=3)`` keeps the label, the mask and every other latent
        (those that do not descend from ``bg_texture``) and changes only the background.
        """
        i = self._index(index)
        values = self._values(np.array([i]), assignments, 0)
        im, ma = self.render(values, _slice(self.render_noise, np.array([i])))
        return {
            "image": _quantise(im)[0].float() / 255.0,
            "mask": ma[0],
            "label": int(values[self.label_var][0]),
            "latents": {k: _latent_tensor(v)[0].item() for k, v in values.items()},
        }


def _chunked(
    sampler: Callable[[int, Seed], dict[str, np.ndarray]], n: int, key: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """Draw ``n`` samples in fixed chunks of ``NOISE_CHUNK``, chunk ``c`` seeded by ``(*key, c)``."""
    parts = [sampler(NOISE_CHUNK, (*key, c)) for c in range(math.ceil(n / NOISE_CHUNK))]
    return {k: np.concatenate([p[k] for p in parts])[:n] for k in parts[0]} if parts else {}


def _slice(arrays: Mapping[str, np.ndarray], sl: slice | np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[sl] for k, v in arrays.items()}


def _quantise(images: Tensor) -> Tensor:
    return images.clamp(0, 1).mul(255.0).round_().to(torch.uint8)


def _latent_tensor(v: np.ndarray) -> Tensor:
    v = np.asarray(v)
    if np.issubdtype(v.dtype, np.integer) or v.dtype == np.bool_:
        return torch.from_numpy(v.astype(np.int64))
    return torch.from_numpy(v.astype(np.float32))
