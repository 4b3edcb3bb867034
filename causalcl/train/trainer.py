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
(``make_views``, ``meta_step``, ``on_step_end``, ``encoder``, and ``bind_dataset`` / ``set_batch_indices``, which
hand memory-bank methods the training-set size and each batch's item indices) are called on the unwrapped method.
DDP averages the gradients of the parameters the Trainer's optimiser steps; trainable parameters
outside ``optim_parameters()`` (meta-learners updated in ``meta_step``) are left to the method, which
must average their gradients over ranks itself (``all_reduce_sum(g) / world_size()``).

No host synchronisation per step (what a GPU needs to keep its queue full): ``train_step`` returns the loss terms
as detached 0-dim tensors on the device, and the steps run inside ``causalcl.losses.deferred_value_checks`` (the
losses skip their host-reading NaN/index checks). Each step's terms are kept (references, no copy) until
``check_finite`` reads them all at once -- one synchronisation -- at every logging step (``train.log_every``),
before every checkpoint (``save``), at the end, when a step raises, and at the latest every
``MAX_UNCHECKED_STEPS`` steps. So a NaN/inf loss is detected at most ``min(log_every, checkpoint_every,
MAX_UNCHECKED_STEPS) - 1`` steps late; the ``NonFiniteLossError`` still names the FIRST non-finite step and its
terms, and the last good checkpoint, which is never overwritten (the check runs before each save). The steps in
between run on NaN weights and are discarded with the run. Only logging steps convert terms to Python floats (one
device-to-host copy for all of them). Batches cross to a CUDA device from pinned memory with ``non_blocking``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import distributed as dist_utils
from ..losses import NonFiniteEmbeddingError, deferred_value_checks
from ..methods.base import Method
from . import ddp
from .checkpoint import check_run_checkpoint, load_checkpoint, non_finite_tensor, save_checkpoint
from .config import Config, check_values
from .device import resolve_device
from .files import remove_stale_temp_files
from .log import CSVLog, TensorBoardLog
from .malloc import keep_freed_memory
from .optim import build_optimizer
from .progress import PlainProgress, plain_wanted
from .resume import check_same_run, constructor_defaults
from .schedule import WarmupCosine

#: the longest run of steps whose losses are not checked for NaN/inf (one host synchronisation per check)
MAX_UNCHECKED_STEPS = 100

#: a view function maps (images (B,3,H,W) in [0,1], clips (B,T,3,H,W) or a graph batch, batch indices, generator)
#: to a list of views
ViewFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator], list[torch.Tensor]]


