"""Optimiser construction from an ``OptimConfig``."""

from __future__ import annotations

import torch
from torch import nn

from .config import OptimConfig
from .lars import LARS

OPTIMIZERS = ("sgd", "lars", "adamw")


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """SGD (momentum, decoupled from nothing), LARS, or AdamW; no weight decay on biases and norms."""
    if config.name not in OPTIMIZERS:
        raise ValueError(f"optim.name: unknown optimiser {config.name!r}; valid names are {list(OPTIMIZERS)}")
    source = getattr(model, "optim_parameters", model.parameters)  # a Method may keep meta-learners out
    params = [p for p in source() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.name == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    if config.name == "lars":
        return LARS(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(groups, lr=config.lr)
