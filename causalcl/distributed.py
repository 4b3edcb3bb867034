"""Helpers for ``torch.distributed`` that are identities in a single process.

Losses stay pure functions of the global batch: a method gathers its embeddings from every rank
with :func:`gather` (``torch.distributed.nn.functional.all_gather``, whose backward sums the
incoming gradients over ranks) and evaluates the loss on the gathered batch. Every rank then holds
the same global loss L; the all-gather backward hands each rank W·∂L/∂z_local and DDP's gradient
averaging divides by W, so the parameters receive exactly ∂L/∂θ of one process with the global
batch. Never call a raw collective (``torch.distributed.all_gather``) on a tensor that needs
gradients: it silently cuts the graph.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from torch import Tensor

# PyTorch 2.14 deprecates these autograd collectives in favour of the private
# torch.distributed._functional_collectives; they still work, and are the public API, so keep them quiet
warnings.filterwarnings("ignore", r"torch\.distributed\.nn\.functional\.(all_gather|all_reduce) is deprecated",
                        FutureWarning)


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    return rank() == 0


def gather(x: Tensor) -> Tensor:
    """Concatenate ``x`` (B, ...) from every rank along dim 0, keeping gradients to every slice."""
    if not is_distributed():
        return x
    from torch.distributed.nn.functional import all_gather

    # the group is passed at call time: the function's default (group.WORLD) is bound when the module is
    # first imported and would point to a destroyed group after a new init_process_group
    return torch.cat(all_gather(x.contiguous(), group=dist.group.WORLD), dim=0)


@torch.no_grad()
def gather_no_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every rank along dim 0 without autograd (queues, labels, statistics)."""
    if not is_distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def all_reduce_sum(x: Tensor) -> Tensor:
    """Sum of ``x`` over ranks, differentiable (``torch.distributed.nn.functional.all_reduce``)."""
    if not is_distributed():
        return x
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(x, op=dist.ReduceOp.SUM, group=dist.group.WORLD)