def _where(checkpoint: Path | None, step: int | None) -> str:
    if checkpoint is None:
        return "this run has written no checkpoint yet"
    return f"the last good checkpoint is {str(checkpoint)!r} (step {step})"


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; carries the step, the loss terms and the last good checkpoint.

    "Last good" means written (or resumed from) by this run, with finite weights; never a file that merely
    exists in the folder."""

    def __init__(self, step: int, terms: dict[str, object], checkpoint: Path | None,
                 checkpoint_step: int | None = None, what: str = "loss") -> None:
        self.step, self.terms, self.checkpoint, self.checkpoint_step = step, terms, checkpoint, checkpoint_step
        detail = f": terms {terms}" if what == "loss" else f" ({terms.get('weights')})"
        super().__init__(f"non-finite {what} at step {step}{detail}; training stopped, "
                         f"{_where(checkpoint, checkpoint_step)}")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C while training (or diagnosing): the step reached and the last good checkpoint of this run."""

    def __init__(self, step: int, checkpoint: Path | None, checkpoint_step: int | None,
                 stage: str = "training") -> None:
        self.step, self.checkpoint, self.checkpoint_step, self.stage = step, checkpoint, checkpoint_step, stage
        super().__init__(f"interrupted (Ctrl-C) during {stage} at step {step}; {_where(checkpoint, checkpoint_step)}")


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
        desc: what the progress bar and the plain log lines call this training (default ``train <method>``).

    When stdout is not a terminal, rank 0 prints plain progress lines (``causalcl.train.progress``: step, loss, lr,
    img/s, ETA, every ``PLAIN_EVERY_S`` = 10 s) as well as, or instead of, the tqdm bar on stderr.
    """

    def __init__(self, method: Method, dataset, view_fn: ViewFn, config: Config, out_dir: str | Path,
                 distributed: bool | None = None, desc: str | None = None) -> None:
        self.config = config
        self.desc = desc
        tc = config.train
        check_values(config)
        resolve_device(tc.device)  # a clear error for a device this machine does not have, before any set-up
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
        self.out_dir = Path(out_dir)  # created by fit(), after every check has passed
        self.checkpoint_path = self.out_dir / "checkpoint.pt"
        self.log_path = self.out_dir / "train_log.csv"
        if tc.batch_size % self.world_size:
            raise ValueError(f"train.batch_size: the global batch {tc.batch_size} must be divisible by the "
                             f"number of processes ({self.world_size})")
        n = len(dataset)
        if n < tc.batch_size:
            raise ValueError(f"train.batch_size: {tc.batch_size} is larger than the training set ({n} items)")
        self.method.bind_dataset(n)  # memory-bank methods (NPID, PIRL): one row per item, before DDP broadcasts
        self.steps_per_epoch = n // tc.batch_size
        self.total_steps = (
            max(1, round(tc.epochs * self.steps_per_epoch)) if tc.epochs is not None else int(tc.steps)
        )
        if self.total_steps <= 0:
            raise ValueError(f"train.steps: expected a positive number of steps, got {self.total_steps}")
        self.model: torch.nn.Module = self.method  # what forward goes through: the method or its DDP wrapper
        if self.distributed:  # synchronised BN replaces layers: before the optimiser collects the parameters
            self.method = ddp.convert_sync_batchnorm(self.method, self.device)
        if tc.compile:  # the method's __call__ (forward + loss) compiled in place: same parameters and state_dict keys
            self.method.compile()
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
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[tc.amp]
        # fp16 needs loss scaling; bf16 and fp32 do not (a disabled scaler is a pass-through)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=tc.amp == "fp16")
        # the last checkpoint this run wrote (or resumed from), with finite weights, and its step
        self.last_good: Path | None = None
        self.last_good_step: int | None = None
        self.restored = False  # restore() has loaded the checkpoint (fit(resume=True) then does not load it again)
        # (step, terms on the device) of each step whose loss check_finite has not read yet
        self._unchecked: list[tuple[int, dict[str, torch.Tensor]]] = []
        self.seconds_before = 0.0  # training seconds of the earlier parts of a resumed run
        self._part_start: float | None = None

    # --- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"model": self.method.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step": self.step, "total_steps": self.total_steps,
                "rng": rng, "config": self.config.to_dict(), "method": self.method.name,
                "train_seconds": self.train_seconds()}

    def train_seconds(self) -> float:
        """Seconds spent training this run, summed over every resumed part."""
        part = time.perf_counter() - self._part_start if self._part_start is not None else 0.0
        return self.seconds_before + part

    def load_state_dict(self, state: dict, path: str | Path | None = None) -> None:
        """Load a Trainer state; a model, optimiser or schedule that does not fit raises ``ValueError`` naming
        ``path`` and what does not fit (missing or unexpected weights, wrong shapes)."""
        where = f"checkpoint {str(path)!r}" if path is not None else "the checkpoint"
        self._load_model(state["model"], where)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.step = int(state["step"])
            torch.set_rng_state(state["rng"]["torch"].cpu())
            if "cuda" in state["rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise ValueError(f"{where}: its optimiser, schedule or RNG state does not fit this run "
                             f"(optim.name={self.config.optim.name!r}): {type(exc).__name__}: {reason}") from exc

    def _load_model(self, weights: dict, where: str) -> None:
        own = self.method.state_dict()
        missing = [k for k in own if k not in weights]
        unexpected = [k for k in weights if k not in own]
        shapes = [f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
                  if isinstance(weights.get(k), torch.Tensor) and weights[k].shape != v.shape]
        problems = [f"{label}: {_few(names)}" for label, names in
                    (("missing weights", missing), ("unexpected weights", unexpected),
                     ("wrong shapes (checkpoint vs model)", shapes)) if names]
        if problems:
            raise ValueError(f"{where} does not fit the {self.method.name!r} model on backbone "
                             f"{self.config.model.backbone!r}: {'; '.join(problems)}")
        self.method.load_state_dict(weights)

    def restore(self) -> None:
        """Load ``<out_dir>/checkpoint.pt`` to continue its run, after checking it is this run.

        Refused with ``ValueError`` naming the file: a checkpoint that is not a Trainer state, holds non-finite
        weights, holds another method or backbone (named), or was trained with other settings (each listed as
        ``key: checkpoint → requested``; see ``causalcl.train.resume``). A different ``train.steps`` /
        ``train.epochs`` re-plans the schedule (``WarmupCosine.replan``) with a note on stderr; fewer steps than
        already trained is refused."""
        path = self.checkpoint_path
        if not path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {str(path)!r}")
        state = check_run_checkpoint(load_checkpoint(path, map_location=self.device), path)
        self._check_same_run(state, path)
        planned = int(state["total_steps"])
        self.load_state_dict(state, path)
        if self.step > self.total_steps:
            raise ValueError(f"train.steps: the run in {str(self.out_dir)!r} has already trained {self.step} steps; "
                             f"it cannot be shortened to {self.total_steps} (ask for at least {self.step})")
        if planned != self.total_steps:
            self._replan(planned)
        self.last_good, self.last_good_step = path, self.step
        self.seconds_before = float(state.get("train_seconds", 0.0))
        self.restored = True

    def _check_same_run(self, state: dict, path: Path) -> None:
        check_same_run(path, state["method"], state["config"], self.config.to_dict(),
                       constructor_defaults(type(self.method)))

    def _replan(self, planned: int) -> None:
        before = self.scheduler.get_last_lr()[0]
        self.scheduler.replan(self.total_steps, self.config.optim.warmup_steps)
        if self.rank == 0:
            print(f"note: --resume: the run planned for {planned} steps now runs to {self.total_steps}; from step "
                  f"{self.step + 1} on, the warm-up + cosine schedule follows the curve planned for "
                  f"{self.total_steps} steps (lr {before:.3g} → {self.scheduler.get_last_lr()[0]:.3g}), "
                  "see causalcl.train.schedule.WarmupCosine.replan", file=sys.stderr)

    def save(self) -> Path:
        """Rank 0 writes the checkpoint (atomically); every rank waits for it.

        Weights that are no longer finite are never written: ``NonFiniteLossError`` names the last good
        checkpoint instead; nor after a step whose loss was not finite (``check_finite`` runs first)."""
        self.check_finite()
        bad = non_finite_tensor(self.method.state_dict())
        if bad is not None:
            raise NonFiniteLossError(self.step, {"weights": f"NaN/inf in {bad!r}"}, self.last_good,
                                     self.last_good_step, what="weights")
        if self.rank == 0:
            save_checkpoint(self.state_dict(), self.checkpoint_path)
        ddp.barrier()
        self.last_good, self.last_good_step = self.checkpoint_path, self.step
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
        images = self.to_device(images)
        gen = torch.Generator(device=self.device).manual_seed(seed)
        views = self.view_fn(images, indices, gen)
        if self.distributed and not local:
            if not all(isinstance(v, torch.Tensor) for v in views):
                raise ValueError("train.ddp_views: views that are not tensors (graph batches) cannot be sliced per "
                                 "process; set train.ddp_views=local (each process loads its own graphs)")
            if any(v.shape[0] != len(indices) for v in views):
                raise ValueError(f"view function: under DDP every view must hold one row per image of the batch "
                                 f"({len(indices)}), got {[v.shape[0] for v in views]}")
            views = [v[self.local_slice()] for v in views]
        rows = indices[self.local_slice()] if self.distributed and not local else indices
        self.method.set_batch_indices(self.to_device(torch.as_tensor(rows, dtype=torch.long)))
        if self.channels_last:  # image batches only: clips (5-D), graph batches and targets stay as they are
            views = [v.contiguous(memory_format=torch.channels_last) if isinstance(v, torch.Tensor) and v.ndim == 4
                     else v for v in views]
        return views

    # --- loop ----------------------------------------------------------------------------------
    def to_device(self, batch):  # noqa: ANN001, ANN201 (a tensor, or a batch object with .to(device))
        """``batch`` on the training device; a CPU tensor bound for CUDA goes through pinned memory with
        ``non_blocking=True`` (no host synchronisation; the pinned buffer is kept until the copy is done)."""
        if not isinstance(batch, torch.Tensor):
            return batch.to(self.device)
        if batch.device == self.device:
            return batch
        if self.device.type == "cuda" and batch.device.type == "cpu":
            batch = batch.pin_memory()
        return batch.to(self.device, non_blocking=True)

    def forward_backward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Forward (through DDP when distributed), ``zero_grad`` and backward; returns the scalar terms as detached
        0-dim tensors on the device. Their finiteness is read later, by :meth:`check_finite` (no host sync here)."""
        self.method.train()
        autocast = self._autocast()
        last = (self.last_good, self.last_good_step)
        try:
            with autocast, deferred_value_checks():
                out = self.model(views)
        except NonFiniteEmbeddingError as exc:  # a check that still ran refused NaN/inf embeddings
            self.check_finite(all_ranks=False)  # an earlier step's non-finite loss comes first
            raise NonFiniteLossError(self.step + 1, {"loss": float("nan"), "error": str(exc)}, *last) from exc
        except RuntimeError as exc:
            if self.config.train.compile and type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
                reason = " ".join(str(exc).split())[:300]
                raise ValueError(f"train.compile: torch.compile could not compile method {self.method.name!r} on "
                                 f"{self.device.type} ({type(exc).__name__}: {reason}); train without it "
                                 "(--set train.compile=false)") from exc
            if self.distributed and "find_unused_parameters" in str(exc):
                raise ValueError(f"method {self.method.name!r} leaves some trainable parameters out of the loss "
                                 "at some step; train with --set train.ddp_find_unused_parameters=true") from exc
            raise
        loss = out["loss"]
        terms = {k: v.detach() for k, v in out.items() if isinstance(v, torch.Tensor) and v.ndim == 0}
        self._unchecked.append((self.step + 1, terms))
        if len(self._unchecked) >= MAX_UNCHECKED_STEPS:
            self.check_finite()
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        return terms

    def check_finite(self, all_ranks: bool = True) -> None:
        """Raise ``NonFiniteLossError`` for the first step since the last check whose loss is NaN/inf, with that
        step's terms and the last good checkpoint; one host synchronisation (none when nothing is unchecked).

        ``fit`` calls it at every logging step, before every checkpoint, at the end and when a step raises;
        ``forward_backward`` at the latest every ``MAX_UNCHECKED_STEPS`` steps. Under DDP every rank calls it at the
        same steps and all stop at the earliest non-finite step of any rank; ``all_ranks=False`` (after a step raised
        on this rank alone) checks this rank's losses without a collective."""
        unchecked, self._unchecked = self._unchecked, []
        if not unchecked:
            return
        losses = torch.stack([terms["loss"].float().reshape(()) for _, terms in unchecked])
        bad = ~torch.isfinite(losses)
        found, index = torch.stack([bad.any().long(), bad.long().argmax()]).tolist()  # the one host sync
        never = self.total_steps + 1
        first_step = unchecked[index][0] if found else never
        if self.distributed and all_ranks:
            first_step = ddp.min_over_ranks(first_step, self.device)
        if first_step >= never:
            return
        terms = next((t for step, t in unchecked if step == first_step), {})
        raise NonFiniteLossError(first_step, host_terms(terms), self.last_good, self.last_good_step)

    def _autocast(self) -> contextlib.AbstractContextManager:
        return (torch.autocast(self.device.type, dtype=self.amp_dtype)
                if self.amp_dtype is not None else contextlib.nullcontext())

    def optimizer_step(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor | float]:
        """After backward: ``meta_step`` (bilevel methods; it reuses the unscaled, unclipped stage-1
        gradient in ``p.grad`` at the weights stage 1 saw), clipping, the optimiser step, the schedule and
        ``on_step_end``."""
        self.scaler.unscale_(self.optimizer)  # a no-op without fp16 loss scaling
        with self._autocast(), deferred_value_checks():
            terms = self.method.meta_step(views, self.optimizer.param_groups[0]["lr"],
                                          log_terms=self.logs_step(self.step + 1))
        if self.config.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.method.parameters(), self.config.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        self.method.on_step_end(self.step, self.total_steps)
        return terms

    def logs_step(self, step: int) -> bool:
        """Whether the row of ``step`` (counted after its optimiser step) is logged: every ``train.log_every``
        steps and the last (a time-limit stop also logs the step it stops at, which no one can know before)."""
        return step % self.config.train.log_every == 0 or step == self.total_steps

    def train_step(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor | float]:
        """One step: ``forward_backward`` then ``optimizer_step``; the terms as 0-dim device tensors (a method's
        ``meta_step`` may add Python floats). ``host_terms`` turns them into floats (one host sync)."""
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

    def _prepare_folder(self, resume: bool) -> None:
        """Rank 0: create the output folder, clear unfinished checkpoint writes, and say so when a new run
        replaces an earlier one's log and checkpoint."""
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ValueError(f"output folder {str(self.out_dir)!r} is a file, not a folder")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        stale = remove_stale_temp_files(self.checkpoint_path)
        if stale:
            print(f"note: removed {len(stale)} unfinished checkpoint write(s) that an interrupted run left in "
                  f"{str(self.out_dir)!r}", file=sys.stderr)
        earlier = [p for p in (self.log_path, self.checkpoint_path) if p.exists()]
        if not resume and earlier:
            print(f"note: {str(self.out_dir)!r} holds an earlier run ({', '.join(p.name for p in earlier)}); this new "
                  "run replaces it (use --resume to continue that run instead)", file=sys.stderr)
            self.checkpoint_path.unlink(missing_ok=True)

    def _fit(self, resume: bool) -> TrainResult:
        tc = self.config.train
        main = self.rank == 0
        if resume and not self.restored:  # every rank loads the same checkpoint
            self.restore()
        if main:
            self._prepare_folder(resume)
        ddp.barrier()  # the folder exists before any rank writes to it
        log = CSVLog(self.log_path, resume_step=self.step if resume else None) if main else None
        board = TensorBoardLog(self.out_dir / "tensorboard") if tc.tensorboard and main else None
        self._part_start = time.perf_counter()
        try:
            return self._loop(log, board)
        except KeyboardInterrupt:
            raise TrainingInterrupted(self.step, self.last_good, self.last_good_step) from None
        finally:  # this part's seconds join the earlier parts' (a later fit() counts on from here)
            self.seconds_before, self._part_start = self.train_seconds(), None

    def _loop(self, log: CSVLog | None, board: TensorBoardLog | None) -> TrainResult:
        tc = self.config.train
        main = self.rank == 0
        start, stopped_early = time.perf_counter(), False
        desc = self.desc or f"train {self.method.name}"
        bar = tqdm(total=self.total_steps, initial=self.step, desc=desc, unit="step",
                   dynamic_ncols=True, disable=None if main else True)
        plain = PlainProgress(desc, self.total_steps, self.step, tc.batch_size) if main and plain_wanted() else None
        loss: float | None = None
        while self.step < self.total_steps:
            try:
                terms = self.train_step(self.views_for_step(self.step))
            except Exception:  # a step after a non-finite one may fail its own way: the first non-finite step first
                self.check_finite(all_ranks=False)  # this rank alone (the others may be waiting in a collective)
                raise
            bar.update(1)
            # every rank must stop at the same step: rank 0's clock decides
            stop = tc.time_limit_s is not None and ddp.any_rank(
                main and time.perf_counter() - start > tc.time_limit_s, self.device)
            logging = self.logs_step(self.step) or stop
            if logging:  # every rank: the same steps, so all stop together
                self.check_finite()
            if log is not None and logging:
                row = {"step": self.step, **host_terms(terms), "lr": self.scheduler.get_last_lr()[0]}
                log.write(row)
                if board is not None:
                    board.write(row)
                bar.set_postfix(loss=f"{row['loss']:.4f}")
                loss = row["loss"]
            if plain is not None and plain.due() and self.step < self.total_steps and not stop:
                now = loss if logging or "loss" not in terms else host_terms({"loss": terms["loss"]})["loss"]
                plain.line(self.step, now, self.scheduler.get_last_lr()[0])
            if tc.checkpoint_every and self.step % tc.checkpoint_every == 0:
                self.save()
            if stop:
                stopped_early = self.step < self.total_steps
                break
        bar.close()
        if plain is not None:
            plain.close(self.step, loss, self.scheduler.get_last_lr()[0], stopped_early)
        if board is not None:
            board.close()
        self.save()
        return TrainResult(self.step, self.total_steps, self.train_seconds(), self.checkpoint_path,
                           self.log_path, stopped_early)


def host_terms(terms: dict[str, object]) -> dict[str, float]:
    """Loss terms as Python floats, in their order: the tensor terms of each device cross to the host in one copy
    (a method may log a CPU scalar, e.g. an EMA momentum, beside its device terms)."""
    by_device: dict[torch.device, list[str]] = {}
    for key, value in terms.items():
        if isinstance(value, torch.Tensor):
            by_device.setdefault(value.device, []).append(key)
    values: dict[str, float] = {}
    for keys in by_device.values():
        read = torch.stack([terms[k].detach().float().reshape(()) for k in keys]).tolist()
        values.update(zip(keys, read, strict=True))
    return {k: values[k] if k in values else float(v) for k, v in terms.items()}


def _few(names: list[str], n: int = 3) -> str:
    more = f" (+{len(names) - n} more)" if len(names) > n else ""
    return ", ".join(names[:n]) + more
