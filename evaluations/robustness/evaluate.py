"""Top-1 error of a classifier under synthetic corruptions and renditions.

``corruption_errors`` corrupts clean images on the fly (:func:`.corruptions.corrupt`, seeded per image, so the
numbers do not depend on ``batch_size``) and reports a corruption x severity table of top-1 error fractions.
Results are labelled "synthetic corruptions": they are generated in memory without ImageNet-C's JPEG re-save
and with different random streams, so they are never "ImageNet-C" numbers. mCE and relative mCE
(Hendrycks & Dietterich, ICLR 2019) are filled in only for the ImageNet preset with all 15 benchmark
corruptions at severities 1-5; otherwise use ``mean_error`` (unnormalised, as AugMix reports CIFAR-10-C).
For the real ImageNet-C / CIFAR-10-C / ImageNet-R files, use the readers with :func:`top1_error`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm.auto import tqdm

from .._validate import as_labels, check_int
from ._batch import check_images, check_name, check_severity, resolve_preset, to_planes
from .alexnet import ALEXNET_ERRORS
from .corruptions import corrupt
from .metrics import mce as _mce
from .metrics import relative_mce as _relative_mce
from .params import BENCHMARK_CORRUPTIONS, CORRUPTIONS, GROUPS
from .render import RENDITIONS, render

__all__ = ["CorruptionResult", "corruption_errors", "top1_error"]

SYNTHETIC_LABEL = "synthetic corruptions"


@dataclass
class CorruptionResult:
    """Errors of one model under synthetic corruptions.

    ``table``: DataFrame, index = corruption, columns = severity, values = top-1 error fractions.
    ``mean_error``: mean of the table over the benchmark corruptions present (over all rows if none is).
    ``mce`` / ``relative_mce``: in %, only for the ImageNet preset with all 15 benchmark corruptions at
    severities 1-5, else None. ``renditions``: style -> error fraction when requested.
    """

    table: pd.DataFrame
    clean_error: float
    mean_error: float
    preset: str
    n_images: int
    mce: float | None = None
    relative_mce: float | None = None
    renditions: dict[str, float] | None = None
    label: str = SYNTHETIC_LABEL
    seed: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``table`` as {corruption: {severity: error}})."""
        return {
            "label": self.label,
            "preset": self.preset,
            "n_images": self.n_images,
            "seed": self.seed,
            "clean_error": self.clean_error,
            "mean_error": self.mean_error,
            "mce": self.mce,
            "relative_mce": self.relative_mce,
            "table": {str(c): {str(s): float(v) for s, v in row.items()} for c, row in self.table.iterrows()},
            "renditions": self.renditions,
        }

    def plot(self) -> Figure:
        """Error vs severity, one panel per corruption group present, the clean error dashed; renditions as
        bars in a last panel when present. Returns a matplotlib ``Figure`` (no pyplot state involved)."""
        groups = [(g, [c for c in names if c in self.table.index]) for g, names in GROUPS.items()]
        groups = [(g, names) for g, names in groups if names]
        others = [c for c in self.table.index if not any(c in names for _, names in groups)]
        if others:
            groups.append(("other", others))
        panels = len(groups) + (1 if self.renditions else 0)
        fig = Figure(figsize=(3.2 * panels, 3.2), layout="constrained")
        axes = fig.subplots(1, panels, sharey=True, squeeze=False)[0]
        sev = [int(s) for s in self.table.columns]
        for ax, (group, names) in zip(axes, groups, strict=False):
            for name in names:
                ax.plot(sev, self.table.loc[name].to_numpy(dtype=float), marker="o", label=name)
            ax.axhline(self.clean_error, color="k", linestyle="--", linewidth=1, label="clean")
            ax.set_title(group)
            ax.set_xlabel("severity")
            ax.set_xticks(sev)
            ax.set_ylim(0, 1)
            ax.legend(fontsize=6)
        if self.renditions:
            ax = axes[-1]
            styles = list(self.renditions)
            ax.bar(range(len(styles)), [self.renditions[s] for s in styles], color="tab:purple")
            ax.set_xticks(range(len(styles)), styles, rotation=30, fontsize=7)
            ax.axhline(self.clean_error, color="k", linestyle="--", linewidth=1)
            ax.set_title("renditions")
        axes[0].set_ylabel("top-1 error")
        fig.suptitle(f"{self.label} ({self.preset} preset)", fontsize=9)
        return fig


