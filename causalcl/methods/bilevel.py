"""What the bilevel methods (ICL-MSR, MetAug) share: checkpointing of their own meta-optimiser, the
cross-rank mean of their meta-gradients under DDP, and the forward-mode meta-gradient.

A bilevel method steps its meta-learner in ``meta_step`` with an optimiser it owns
(``self.meta_optimizer``, ``None`` when the method has no meta-learner). Its state travels in the
method's ``state_dict`` under ``_extra_state``, so ``--resume`` continues the meta-learner exactly.

The meta-gradient at forward-mode cost. Both methods look ahead θ¹ = θ − α·g(θ, φ) with
g = ∇_θ L_in(z(θ), φ), where the meta-parameters φ (f_msr, the MAGs) enter the inner loss only
through a head on the embeddings z(θ). For an outer loss L_out(θ¹) with v = ∇_θ L_out(θ¹),

    d L_out(θ¹(φ)) / dφ = −α · (∂g/∂φ)ᵀ v = −α · ∇_φ ⟨J_z(θ)·v, ∇_z L_in(z, φ)⟩,

because g = J_z(θ)ᵀ ∇_z L_in(z, φ). So the second-order term needs one directional derivative of
the embeddings, J_z(θ)·v (``directional_derivative``: exact by forward mode, or a central difference),
and a double backward through the small head only — never through the backbone's BatchNorm, which
the reverse-over-reverse path (``meta_grad="reverse"``) pays for. g itself is the stage-1 gradient the
Trainer's backward already left in ``p.grad`` (``stage1_gradients``), so it is not recomputed; and when the
embeddings come from a plain chain of layers (``convnet_small`` and an MLP projector), stage 1's forward records
its layer inputs (``recording``) and J_z(θ)·v is the tangent pass alone on them (``recorded_tangents``), without
forward mode's second primal pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import Tensor

from ..distributed import all_reduce_sum, world_size
from ..losses import value_checks_deferred
from .tangent_tape import TangentTape


def global_mean_grads(grads: Sequence[Tensor | None]) -> list[Tensor | None]:
    """Under DDP, every rank's gradient of the global-batch loss averaged over ranks: the one-process gradient
    (each rank's loss is the global one, and a gather's backward gives a rank its samples' share times the
    number of ranks). Differentiable (``all_reduce_sum``), so a lookahead built on it stays exact to second
    order. In one process the gradients are returned unchanged."""
    n = world_size()
    if n == 1:
        return list(grads)
    return [None if g is None else all_reduce_sum(g) / n for g in grads]


class MetaOptimizerState:
    """Mixin for an ``nn.Module`` with a ``meta_optimizer`` attribute: saves and restores its state."""

    meta_optimizer: torch.optim.Optimizer | None

    def get_extra_state(self) -> dict[str, Any]:
        return {"meta_optimizer": self.meta_optimizer.state_dict()} if self.meta_optimizer is not None else {}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if self.meta_optimizer is not None and state.get("meta_optimizer"):
            self.meta_optimizer.load_state_dict(state["meta_optimizer"])


#: how a bilevel method computes the second-order part of its meta-gradient (see ``directional_derivative``)
META_GRADS = ("jvp", "reverse", "finite_difference")


class InertMechanismWarning(UserWarning):
    """A causal mechanism has stopped receiving the signal it exists for (e.g. ICL-MSR's lookahead share)."""


def check_meta_grad(value: object) -> str:
    if value not in META_GRADS:
        raise ValueError(f"meta_grad: expected one of {list(META_GRADS)}, got {value!r}")
    return str(value)


def grads_or_zeros(loss: Tensor, params: Sequence[Tensor], retain_graph: bool = False) -> list[Tensor]:
    """∇ of ``loss`` with respect to each of ``params``, zeros for those it does not depend on."""
    got = torch.autograd.grad(loss, list(params), retain_graph=retain_graph, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, got, strict=True)]


def grad_norm(grads: Sequence[Tensor]) -> Tensor:
    """The Euclidean norm of a list of gradient tensors taken as one vector: a 0-dim tensor on their device (no
    host synchronisation; the Trainer reads logged terms at its logging steps only)."""
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.detach()) for g in grads]))


