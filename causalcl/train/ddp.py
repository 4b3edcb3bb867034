"""Multi-process training under ``torchrun``: process group, synchronised batch norm, DDP wrapper.

``torchrun --nproc_per_node N`` starts N copies of the program with ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in their environment. :func:`setup` reads them
and initialises the default process group (NCCL when the device is CUDA, each process on
``cuda:LOCAL_RANK``; gloo on CPU). The Trainer then

1. converts every batch-norm layer to a synchronised one (:func:`convert_sync_batchnorm`), so the
   statistics are those of the global batch, exactly as in one process;
2. wraps the method in ``DistributedDataParallel`` (:func:`wrap`), which averages the gradients;
3. computes the loss on the global batch (methods gather their embeddings with
   ``causalcl.distributed.gather``), so the averaged gradient is the one-process gradient.

``torch.nn.SyncBatchNorm`` only runs on accelerators; on CPU (gloo) the layers become
:class:`GlobalBatchNorm`, which gathers per-rank (count, mean, M2) with the autograd-carrying
all-gather and combines them with the parallel-variance formula. Both keep the parameter and buffer
objects (and state-dict keys) of the original layers, so checkpoints load with or without DDP.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

from ..distributed import gather, is_distributed

__all__ = ["GlobalBatchNorm", "any_rank", "barrier", "convert_sync_batchnorm", "launched_with_torchrun",
           "local_device", "setup", "teardown", "wrap"]


def launched_with_torchrun() -> bool:
    """True when the environment describes more than one process (``WORLD_SIZE > 1``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def local_device(device: str | torch.device) -> torch.device:
    """The device of this process: ``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun; CPU stays CPU."""
    device = torch.device(device)
    if device.type == "cuda" and launched_with_torchrun():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


_store: dist.Store | None = None  # the rendezvous store, kept for the whole process
_generation = 0  # process groups created so far by this process


def _rendezvous_store(rank: int, world: int, timeout: timedelta) -> dist.Store:
    """A fresh key space on the launch's TCP store (torchrun's agent store, or one hosted by rank 0).

    ``init_process_group("env://")`` cannot be called again after ``destroy_process_group`` under
    torchrun: the store still holds the previous group's keys (the peers' old gloo addresses) and
    the new group connects to dead ports. Each group here gets its own prefix, so ``--methods``
    can train one method after another, each in a new group."""
    global _store, _generation
    if _store is None:
        host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
        agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
        _store = dist.TCPStore(host, port, world, is_master=rank == 0 and not agent, timeout=timeout,
                               multi_tenant=True)
    _generation += 1
    return dist.PrefixStore(f"causalcl_pg{_generation}", _store)


def setup(device: str | torch.device, timeout_s: float = 1800.0) -> bool:
    """Initialise the default process group from the torchrun environment if it is not yet initialised.

    Backend: NCCL for CUDA devices, gloo otherwise. Returns True when this call created the group
    (its caller then owns it and should call :func:`teardown`). May be called again after
    :func:`teardown` (a new group)."""
    if not dist.is_available():
        raise ValueError("torch.distributed is not available in this PyTorch build")
    if dist.is_initialized():
        return False
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ValueError(f"distributed training: environment variables {missing} are not set; launch with torchrun")
    device = local_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    accepts_device = "device_id" in inspect.signature(dist.init_process_group).parameters
    kwargs = {"device_id": device} if backend == "nccl" and accepts_device else {}
    rank, world, timeout = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), timedelta(seconds=timeout_s)
    dist.init_process_group(backend, store=_rendezvous_store(rank, world, timeout), rank=rank, world_size=world,
                            timeout=timeout, **kwargs)
    return True


def teardown() -> None:
    """Destroy the default process group if there is one (idempotent)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is True on at least one (e.g. a time limit reached on rank 0)."""
    if not is_distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def min_over_ranks(value: int, device: torch.device) -> int:
    """The smallest ``value`` of every rank (an all-reduce; ``value`` itself in one process)."""
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.long, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


class GlobalBatchNorm(_BatchNorm):
    """Batch norm whose training statistics are those of the batch of every rank (any device, any backend).

    Each rank computes its count n_r, mean m_r and sum of squared deviations M2_r per channel; one
    autograd-carrying all-gather shares them and every rank combines them (Chan et al.'s parallel
    variance): n = Σ n_r, μ = Σ n_r m_r / n, M2 = Σ M2_r + Σ n_r (m_r − μ)², σ² = M2 / n (biased, for
    normalising; the running variance uses the unbiased M2 / (n − 1), as ``nn.BatchNorm``). The
    gradient therefore flows to the inputs of every rank, as through one batch-norm over the global
    batch. Outside training or outside a process group it is ``nn.BatchNorm``.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"GlobalBatchNorm: expected at least 2-D input, got {input.dim()}-D")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, c] + [1] * (x.dim() - 2)
        xs = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        count = xs.numel() // c
        mean_r = xs.mean(dims)
        m2_r = (xs - mean_r.view(shape)).square().sum(dims)
        stats = gather(torch.cat([mean_r.new_full((1,), float(count)), mean_r, m2_r]).unsqueeze(0))
        counts, means, m2s = stats[:, :1], stats[:, 1:c + 1], stats[:, c + 1:]
        n = counts.sum()
        mean = (counts * means).sum(0) / n
        m2 = m2s.sum(0) + (counts * (means - mean).square()).sum(0)
        var = m2 / n
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
                unbiased = m2 / (n - 1).clamp(min=1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        y = (xs - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def _to_global_bn(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm | nn.SyncBatchNorm):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        if module.affine:  # the same Parameter objects: requires_grad and optimiser identity are kept
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _to_global_bn(child))
    return out


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every batch-norm layer of ``module`` synchronised across ranks (call before building the optimiser).

    Accelerators use ``torch.nn.SyncBatchNorm`` (its fused kernels); CPU uses :class:`GlobalBatchNorm`
    (``SyncBatchNorm`` refuses CPU tensors). Parameters and buffers are the same objects as before."""
    if device.type == "cpu":
        return _to_global_bn(module)
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


def wrap(module: nn.Module, device: torch.device, find_unused_parameters: bool = False,
         ignore: Sequence[str] = ()) -> DistributedDataParallel:
    """``DistributedDataParallel`` around ``module`` (already on ``device``).

    ``ignore``: names of parameters DDP leaves alone — the Trainer passes the trainable parameters
    outside ``optim_parameters()`` (meta-learners that a method trains in ``meta_step`` with its own
    optimiser and averages over ranks itself, e.g. ICL-MSR's f_msr). They are broadcast from rank 0
    here, once, like everything else.

    Buffers (running statistics, queues) are broadcast from rank 0 once, at construction
    (``forward_sync_buffers=False``; ``broadcast_buffers=False`` on PyTorch versions without it), and
    stay equal on every rank because every rank applies the same updates (synchronised batch norm,
    queues filled with gathered keys): re-broadcasting a 65k-key queue before every forward would
    only cost bandwidth. ``find_unused_parameters`` is needed only when some trainable parameter
    takes no part in the loss at some step (``train.ddp_find_unused_parameters``)."""
    device_ids = [device.index] if device.type == "cuda" else None
    if ignore:
        named = dict(module.named_parameters())
        for name in ignore:
            dist.broadcast(named[name].data, src=0)
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, list(ignore))
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=find_unused_parameters,
                                       forward_sync_buffers=False)
    # older PyTorch: broadcast_buffers=False may skip the buffers at init too, so broadcast them here
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=find_unused_parameters,
                                   broadcast_buffers=False)

