"""Mean corruption error (mCE) and relative mCE (Hendrycks & Dietterich, ICLR 2019).

With ``E[c][s]`` the top-1 error (a fraction) on corruption ``c`` at severity ``s``:

* ``CE_c = sum_s E[c][s] / sum_s E_AlexNet[c][s]``; ``mCE = 100 * mean_c CE_c``
* ``relCE_c = sum_s (E[c][s] - E_clean) / sum_s (E_AlexNet[c][s] - E_AlexNet_clean)``;
  ``relative mCE = 100 * mean_c relCE_c``

The mean runs over the corruptions present in ``errors``; the published figure needs all 15 benchmark
corruptions of real ImageNet-C. No AlexNet normaliser exists for CIFAR-10-C or user-generated corruptions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .alexnet import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS

__all__ = ["mce", "relative_mce"]


def _fraction(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) and not hasattr(value, "__float__"):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    v = float(value)  # type: ignore[arg-type]
    if not math.isfinite(v) or v < 0.0 or v > 1.0:
        raise ValueError(f"{name}: expected an error rate as a fraction in [0, 1] (not percent), got {v}")
    return v


def _pairs(errors: Mapping[str, Sequence[float]], baseline: Mapping[str, Sequence[float]]
           ) -> list[tuple[list[float], list[float]]]:
    if not isinstance(errors, Mapping) or len(errors) == 0:
        raise ValueError("errors: expected a non-empty mapping {corruption: [e1, ..., e5]}")
    out = []
    for name, values in errors.items():
        if name not in baseline:
            raise ValueError(
                f"errors: no baseline error for corruption {name!r}; the baseline covers: {', '.join(baseline)}"
            )
        ref = [_fraction(v, f"baseline[{name!r}]") for v in baseline[name]]
        try:
            items = list(values) if not isinstance(values, str | bytes) else None
        except TypeError:
            items = None
        if items is None:
            raise ValueError(f"errors[{name!r}]: expected a sequence of {len(ref)} per-severity errors, got {values!r}")
        vals = [_fraction(v, f"errors[{name!r}]") for v in items]
        if len(vals) != len(ref):
            raise ValueError(
                f"errors[{name!r}]: expected {len(ref)} per-severity errors (as the baseline), got {len(vals)}"
            )
        out.append((vals, ref))
    return out


def mce(errors: Mapping[str, Sequence[float]], *, baseline: Mapping[str, Sequence[float]] = ALEXNET_ERRORS
        ) -> float:
    """Mean corruption error in percent over the corruptions in ``errors`` (fractions per severity)."""
    pairs = _pairs(errors, baseline)
    ces = []
    for vals, ref in pairs:
        denom = sum(ref)
        if denom <= 0:
            raise ValueError("baseline: per-corruption error sums must be > 0")
        ces.append(sum(vals) / denom)
    return 100.0 * sum(ces) / len(ces)


def relative_mce(errors: Mapping[str, Sequence[float]], clean_error: float, *,
                 baseline: Mapping[str, Sequence[float]] = ALEXNET_ERRORS,
                 baseline_clean: float = ALEXNET_CLEAN_ERROR) -> float:
    """Relative mCE in percent: error increases over the clean error, normalised by AlexNet's increases."""
    clean = _fraction(clean_error, "clean_error")
    base_clean = _fraction(baseline_clean, "baseline_clean")
    pairs = _pairs(errors, baseline)
    rels = []
    for vals, ref in pairs:
        denom = sum(r - base_clean for r in ref)
        if denom <= 0:
            raise ValueError("baseline: per-corruption errors must exceed baseline_clean on average")
        rels.append(sum(v - clean for v in vals) / denom)
    return 100.0 * sum(rels) / len(rels)