def stage1_gradients(params: Sequence[Tensor]) -> list[Tensor] | None:
    """The gradients the Trainer's backward of the stage-1 loss left in ``p.grad`` (zeros for unused
    parameters), or ``None`` when there are none or any is non-finite (an fp16 overflow step).

    The finiteness test reads the device (one host synchronisation). Inside the Trainer's steps
    (``deferred_value_checks``) it runs only under fp16 autocast, where an overflow step is routine (the
    GradScaler skips it); in fp32/bf16 a non-finite gradient comes with a non-finite loss, which stops training
    at the Trainer's next check anyway."""
    grads = [p.grad for p in params]
    if all(g is None for g in grads):
        return None
    out = [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, grads, strict=True)]
    if value_checks_deferred() and not _fp16_autocast(out[0].device.type):
        return out
    if not bool(torch.stack([torch.isfinite(g).all() for g in out]).all()):
        return None
    return out


def _fp16_autocast(device_type: str) -> bool:
    return torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype(device_type) == torch.float16


def directional_derivative(fn: Callable[[dict[str, Tensor]], list[Tensor]], params: dict[str, Tensor],
                           direction: dict[str, Tensor], mode: str, fd_radius: float = 3e-4) -> list[Tensor]:
    r"""J_fn(θ)·v, the derivative of the outputs of ``fn`` at θ = ``params`` along v = ``direction``.

    * ``"jvp"``: exact, one forward-mode pass (``torch.autograd.forward_ad``, BatchNorm's tangents by
      ``batch_norm_tangents``);
    * ``"finite_difference"``: the central difference (fn(θ + εv) − fn(θ − εv)) / 2ε with ε = r/‖v‖
      (r = ``fd_radius``, the length of the step in parameter space; DARTS uses 0.01), two forwards without
      autograd; its error is O(r²) from the curvature of fn (and ReLU kinks) plus float round-off growing
      as 1/r. Measured on ICL-MSR's meta-gradient (``shapes``, ``convnet_small``, batch 128, float32, 5 points
      of a 60-step run): relative error 3.3–9.5 % at r = 1e-2, 0.9–3.3 % at 1e-3, 0.7–2.2 % at 3e-4 (the
      default), 1.9–3.2 % at 1e-4 — never reliably under 1 %.

    ``fn`` maps a dict of parameter tensors to a list of outputs; it must not change state (give it
    throw-away buffer clones: BatchNorm then normalises with the batch statistics, as in training).
    """
    names = list(params)
    if mode == "jvp":
        with fwAD.dual_level(), batch_norm_tangents():
            outputs = fn({n: fwAD.make_dual(params[n].detach(), direction[n].detach()) for n in names})
            tangents = [fwAD.unpack_dual(o).tangent for o in outputs]
        return [torch.zeros_like(o) if t is None else t.detach() for o, t in zip(outputs, tangents, strict=True)]
    if mode != "finite_difference":
        raise ValueError(f"mode: expected 'jvp' or 'finite_difference', got {mode!r}")
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(direction[n].float()) for n in names]))
    if float(norm) == 0.0:
        with torch.no_grad():
            return [torch.zeros_like(o) for o in fn({n: params[n].detach() for n in names})]
    eps = fd_radius / float(norm)
    with torch.no_grad():
        plus = fn({n: params[n].detach() + eps * direction[n] for n in names})
        minus = fn({n: params[n].detach() - eps * direction[n] for n in names})
    return [(a - b) / (2 * eps) for a, b in zip(plus, minus, strict=True)]


def recording(tape: TangentTape | None, mode: str) -> contextlib.AbstractContextManager:
    """Stage 1's forward records ``tape`` (its layer inputs, for ``recorded_tangents``) when the meta step
    will want J_z(θ)·v exactly (``mode == "jvp"``), in one process, with autograd on; otherwise nothing."""
    if tape is None or mode != "jvp" or not torch.is_grad_enabled() or world_size() != 1:
        return contextlib.nullcontext()
    return tape.record()


