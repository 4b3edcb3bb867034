"""The training loop: batches, views, loss, optimiser, schedule, logging, checkpoints, resume.

Randomness is derived from (seed, step) rather than carried along: the batch order of each epoch
comes from a generator seeded with (seed, epoch) and each step's augmentation from one seeded with
(seed, step). A resumed run therefore replays exactly the batches and views the uninterrupted run
would have seen, and on CPU ends with bit-identical weights.

Distributed (``torchrun --nproc_per_node W``, see ``causalcl.train.ddp``): ``train.batch_size`` is
the GLOBAL batch B. The indices of a step are still drawn from (seed, step) — the same on every
rank — and rank r keeps the contiguous slice ``[r·B/W, (r+1)·B/W)``: DistributedSampler's job
without its object, and in the order that ``gather`` concatenates, so the gathered embeddings are
those of one process, row for row. Views (``train.ddp_views``):

* ``"global"`` (default): every rank loads the B images and draws the views of the whole batch
  with the step's single generator, then keeps its slice. The augmentation draws its random numbers
  batch-wise, so this is the only way to give each sample the same view as one process; it costs
  W× the augmentation (not the network) per rank, small next to the forward/backward on GPU.
* ``"local"``: each rank loads and augments only its slice with a generator seeded from
  (seed, step, rank): cheaper, still deterministic, but the draws differ from one process.

With batch norm synchronised and losses on the gathered global batch, the DDP-averaged gradient is
the one-process gradient (``tests/causalcl/test_distributed.py`` checks loss and every gradient).
Rank 0 alone writes the CSV/TensorBoard log and the checkpoint and shows the progress bar; every
rank loads the checkpoint on resume (the output folder must be visible to every rank). Hooks
(``make_views``, ``meta_step``, ``on_step_end``, ``encoder``) are called on the unwrapped method.
DDP averages the gradients of the parameters the Trainer's optimiser steps; trainable parameters
outside ``optim_parameters()`` (meta-learners updated in ``meta_step``) are left to the method, which
must average their gradients over ranks itself (``all_reduce_sum(g) / world_size()``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import distributed as dist_utils
from ..losses import NonFiniteEmbeddingError
from ..methods.base import Method
from . import ddp
from .checkpoint import load_checkpoint, save_checkpoint
from .config import Config
from .log import CSVLog, TensorBoardLog
from .malloc import keep_freed_memory
from .optim import build_optimizer
from .schedule import WarmupCosine

#: a view function maps (images (B,3,H,W) in [0,1], batch indices, generator) to a list of views
ViewFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator], list[torch.Tensor]]


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; carries the step, the loss terms and the last good checkpoint."""

    def __init__(self, step: int, terms: dict[str, object], checkpoint: Path | None) -> None:
        self.step, self.terms, self.checkpoint = step, terms, checkpoint
        where = f"the last good checkpoint is {str(checkpoint)!r}" if checkpoint else "no checkpoint was written yet"
        super().__init__(f"non-finite loss at step {step}: terms {terms}; training stopped, {where}")


@dataclass
class TrainResult:
    steps: int
    total_steps: int
    seconds: float
    checkpoint: Path
    log: Path
    stopped_early: bool


def _derived_seed(seed: int, salt: int, index: int) -> int:
    return (seed * 1_000_003 + salt * 7_919 + index) % (2**63 - 1)


