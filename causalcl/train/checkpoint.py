"""Atomic checkpoints: write to a temporary file in the same folder, fsync, then ``os.replace``.

A reader never sees a partial file: a run killed at any moment leaves either the previous complete
checkpoint or the new one (and perhaps a ``.checkpoint.pt.*.tmp`` file, removed at the next start).
Loading uses ``torch.load(weights_only=True)``, which refuses pickles that carry code.
:func:`check_run_checkpoint` checks what a resume needs: a Trainer checkpoint (every key present) with
finite weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .config import Config
from .files import atomic_write

#: the keys every checkpoint written by ``causalcl.train.Trainer`` holds
RUN_KEYS = ("model", "optimizer", "scheduler", "step", "total_steps", "rng", "config", "method")


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Atomically write ``state`` (tensors, numbers, strings, lists, dicts) to ``path``.

    Raises:
        OSError: the file could not be written (disk full, read-only folder); the message names it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a missing file raises ``FileNotFoundError``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors, truncated files
        reason = " ".join(str(exc).split())[:300]
        raise ValueError(f"checkpoint {str(path)!r} could not be loaded safely (a truncated or damaged file, or a "
                         f"pickle that holds code): {reason}") from exc


def non_finite_tensor(tensors: dict[str, Any]) -> str | None:
    """The name of the first floating tensor of ``tensors`` that holds a NaN or inf, or ``None``."""
    for name, value in tensors.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return name
    return None


def check_run_checkpoint(state: Any, path: str | Path) -> dict[str, Any]:
    """``state`` if it is a Trainer checkpoint a run can resume from, else ``ValueError`` naming ``path``:
    every key of :data:`RUN_KEYS` present, the model a mapping of tensors, every weight finite."""
    path = Path(path)
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {str(path)!r} holds a {type(state).__name__}, not a causalcl training state")
    missing = [k for k in RUN_KEYS if k not in state]
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} is missing the key(s) {', '.join(missing)}: it was not written "
                         "by causalcl's Trainer (or by an older version) and cannot be resumed")
    if not isinstance(state["model"], dict) or not isinstance(state["config"], dict):
        raise ValueError(f"checkpoint {str(path)!r}: 'model' and 'config' must be mappings; it cannot be resumed")
    try:
        Config.from_dict(state["config"])
    except ValueError as exc:
        raise ValueError(f"checkpoint {str(path)!r}: its config is not valid ({exc}); it cannot be resumed") from None
    bad = non_finite_tensor(state["model"])
    if bad is not None:
        raise ValueError(f"checkpoint {str(path)!r} holds non-finite weights (NaN/inf in {bad!r}, step "
                         f"{state['step']}); it cannot be resumed — start a new run")
    return state