def recorded_tangents(tape: TangentTape | None, embeddings: Sequence[Tensor], params: Sequence[Tensor],
                      direction: Sequence[Tensor]) -> list[Tensor] | None:
    """J_z(θ)·v by the tangent pass alone over what stage 1 recorded (``causalcl.methods.tangent_tape``), split
    like ``embeddings`` = stage 1's [z1, z2]; ``None`` when there is no valid recording of exactly those
    embeddings (then forward mode, ``directional_derivative``). ``direction`` is v in ``params`` order. The
    recording is released either way."""
    if tape is None or not tape.valid:
        return None
    try:
        recorded = torch.cat(tape.outputs())
        z = torch.cat([e.detach() for e in embeddings])
        if recorded.shape != z.shape:
            return None
        # the values too, except in the Trainer's steps (a host sync), where Stage1Record.usable has already
        # matched the views, the backward and the parameter versions of the forward that recorded the tape
        if not value_checks_deferred() and not torch.equal(recorded, z):
            return None
        u = tape.jvp({id(p): d for p, d in zip(params, direction, strict=True)})
        return list(u.split([e.shape[0] for e in embeddings]))
    finally:
        tape.clear()


class Stage1Record:
    """What a bilevel method's stage-1 ``forward`` leaves for its ``meta_step``: the tensors it computed
    at θ (detached embeddings, f_msr's input) and whether the gradient in ``p.grad`` is still the one of
    this forward's loss at these weights.

    ``usable(views, params)`` is true only when the meta step gets the same views, the loss's backward
    has run (a hook on the loss) and no parameter was changed in place since (tensor version counters):
    a caller that steps its optimiser before ``meta_step`` gets a recomputed gradient, not a stale one.
    """

    def __init__(self, views: Sequence[Tensor], params: Sequence[Tensor], loss: Tensor,
                 *tensors: Tensor | None) -> None:
        self.view, self.tensors = views[0], tensors
        self.versions = [p._version for p in params]
        self.backward_done = False
        if loss.requires_grad:
            loss.register_hook(self._mark)

    def _mark(self, grad: Tensor) -> None:
        self.backward_done = True

    def usable(self, views: Sequence[Tensor], params: Sequence[Tensor]) -> bool:
        return (self.backward_done and self.view is views[0]
                and [p._version for p in params] == self.versions)


_batch_norm = F.batch_norm


def _batch_norm_with_tangent(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                             weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                             momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """``F.batch_norm`` for dual tensors in training mode, with the tangent from two fused kernels.

    With batch statistics, y = γ·x̂ + β, x̂ = (x − μ_B)/σ_B, the tangent is
    dy = J_x·dx + x̂·dγ + dβ. BatchNorm's input Jacobian J_x = (γ/σ)(I − 11ᵀ/n − x̂x̂ᵀ/n) (per channel) is
    symmetric, so J_x·dx = J_xᵀ·dx is exactly what BatchNorm's backward kernel returns for the output
    gradient dx; and x̂·dγ + dβ is a BatchNorm forward with weight dγ and bias dβ. PyTorch's generic
    forward-mode rule spells the same tangent out in about ten element-wise passes (1.7× a forward and
    backward of ``convnet_small`` for the whole JVP, against 1.3× with this; equal to 1.5e-6 in float32).
    Anything else (eval mode, no tangent) goes to ``F.batch_norm`` unchanged.
    """
    x, dx = fwAD.unpack_dual(input)
    w, dw = fwAD.unpack_dual(weight) if weight is not None else (None, None)
    b, db = fwAD.unpack_dual(bias) if bias is not None else (None, None)
    if not training or (dx is None and dw is None and db is None):
        return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
    y, mean, invstd = torch.native_batch_norm(x, w, b, running_mean, running_var, True, momentum, eps)
    tangent = None
    if dx is not None:
        tangent = torch.ops.aten.native_batch_norm_backward(dx, x, w, running_mean, running_var, mean, invstd, True,
                                                            eps, [True, False, False])[0]
    if dw is not None or db is not None:
        like = w if w is not None else b
        affine = _batch_norm(x, None, None, torch.zeros_like(like) if dw is None else dw,
                             torch.zeros_like(like) if db is None else db, True, 0.0, eps)
        tangent = affine if tangent is None else tangent + affine
    return fwAD.make_dual(y, tangent)


@contextlib.contextmanager
def batch_norm_tangents() -> Iterator[None]:
    """Inside: BatchNorm layers (which call ``torch.nn.functional.batch_norm``) compute their forward-mode
    tangents with ``_batch_norm_with_tangent``; the original function is restored on exit."""
    F.batch_norm = _batch_norm_with_tangent
    try:
        yield
    finally:
        F.batch_norm = _batch_norm
