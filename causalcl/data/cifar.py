"""CIFAR-10 / CIFAR-100 from a local copy of the python pickle layout (no download).

The pickles are read with a restricted unpickler that resolves only the two globals a numpy array
needs (``numpy.ndarray`` and its reconstructor) and ``numpy.dtype``; any other global (``os.system``,
``builtins.eval``...) is refused, so a tampered file cannot run code.

Splits: ``train`` (the five training batches / ``train``), ``test`` (``test_batch`` / ``test``) and
``probe`` = ``train`` (real datasets have no separate unconfounded environment; a probe is fitted
on the training images).
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import TensorImageDataset, check_split

__all__ = ["CIFAR10", "CIFAR100", "restricted_load", "CIFAR10_LAYOUT", "CIFAR100_LAYOUT"]

CIFAR10_LAYOUT = """<root>/
  cifar-10-batches-py/
    batches.meta        (dict: label_names)
    data_batch_1 .. data_batch_5   (dict: data uint8 (10000, 3072), labels list[int])
    test_batch
(<root> may also be the cifar-10-batches-py folder itself)"""

CIFAR100_LAYOUT = """<root>/
  cifar-100-python/
    meta                (dict: fine_label_names, coarse_label_names)
    train               (dict: data uint8 (50000, 3072), fine_labels, coarse_labels)
    test
(<root> may also be the cifar-100-python folder itself)"""

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's array reconstructor, whatever its module
_SCALAR = np.float64(0).__reduce__()[0]  # numpy's scalar reconstructor
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles written by python 3 store bytes
}


class _Forbidden(pickle.UnpicklingError):
    pass


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds builtin containers, bytes, numbers and numpy arrays/scalars."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise _Forbidden(f"refusing to load global {module}.{name} (not a numpy array part)")


def restricted_load(path: str | os.PathLike[str]) -> Any:
    """Unpickle ``path`` (``encoding='bytes'``, as CIFAR's python-2 pickles need) refusing any
    global other than numpy array parts.

    Raises:
        ValueError: the file is not a readable pickle or contains a forbidden global.
    """
    data = Path(path).read_bytes()
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except _Forbidden as exc:
        raise ValueError(f"{path}: {exc}") from exc
    except Exception as exc:
        raise ValueError(f"{path}: not a readable CIFAR pickle ({type(exc).__name__}: {exc})") from exc


def _decode_keys(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}
    return obj


def _names(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


class _CIFAR(TensorImageDataset):
    folder: str = ""
    layout: str = ""
    train_files: tuple[str, ...] = ()
    test_files: tuple[str, ...] = ()
    meta_file: str = ""

    def _resolve(self, root: str | os.PathLike[str] | None) -> Path:
        if root is None:
            env = os.environ.get("CAUSALCL_DATA")
            if not env:
                raise FileNotFoundError(
                    f"{type(self).__name__} needs a local copy: pass --data-root DIR on the command line, root= from "
                    "Python, or set CAUSALCL_DATA (nothing is downloaded). "
                    f"Expected layout:\n{self.layout}"
                )
            root = env
        root = Path(root).expanduser()
        for cand in (root / self.folder, root):
            if all((cand / f).is_file() for f in (self.meta_file, *self.train_files, *self.test_files)):
                return cand
        missing = [
            f
            for f in (self.meta_file, *self.train_files, *self.test_files)
            if not (root / self.folder / f).is_file()
        ]
        raise FileNotFoundError(
            f"{type(self).__name__}: no complete copy under {root} (missing {missing}). "
            f"Expected layout:\n{self.layout}"
        )

    def _read(self, base: Path, files: tuple[str, ...], label_key: str) -> tuple[np.ndarray, np.ndarray]:
        datas, labels = [], []
        for f in files:
            d = _decode_keys(restricted_load(base / f))
            if not isinstance(d, dict) or "data" not in d or label_key not in d:
                raise ValueError(
                    f"{base / f}: expected a dict with 'data' and {label_key!r}. "
                    f"Expected layout:\n{self.layout}"
                )
            data = np.asarray(d["data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3072:
                raise ValueError(f"{base / f}: 'data' must have shape (N, 3072), got {data.shape}")
            lab = np.asarray(d[label_key], dtype=np.int64)
            if lab.shape != (data.shape[0],):
                raise ValueError(
                    f"{base / f}: {label_key!r} has {lab.shape} entries for {data.shape[0]} images"
                )
            datas.append(data)
            labels.append(lab)
        return np.concatenate(datas).reshape(-1, 3, 32, 32), np.concatenate(labels)

    def _load(self, root: str | os.PathLike[str] | None, split: str, label_key: str, names_key: str) -> None:
        check_split(split)
        base = self._resolve(root)
        meta = _decode_keys(restricted_load(base / self.meta_file))
        if not isinstance(meta, dict) or names_key not in meta:
            raise ValueError(
                f"{base / self.meta_file}: expected a dict with {names_key!r}. "
                f"Expected layout:\n{self.layout}"
            )
        files = self.test_files if split == "test" else self.train_files
        images, labels = self._read(base, files, label_key)
        super().__init__(
            torch.from_numpy(images), torch.from_numpy(labels), _names(meta[names_key]), split=split
        )


class CIFAR10(_CIFAR):
    """CIFAR-10 (Krizhevsky 2009) from ``root`` (see :data:`CIFAR10_LAYOUT`); 32x32, 10 classes."""

    folder = "cifar-10-batches-py"
    layout = CIFAR10_LAYOUT
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files = ("test_batch",)
    meta_file = "batches.meta"

    def __init__(self, split: str = "train", root: str | os.PathLike[str] | None = None) -> None:
        self._load(root, split, "labels", "label_names")


class CIFAR100(_CIFAR):
    """CIFAR-100 from ``root`` (see :data:`CIFAR100_LAYOUT`).

    ``label_type``: ``fine`` (100 classes, default) or ``coarse`` (20 superclasses).
    """

    folder = "cifar-100-python"
    layout = CIFAR100_LAYOUT
    train_files = ("train",)
    test_files = ("test",)
    meta_file = "meta"

    def __init__(
        self, split: str = "train", root: str | os.PathLike[str] | None = None, label_type: str = "fine"
    ) -> None:
        if label_type not in ("fine", "coarse"):
            raise ValueError(f"label_type must be 'fine' or 'coarse', got {label_type!r}")
        self._load(root, split, f"{label_type}_labels", f"{label_type}_label_names")
