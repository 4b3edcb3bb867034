"""Foreground/background diagnostics: does a representation rely on the object or on its background?

* :func:`variants` -- the ImageNet-9 background variants (Xiao et al., ICLR 2021) of any masked image set:
  original, only_fg, no_fg, only_bg (Only-BG-T), mixed_same, mixed_rand, mixed_next.
* :func:`bg_gap` -- acc(Mixed-Same) - acc(Mixed-Rand); :func:`background_variant_accuracies` and
  :func:`plot_variant_bars` measure and draw a classifier's accuracy per variant.
* :func:`full_vs_foreground` -- the ICL-MSR 2x2 protocol (train on full / foreground-only images x test on
  full / foreground-only images), returning a :class:`FullVsForegroundResult` (``.table``, ``.plot()``).
* :class:`ImageNet9`, :func:`in9_bg_gap`, :class:`Waterbirds`, :func:`worst_group_accuracy` -- readers and
  metrics for the real benchmarks from a local root.
"""

from __future__ import annotations

from .datasets import (
    IN9_CLASSES,
    IN9_VARIANTS,
    WATERBIRDS_GROUPS,
    WATERBIRDS_TRAIN_GROUP_COUNTS,
    ImageNet9,
    Waterbirds,
    WorstGroupResult,
    in9_bg_gap,
    worst_group_accuracy,
)
from .protocol import (
    FullVsForegroundResult,
    background_variant_accuracies,
    bg_gap,
    full_vs_foreground,
    plot_variant_bars,
    predict_classes,
)
from .variants import VARIANT_NAMES, variants

__all__ = [
    "FullVsForegroundResult",
    "IN9_CLASSES",
    "IN9_VARIANTS",
    "ImageNet9",
    "VARIANT_NAMES",
    "WATERBIRDS_GROUPS",
    "WATERBIRDS_TRAIN_GROUP_COUNTS",
    "Waterbirds",
    "WorstGroupResult",
    "background_variant_accuracies",
    "bg_gap",
    "full_vs_foreground",
    "in9_bg_gap",
    "plot_variant_bars",
    "predict_classes",
    "variants",
    "worst_group_accuracy",
]
