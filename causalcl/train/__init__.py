"""Configuration, optimisers, schedules, checkpoints and the Trainer."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import (
    AugmentConfig,
    Config,
    DataConfig,
    EvalConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    load_yaml,
    parse_assignment,
    save_yaml,
)
from .lars import LARS
from .optim import build_optimizer
from .schedule import WarmupCosine
from .trainer import NonFiniteLossError, Trainer, TrainingInterrupted, TrainResult

__all__ = [
    "LARS", "AugmentConfig", "Config", "DataConfig", "EvalConfig", "ModelConfig", "NonFiniteLossError",
    "OptimConfig", "TrainConfig", "TrainResult", "Trainer", "TrainingInterrupted", "WarmupCosine", "build_optimizer",
    "load_checkpoint", "load_yaml", "parse_assignment", "save_checkpoint", "save_yaml",
]
