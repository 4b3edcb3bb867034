"""Typed run configuration: dataclass defaults ← YAML file ← command-line flags ← ``--set key=value``.

Keys are dotted paths (``optim.lr``, ``train.steps``, ``method.temperature``). ``method.*`` keys
other than ``method.name`` are the chosen method's keyword arguments and are checked against its
constructor; ``data.options.*`` are passed to ``causalcl.data.get_dataset``. Unknown keys raise a
``ValueError`` naming the nearest valid key. YAML is read with ``yaml.safe_load`` only.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class DataConfig:
    name: str = "shapes"
    root: str | None = None
    image_size: int | None = None  # None: the dataset's native size
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class AugmentConfig:
    """SimCLR augmentation (see ``causalcl.data.augment.SimCLRAugment``)."""

    scale: tuple[float, float] = (0.2, 1.0)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    views: str = "augment"  # augment | interventional (true counterfactuals on shapes/digits)
    intervene_on: list[str] | None = None  # interventional views: variables to intervene on (default: style latents)
    augment_counterfactuals: bool = False  # interventional views: also apply the pixel augmentation
    # do(background = b'): probability of pasting each view's object (by its mask) on a new background before the
    # pixel augmentation, for any method on a dataset with masks (causalcl.causal.background_swap; 0 = off)
    background_swap_p: float = 0.0
    background_swap_source: str = "batch"  # batch (another image's background) | texture (a procedural texture)
    background_swap_fill: str = "shift"  # the donor's object region: shift | mean | texture | donor (also ReLIC's)


@dataclass
class ModelConfig:
    backbone: str = "convnet_small"
    cifar_stem: bool = False
    channels_last: bool = True


@dataclass
class OptimConfig:
    name: str = "adamw"  # sgd | lars | adamw
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 1e-6
    warmup_steps: int = 50
    grad_clip: float | None = None


@dataclass
class TrainConfig:
    steps: int = 450
    epochs: float | None = None  # when set, overrides steps: epochs × (len(train) // batch_size)
    time_limit_s: float | None = None  # stop early after this many seconds of training (the schedule keeps `steps`)
    batch_size: int = 256
    seed: int = 0
    device: str = "cpu"
    checkpoint_every: int = 250
    log_every: int = 10
    threads: int | None = None
    amp: str = "none"  # none | bf16 | fp16 (autocast on GPU)
    tensorboard: bool = False  # also log to <out>/tensorboard (needs the `tensorboard` extra)
    # under torchrun: "global" = every rank augments the global batch and keeps its slice (same views as one
    # process), "local" = each rank augments only its slice with its own seed (cheaper, different draws)
    ddp_views: str = "global"
    ddp_find_unused_parameters: bool | None = None  # None: the method's `ddp_find_unused_parameters` attribute


@dataclass
class EvalConfig:
    diagnostics: list[str] = field(default_factory=lambda: ["all"])  # "all" = every one the dataset supports
    knn_k: int = 200
    knn_temperature: float = 0.1
    batch_size: int = 512
    fgbg_steps: int = 40  # pre-training steps of each encoder of the 2×2 full-vs-foreground protocol (0 = skip)
    fgbg_batch_size: int = 128
    robustness_images: int = 300  # test images corrupted (× 19 corruptions × 5 severities)
    cam_images: int = 256


@dataclass
class Config:
    method: dict[str, Any] = field(default_factory=lambda: {"name": "simclr"})
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        config = cls()
        config.update(values)
        return config

    def update(self, values: dict[str, Any], prefix: str = "") -> None:
        """Apply a nested dict of overrides (e.g. a parsed YAML file)."""
        for key, value in values.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict) and not _is_dict_field(self, dotted):
                self.update(value, prefix=f"{dotted}.")
            else:
                self.set(dotted, value)

    def set(self, dotted: str, value: Any) -> None:
        """Set one dotted key, validating that it exists."""
        parts = dotted.split(".")
        section = parts[0]
        if section == "method":
            if len(parts) == 1:
                if not isinstance(value, dict):
                    raise ValueError(f"config key 'method': expected a mapping, got {value!r}")
                self.method.update(value)
            else:
                self.method[".".join(parts[1:])] = value
            return
        obj: Any = self
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(obj, dict):
                if last:
                    obj[part] = value
                else:
                    obj = obj.setdefault(part, {})
                continue
            names = [f.name for f in dataclasses.fields(obj)]
            if part not in names:
                raise ValueError(_unknown_key(".".join(parts[: i + 1]), self))
            if last:
                setattr(obj, part, _coerce(getattr(obj, part), value))
            else:
                obj = getattr(obj, part)


def valid_keys(config: Config) -> list[str]:
    """All dotted keys of the dataclass part of the config."""
    keys: list[str] = []

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
            else:
                keys.append(f"{prefix}{f.name}")

    walk(config, "")
    return keys


def _unknown_key(key: str, config: Config) -> str:
    keys = valid_keys(config)
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"config key {key!r} does not exist{hint} (valid keys: {', '.join(keys)})"


def _is_dict_field(config: Config, dotted: str) -> bool:
    if dotted == "method":
        return True
    obj: Any = config
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(obj) or part not in {f.name for f in dataclasses.fields(obj)}:
            return False
        obj = getattr(obj, part)
    return isinstance(obj, dict)


def _coerce(current: Any, value: Any) -> Any:
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(current, bool) or current is None or isinstance(current, str):
        return value
    if isinstance(current, float) and isinstance(value, int):
        return float(value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` with the value read as YAML (``0.1`` → float, ``[1, 2]`` → list)."""
    if "=" not in text:
        raise ValueError(f"--set: expected key=value, got {text!r}")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw) if raw.strip() else None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file (``safe_load``); a missing file raises ``FileNotFoundError``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} not found")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"config file {str(path)!r}: expected a mapping at the top level")
    return values


def save_yaml(config: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
