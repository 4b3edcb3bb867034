"""Readers for the real foreground/background benchmarks, from a local root (nothing is downloaded).

**ImageNet-9** (Xiao et al., "Noise or Signal", ICLR 2021; the ``MadryLab/backgrounds_challenge`` release)::

    <root>/<variant>/<split>/<class_folder>/*.JPEG      variant: original, only_fg, no_fg, only_bg_b, only_bg_t,
                                                                 mixed_same, mixed_rand, mixed_next
    <root>/fg_mask/<split>/<class_folder>/<stem>.npy     foreground masks (optional), same file stem as the image

with the class folders ``00_dog 01_bird 02_vehicle 03_reptile 04_carnivore 05_insect 06_instrument 07_primate
08_fish`` (label = the folder's position in this list). ``root`` is the folder that holds the variant folders
(``bg_challenge`` in the release). Masks are read as ``mask != 0``, any 2-D (H, W) or 3-D (H, W, C) / (C, H, W)
array (a pixel is foreground when any channel is nonzero).

**Waterbirds** (Sagawa et al., "Distributionally Robust Neural Networks", ICLR 2020)::

    <root>/metadata.csv          columns img_filename, y, place, split (0 = train, 1 = val, 2 = test)
    <root>/<img_filename>        the images

y = 0 landbird / 1 waterbird, place = 0 land / 1 water, group = 2 * y + place. :func:`worst_group_accuracy`
reports the worst group's accuracy and the *adjusted average*: per-group accuracy weighted by the training
group counts (val/test are background-balanced within each class, so a plain mean would over-weight the
minority groups).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset

from .._validate import as_labels
from .protocol import bg_gap, predict_classes

__all__ = [
    "IN9_CLASSES",
    "IN9_VARIANTS",
    "ImageNet9",
    "WATERBIRDS_GROUPS",
    "WATERBIRDS_TRAIN_GROUP_COUNTS",
    "Waterbirds",
    "WorstGroupResult",
    "in9_bg_gap",
    "worst_group_accuracy",
]

IN9_CLASSES: tuple[str, ...] = (
    "00_dog",
    "01_bird",
    "02_vehicle",
    "03_reptile",
    "04_carnivore",
    "05_insect",
    "06_instrument",
    "07_primate",
    "08_fish",
)
IN9_VARIANTS: tuple[str, ...] = (
    "original",
    "only_fg",
    "no_fg",
    "only_bg_b",
    "only_bg_t",
    "mixed_same",
    "mixed_rand",
    "mixed_next",
)
_IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
_IN9_LAYOUT = (
    "<root>/<variant>/<split>/<class>/*.JPEG with <class> in " + ", ".join(IN9_CLASSES) + " (and optionally "
    "<root>/fg_mask/<split>/<class>/<image stem>.npy masks), e.g. <root>/original/val/00_dog/n02085620_1.JPEG"
)
_WB_LAYOUT = (
    "<root>/metadata.csv with columns img_filename, y, place, split (0/1/2 = train/val/test) and the images at "
    "<root>/<img_filename>"
)

WATERBIRDS_GROUPS: tuple[str, ...] = (
    "landbird_on_land",
    "landbird_on_water",
    "waterbird_on_land",
    "waterbird_on_water",
)
# Training-set group counts (WILDS WaterbirdsDataset / Sagawa et al.), in group order 2 * y + place.
WATERBIRDS_TRAIN_GROUP_COUNTS: dict[str, int] = {
    "landbird_on_land": 3498,
    "landbird_on_water": 184,
    "waterbird_on_land": 56,
    "waterbird_on_water": 1057,
}
_WB_SPLITS = {"train": 0, "val": 1, "test": 2}


def _size_tuple(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return (size, size)
    if isinstance(size, tuple | list) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size):
        return (int(size[0]), int(size[1]))
    raise ValueError(f"size: expected a positive int, an (height, width) pair or None, got {size!r}")


def _image_hw(path: Path) -> tuple[int, int]:
    """(height, width) of an image file, read from its header; errors name the file."""
    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"image file {path} could not be read: {exc}") from exc


def _load_image(path: Path, size: tuple[int, int] | None) -> torch.Tensor:
    """RGB image as float (3, H, W) in [0, 1], bilinearly resized to ``size`` = (H, W) when given."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"image file {path} could not be read: {exc}") from exc
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255)


