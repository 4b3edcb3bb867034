"""What ``--resume`` may change: the checkpoint's config is the record of the run; a request that would change the
run is refused with the list of differences.

Every config key that decides what is trained — the method and its options, the backbone, the data and its
options, the augmentation, the batch size, the seed, the optimiser and its settings, AMP — must equal the
checkpoint's. :data:`FREE_KEYS` may differ: they change how long the run goes, where it runs, or what is
logged and diagnosed afterwards, not the steps already taken:

* ``train.steps`` / ``train.epochs``: the run is extended (or shortened, to no less than the steps already
  trained) and the schedule is re-planned (see ``causalcl.train.schedule.WarmupCosine.replan``);
* ``train.time_limit_s``, ``train.checkpoint_every``, ``train.log_every``, ``train.threads``, ``train.device``,
  ``train.tensorboard``, ``train.ddp_find_unused_parameters``, ``train.compile``, ``model.channels_last``
  (memory layout only);
* ``data.root``: where the data lies (its name, size and options are compared);
* ``eval.*``: the diagnostics run after training.

Method options are compared after filling in the constructor's defaults, so ``--set method.temperature=0.5``
on a run trained with the default 0.5 is no difference.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from .typed import show

__all__ = ["FREE_KEYS", "check_same_run", "constructor_defaults", "flatten", "run_differences"]

FREE_KEYS = ("train.steps", "train.epochs", "train.time_limit_s", "train.checkpoint_every", "train.log_every",
             "train.threads", "train.device", "train.tensorboard", "train.ddp_find_unused_parameters",
             "train.compile", "model.channels_last", "data.root", "eval.")

_UNSET = object()


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 0.1}}`` → ``{"optim.lr": 0.1}`` (nested mappings all the way down; lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):  # an empty mapping adds no key: {} and an unset option read the same
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = list(value) if isinstance(value, tuple) else value
    return flat


def _free(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in FREE_KEYS)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def run_differences(saved: dict[str, Any], requested: dict[str, Any],
                    method_defaults: dict[str, Any] | None = None) -> list[str]:
    """``["optim.lr: 0.002 → 0.05", ...]``: every key outside :data:`FREE_KEYS` whose value differs between the
    checkpoint's config ``saved`` and the ``requested`` one (both plain dicts, ``Config.to_dict()``).

    ``method_defaults``: the constructor defaults of the requested method, used for a ``method.<key>`` set on one
    side only (when both name the same method)."""
    old, new = flatten(saved), flatten(requested)
    same_method = old.get("method.name", "simclr") == new.get("method.name", "simclr")
    defaults = {f"method.{k}": v for k, v in (method_defaults or {}).items()} if same_method else {}
    lines = []
    for key in [*old, *(k for k in new if k not in old)]:
        if _free(key):
            continue
        a, b = old.get(key, defaults.get(key, _UNSET)), new.get(key, defaults.get(key, _UNSET))
        if not _same(a, b):
            lines.append(f"{key}: {_show(a)} → {_show(b)}")
    return lines


def _show(value: Any) -> str:
    return "(unset)" if value is _UNSET else show(value)


def constructor_defaults(cls: type) -> dict[str, Any]:
    """The keyword defaults of ``cls.__init__`` (a method's options as they are when not set)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def check_same_run(path: str | Path, held_method: str, saved: dict[str, Any], requested: dict[str, Any],
                   method_defaults: dict[str, Any] | None = None) -> None:
    """Refuse to resume the checkpoint at ``path`` (holding ``held_method`` trained with config ``saved``) as the
    run ``requested``: another method or backbone is named; other differences are listed as
    ``key: checkpoint → requested`` (:func:`run_differences`). One ``ValueError``, one line."""
    path = Path(path)
    held = (str(held_method), str(saved.get("model", {}).get("backbone")))
    wanted = (str(requested.get("method", {}).get("name", "simclr")), str(requested.get("model", {}).get("backbone")))
    if held != wanted:
        raise ValueError(f"checkpoint {str(path)!r} holds a {held[0]!r} model on backbone {held[1]!r}, not the "
                         f"requested {wanted[0]!r} on {wanted[1]!r}; it cannot be resumed as this run (start a new "
                         "run in another --out)")
    diffs = run_differences(saved, requested, method_defaults)
    if diffs:
        raise ValueError(f"--resume: the run in {str(path.parent)!r} was trained with other settings "
                         f"(checkpoint → requested): {'; '.join(diffs)}. A resumed run keeps its settings: only "
                         "train.steps/epochs and what does not change the training (device, threads, logging, "
                         "checkpointing, data.root, eval.*) may differ; start a new run in another --out to change "
                         "them")
