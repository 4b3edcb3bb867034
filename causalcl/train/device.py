"""``train.device`` checked before anything is built: a device this machine has, or one clear error."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(name: str | torch.device) -> torch.device:
    """``torch.device(name)`` after checking this machine can run on it.

    Raises:
        ValueError: naming ``train.device``: not a device name, CUDA (or MPS) asked for but not available, or a
            CUDA index beyond the GPUs present.
    """
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"train.device: expected cpu, cuda or cuda:N, got {name!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU was found"
            raise ValueError(f"train.device: {str(name)!r} was asked for, but CUDA is not available on this "
                             f"machine ({why}); use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"train.device: {str(name)!r} was asked for, but this machine has {count} CUDA "
                             f"device(s) (cuda:0 to cuda:{count - 1})")
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"train.device: {str(name)!r} was asked for, but MPS is not available on this machine")
    elif device.type != "cpu":
        raise ValueError(f"train.device: expected cpu, cuda, cuda:N or mps, got {str(name)!r}")
    return device