def _load_mask(path: Path, size: tuple[int, int] | None, image_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """Boolean (H, W) mask from a .npy array (nonzero = foreground), nearest-neighbour resized to ``size``.

    ``image_hw``: the (height, width) of the mask's image file; a mask of another size is refused (it would be
    resized onto the wrong pixels). Every error names the file."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"mask file {path} could not be read as a .npy array: {exc}") from exc
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise ValueError(f"mask file {path}: expected a numeric or boolean array, got {getattr(arr, 'dtype', arr)}")
    if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        arr = (arr != 0).any(axis=-1)  # (H, W, C)
    elif arr.ndim == 3 and arr.shape[0] in (1, 3, 4):
        arr = (arr != 0).any(axis=0)  # (C, H, W)
    if arr.ndim != 2:
        raise ValueError(f"mask file {path}: expected a 2-D (H, W) array, got shape {arr.shape}")
    if image_hw is not None and arr.shape != tuple(image_hw):
        raise ValueError(f"mask file {path}: shape {arr.shape} does not match its image's (height, width) "
                         f"{tuple(image_hw)}")
    mask = arr != 0
    if size is not None and mask.shape != size:
        im = Image.fromarray(mask.astype(np.uint8) * 255).resize((size[1], size[0]), Image.NEAREST)
        mask = np.asarray(im) > 127
    return torch.from_numpy(np.ascontiguousarray(mask))


class ImageNet9(Dataset):
    """One ImageNet-9 variant folder as a dataset of ``{"image", "label"[, "mask"]}`` dicts.

    Args:
        root: the folder that holds the variant folders (layout in the module docstring).
        variant: one of :data:`IN9_VARIANTS`.
        split: the split folder (``"val"`` for the released test sets, ``"train"`` for training data).
        size: images are resized to (size, size) (or (H, W)); None keeps the file's size (then all images
            must share one size to be batched).
        masks: None = attach ``fg_mask`` masks when every image has one; True = require them
            (FileNotFoundError otherwise); False = never.

    Raises:
        FileNotFoundError: when ``<root>/<variant>/<split>`` or a class folder is missing, or no image is found;
            the message shows the expected layout.
    """

    def __init__(
        self,
        root: str | Path,
        variant: str = "original",
        split: str = "val",
        *,
        size: int | tuple[int, int] | None = 224,
        masks: bool | None = None,
    ) -> None:
        if variant not in IN9_VARIANTS:
            raise ValueError(f"variant: expected one of {list(IN9_VARIANTS)}, got {variant!r}")
        self.root = Path(root)
        self.variant = variant
        self.split = split
        self.size = _size_tuple(size)
        self.classes = IN9_CLASSES
        base = self.root / variant / split
        if not base.is_dir():
            raise FileNotFoundError(f"ImageNet-9: folder {base} not found; expected the layout {_IN9_LAYOUT}")
        samples: list[tuple[Path, int]] = []
        for label, cls in enumerate(IN9_CLASSES):
            folder = base / cls
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"ImageNet-9: class folder {folder} not found; expected the layout {_IN9_LAYOUT}"
                )
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
            samples.extend((p, label) for p in files)
        if not samples:
            raise FileNotFoundError(f"ImageNet-9: no images under {base}; expected the layout {_IN9_LAYOUT}")
        self.samples = samples
        self.targets = [label for _, label in samples]

        mask_paths = [self.root / "fg_mask" / split / p.parent.name / (p.stem + ".npy") for p, _ in samples]
        have = [p.is_file() for p in mask_paths]
        if masks is True and not all(have):
            missing = mask_paths[have.index(False)]
            raise FileNotFoundError(
                f"ImageNet-9: mask {missing} not found ({have.count(False)} of {len(have)} missing); "
                f"expected the layout {_IN9_LAYOUT}"
            )
        self.mask_paths: list[Path] | None = mask_paths if masks is not False and all(have) else None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, label = self.samples[index]
        item: dict[str, Any] = {"image": _load_image(path, self.size), "label": label}
        if self.mask_paths is not None:
            mask = _load_mask(self.mask_paths[index], self.size, _image_hw(path))
            if mask.shape != item["image"].shape[1:]:
                raise ValueError(
                    f"masks: {self.mask_paths[index]} has shape {tuple(mask.shape)}, expected "
                    f"{tuple(item['image'].shape[1:])} like its image {path}"
                )
            item["mask"] = mask
        return item

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images (N, 3, H, W) and labels (N,) as tensors (loads every file)."""
        items = [self[i] for i in range(len(self))]
        return torch.stack([it["image"] for it in items]), torch.tensor([it["label"] for it in items])


def in9_bg_gap(
    classifier: Callable[[torch.Tensor], torch.Tensor],
    root: str | Path,
    *,
    split: str = "val",
    size: int | tuple[int, int] | None = 224,
    variants: Sequence[str] = ("original", "mixed_same", "mixed_rand", "mixed_next"),
    batch_size: int = 128,
    device: torch.device | str | None = None,
    class_map: Any = None,
) -> dict[str, float]:
    """Accuracy of ``classifier`` on the released ImageNet-9 variant folders, plus ``"bg_gap"``.

    ``classifier`` maps float images in [0, 1] (plain ``ToTensor()``; normalise inside the model) to logits over
    the 9 classes, or over 1000 ImageNet classes with ``class_map`` = the 1000-entry ``in_to_in9.json`` list
    (argmax first, then map; -1 counts as wrong). Returns ``{variant: accuracy, ..., "bg_gap": same - rand}``
    (the gap only when mixed_same and mixed_rand are among ``variants``).
    """
    out: dict[str, float] = {}
    for v in variants:
        ds = ImageNet9(root, v, split, size=size, masks=False)
        x, y = ds.stacked()
        pred = predict_classes(classifier, x, batch_size=batch_size, device=device, class_map=class_map)
        out[v] = float((pred == y).double().mean())
    if "mixed_same" in out and "mixed_rand" in out:
        out["bg_gap"] = bg_gap(out["mixed_same"], out["mixed_rand"])
    return out


