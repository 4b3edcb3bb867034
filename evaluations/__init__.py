"""Evaluation layer: probe, measure and report what a frozen representation encodes.

Works on any ``nn.Module`` encoder or on precomputed features (torch tensors or numpy arrays) and imports
nothing from ``causalcl``. Top-level functions::

    extract_features(encoder, data, *, batch_size=256, device=None) -> Features
    knn_predict(train_x, train_y, test_x, *, k=200, temperature=0.1, num_classes=None) -> Tensor
    knn_accuracy(train_x, train_y, test_x, test_y, *, k=200, temperature=0.1) -> float
    linear_probe(train_x, train_y, test_x, test_y, *, weight_decay=None, max_iter=1000) -> ProbeResult

Submodules (imported on first access): ``spectrum`` (DirectCLR spectrum, RankMe, alpha-ReQ), ``geometry``
(alignment, uniformity), ``report`` (Report), and the robustness / foreground / grounding / identifiability
diagnostics. Bad input raises ``ValueError`` naming the argument and what was expected.
"""

from __future__ import annotations

import importlib
from typing import Any

from .features import Features, extract_features
from .knn import knn_accuracy, knn_predict
from .linear import ProbeResult, linear_probe

__all__ = [
    "Features",
    "ProbeResult",
    "extract_features",
    "knn_accuracy",
    "knn_predict",
    "linear_probe",
]

_SUBMODULES = {"spectrum", "geometry", "report", "robustness", "foreground", "grounding", "identifiability"}


def __getattr__(name: str) -> Any:
    """Import submodules lazily, so ``evaluations.spectrum`` works after a bare ``import evaluations``."""
    if name in _SUBMODULES:
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise  # a dependency of the submodule is missing: show that error
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from err
    if name == "Report":
        return importlib.import_module(".report", __name__).Report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | {"Report"})