class _Source:
    """Uniform batched access to ``(images, labels)`` tuples or map-style datasets of dicts / tuples."""

    def __init__(self, data: Any) -> None:
        if isinstance(data, tuple | list) and len(data) == 2 and isinstance(data[0], torch.Tensor | np.ndarray) \
                and getattr(data[0], "ndim", 0) == 4:
            images, labels = data
            if isinstance(images, np.ndarray):
                planes, _ = to_planes(images, "data images")
                images = torch.from_numpy(planes)
            if not isinstance(images, torch.Tensor):
                raise ValueError(
                    f"data: expected (images, labels) with images a float tensor (N, 3, H, W), got "
                    f"{type(images).__name__}"
                )
            check_images(images, "data images")  # every image: dtype, layout, channels, size, finite, in [0, 1]
            self.images: torch.Tensor | None = images.detach()
            self.labels = as_labels(labels, "data labels", n=int(images.shape[0]))
            self.dataset = None
            self.n = int(images.shape[0])
        elif hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, str | bytes):
            self.images = None
            self.dataset = data
            self.n = len(data)
            if self.n == 0:
                raise ValueError("data: the dataset is empty")
        else:
            raise ValueError(
                "data: expected an (images, labels) tuple or a map-style dataset of {'image', 'label'} dicts, got "
                f"{type(data).__name__}"
            )
        if self.n == 0:
            raise ValueError("data: expected at least one image")

    def _item(self, i: int) -> tuple[torch.Tensor, int]:
        item = self.dataset[i]  # type: ignore[index]
        if isinstance(item, dict):
            if "image" not in item or "label" not in item:
                raise ValueError(f"data: dict items need 'image' and 'label' keys, got {sorted(item)}")
            img, lab = item["image"], item["label"]
        elif isinstance(item, tuple | list) and len(item) >= 2:
            img, lab = item[0], item[1]
        else:
            raise ValueError(f"data: items must be {{'image', 'label'}} dicts or (image, label) tuples, got "
                             f"{type(item).__name__}")
        if isinstance(img, np.ndarray):
            img = torch.from_numpy(img)
        if not isinstance(img, torch.Tensor):
            raise ValueError(f"data: item images must be tensors (3, H, W), got {type(img).__name__}")
        return img, int(lab)

    def batches(self, batch_size: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        for start in range(0, self.n, batch_size):
            stop = min(self.n, start + batch_size)
            if self.images is not None:
                yield start, self.images[start:stop], self.labels[start:stop]
            else:
                items = [self._item(i) for i in range(start, stop)]
                imgs = torch.stack([im for im, _ in items])
                check_images(imgs, "data images", offset=start)  # dataset items are checked as they are read
                labs = as_labels(torch.tensor([lab for _, lab in items]), "data labels")
                yield start, imgs, labs

    def image_size(self) -> tuple[int, int]:
        _, imgs, _ = next(self.batches(1))
        to_planes(imgs, "data images")
        return int(imgs.shape[-2]), int(imgs.shape[-1])


def _model_device(model: nn.Module, device: Any) -> torch.device:
    if device is not None:
        return torch.device(device)
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _model_dtype(model: nn.Module) -> torch.dtype:
    """The floating dtype of the model's parameters (float32 when it has none): images are fed in it."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _count_wrong(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, device: torch.device,
                 logit_mask: torch.Tensor | None) -> int:
    logits = model(images.to(device, _model_dtype(model)))
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != images.shape[0]:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"model: expected logits of shape (N, num_classes) for N={images.shape[0]}, got {shape}")
    if logit_mask is not None:
        if logit_mask.numel() != logits.shape[1]:
            raise ValueError(f"logit_mask: expected one entry per logit ({logits.shape[1]}), got {logit_mask.numel()}")
        logits = logits[:, logit_mask.to(logits.device)]
    n_classes = logits.shape[1]
    top = int(labels.max())
    if top >= n_classes:
        raise ValueError(f"data labels: class labels must lie in [0, {n_classes}) — the model outputs {n_classes} "
                         f"{'kept ' if logit_mask is not None else ''}logits — found {top}")
    pred = logits.argmax(dim=1).cpu()
    return int((pred != labels).sum())


class _EvalMode:
    """Context manager: eval mode and inference mode, every submodule's train flag restored afterwards."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.flags = [(m, m.training) for m in model.modules()]

    def __enter__(self) -> None:
        self.model.eval()
        self._inf = torch.inference_mode()
        self._inf.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._inf.__exit__(*exc)
        for m, flag in self.flags:
            m.training = flag


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module classifier (images -> logits), got {type(model).__name__}")
    return model


def top1_error(model: nn.Module, data: Any, *, batch_size: int = 256, device: Any = None,
               logit_mask: Any = None, progress: bool = False) -> float:
    """Top-1 error fraction of ``model`` on ``data`` (an (images, labels) tuple or a dataset of dicts).

    ``logit_mask``: optional boolean mask over the logits (e.g. :func:`.readers.imagenet_r_logit_mask`): the
    prediction is the argmax over the kept logits, and labels index the kept classes (ImageNet-R protocol).
    """
    model = _check_model(model)
    batch_size = check_int(batch_size, "batch_size", low=1)
    src = _Source(data)
    dev = _model_device(model, device)
    mask = None
    if logit_mask is not None:
        mask = torch.as_tensor(logit_mask)
        if mask.dtype != torch.bool or mask.dim() != 1:
            raise ValueError(
                f"logit_mask: expected a 1-D boolean mask, got dtype {mask.dtype} shape {tuple(mask.shape)}"
            )
    wrong = 0
    with _EvalMode(model):
        for _, imgs, labs in tqdm(src.batches(batch_size), total=-(-src.n // batch_size),
                                  disable=None if progress else True, desc="top-1 error"):
            wrong += _count_wrong(model, imgs, labs, dev, mask)
    return wrong / src.n


def _error_under(model: nn.Module, src: _Source, batch_size: int, dev: torch.device,
                 transform: Callable[[torch.Tensor, int], torch.Tensor] | None) -> float:
    wrong = 0
    for start, imgs, labs in src.batches(batch_size):
        x = imgs if transform is None else transform(imgs, start)
        wrong += _count_wrong(model, x, labs, dev, None)
    return wrong / src.n


def corruption_errors(
    model: nn.Module,
    data: Any,
    *,
    corruptions: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    preset: str = "auto",
    seed: int = 0,
    batch_size: int = 256,
    device: Any = None,
    renditions: bool = False,
    progress: bool = True,
) -> CorruptionResult:
    """Top-1 error of ``model`` under each synthetic corruption and severity (plus clean, and renditions).

    Args:
        model: ``nn.Module`` mapping float images (N, 3, H, W) in [0, 1] to logits (N, C); put normalisation
            inside it (e.g. ``nn.Sequential(normalize, encoder, probe)``).
        data: ``(images, labels)`` with images a float tensor (N, 3, H, W) in [0, 1] (or uint8 (N, H, W, 3)),
            or a map-style dataset of ``{"image": (3, H, W) float, "label": int}`` dicts.
        corruptions: names from :data:`CORRUPTIONS` (default: all 19).
        severities: subset of 1..5.
        preset: "imagenet", "cifar" or "auto" (cifar below 64 px).
        seed: corruption seed; image ``i`` of ``data`` is always corrupted the same way, whatever the batch size.
        batch_size: images per corruption call and forward pass.
        device: where the model runs (default: the device of its parameters).
        renditions: also measure the error on each style of :data:`.render.RENDITIONS` (strength 1).
        progress: tqdm progress bar over (corruption, severity) pairs (on a terminal; off in a pipe or file).

    Returns:
        :class:`CorruptionResult` labelled "synthetic corruptions".
    """
    model = _check_model(model)
    if isinstance(corruptions, str):
        corruptions = (corruptions,)
    names = [check_name(c) for c in corruptions]
    if not names:
        raise ValueError(f"corruptions: expected at least one name from: {', '.join(CORRUPTIONS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"corruptions: duplicate names in {names}")
    sevs = [check_severity(s) for s in severities]
    if not sevs or len(set(sevs)) != len(sevs):
        raise ValueError(f"severities: expected distinct integers in 1..5, got {list(severities)}")
    seed = check_int(seed, "seed", low=0)
    batch_size = check_int(batch_size, "batch_size", low=1)
    src = _Source(data)
    h, w = src.image_size()
    resolved = resolve_preset(preset, h, w)
    dev = _model_device(model, device)

    table = pd.DataFrame(index=pd.Index(names, name="corruption"), columns=pd.Index(sevs, name="severity"),
                         dtype=float)
    rend: dict[str, float] | None = None
    with _EvalMode(model):
        clean = _error_under(model, src, batch_size, dev, None)
        pairs = [(c, s) for c in names for s in sevs]
        for c, s in tqdm(pairs, disable=None if progress else True, desc=SYNTHETIC_LABEL):
            def fn(x: torch.Tensor, start: int, c: str = c, s: int = s) -> torch.Tensor:
                return corrupt(x, c, s, preset=resolved, seed=seed, index_offset=start)

            table.loc[c, s] = _error_under(model, src, batch_size, dev, fn)
        if renditions:
            rend = {}
            for style in RENDITIONS:
                def rfn(x: torch.Tensor, start: int, style: str = style) -> torch.Tensor:
                    return render(x, style)

                rend[style] = _error_under(model, src, batch_size, dev, rfn)

    bench_rows = [c for c in names if c in BENCHMARK_CORRUPTIONS]
    rows = bench_rows if bench_rows else names
    mean_error = float(table.loc[rows].to_numpy(dtype=float).mean())
    result = CorruptionResult(table=table, clean_error=clean, mean_error=mean_error, preset=resolved,
                              n_images=src.n, renditions=rend, seed=seed)
    if resolved == "imagenet" and set(BENCHMARK_CORRUPTIONS) <= set(names) and sorted(sevs) == [1, 2, 3, 4, 5]:
        errs = {c: [float(table.loc[c, s]) for s in (1, 2, 3, 4, 5)] for c in BENCHMARK_CORRUPTIONS}
        result.mce = _mce(errs, baseline=ALEXNET_ERRORS)
        result.relative_mce = _relative_mce(errs, clean)
    return result
