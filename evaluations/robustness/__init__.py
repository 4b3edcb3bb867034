"""Corruption and rendition robustness (Hendrycks & Dietterich, ICLR 2019; Hendrycks et al., ICCV 2021).

::

    CORRUPTIONS                     # 15 benchmark corruptions (ImageNet-C order) + 4 extra
    corrupt(images, name, severity, *, preset="auto", seed=0)      # batched, seeded per image
    ALEXNET_ERRORS, ALEXNET_CLEAN_ERROR, PROVENANCE
    mce(errors), relative_mce(errors, clean_error)                   # in %
    render(images, style, *, strength=1.0), RENDITIONS               # OpenCV renditions
    corruption_errors(model, data, ...) -> CorruptionResult          # "synthetic corruptions"
    read_cifar10_c, read_imagenet_c, read_imagenet_r, imagenet_r_logit_mask, top1_error

Imports nothing from ``causalcl``.
"""

from __future__ import annotations

from ._textures import frost_source
from .alexnet import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS, PROVENANCE
from .corruptions import corrupt, corruption_params
from .evaluate import CorruptionResult, corruption_errors, top1_error
from .metrics import mce, relative_mce
from .params import BENCHMARK_CORRUPTIONS, CORRUPTIONS, EXTRA_CORRUPTIONS, GROUPS
from .readers import ImageFolderData, imagenet_r_logit_mask, read_cifar10_c, read_imagenet_c, read_imagenet_r
from .render import RENDITIONS, render

__all__ = [
    "ALEXNET_CLEAN_ERROR",
    "ALEXNET_ERRORS",
    "BENCHMARK_CORRUPTIONS",
    "CORRUPTIONS",
    "EXTRA_CORRUPTIONS",
    "GROUPS",
    "PROVENANCE",
    "RENDITIONS",
    "CorruptionResult",
    "ImageFolderData",
    "corrupt",
    "corruption_errors",
    "corruption_params",
    "frost_source",
    "imagenet_r_logit_mask",
    "mce",
    "read_cifar10_c",
    "read_imagenet_c",
    "read_imagenet_r",
    "relative_mce",
    "render",
    "top1_error",
]
