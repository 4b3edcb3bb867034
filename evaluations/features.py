"""Run a frozen encoder over a data set and collect its features.

``extract_features`` accepts

* a map-style ``torch.utils.data.Dataset`` whose items are dicts ``{"image": (C,H,W) float, "label": int,
  "mask": ..., "latents": {name: scalar}, ...}`` or tuples ``(image, label, ...)`` or bare image tensors,
* a ``DataLoader`` yielding batches of the same kinds (dict, tuple/list, or an image tensor),
* an (N, C, H, W) float tensor or numpy array of images.

The encoder is put in eval mode and run under ``torch.inference_mode``; every submodule gets its previous
train/eval flag back afterwards. A 4-D output (N, D, h, w) is global-average-pooled to (N, D).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset
from tqdm.auto import tqdm

from ._validate import check_int

__all__ = ["Features", "extract_features"]

_EXTRA_KEYS = ("mask", "latents")


@dataclass
class Features:
    """Extracted features: ``x`` (N, D) float32 CPU, ``y`` (N,) long or None, ``extras`` stacked extra fields.

    ``extras`` holds ``"mask"`` (a stacked tensor) and ``"latents"`` (a dict name -> (N,) tensor) when the
    data items carry them.
    """

    x: torch.Tensor
    y: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])


def _split_batch(batch: Any) -> tuple[torch.Tensor, Any, dict[str, Any]]:
    """Return (images, labels or None, extras) from one collated batch."""
    if isinstance(batch, dict):
        if "image" not in batch:
            raise ValueError(f"data: dict items must have an 'image' key, got keys {sorted(batch)}")
        extras = {key: batch[key] for key in _EXTRA_KEYS if key in batch}
        return batch["image"], batch.get("label"), extras
    if isinstance(batch, list | tuple):
        if len(batch) == 0:
            raise ValueError("data: got an empty tuple item; expected (image, label) or (image,)")
        return batch[0], (batch[1] if len(batch) > 1 else None), {}
    if isinstance(batch, torch.Tensor | np.ndarray):
        return batch, None, {}
    raise ValueError(
        f"data: expected items that are dicts with an 'image' key, (image, label) tuples or image tensors, "
        f"got {type(batch).__name__}"
    )


def _as_images(images: Any) -> torch.Tensor:
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"data: expected image tensors, got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(
            f"data: expected image batches of shape (N, C, H, W), got shape {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise ValueError(
            f"data: expected floating-point images (e.g. in [0, 1]), got dtype {images.dtype}; "
            "convert with images.float() / 255"
        )
    return images


def _batches(data: Any, batch_size: int) -> tuple[Iterable[Any], int | None]:
    """An iterable of batches and its length (None if unknown)."""
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        imgs = _as_images(data)
        if imgs.shape[0] == 0:
            raise ValueError("data: expected at least one image, got an empty tensor")
        chunks = [imgs[i : i + batch_size] for i in range(0, imgs.shape[0], batch_size)]
        return chunks, len(chunks)
    if isinstance(data, str | bytes | dict):
        raise ValueError(
            f"data: expected a Dataset, a DataLoader or an image tensor, got {type(data).__name__}"
        )
    if isinstance(data, IterableDataset):
        return DataLoader(data, batch_size=batch_size, num_workers=0), None
    if isinstance(data, DataLoader):
        try:
            n = len(data)
        except TypeError:
            n = None
        return data, n
    if isinstance(data, Dataset) or (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        if len(data) == 0:
            raise ValueError("data: the dataset is empty (len(data) == 0)")
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0)
        return loader, len(loader)
    raise ValueError(
        f"data: expected a torch Dataset, a DataLoader or an (N, C, H, W) tensor, got {type(data).__name__}"
    )


def _encoder_dtype(encoder: Callable[..., Any]) -> torch.dtype | None:
    """The floating dtype of an ``nn.Module``'s parameters (images are fed in it), or None (any callable)."""
    if isinstance(encoder, nn.Module):
        for tensor in encoder.parameters():
            if tensor.is_floating_point():
                return tensor.dtype
    return None


def _encoder_device(encoder: Callable[..., Any]) -> torch.device:
    if isinstance(encoder, nn.Module):
        for tensor in encoder.parameters():
            return tensor.device
        for tensor in encoder.buffers():
            return tensor.device
    return torch.device("cpu")


def _pool(out: Any, first: bool) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise ValueError(
            f"encoder: expected the encoder to return a tensor, got {type(out).__name__}; wrap it so that it "
            "returns the representation tensor"
        )
    if out.dim() == 4:
        out = out.mean(dim=(2, 3))
    elif out.dim() != 2:
        raise ValueError(
            f"encoder: expected a (N, D) or (N, D, h, w) output, got shape {tuple(out.shape)}"
            + (" on the first batch" if first else "")
        )
    return out.float().cpu()


