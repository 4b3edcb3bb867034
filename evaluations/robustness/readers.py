"""Readers for the real robustness benchmarks over a local root (nothing is downloaded).

* CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019): ``<root>/<corruption>.npy``, uint8 (50000, 32, 32, 3), rows
  ``(s - 1) * 10000 .. s * 10000`` are severity ``s``; ``<root>/labels.npy`` (50000,).
* ImageNet-C: ``<root>/<corruption>/<severity>/<wnid>/*.JPEG`` (224 px JPEGs, already corrupted and re-saved).
* ImageNet-R (Hendrycks et al., ICCV 2021): ``<root>/<wnid>/<type>_<n>.jpg`` for 200 wnids; predictions use
  the 200 matching logits of a 1000-way classifier (:func:`imagenet_r_logit_mask`).

Evaluate with :func:`.evaluate.top1_error`; numbers from these files may be called ImageNet-C / CIFAR-10-C /
ImageNet-R (``dataset.label``), unlike the in-memory "synthetic corruptions".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ._batch import check_name, check_severity

__all__ = ["ImageFolderData", "imagenet_r_logit_mask", "read_cifar10_c", "read_imagenet_c", "read_imagenet_r"]

_IMAGE_EXT = {".jpeg", ".jpg", ".png"}
CIFAR10_C_LAYOUT = "<root>/<corruption>.npy (uint8, (50000, 32, 32, 3), 10000 rows per severity) and <root>/labels.npy"
IMAGENET_C_LAYOUT = "<root>/<corruption>/<severity 1-5>/<wnid>/*.JPEG"
IMAGENET_R_LAYOUT = "<root>/<wnid>/*.jpg (200 wnid folders)"


def _pil_to_tensor(img: Image.Image) -> torch.Tensor:
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.transpose(2, 0, 1).copy()).to(torch.float32).div_(255.0)


class ImageFolderData(Dataset):
    """Map-style dataset over image files: items ``{"image": (3, H, W) float in [0, 1], "label": int}``.

    Attributes: ``files`` (paths), ``targets`` (labels), ``classes`` (wnid of each label), ``label`` (the
    benchmark's name), ``types`` (ImageNet-R rendition type per file, from the file-name prefix, else None).
    ``transform`` (optional) receives the RGB PIL image and must return a (3, H, W) float tensor.
    """

    def __init__(self, files: list[Path], targets: list[int], classes: list[str], label: str,
                 transform: Callable[[Image.Image], Any] | None = None, types: list[str] | None = None) -> None:
        self.files = files
        self.targets = targets
        self.classes = classes
        self.label = label
        self.transform = transform
        self.types = types

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, Any]:
        path = self.files[i]
        try:
            with Image.open(path) as im:
                im.load()
                img = im.convert("RGB")
        except OSError as err:
            raise ValueError(f"{self.label}: cannot read image file {path} ({err})") from err
        image = self.transform(img) if self.transform is not None else _pil_to_tensor(img)
        return {"image": image, "label": self.targets[i]}


def _require_dir(path: Path, what: str, layout: str) -> None:
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: directory {path} not found; expected the layout {layout}")


def _class_folders(root: Path, what: str, layout: str, wnids: Sequence[str] | None
                   ) -> tuple[list[Path], list[int], list[str]]:
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise FileNotFoundError(f"{what}: no class folders in {root}; expected the layout {layout}")
    classes = list(wnids) if wnids is not None else [p.name for p in folders]
    index = {w: k for k, w in enumerate(classes)}
    files: list[Path] = []
    targets: list[int] = []
    for folder in folders:
        if folder.name not in index:
            raise ValueError(f"wnids: class folder {folder.name!r} of {root} is not in the given wnid list")
        found = [f for f in sorted(folder.iterdir()) if f.is_file() and f.suffix.lower() in _IMAGE_EXT]
        if not found and wnids is None:  # it would become a class that no image has (torchvision refuses it too)
            raise FileNotFoundError(f"{what}: class folder {folder} holds no image files (*.JPEG, *.jpg, *.png); "
                                    f"remove it or add its images; expected the layout {layout}")
        files.extend(found)
        targets.extend([index[folder.name]] * len(found))
    if not files:
        raise FileNotFoundError(f"{what}: no image files (*.JPEG, *.jpg, *.png) under {root}; expected the "
                                f"layout {layout}")
    return files, targets, classes


def read_imagenet_c(root: str | Path, corruption: str, severity: int, *,
                    transform: Callable[[Image.Image], Any] | None = None,
                    wnids: Sequence[str] | None = None) -> ImageFolderData:
    """The ImageNet-C images of one corruption and severity, as a dataset of ``{"image", "label"}`` dicts.

    Labels index ``wnids`` (the sorted 1000 ImageNet wnids your classifier uses); by default the sorted wnid
    folders present, which equals the 1000-class order only when all 1000 are present. The default transform
    only converts to a float tensor; the official ``test.py`` adds ``CenterCrop(224)`` and normalisation
    (put normalisation in the model).
    """
    check_name(corruption)
    sev = check_severity(severity)
    base = Path(root)
    _require_dir(base, "ImageNet-C root", IMAGENET_C_LAYOUT)
    folder = base / corruption / str(sev)
    _require_dir(folder, f"ImageNet-C {corruption} severity {sev}", IMAGENET_C_LAYOUT)
    files, targets, classes = _class_folders(folder, "ImageNet-C", IMAGENET_C_LAYOUT, wnids)
    return ImageFolderData(files, targets, classes, "ImageNet-C", transform)


def read_imagenet_r(root: str | Path, *, transform: Callable[[Image.Image], Any] | None = None) -> ImageFolderData:
    """ImageNet-R as a dataset: labels = index of the wnid among the sorted wnid folders (``ImageFolder`` order,
    as the official ``eval.py``), ``types`` = rendition type from the file-name prefix (``art_1.jpg`` -> art).

    Predict with a 1000-way classifier restricted to these classes: ``top1_error(model, data,
    logit_mask=imagenet_r_logit_mask(all_1000_wnids_sorted, data.classes))``.
    """
    base = Path(root)
    _require_dir(base, "ImageNet-R root", IMAGENET_R_LAYOUT)
    files, targets, classes = _class_folders(base, "ImageNet-R", IMAGENET_R_LAYOUT, None)
    types = [f.stem.split("_", 1)[0] if "_" in f.stem else "unknown" for f in files]
    return ImageFolderData(files, targets, classes, "ImageNet-R", transform, types)


def imagenet_r_logit_mask(all_wnids_sorted: Sequence[str], r_wnids: Sequence[str]) -> torch.Tensor:
    """Boolean mask over a classifier's logits keeping the ImageNet-R classes (official ``eval.py``).

    ``all_wnids_sorted``: the classifier's class wnids in logit order; for ImageNet the 1000 sorted wnids, e.g.
    ``sorted(os.listdir(imagenet_train_root))``. ``r_wnids``: the 200 ImageNet-R wnids (``read_imagenet_r(root)
    .classes``). Masked-logit position ``i`` is then ImageNet-R class ``i`` (both sorted). No wnid list is
    bundled here.
    """
    all_w = [str(w) for w in all_wnids_sorted]
    if not all_w:
        raise ValueError("all_wnids_sorted: expected the classifier's wnids, got an empty list")
    if all_w != sorted(all_w) or len(set(all_w)) != len(all_w):
        raise ValueError("all_wnids_sorted: expected sorted, distinct wnids (the logit order of the classifier)")
    r = {str(w) for w in r_wnids}
    if not r:
        raise ValueError("r_wnids: expected at least one wnid")
    missing = sorted(r - set(all_w))
    if missing:
        raise ValueError(f"r_wnids: {len(missing)} wnid(s) not among all_wnids_sorted, e.g. {missing[:5]}")
    return torch.tensor([w in r for w in all_w], dtype=torch.bool)


def _check_cifar_labels(labels: np.ndarray, path: Path, num_classes: int = 10) -> None:
    """CIFAR-10 class labels: whole numbers in [0, 10); else ``ValueError`` naming the file and a bad value."""
    if labels.dtype.kind not in "iuf":
        raise ValueError(f"CIFAR-10-C: {path} holds {labels.dtype} labels; expected integer class labels in "
                         f"[0, {num_classes})")
    values = np.asarray(labels)
    bad = ~np.isfinite(values) | (values < 0) | (values >= num_classes) | (values != np.round(values)) \
        if labels.dtype.kind == "f" else (values < 0) | (values >= num_classes)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"CIFAR-10-C: {path} holds the label {values[first].item()!r} at row {first}; expected "
                         f"integer class labels in [0, {num_classes})")


def read_cifar10_c(root: str | Path, corruption: str, severity: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10-C rows of one corruption and severity: ``(images float (n, 3, 32, 32) in [0, 1], labels long)``.

    ``n`` = a fifth of the file's rows (10000 for the released files).
    """
    check_name(corruption)
    sev = check_severity(severity)
    base = Path(root)
    _require_dir(base, "CIFAR-10-C root", CIFAR10_C_LAYOUT)
    f_img, f_lab = base / f"{corruption}.npy", base / "labels.npy"
    for f in (f_img, f_lab):
        if not f.is_file():
            raise FileNotFoundError(f"CIFAR-10-C: file {f} not found; expected the layout {CIFAR10_C_LAYOUT}")
    try:
        arr = np.load(f_img, mmap_mode="r", allow_pickle=False)
        labels = np.load(f_lab, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as err:
        raise FileNotFoundError(f"CIFAR-10-C: cannot read {f_img} / {f_lab} as .npy arrays ({err}); expected the "
                                f"layout {CIFAR10_C_LAYOUT}") from err
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] % 5 != 0 or arr.shape[0] == 0:
        raise FileNotFoundError(f"CIFAR-10-C: {f_img} holds {arr.dtype} {arr.shape}; expected uint8 (5 n, H, W, 3), "
                                f"layout {CIFAR10_C_LAYOUT}")
    if labels.ndim != 1 or labels.shape[0] != arr.shape[0]:
        raise FileNotFoundError(f"CIFAR-10-C: {f_lab} holds shape {labels.shape}; expected ({arr.shape[0]},) labels, "
                                f"layout {CIFAR10_C_LAYOUT}")
    _check_cifar_labels(labels, f_lab)
    n = arr.shape[0] // 5
    rows = slice((sev - 1) * n, sev * n)
    images = torch.from_numpy(np.ascontiguousarray(arr[rows]).transpose(0, 3, 1, 2).copy()).float().div_(255.0)
    return images, torch.from_numpy(np.asarray(labels[rows], dtype=np.int64).copy())
