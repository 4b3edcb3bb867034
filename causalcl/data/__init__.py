"""Datasets (embedded SCM datasets and local real-dataset adapters) and batched augmentations.

``get_dataset(name, split, root, **kw)`` builds any of :data:`DATASETS`:

* ``shapes`` -- SCM-Shapes (procedural, masks + latents + interventions), DESIGN §4.1;
* ``digits`` -- Digits-on-Textures (real digits on real CC0 textures), DESIGN §4.2;
* ``cifar10``, ``cifar100`` -- python pickle layout under a local ``root``;
* ``imagefolder`` -- ``root/<class>/<images>`` with optional ``train/``, ``val|test/`` folders.

For ``shapes`` and ``digits`` ``root`` is the cache directory; for the others the data folder.
"""

from __future__ import annotations

import os
from typing import Any

from .augment import SimCLRAugment
from .base import SPLITS, SCMImageDataset, TensorImageDataset
from .cifar import CIFAR10, CIFAR100
from .digits import DigitsDataset
from .imagefolder import ImageFolderDataset
from .shapes import ShapesDataset

__all__ = [
    "DATASETS",
    "get_dataset",
    "SPLITS",
    "TensorImageDataset",
    "SCMImageDataset",
    "ShapesDataset",
    "DigitsDataset",
    "CIFAR10",
    "CIFAR100",
    "ImageFolderDataset",
    "SimCLRAugment",
]

DATASETS: dict[str, type[TensorImageDataset]] = {
    "shapes": ShapesDataset,
    "digits": DigitsDataset,
    "cifar10": CIFAR10,
    "cifar100": CIFAR100,
    "imagefolder": ImageFolderDataset,
}


def get_dataset(
    name: str, split: str = "train", root: str | os.PathLike[str] | None = None, **kw: Any
) -> TensorImageDataset:
    """Build dataset ``name`` for ``split`` (``train``, ``probe``, ``test``).

    Raises:
        ValueError: unknown ``name`` (the valid names are listed) or unknown ``split``.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {sorted(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
    return DATASETS[name](split=split, root=root, **kw)