class Waterbirds(Dataset):
    """Waterbirds split as a dataset of ``{"image", "label", "place", "group"}`` dicts (group = 2 * y + place).

    Args:
        root: folder with ``metadata.csv`` and the images (layout in the module docstring).
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: resize to (size, size) or (H, W); None keeps the file's size.
    """

    def __init__(self, root: str | Path, split: str = "test", *, size: int | tuple[int, int] | None = 224) -> None:
        if split not in _WB_SPLITS:
            raise ValueError(f"split: expected one of {list(_WB_SPLITS)}, got {split!r}")
        self.root = Path(root)
        self.split = split
        self.size = _size_tuple(size)
        meta_path = self.root / "metadata.csv"
        if not meta_path.is_file():
            raise FileNotFoundError(f"Waterbirds: {meta_path} not found; expected the layout {_WB_LAYOUT}")
        meta = pd.read_csv(meta_path)
        missing = {"img_filename", "y", "place", "split"} - set(meta.columns)
        if missing:
            raise ValueError(f"Waterbirds: {meta_path} lacks columns {sorted(missing)}; expected {_WB_LAYOUT}")
        meta = meta[meta["split"] == _WB_SPLITS[split]].reset_index(drop=True)
        if len(meta) == 0:
            raise ValueError(f"Waterbirds: no rows with split == {_WB_SPLITS[split]} ({split}) in {meta_path}")
        bad = ~meta["y"].isin([0, 1]) | ~meta["place"].isin([0, 1])
        if bool(bad.any()):
            raise ValueError(f"Waterbirds: columns y and place must be 0/1 in {meta_path}")
        self.metadata = meta
        self.y = torch.tensor(meta["y"].to_numpy(dtype=np.int64))
        self.place = torch.tensor(meta["place"].to_numpy(dtype=np.int64))
        self.group = 2 * self.y + self.place

    def __len__(self) -> int:
        return len(self.metadata)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.root / str(self.metadata.at[index, "img_filename"])
        if not path.is_file():
            raise FileNotFoundError(f"Waterbirds: image {path} not found; expected the layout {_WB_LAYOUT}")
        return {
            "image": _load_image(path, self.size),
            "label": int(self.y[index]),
            "place": int(self.place[index]),
            "group": int(self.group[index]),
        }

    def group_counts(self) -> dict[str, int]:
        """Number of images per group in this split, keyed by :data:`WATERBIRDS_GROUPS`."""
        counts = torch.bincount(self.group, minlength=4).tolist()
        return dict(zip(WATERBIRDS_GROUPS, counts, strict=True))


class WorstGroupResult(NamedTuple):
    """``(worst, per_group, adjusted_average)``: accuracies as fractions; per_group keyed by group name."""

    worst: float
    per_group: dict[str, float]
    adjusted_average: float


def worst_group_accuracy(
    preds: Any,
    y: Any,
    place: Any,
    *,
    train_counts: Mapping[str, int] | None = None,
) -> WorstGroupResult:
    """Worst-group and adjusted-average accuracy of binary predictions on Waterbirds-style groups.

    Groups g = 2 * y + place, named :data:`WATERBIRDS_GROUPS`. per_group[g] = mean(preds == y over group g);
    worst = min over the groups present; adjusted_average = sum_g w_g acc_g / sum_g w_g with w_g the training
    count of group g (default :data:`WATERBIRDS_TRAIN_GROUP_COUNTS`; sum over the groups present).
    """
    p = as_labels(preds, "preds")
    yy = as_labels(y, "y", n=p.shape[0], num_classes=2)
    pl = as_labels(place, "place", n=p.shape[0], num_classes=2)
    counts = dict(WATERBIRDS_TRAIN_GROUP_COUNTS if train_counts is None else train_counts)
    if set(counts) != set(WATERBIRDS_GROUPS) or any(not (v >= 0) for v in counts.values()):
        raise ValueError(f"train_counts: expected non-negative counts for exactly {list(WATERBIRDS_GROUPS)}")
    groups = 2 * yy + pl
    correct = (p == yy).double()
    per_group: dict[str, float] = {}
    for g, name in enumerate(WATERBIRDS_GROUPS):
        sel = groups == g
        if bool(sel.any()):
            per_group[name] = float(correct[sel].mean())
    weight = sum(counts[k] for k in per_group)
    if weight <= 0:
        raise ValueError("train_counts: the groups present in the data all have zero training count")
    adjusted = sum(counts[k] * acc for k, acc in per_group.items()) / weight
    return WorstGroupResult(min(per_group.values()), per_group, float(adjusted))
