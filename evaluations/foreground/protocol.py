"""Foreground/background measurements: BG-Gap, accuracy per background variant, and the ICL-MSR 2x2 protocol.

* :func:`bg_gap` -- Xiao et al. (ICLR 2021): BG-Gap = acc(Mixed-Same) - acc(Mixed-Rand).
* :func:`background_variant_accuracies` -- a classifier's accuracy on each variant of
  :func:`evaluations.foreground.variants`; :func:`plot_variant_bars` draws them with the BG-Gap.
* :func:`full_vs_foreground` -- the 2x2 design of ICL-MSR (Qiang et al., "Interventional Contrastive Learning
  with Meta Semantic Regularizer", ICML 2022): an encoder (pre)trained on **full** images or on
  **foreground-only** images, each read out on full or on foreground-only test images. Their stated
  phenomenon: trained on full images, full > foreground at test; trained on foregrounds, full < foreground.

Protocol of :func:`full_vs_foreground` (our specification; the paper publishes no code). With train/test
splits of images x, masks m and labels y, and the foreground domain x_fg = m * x (background black, as Only-FG):

1. encoder_full = train_fn(x_train) and encoder_fg = train_fn(x_fg_train) -- or the given ``encoders``;
2. for each encoder E and each test domain D in {full, foreground}: a probe (linear by default,
   :func:`evaluations.linear_probe`; or weighted kNN) is fit on E's features of the **train** images of
   domain D with y_train, and scored on E's features of the **test** images of domain D with y_test;
3. ``table[train: A, test: D]`` = that accuracy (a fraction in [0, 1]).

The probe is refit per test domain, so a cell measures how much label information the frozen representation
of domain-D images carries (not the transfer of one classifier across domains).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._validate import as_labels, check_int
from ..features import extract_features
from ..knn import knn_accuracy
from ..linear import linear_probe
from .variants import VARIANT_NAMES, as_images, as_masks

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "FullVsForegroundResult",
    "background_variant_accuracies",
    "bg_gap",
    "full_vs_foreground",
    "plot_variant_bars",
    "predict_classes",
]

TRAIN_ROWS = ("train: full", "train: foreground")
TEST_COLUMNS = ("test: full", "test: foreground")
_DOMAINS = ("full", "foreground")
_PROBES = ("linear", "knn")


# --------------------------------------------------------------------------------------------------- BG-Gap
def _check_fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name}: expected an accuracy (a number in [0, 1]), got {value!r}")
    v = float(value)
    if not 0.0 <= v <= 1.0:  # also refuses NaN
        raise ValueError(f"{name}: expected an accuracy as a fraction in [0, 1], got {v}")
    return v


def bg_gap(acc_mixed_same: float, acc_mixed_rand: float) -> float:
    """BG-Gap of Xiao et al. (ICLR 2021): acc(Mixed-Same) - acc(Mixed-Rand), accuracies as fractions in [0, 1].

    Positive = the model gains from a background of the right class (ResNet-50 on ImageNet-9: 0.073).
    """
    same = _check_fraction(acc_mixed_same, "acc_mixed_same")
    rand = _check_fraction(acc_mixed_rand, "acc_mixed_rand")
    return same - rand


# ---------------------------------------------------------------------------------- accuracy per variant
def _module_device(model: Any) -> torch.device:
    if isinstance(model, nn.Module):
        for t in model.parameters():
            return t.device
        for t in model.buffers():
            return t.device
    return torch.device("cpu")


def predict_classes(
    classifier: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    class_map: Any = None,
) -> torch.Tensor:
    """argmax of ``classifier(images)`` logits, batched, in eval mode under ``torch.inference_mode``.

    ``class_map`` (optional, length = number of logits) maps each argmax to a class id, -1 for "no class"
    (ImageNet-9's ``in_to_in9.json`` for 1000-way ImageNet models: argmax first, then map).
    """
    if not callable(classifier):
        raise ValueError(f"classifier: expected an nn.Module or callable, got {type(classifier).__name__}")
    batch_size = check_int(batch_size, "batch_size", low=1)
    dev = torch.device(device) if device is not None else _module_device(classifier)
    cmap = None if class_map is None else torch.as_tensor(np.asarray(class_map), dtype=torch.long)
    modes = [(mod, mod.training) for mod in classifier.modules()] if isinstance(classifier, nn.Module) else []
    if isinstance(classifier, nn.Module):
        classifier.eval()
    preds = []
    try:
        with torch.inference_mode():
            for i in range(0, images.shape[0], batch_size):
                out = classifier(images[i : i + batch_size].to(dev))
                if not isinstance(out, torch.Tensor) or out.dim() != 2:
                    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                    raise ValueError(f"classifier: expected (N, num_classes) logits, got {got}")
                p = out.argmax(1).cpu()
                if cmap is not None:
                    if cmap.numel() != out.shape[1]:
                        raise ValueError(
                            f"class_map: expected one entry per logit ({out.shape[1]}), got {cmap.numel()}"
                        )
                    p = cmap[p]
                preds.append(p)
    finally:
        for mod, training in modes:
            mod.training = training
    return torch.cat(preds)


def background_variant_accuracies(
    classifier: Callable[[torch.Tensor], torch.Tensor],
    variants_dict: Mapping[str, Any],
    labels: Any,
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    class_map: Any = None,
) -> dict[str, float]:
    """Accuracy (fraction) of ``classifier`` (images -> logits) on each variant of ``variants_dict``.

    ``variants_dict`` is the output of :func:`evaluations.foreground.variants` (or any name -> (N, 3, H, W)
    images); ``labels`` (N,) are the true classes of the foregrounds. Compute the BG-Gap from the result with
    ``bg_gap(accs["mixed_same"], accs["mixed_rand"])``. ``class_map``: see :func:`predict_classes`.
    """
    if not isinstance(variants_dict, Mapping) or len(variants_dict) == 0:
        raise ValueError(f"variants_dict: expected a non-empty dict name -> images, got {type(variants_dict).__name__}")
    accs: dict[str, float] = {}
    y = None
    for name, imgs in variants_dict.items():
        x = as_images(imgs, f"variants_dict[{name!r}]")
        if y is None:
            y = as_labels(labels, "labels", n=x.shape[0])
        elif x.shape[0] != y.shape[0]:
            raise ValueError(f"variants_dict[{name!r}]: expected {y.shape[0]} images, got {x.shape[0]}")
        pred = predict_classes(classifier, x, batch_size=batch_size, device=device, class_map=class_map)
        accs[name] = float((pred == y).double().mean())
    return accs


def plot_variant_bars(accs: Mapping[str, float], bg_gap: float | None = None, *, title: str | None = None) -> Figure:
    """Bar chart of the accuracy per background variant (in %), with the BG-Gap annotated.

    The gap is computed from ``mixed_same`` / ``mixed_rand`` when not given and both are present.
    """
    from matplotlib.figure import Figure

    if not isinstance(accs, Mapping) or len(accs) == 0:
        raise ValueError("accs: expected a non-empty dict variant name -> accuracy in [0, 1]")
    values = {k: _check_fraction(v, f"accs[{k!r}]") for k, v in accs.items()}
    names = [k for k in VARIANT_NAMES if k in values] + [k for k in values if k not in VARIANT_NAMES]
    gap = bg_gap
    if gap is None and "mixed_same" in values and "mixed_rand" in values:
        gap = values["mixed_same"] - values["mixed_rand"]

    fig = Figure(figsize=(max(5.0, 0.9 * len(names) + 1.5), 3.8))
    ax = fig.add_subplot(1, 1, 1)
    colors = ["#8c8c8c" if n == "original" else "#4c72b0" if n.startswith("mixed") else "#55a868" for n in names]
    heights = [100 * values[n] for n in names]
    bars = ax.bar(range(len(names)), heights, color=colors)
    for bar, h in zip(bars, heights, strict=True):
        ax.text(bar.get_x() + bar.get_width() / 2, h + 1, f"{h:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n.replace("_", "-") for n in names], rotation=30, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 112)
    ax.set_title(title or "Accuracy per background variant")
    if gap is not None:
        ax.text(
            0.99,
            0.97,
            f"BG-Gap = {100 * float(gap):+.1f} pp",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=9,
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#999999"},
        )
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------- 2x2 full vs fg
@dataclass
class FullVsForegroundResult:
    """Result of :func:`full_vs_foreground`: ``table`` is the 2x2 accuracy DataFrame (fractions).

    Rows ``"train: full"`` / ``"train: foreground"``; columns ``"test: full"`` / ``"test: foreground"``.
    """

    table: pd.DataFrame
    probe: str = "linear"
    encoders: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{"train: full": {"test: full": acc, ...}, ...}`` (JSON-ready)."""
        return {r: {c: float(self.table.loc[r, c]) for c in self.table.columns} for r in self.table.index}

    def plot(self, *, title: str | None = None) -> Figure:
        """Heat map of the 2x2 table with each cell annotated in percent."""
        from matplotlib.figure import Figure

        values = 100 * self.table.to_numpy(dtype=float)
        fig = Figure(figsize=(4.6, 3.8))
        ax = fig.add_subplot(1, 1, 1)
        im = ax.imshow(values, cmap="viridis", vmin=0, vmax=100)
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.1f}%", ha="center", va="center", color="white" if v < 60 else "black", fontsize=11)
        ax.set_xticks(range(values.shape[1]))
        ax.set_xticklabels(list(self.table.columns))
        ax.set_yticks(range(values.shape[0]))
        ax.set_yticklabels(list(self.table.index))
        ax.set_title(title or f"Full vs foreground ({self.probe} probe accuracy)")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="accuracy (%)")
        fig.tight_layout()
        return fig


