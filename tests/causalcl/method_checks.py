"""Checks shared by the per-method tests (imported as ``method_checks``: pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def assert_loss_drops(method: nn.Module, views: list[torch.Tensor], *, steps: int = 8, lr: float = 1e-3,
                      optimizer: type[torch.optim.Optimizer] = torch.optim.Adam) -> None:
    """``steps`` optimiser steps on one fixed batch of views lower ``method(views)["loss"]``."""
    opt = optimizer(method.parameters(), lr=lr)
    method.train()
    first = float(method(views)["loss"].detach())
    for _ in range(steps):
        out = method(views)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    last = float(method(views)["loss"].detach())
    assert last < first, f"loss did not drop over {steps} steps: {first} -> {last}"


def assert_state_round_trip(method: nn.Module, other: nn.Module, views: list[torch.Tensor], tmp_path: Path) -> None:
    """``method``'s state_dict saved and loaded into ``other`` (built differently) gives the same eval loss."""
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    method.eval(), other.eval()
    torch.testing.assert_close(method(views)["loss"], other(views)["loss"])