class Trainer:
    """Trains ``method`` on ``dataset`` (anything with ``__len__`` and ``get_batch(indices)``).

    Args:
        method: a ``causalcl.methods.Method``.
        dataset: the training split.
        view_fn: turns a batch into views (e.g. ``SimCLRAugment.views``).
        config: the run configuration (``train``, ``optim`` sections are used).
        out_dir: where ``train_log.csv`` and ``checkpoint.pt`` go.
        distributed: ``None`` (default): train with DDP when launched by torchrun (``WORLD_SIZE > 1``)
            or inside an initialised process group; ``False``: always one process. A process group
            the Trainer initialises itself is destroyed at the end of :meth:`fit`.
    """

    def __init__(self, method: Method, dataset, view_fn: ViewFn, config: Config, out_dir: str | Path,
                 distributed: bool | None = None) -> None:
        self.config = config
        tc = config.train
        if distributed is None:
            distributed = ddp.launched_with_torchrun() or dist_utils.is_distributed()
        self.owns_process_group = ddp.setup(tc.device) if distributed else False
        self.distributed = distributed and dist_utils.is_distributed()
        self.rank = dist_utils.rank() if self.distributed else 0
        self.world_size = dist_utils.world_size() if self.distributed else 1
        self.device = ddp.local_device(tc.device) if self.distributed else torch.device(tc.device)
        if self.device.type == "cpu":
            keep_freed_memory()
        self.method = method.to(self.device)
        self.dataset = dataset
        self.view_fn = view_fn
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = self.out_dir / "checkpoint.pt"
        self.log_path = self.out_dir / "train_log.csv"
        if tc.batch_size < 2:
            raise ValueError(f"train.batch_size: expected at least 2, got {tc.batch_size}")
        if tc.batch_size % self.world_size:
            raise ValueError(f"train.batch_size: the global batch {tc.batch_size} must be divisible by the "
                             f"number of processes ({self.world_size})")
        if tc.ddp_views not in ("global", "local"):
            raise ValueError(f"train.ddp_views: expected 'global' or 'local', got {tc.ddp_views!r}")
        n = len(dataset)
        if n < tc.batch_size:
            raise ValueError(f"train.batch_size: {tc.batch_size} is larger than the training set ({n} items)")
        self.steps_per_epoch = n // tc.batch_size
        self.total_steps = (
            max(1, round(tc.epochs * self.steps_per_epoch)) if tc.epochs is not None else int(tc.steps)
        )
        if self.total_steps <= 0:
            raise ValueError(f"train.steps: expected a positive number of steps, got {self.total_steps}")
        self.model: torch.nn.Module = self.method  # what forward goes through: the method or its DDP wrapper
        if self.distributed:  # synchronised BN replaces layers: before the optimiser collects the parameters
            self.method = ddp.convert_sync_batchnorm(self.method, self.device)
        self.optimizer = build_optimizer(self.method, config.optim)
        if self.distributed:
            find_unused = tc.ddp_find_unused_parameters
            if find_unused is None:
                find_unused = bool(getattr(self.method, "ddp_find_unused_parameters", False))
            stepped = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
            own = [k for k, p in self.method.named_parameters() if p.requires_grad and id(p) not in stepped]
            self.model = ddp.wrap(self.method, self.device, find_unused_parameters=find_unused, ignore=own)
        self.scheduler = WarmupCosine(self.optimizer, self.total_steps, config.optim.warmup_steps)
        self.step = 0
        self._epoch_order: tuple[int, torch.Tensor] | None = None
        self.channels_last = config.model.channels_last
        amp_types = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
        if tc.amp not in amp_types:
            raise ValueError(f"train.amp: expected one of {list(amp_types)}, got {tc.amp!r}")
        self.amp_dtype = amp_types[tc.amp]
        # fp16 needs loss scaling; bf16 and fp32 do not (a disabled scaler is a pass-through)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=tc.amp == "fp16")

    # --- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"model": self.method.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step": self.step, "total_steps": self.total_steps,
                "rng": rng, "config": self.config.to_dict(), "method": self.method.name}

    def load_state_dict(self, state: dict) -> None:
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    def save(self) -> Path:
        """Rank 0 writes the checkpoint (atomically); every rank waits for it."""
        if self.rank == 0:
            save_checkpoint(self.state_dict(), self.checkpoint_path)
        ddp.barrier()
        return self.checkpoint_path

    # --- data --------------------------------------------------------------------------------
    def batch_indices(self, step: int) -> torch.Tensor:
        epoch, position = divmod(step, self.steps_per_epoch)
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            gen = torch.Generator().manual_seed(_derived_seed(self.config.train.seed, 1, epoch))
            self._epoch_order = (epoch, torch.randperm(len(self.dataset), generator=gen))
        b = self.config.train.batch_size
        return self._epoch_order[1][position * b:(position + 1) * b]

    def local_slice(self) -> slice:
        """This rank's rows of the global batch: ``[rank·B/W, (rank+1)·B/W)``."""
        per_rank = self.config.train.batch_size // self.world_size
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def views_for_step(self, step: int) -> list[torch.Tensor]:
        """This process's views of step ``step`` (its slice of the global batch's views under DDP)."""
        indices = self.batch_indices(step)
        seed = _derived_seed(self.config.train.seed, 2, step)
        local = self.distributed and self.config.train.ddp_views == "local"
        if local:
            indices, seed = indices[self.local_slice()], _derived_seed(seed, 3, self.rank)
        images, _ = self.dataset.get_batch(indices)
        images = images.to(self.device, non_blocking=True)
        gen = torch.Generator(device=self.device).manual_seed(seed)
        views = self.view_fn(images, indices, gen)
        if self.distributed and not local:
            if any(v.shape[0] != len(indices) for v in views):
                raise ValueError(f"view function: under DDP every view must hold one row per image of the batch "
                                 f"({len(indices)}), got {[v.shape[0] for v in views]}")
            views = [v[self.local_slice()] for v in views]
        if self.channels_last:
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
        return views

    # --- loop ----------------------------------------------------------------------------------
    def forward_backward(self, views: list[torch.Tensor]) -> dict[str, float]:
        """Forward (through DDP when distributed), checks, ``zero_grad`` and backward; returns the terms."""
        self.method.train()
        autocast = self._autocast()
        last = self.checkpoint_path if self.checkpoint_path.is_file() else None
        try:
            with autocast:
                out = self.model(views)
        except NonFiniteEmbeddingError as exc:  # the loss refused NaN/inf embeddings
            raise NonFiniteLossError(self.step + 1, {"loss": float("nan"), "error": str(exc)}, last) from exc
        except RuntimeError as exc:
            if self.distributed and "find_unused_parameters" in str(exc):
                raise ValueError(f"method {self.method.name!r} leaves some trainable parameters out of the loss "
                                 "at some step; train with --set train.ddp_find_unused_parameters=true") from exc
            raise
        loss = out["loss"]
        terms = {k: float(v.detach().float()) for k, v in out.items()
                 if isinstance(v, torch.Tensor) and v.ndim == 0}
        if not math.isfinite(terms["loss"]):
            raise NonFiniteLossError(self.step + 1, terms, last)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        return terms

    def _autocast(self) -> contextlib.AbstractContextManager:
        return (torch.autocast(self.device.type, dtype=self.amp_dtype)
                if self.amp_dtype is not None else contextlib.nullcontext())

    def optimizer_step(self, views: list[torch.Tensor]) -> dict[str, float]:
        """After backward: ``meta_step`` (bilevel methods; it reuses the unscaled, unclipped stage-1
        gradient in ``p.grad`` at the weights stage 1 saw), clipping, the optimiser step, the schedule and
        ``on_step_end``."""
        self.scaler.unscale_(self.optimizer)  # a no-op without fp16 loss scaling
        with self._autocast():
            terms = self.method.meta_step(views, self.optimizer.param_groups[0]["lr"])
        if self.config.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.method.parameters(), self.config.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        self.method.on_step_end(self.step, self.total_steps)
        return terms

    def train_step(self, views: list[torch.Tensor]) -> dict[str, float]:
        terms = self.forward_backward(views)
        terms.update(self.optimizer_step(views))
        return terms

    def fit(self, resume: bool = False) -> TrainResult:
        """Train to ``total_steps`` (or the time limit); under DDP, destroys a process group it created."""
        try:
            return self._fit(resume)
        finally:
            if self.owns_process_group:
                ddp.teardown()
                self.model, self.owns_process_group = self.method, False

    def _fit(self, resume: bool) -> TrainResult:
        tc = self.config.train
        main = self.rank == 0
        if resume:  # every rank loads the same checkpoint
            if not self.checkpoint_path.is_file():
                raise FileNotFoundError(f"--resume: no checkpoint at {str(self.checkpoint_path)!r}")
            self.load_state_dict(load_checkpoint(self.checkpoint_path, map_location=self.device))
        log = CSVLog(self.log_path, resume_step=self.step if resume else None) if main else None
        board = TensorBoardLog(self.out_dir / "tensorboard") if tc.tensorboard and main else None
        start, stopped_early = time.perf_counter(), False
        bar = tqdm(total=self.total_steps, initial=self.step, desc=f"train {self.method.name}", unit="step",
                   dynamic_ncols=True, disable=None if main else True)
        while self.step < self.total_steps:
            terms = self.train_step(self.views_for_step(self.step))
            bar.update(1)
            # every rank must stop at the same step: rank 0's clock decides
            stop = tc.time_limit_s is not None and ddp.any_rank(
                main and time.perf_counter() - start > tc.time_limit_s, self.device)
            if log is not None and (self.step % tc.log_every == 0 or self.step == self.total_steps or stop):
                row = {"step": self.step, **terms, "lr": self.scheduler.get_last_lr()[0]}
                log.write(row)
                if board is not None:
                    board.write(row)
                bar.set_postfix(loss=f"{terms['loss']:.4f}")
            if tc.checkpoint_every and self.step % tc.checkpoint_every == 0:
                self.save()
            if stop:
                stopped_early = self.step < self.total_steps
                break
        bar.close()
        if board is not None:
            board.close()
        self.save()
        return TrainResult(self.step, self.total_steps, time.perf_counter() - start, self.checkpoint_path,
                           self.log_path, stopped_early)
