"""Shared pieces of the methods with a momentum (EMA) target or a memory queue.

* ``frozen_copy(module)``: a deep copy with ``requires_grad=False`` (the target/key network).
* ``ema_update_(target, online, m)``: θ_t ← m·θ_t + (1 − m)·θ_o for parameters; buffers (BN running
  statistics) are copied from the online network, as in BYOL's and MoCo's official code.
* ``cosine_momentum(base, step, total)``: BYOL's schedule m = 1 − (1 − base)·(cos(πk/K) + 1)/2;
  ``scheduled_momentum(base, schedule, step, total)``: that schedule or a constant m (MoCo, ReSSL).
* ``FeatureQueue``: a FIFO of L2-normalised keys kept as buffers (so checkpoints carry it); under
  DDP the keys of every rank are enqueued (all ranks hold the same queue).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributed import gather_no_grad


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` whose parameters do not require gradients."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """In place: target parameters ← m·target + (1 − m)·online; target buffers ← online buffers."""
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum: expected a value in [0, 1], got {momentum}")
    t_params, o_params = list(target.parameters()), list(online.parameters())
    if len(t_params) != len(o_params):
        raise ValueError("ema_update_: target and online networks have different parameter lists")
    torch._foreach_lerp_(t_params, o_params, 1.0 - momentum)
    for tb, ob in zip(target.buffers(), online.buffers(), strict=True):
        tb.copy_(ob)


def cosine_momentum(base: float, step: int, total_steps: int) -> float:
    """BYOL's momentum schedule: ``1 − (1 − base)·(cos(π·step/total) + 1)/2``, from ``base`` to 1."""
    progress = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


#: the EMA momentum schedules of ``scheduled_momentum``
MOMENTUM_SCHEDULES = ("cosine", "constant")


def scheduled_momentum(base: float, schedule: str, step: int, total_steps: int) -> float:
    """The EMA rate of the update after optimiser step ``step`` (1-based) of ``total_steps``: ``"cosine"`` is
    ``cosine_momentum(base, step − 1, total_steps)`` (from ``base`` at the first update to 1, BYOL's indexing),
    ``"constant"`` is ``base``."""
    if schedule not in MOMENTUM_SCHEDULES:
        raise ValueError(f"momentum_schedule: expected one of {MOMENTUM_SCHEDULES}, got {schedule!r}")
    return base if schedule == "constant" else cosine_momentum(base, step - 1, total_steps)


class FeatureQueue(nn.Module):
    """A FIFO memory of ``size`` unit-norm keys of width ``dim`` (MoCo's negatives, ReSSL's bank).

    The queue starts as random unit vectors (as in MoCo's code). ``enqueue(keys)`` replaces the
    oldest entries with ``keys`` (gathered from every rank under DDP); ``size`` must be a multiple
    of the global batch for the pointer arithmetic to stay aligned, otherwise entries wrap around.
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size <= 0 or dim <= 0:
            raise ValueError(f"FeatureQueue: size and dim must be positive, got size={size}, dim={dim}")
        self.register_buffer("queue", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.queue.shape[0]

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        keys = gather_no_grad(keys.detach()).to(self.queue.dtype)
        n = keys.shape[0]
        if n >= self.size:
            self.queue.copy_(keys[-self.size:])
            self.ptr.zero_()
            return
        # the pointer stays on the device (no host sync per step)
        idx = (torch.arange(n, device=self.queue.device) + self.ptr) % self.size
        self.queue.index_copy_(0, idx, keys)
        self.ptr.copy_((self.ptr + n) % self.size)

    def forward(self) -> Tensor:
        """The current keys, (size, dim), detached."""
        return self.queue.detach()
