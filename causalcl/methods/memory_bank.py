"""The memory bank of NPID and PIRL: one unit vector per training item, with NCE's normalising constant.

``MemoryBank(dim)`` holds, as buffers (so checkpoints carry them):

* ``bank`` (n, dim): one L2-normalised vector per training item, allocated by ``allocate(n)`` (methods call it
  from ``Method.bind_dataset``, which the Trainer calls with ``len(dataset)``); initialised uniformly in
  [-1/sqrt(dim/3), 1/sqrt(dim/3)] (lemniscate's init) and normalised (VISSL's ``norm_init``), from a generator
  seeded by ``seed``, so every process of a DDP run builds the same bank;
* ``normalizer``: NCE's constant Z, negative until it is estimated on the first step (``next_normalizer``: then
  kept, as NPID, or a moving average of the per-step estimates, as Kaiming He suggested for CMC's NCE,
  HobbitLong/CMC#23);
* ``step``: the number of updates so far, which seeds the noise draw of each step;
* ``seed``: drawn from torch's global generator at construction (``build_method`` seeds it).

``noise(m)``: m item indices drawn uniformly with replacement, the same on every rank and a function of
(seed, step) only, so a resumed run draws what the uninterrupted run would have. ``update(indices, features,
momentum)``: v_i <- normalize(m v_i + (1 - m) f_i) at the given rows (the gathered global batch under DDP).
Loading a checkpoint resizes the bank to the checkpoint's row count.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import instance_nce_normalizer, value_checks_deferred

#: odd 64-bit constant that spreads consecutive steps over the seed space
_GOLDEN = 0x9E3779B97F4A7C15


class MemoryBank(nn.Module):
    """One unit vector per training item (see the module docstring)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"embedding_dim: expected a positive int, got {dim!r}")
        self.register_buffer("bank", torch.zeros(0, dim))
        self.register_buffer("normalizer", torch.tensor(-1.0))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("seed", torch.randint(0, 2**62, (), dtype=torch.long))
        self._host: list[int] | None = None  # [seed, step] mirrored on the host (no device read per step)

    @property
    def num_items(self) -> int:
        return self.bank.shape[0]

    def _host_state(self) -> list[int]:
        """[seed, step] as Python ints: read from the buffers once (after a load, or DDP's first broadcast), then
        kept in step by ``update``."""
        if self._host is None:
            self._host = [int(self.seed), int(self.step)]
        return self._host

    def _generator(self, salt: int) -> torch.Generator:
        gen = torch.Generator(device=self.bank.device)
        return gen.manual_seed((self._host_state()[0] + salt * _GOLDEN) % 2**63)

    @torch.no_grad()
    def allocate(self, num_items: int) -> None:
        """A fresh bank of ``num_items`` rows (kept when it already has that many)."""
        if isinstance(num_items, bool) or not isinstance(num_items, int) or num_items < 2:
            raise ValueError(f"num_items: a memory bank needs at least 2 training items, got {num_items!r}")
        if num_items == self.num_items:
            return
        dim, stdv = self.bank.shape[1], 1.0 / math.sqrt(self.bank.shape[1] / 3)
        gen = torch.Generator().manual_seed(int(self.seed) % 2**63)  # on the CPU: the same bank on every device
        init = (torch.rand(num_items, dim, generator=gen, dtype=torch.float64) * 2 - 1) * stdv
        self.bank = F.normalize(init, dim=1).to(self.bank.dtype).to(self.bank.device)

    def check_indices(self, indices: Tensor | None, rows: int, method: str) -> Tensor:
        """``indices`` as given by ``Method.set_batch_indices``, checked against the batch and the bank."""
        if self.num_items == 0:
            raise ValueError(f"{method}: the memory bank is empty; call bind_dataset(len(dataset)) first "
                             "(causalcl.train.Trainer does)")
        if indices is None:
            raise ValueError(f"{method}: needs the dataset indices of the batch; call set_batch_indices(indices) "
                             "before forward (causalcl.train.Trainer does with every batch)")
        if indices.shape != (rows,):
            raise ValueError(f"indices: expected one dataset index per row of the views ({rows}), "
                             f"got shape {tuple(indices.shape)}")
        if not value_checks_deferred() and bool(((indices < 0) | (indices >= self.num_items)).any()):
            raise ValueError(f"indices: expected dataset indices in [0, {self.num_items}), got "
                             f"[{int(indices.min())}, {int(indices.max())}]")
        return indices.to(self.bank.device)

    @torch.no_grad()
    def next_normalizer(self, z: Tensor, positive: Tensor, negatives: Tensor, temperature: float,
                        momentum: float | None) -> Tensor | None:
        """NCE's Z for this step when it changes, else ``None`` (the kept ``normalizer`` applies): this batch's
        estimate (``instance_nce_normalizer``) on the first step; with ``momentum`` mu, mu Z + (1 - mu) Z_batch on
        every later step. The caller keeps the returned value after the optimiser step (``forward`` changes no
        state)."""
        kept = float(self.normalizer)
        if kept > 0 and momentum is None:
            return None
        estimate = instance_nce_normalizer(z, positive, negatives, num_items=self.num_items, temperature=temperature)
        return estimate if kept <= 0 else momentum * self.normalizer + (1 - momentum) * estimate

    def noise(self, m: int) -> Tensor:
        """m indices drawn uniformly with replacement from the bank, a function of (seed, step)."""
        gen = self._generator(self._host_state()[1] + 1)
        return torch.randint(0, self.num_items, (m,), generator=gen, device=self.bank.device)

    @torch.no_grad()
    def update(self, indices: Tensor, features: Tensor, momentum: float) -> None:
        """v_i <- normalize(m v_i + (1 - m) f_i) at ``indices`` (f_i normalised first); then step += 1."""
        feats = F.normalize(features.detach().to(self.bank.dtype), dim=1)
        rows = self.bank.index_select(0, indices)
        self.bank.index_copy_(0, indices, F.normalize(momentum * rows + (1 - momentum) * feats, dim=1))
        self._host_state()[1] += 1
        self.step += 1

    def apply(self, pending: tuple[Tensor, Tensor, Tensor | None] | None, momentum: float) -> None:
        """The update a forward left for after the optimiser step (``on_step_end`` of NPID and PIRL): ``pending`` =
        (indices, features, Z estimated on this step or ``None``); Z, once estimated, is kept. ``None``: nothing."""
        if pending is None:
            return
        indices, features, new_z = pending
        if new_z is not None:
            self.normalizer.fill_(float(new_z))
        self.update(indices, features, momentum)

    def forward(self) -> Tensor:
        """The bank, (n, dim), detached."""
        return self.bank.detach()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: ANN001
        saved = state_dict.get(prefix + "bank")
        if isinstance(saved, Tensor) and saved.shape != self.bank.shape:
            self.bank = torch.empty(saved.shape, dtype=self.bank.dtype, device=self.bank.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._host = None  # read the loaded seed and step again
