"""Shared input validation for the evaluation layer.

Every public function of :mod:`evaluations` accepts torch tensors or numpy arrays and turns bad input into a
``ValueError`` whose message names the offending argument and says what was expected. The helpers here do
the conversion and the checks once, so the messages read the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "as_features",
    "as_labels",
    "check_int",
    "check_positive_float",
    "check_same_dim",
    "check_same_length",
]


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"torch.Tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, np.ndarray):
        return f"numpy array of shape {x.shape} and dtype {x.dtype}"
    return type(x).__name__


def _to_tensor(x: Any, name: str) -> torch.Tensor:
    """Turn a tensor, numpy array or nested sequence of numbers into a tensor (no copy when possible)."""
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        if x.dtype == object or x.dtype.kind in "USV":
            raise ValueError(f"{name}: expected a numeric array, got {_describe(x)}")
        if x.dtype.kind in "iub" or x.dtype.kind == "f":
            return torch.from_numpy(np.ascontiguousarray(x))
        raise ValueError(f"{name}: expected a real-valued numeric array, got {_describe(x)}")
    if x is None or isinstance(x, str | bytes | dict):
        raise ValueError(f"{name}: expected a torch tensor or numpy array, got {_describe(x)}")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:  # ragged lists and the like
        raise ValueError(f"{name}: expected a torch tensor or numpy array, got {_describe(x)}") from err
    if arr.dtype == object or arr.dtype.kind not in "iubf":
        raise ValueError(f"{name}: expected a torch tensor or numpy array of numbers, got {_describe(x)}")
    return torch.from_numpy(np.ascontiguousarray(arr))


def as_features(
    x: Any,
    name: str,
    *,
    ndim: int = 2,
    dtype: torch.dtype | None = None,
    min_rows: int = 1,
    min_cols: int = 1,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Validate a real-valued feature array and return it as a floating tensor.

    Checks: numeric dtype (integers and bools are promoted, complex is refused), ``ndim`` dimensions, at
    least ``min_rows`` rows and ``min_cols`` columns, and only finite values. Floating input keeps its
    precision unless ``dtype`` is given; integer input becomes float32. The result stays on the input's
    device unless ``device`` is given.
    """
    t = _to_tensor(x, name)
    if t.is_complex():
        raise ValueError(f"{name}: expected real-valued features, got {_describe(t)}")
    if t.dim() != ndim:
        what = "a 2-D (n_samples, n_features) array" if ndim == 2 else f"a {ndim}-D array"
        raise ValueError(f"{name}: expected {what}, got {_describe(t)}")
    if t.shape[0] < min_rows:
        raise ValueError(
            f"{name}: expected at least {min_rows} sample(s) (rows), got {t.shape[0]} ({_describe(t)})"
        )
    if ndim >= 2 and t.shape[1] < min_cols:
        raise ValueError(f"{name}: expected at least {min_cols} feature(s) (columns), got {_describe(t)}")
    if device is not None:
        t = t.to(device)
    if dtype is not None:
        t = t.to(dtype)
    elif not t.is_floating_point():
        t = t.to(torch.float32)
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"{name}: expected only finite values, found {bad} NaN/inf entries ({_describe(t)})")
    return t


def as_labels(
    y: Any,
    name: str,
    *,
    n: int | None = None,
    num_classes: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Validate integer class labels and return them as a 1-D ``torch.long`` tensor.

    Accepts integer (or bool) arrays, and floating arrays whose values are all whole numbers. Checks the
    length against ``n`` when given, and the range ``0 <= y < num_classes`` (only ``y >= 0`` when
    ``num_classes`` is None).
    """
    t = _to_tensor(y, name)
    if t.dim() != 1:
        raise ValueError(f"{name}: expected a 1-D array of integer class labels, got {_describe(t)}")
    if t.numel() == 0:
        raise ValueError(f"{name}: expected at least one label, got an empty array")
    if n is not None and t.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels (one per sample), got {t.shape[0]}")
    if t.is_complex():
        raise ValueError(f"{name}: expected integer class labels, got {_describe(t)}")
    if t.is_floating_point():
        if not bool(torch.isfinite(t).all()) or not bool((t == t.round()).all()):
            raise ValueError(
                f"{name}: expected integer class labels, got non-integer values ({_describe(t)})"
            )
    if device is not None:
        t = t.to(device)
    t = t.to(torch.long)
    lo = int(t.min())
    if lo < 0:
        raise ValueError(f"{name}: class labels must be >= 0, found {lo}")
    if num_classes is not None:
        hi = int(t.max())
        if hi >= num_classes:
            raise ValueError(
                f"{name}: class labels must lie in [0, {num_classes}) (num_classes={num_classes}), found {hi}"
            )
    return t


def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int after checking ``low <= value <= high`` (bounds optional, inclusive)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name}: expected an integer, got {value!r} ({type(value).__name__})")
    v = int(value)
    if low is not None and v < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {v}")
    if high is not None and v > high:
        raise ValueError(f"{name}: expected an integer <= {high}, got {v}")
    return v


def check_positive_float(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite float > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name}: expected a number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite number {bound}, got {v}")
    return v


def check_same_dim(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Both 2-D arrays must have the same number of feature columns."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name_b}: expected {a.shape[1]} feature columns to match {name_a}, got {b.shape[1]} "
            f"({name_a} has shape {tuple(a.shape)}, {name_b} has shape {tuple(b.shape)})"
        )


def check_same_length(arrays: Sequence[torch.Tensor], names: Sequence[str]) -> None:
    """All arrays must have the same number of rows."""
    n0 = arrays[0].shape[0]
    for a, nm in zip(arrays[1:], names[1:], strict=True):
        if a.shape[0] != n0:
            raise ValueError(
                f"{nm}: expected {n0} rows to match {names[0]}, got {a.shape[0]} "
                f"({names[0]} has shape {tuple(arrays[0].shape)}, {nm} has shape {tuple(a.shape)})"
            )
