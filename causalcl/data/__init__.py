"""Datasets (embedded SCM datasets and local real-dataset adapters) and batched augmentations.

``get_dataset(name, split, root, **kw)`` builds any of :data:`DATASETS`:

* ``shapes`` -- SCM-Shapes (procedural, masks + latents + interventions), DESIGN §4.1;
* ``moving_shapes`` -- clips of moving shapes from an SCM (``(T, 3, H, W)`` items, per-frame masks), issue 16;
* ``scm_graph`` -- stochastic-block graphs for node classification with a confounded style signal (items are
  graphs, samples are nodes: ``causalcl.data.scm_graph``), issue 16;
* ``digits`` -- Digits-on-Textures (real digits on real CC0 textures), DESIGN §4.2;
* ``cifar10``, ``cifar100`` -- python pickle layout under a local ``root``;
* ``imagefolder`` -- ``root/<class>/<images>`` with optional ``train/``, ``val|test/`` folders.

For ``shapes`` and ``digits`` ``root`` is the cache directory; for the others the data folder.
"""

from __future__ import annotations

import difflib
import inspect
import os
from typing import Any

from .augment import SimCLRAugment
from .base import SPLITS, SCMImageDataset, TensorImageDataset
from .cifar import CIFAR10, CIFAR100
from .digits import DigitsDataset
from .imagefolder import ImageFolderDataset
from .moving_shapes import MovingShapesDataset
from .scm_graph import GraphBatch, SCMGraphDataset
from .shapes import ShapesDataset

__all__ = [
    "DATASETS",
    "check_dataset_kwargs",
    "get_dataset",
    "SPLITS",
    "TensorImageDataset",
    "SCMImageDataset",
    "ShapesDataset",
    "MovingShapesDataset",
    "SCMGraphDataset",
    "GraphBatch",
    "DigitsDataset",
    "CIFAR10",
    "CIFAR100",
    "ImageFolderDataset",
    "SimCLRAugment",
]

DATASETS: dict[str, type[TensorImageDataset] | type[SCMGraphDataset]] = {
    "shapes": ShapesDataset,
    "moving_shapes": MovingShapesDataset,
    "scm_graph": SCMGraphDataset,
    "digits": DigitsDataset,
    "cifar10": CIFAR10,
    "cifar100": CIFAR100,
    "imagefolder": ImageFolderDataset,
}


def get_dataset(
    name: str, split: str = "train", root: str | os.PathLike[str] | None = None, **kw: Any
) -> TensorImageDataset | SCMGraphDataset:
    """Build dataset ``name`` for ``split`` (``train``, ``probe``, ``test``).

    Raises:
        ValueError: unknown ``name`` (the valid names are listed), unknown ``split``, or a keyword argument the
            dataset does not take (named, with the ones it takes).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {sorted(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
    check_dataset_kwargs(name, kw)
    return DATASETS[name](split=split, root=root, **kw)


def check_dataset_kwargs(name: str, kw: dict[str, Any], prefix: str = "") -> None:
    """Refuse a keyword argument that dataset ``name`` does not take: ``ValueError`` naming it (as
    ``<prefix><key>``), with the nearest valid one and the list."""
    params = inspect.signature(DATASETS[name].__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [p for p in params if p not in ("self", "split", "root")]
    for key in kw:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"; did you mean {prefix + close[0]!r}?" if close else ""
            raise ValueError(f"{prefix}{key}: dataset {name!r} takes no argument {key!r}{hint} "
                             f"(it takes: {', '.join(prefix + a for a in accepted) or 'none'})")
