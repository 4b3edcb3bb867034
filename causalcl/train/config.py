"""Typed run configuration: dataclass defaults ← YAML file ← command-line flags ← ``--set key=value``.

Keys are dotted paths (``optim.lr``, ``train.steps``, ``method.temperature``). ``method.*`` keys
other than ``method.name`` are the chosen method's keyword arguments and are checked against its
constructor; ``data.options.*`` are passed to ``causalcl.data.get_dataset``. Unknown keys raise a
``ValueError`` naming the nearest valid key.

Every value is parsed to its field's declared type (``causalcl.train.typed``): ``1e-3`` and ``2E-4`` are
numbers, ``1e2`` is the integer 100 for an ``int`` field, ``true``/``false`` are booleans, lists become tuples
where the field is one; a value of the wrong type raises ``ValueError("optim.lr: expected a number, got
'abc'")``. ``check_values`` then refuses values out of range (``train.log_every: expected an integer >= 1,
got 0``). YAML is read with a ``yaml.SafeLoader`` subclass only (no Python tags); ``save_yaml`` writes
atomically.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .files import atomic_write
from .typed import YAML_LOADER, coerce, show

#: the ``train.amp`` modes (autocast dtypes; ``bf16`` runs on CPU too)
AMP_MODES = ("none", "bf16", "fp16")


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
    amp: str = "none"  # none | bf16 | fp16: autocast (bf16 also on CPU; fp16 with loss scaling, for GPUs)
    # torch.compile the method's forward (backbone, heads, loss; meta-steps stay eager): see README "GPU"
    compile: bool = False
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
                setattr(obj, part, coerce(dotted, _field_types(type(obj))[part], value))
            elif not dataclasses.is_dataclass(getattr(obj, part)) and not isinstance(getattr(obj, part), dict):
                raise ValueError(f"config key {'.'.join(parts[: i + 1])!r} is a value, not a section: "
                                 f"{dotted!r} does not exist")
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


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """The resolved type annotations of a config dataclass (``int``, ``float | None``, ``tuple[float, float]``)."""
    return typing.get_type_hints(cls)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` with the value read as YAML (``0.1``, ``1e-3`` → float, ``[1, 2]`` → list)."""
    if "=" not in text:
        raise ValueError(f"--set: expected key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ValueError(f"--set: expected key=value, got {text!r}")
    if not raw.strip():
        return key, None
    try:
        return key, yaml.load(raw, Loader=YAML_LOADER)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise ValueError(f"--set {key}: the value {raw!r} is not valid YAML ({_yaml_problem(exc)})") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error as one line: what went wrong and where (line, column)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}".replace("\n", " ")


def load_yaml(path: str | Path, *, allow_empty: bool = True) -> dict[str, Any]:
    """Read a YAML config file (a ``yaml.SafeLoader`` that also reads ``1e-3`` as a number).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for one that is not
    valid YAML (a Python tag such as ``!!python/object`` included), not a mapping, or empty when
    ``allow_empty`` is False."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} not found")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"config file {str(path)!r} could not be read: {exc}") from None
    try:
        values = yaml.load(text, Loader=YAML_LOADER)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise ValueError(f"config file {str(path)!r} is not valid YAML: {_yaml_problem(exc)}") from None
    if values is None:
        if not allow_empty:
            raise ValueError(f"config file {str(path)!r} is empty")
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"config file {str(path)!r}: expected a mapping at the top level, got {show(values)!r}")
    return values


def save_yaml(config: Config, path: str | Path) -> None:
    """Write the config as YAML atomically (a temporary file in the same folder, fsync, ``os.replace``)."""
    atomic_write(path, yaml.safe_dump(config.to_dict(), sort_keys=False).encode())


def _check(key: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise ValueError(f"{key}: expected {expected}, got {show(value)}")


def check_values(config: Config) -> None:
    """Refuse values of the right type but outside their range (``train.log_every=0``, ``--steps -5``), naming
    the key, before anything is built or written."""
    t, o, e = config.train, config.optim, config.eval
    _check("train.steps", t.steps, t.steps >= 1, "an integer >= 1")
    _check("train.epochs", t.epochs, t.epochs is None or t.epochs > 0, "a number > 0 (or null)")
    _check("train.batch_size", t.batch_size, t.batch_size >= 2, "an integer >= 2")
    _check("train.seed", t.seed, t.seed >= 0, "an integer >= 0")
    _check("train.checkpoint_every", t.checkpoint_every, t.checkpoint_every >= 0, "an integer >= 0 (0 = at the end)")
    _check("train.log_every", t.log_every, t.log_every >= 1, "an integer >= 1")
    _check("train.time_limit_s", t.time_limit_s, t.time_limit_s is None or t.time_limit_s >= 0,
           "seconds >= 0 (or null)")
    _check("train.threads", t.threads, t.threads is None or t.threads >= 1, "an integer >= 1 (or null)")
    _check("train.amp", t.amp, t.amp in AMP_MODES, f"one of {', '.join(AMP_MODES)}")
    _check("train.ddp_views", t.ddp_views, t.ddp_views in ("global", "local"), "global or local")
    _check("optim.lr", o.lr, o.lr > 0, "a number > 0")
    _check("optim.momentum", o.momentum, 0 <= o.momentum < 1, "a number in [0, 1)")
    _check("optim.weight_decay", o.weight_decay, o.weight_decay >= 0, "a number >= 0")
    _check("optim.warmup_steps", o.warmup_steps, o.warmup_steps >= 0, "an integer >= 0")
    _check("optim.grad_clip", o.grad_clip, o.grad_clip is None or o.grad_clip > 0, "a number > 0 (or null)")
    _check("data.image_size", config.data.image_size, config.data.image_size is None or config.data.image_size >= 16,
           "an integer >= 16 (or null)")
    _check("eval.knn_k", e.knn_k, e.knn_k >= 1, "an integer >= 1")
    _check("eval.knn_temperature", e.knn_temperature, e.knn_temperature > 0, "a number > 0")
    _check("eval.batch_size", e.batch_size, e.batch_size >= 1, "an integer >= 1")
    _check("eval.fgbg_steps", e.fgbg_steps, e.fgbg_steps >= 0, "an integer >= 0 (0 = skip)")
    _check("eval.fgbg_batch_size", e.fgbg_batch_size, e.fgbg_batch_size >= 2, "an integer >= 2")
    _check("eval.robustness_images", e.robustness_images, e.robustness_images >= 1, "an integer >= 1")
    _check("eval.cam_images", e.cam_images, e.cam_images >= 1, "an integer >= 1")
    a = config.augment
    for key in ("flip_p", "jitter_p", "grayscale_p", "blur_p", "background_swap_p"):
        value = getattr(a, key)
        _check(f"augment.{key}", value, 0 <= value <= 1, "a probability in [0, 1]")