def _pick(split: Mapping[str, Any], keys: tuple[str, ...], where: str) -> Any:
    for k in keys:
        if k in split:
            return split[k]
    raise ValueError(f"{where}: expected a key among {list(keys)}, got keys {sorted(split)}")


def _read_split(data: Any, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images, masks, labels) of one split, from a tuple, a dict of arrays, or a dataset of dict items."""
    where = f"data[{name!r}]"
    if isinstance(data, tuple | list) and len(data) == 3 and not isinstance(data[0], Mapping):
        images, masks, labels = data
    elif isinstance(data, Mapping):
        images = _pick(data, ("images", "image"), where)
        masks = _pick(data, ("masks", "mask"), where)
        labels = _pick(data, ("labels", "label"), where)
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        if len(data) == 0:
            raise ValueError(f"{where}: the dataset is empty")
        items = [data[i] for i in range(len(data))]
        if not all(isinstance(it, Mapping) and {"image", "mask", "label"} <= set(it) for it in items):
            raise ValueError(f"{where}: expected dataset items that are dicts with 'image', 'mask' and 'label'")
        images = torch.stack([torch.as_tensor(it["image"]) for it in items])
        masks = torch.stack([torch.as_tensor(it["mask"]) for it in items])
        labels = torch.as_tensor([int(it["label"]) for it in items])
    else:
        raise ValueError(
            f"{where}: expected (images, masks, labels), a dict with 'images', 'masks', 'labels', or a dataset "
            f"of {{'image', 'mask', 'label'}} items; got {type(data).__name__}"
        )
    x = as_images(images, f"{where} images")
    m = as_masks(masks, x, f"{where} masks")
    y = as_labels(labels, f"{where} labels", n=x.shape[0])
    return x, m, y


def _score(
    encoder: Any,
    train: torch.Tensor,
    y_train: torch.Tensor,
    test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    probe: str,
    batch_size: int,
    device: torch.device | str | None,
    weight_decay: float | None,
    knn_k: int,
) -> float:
    f_train = extract_features(encoder, train, batch_size=batch_size, device=device).x
    f_test = extract_features(encoder, test, batch_size=batch_size, device=device).x
    if probe == "knn":
        return knn_accuracy(f_train, y_train, f_test, y_test, k=min(knn_k, f_train.shape[0]))
    return linear_probe(f_train, y_train, f_test, y_test, weight_decay=weight_decay).accuracy


def full_vs_foreground(
    train_fn: Callable[[torch.Tensor], Any] | None,
    data: Mapping[str, Any],
    *,
    encoders: Mapping[str, Any] | None = None,
    probe: str = "linear",
    batch_size: int = 256,
    device: torch.device | str | None = None,
    weight_decay: float | None = None,
    knn_k: int = 20,
) -> FullVsForegroundResult:
    """The ICL-MSR 2x2 protocol: (train on full | foreground-only images) x (test on full | foreground-only).

    Args:
        train_fn: ``train_fn(images) -> encoder``; called twice, with the float (N, 3, H, W) training images
            of the full domain and of the foreground-only domain (mask * image, background black). The encoder
            is an ``nn.Module`` or any callable mapping images to (N, D) or (N, D, h, w) features (e.g. a
            function that pre-trains SSL on those images and returns the frozen backbone). May be None when
            ``encoders`` is given.
        data: ``{"train": split, "test": split}``, each split either a tuple ``(images, masks, labels)``, a dict
            ``{"images", "masks", "labels"}`` of arrays, or a map-style dataset of ``{"image", "mask",
            "label"}`` items. Images float (N, 3, H, W) in [0, 1]; masks bool (N, H, W), True = foreground.
        encoders: precomputed ``{"full": encoder, "foreground": encoder}`` used instead of calling
            ``train_fn`` (either key may be given alone, the other is then trained with ``train_fn``).
        probe: ``"linear"`` (:func:`evaluations.linear_probe`, weight decay chosen on a hold-out unless given)
            or ``"knn"`` (:func:`evaluations.knn_accuracy`, ``k = min(knn_k, n_train)``).
        batch_size, device: for feature extraction.

    Returns:
        :class:`FullVsForegroundResult` (``.table``, ``.plot()``, ``.as_dict()``). The probe is fit on the
        train images of each test domain and scored on its test images (module docstring).
    """
    if probe not in _PROBES:
        raise ValueError(f"probe: expected one of {list(_PROBES)}, got {probe!r}")
    knn_k = check_int(knn_k, "knn_k", low=1)
    if not isinstance(data, Mapping) or "train" not in data or "test" not in data:
        got = sorted(data) if isinstance(data, Mapping) else type(data).__name__
        raise ValueError(f"data: expected a dict with 'train' and 'test' splits, got {got}")
    given = dict(encoders or {})
    unknown = set(given) - set(_DOMAINS)
    if unknown:
        raise ValueError(f"encoders: expected keys among {list(_DOMAINS)}, got {sorted(unknown)}")
    if train_fn is None and set(given) != set(_DOMAINS):
        raise ValueError(
            "train_fn: expected a callable images -> encoder (or encoders for both 'full' and 'foreground')"
        )
    if train_fn is not None and not callable(train_fn):
        raise ValueError(f"train_fn: expected a callable images -> encoder, got {type(train_fn).__name__}")

    x_tr, m_tr, y_tr = _read_split(data["train"], "train")
    x_te, m_te, y_te = _read_split(data["test"], "test")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise ValueError(
            f"data['test']: expected images of shape (N, {', '.join(map(str, x_tr.shape[1:]))}) like the train "
            f"split, got {tuple(x_te.shape)}"
        )
    domains = {
        "full": (x_tr, x_te),
        "foreground": (x_tr * m_tr[:, None].to(x_tr.dtype), x_te * m_te[:, None].to(x_te.dtype)),
    }

    trained: dict[str, Any] = {}
    for d in _DOMAINS:
        enc = given[d] if d in given else train_fn(domains[d][0])  # type: ignore[misc]
        if not callable(enc):
            raise ValueError(f"train_fn: expected it to return an encoder (a callable), got {type(enc).__name__}")
        trained[d] = enc

    table = pd.DataFrame(index=list(TRAIN_ROWS), columns=list(TEST_COLUMNS), dtype=float)
    for d_train, row in zip(_DOMAINS, TRAIN_ROWS, strict=True):
        for d_test, col in zip(_DOMAINS, TEST_COLUMNS, strict=True):
            train_imgs, test_imgs = domains[d_test]
            table.loc[row, col] = _score(
                trained[d_train],
                train_imgs,
                y_tr,
                test_imgs,
                y_te,
                probe=probe,
                batch_size=batch_size,
                device=device,
                weight_decay=weight_decay,
                knn_k=knn_k,
            )
    return FullVsForegroundResult(table=table, probe=probe, encoders=trained)