def _restore_modes(modes: list[tuple[nn.Module, bool]]) -> None:
    for module, training in modes:
        module.training = training


def _stack_extras(parts: list[dict[str, Any]]) -> dict[str, Any]:
    if not parts:
        return {}
    extras: dict[str, Any] = {}
    for key in parts[0]:
        values = [p[key] for p in parts if key in p]
        if len(values) != len(parts):
            continue  # only some batches carried this key: drop it rather than misalign rows
        if isinstance(values[0], dict):
            names = values[0].keys()
            extras[key] = {
                name: torch.cat([torch.atleast_1d(torch.as_tensor(v[name])) for v in values])
                for name in names
            }
        else:
            extras[key] = torch.cat([torch.as_tensor(v) for v in values])
    return extras


def _iter_with_progress(batches: Iterable[Any], total: int | None) -> Iterator[Any]:
    return iter(tqdm(batches, total=total, desc="extract features", unit="batch", disable=None, leave=False))


def extract_features(
    encoder: Callable[..., Any],
    data: Any,
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> Features:
    """Encode every image of ``data`` with ``encoder`` (frozen) and return the stacked features.

    Args:
        encoder: an ``nn.Module`` (or any callable) mapping (B, C, H, W) images to (B, D) or (B, D, h, w).
        data: Dataset, DataLoader, or (N, C, H, W) float tensor / numpy array (see the module docstring).
        batch_size: images per forward pass (ignored for a DataLoader, which brings its own batching).
        device: where to run the encoder; default: the device of the encoder's parameters (CPU if none).

    Returns:
        :class:`Features` with ``x`` (N, D) float32 on the CPU, ``y`` (N,) long or None if the data carry no
        labels, and ``extras`` with the stacked ``"mask"`` and ``"latents"`` fields when present.
    """
    if not callable(encoder):
        raise ValueError(f"encoder: expected an nn.Module or callable, got {type(encoder).__name__}")
    batch_size = check_int(batch_size, "batch_size", low=1)
    dev = torch.device(device) if device is not None else _encoder_device(encoder)
    dtype = _encoder_dtype(encoder)  # fp16 / bf16 / fp64 images meet a float32 model in its own dtype
    batches, total = _batches(data, batch_size)

    modes = [(m, m.training) for m in encoder.modules()] if isinstance(encoder, nn.Module) else []
    if isinstance(encoder, nn.Module):
        encoder.eval()
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    n_unlabelled = 0
    extra_parts: list[dict[str, Any]] = []
    try:
        with torch.inference_mode():
            for i, batch in enumerate(_iter_with_progress(batches, total)):
                images, labels, extras = _split_batch(batch)
                images = _as_images(images)
                if images.shape[0] == 0:
                    continue
                images = images.to(dev, dtype=dtype, non_blocking=True)
                try:
                    raw = encoder(images)
                except RuntimeError as err:
                    if i > 0 or isinstance(err, torch.OutOfMemoryError):
                        raise
                    # The first batch failing is almost always a shape/channel/dtype mismatch with the data.
                    raise ValueError(
                        f"data: the encoder failed on the first batch of images of shape "
                        f"{tuple(images.shape)} and dtype {images.dtype} (check the channel count, image size "
                        f"and dtype against the encoder): {' '.join(str(err).split())}"
                    ) from err
                out = _pool(raw, first=i == 0)
                if out.shape[0] != images.shape[0]:
                    raise ValueError(
                        f"encoder: returned {out.shape[0]} rows for a batch of {images.shape[0]} images"
                    )
                xs.append(out)
                if labels is None:
                    n_unlabelled += out.shape[0]
                else:
                    lab = torch.as_tensor(labels).reshape(-1)
                    if lab.numel() != out.shape[0]:
                        raise ValueError(
                            f"data: a batch has {images.shape[0]} images but {lab.numel()} labels"
                        )
                    ys.append(lab.to(torch.long).cpu())
                if extras:
                    extra_parts.append(extras)
    finally:
        _restore_modes(modes)

    if not xs:
        raise ValueError("data: no images were found (the data source yielded no batches)")
    x = torch.cat(xs)
    if ys and n_unlabelled:
        raise ValueError(f"data: {n_unlabelled} of {x.shape[0]} items have no label; expected all or none")
    y = torch.cat(ys) if ys else None
    if not bool(torch.isfinite(x).all()):
        warnings.warn(
            f"extract_features: the encoder produced {int((~torch.isfinite(x)).any(1).sum())} feature rows "
            "with NaN/inf values",
            RuntimeWarning,
            stacklevel=2,
        )
    return Features(x=x, y=y, extras=_stack_extras(extra_parts) if len(extra_parts) == len(xs) else {})
