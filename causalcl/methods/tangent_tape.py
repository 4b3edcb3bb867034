"""J·v from a forward pass already taken: the tangent pass alone, on the activations stage 1 recorded.

A bilevel method's meta-gradient needs u = J_z(θ)·v, the derivative of the embeddings z along a parameter
direction v, at the very weights θ and on the very batch its stage-1 forward used (``causalcl.methods.bilevel``).
Forward mode (``torch.autograd.forward_ad``) computes the primal z(θ) again beside the tangent. For a network
that is a chain of plain layers — ``convnet_small`` and the ``MLPHead`` projectors — the tangent of each layer
depends only on that layer's input, which stage 1 already computed, so recording those inputs during stage 1
(forward hooks) lets the meta step run the tangent pass alone:

    Conv2d / Linear   dy = W·dx + dW·x + db            (two matmuls/convolutions; the first vanishes on the input)
    BatchNorm (batch statistics)   dy = J_x·dx + x̂·dγ + dβ,  J_x = (γ/σ)(I − 11ᵀ/n − x̂x̂ᵀ/n) per channel
                      = (γ/σ)·dx + a·x + c   with per-channel a, c from the two sums Σdx and Σdx·x̂
                      (BatchNorm's backward kernel asked for its weight and bias gradients only: one read
                      of dx and x) and stage 1's batch statistics μ, 1/σ (saved by its autograd node);
                      without them (stage 1 under no_grad, a kernel other than the native one) the
                      statistics come from a BatchNorm of x with weight dγ and bias dβ, which also gives
                      x̂·dγ + dβ, and J_x·dx from the full backward kernel (J_x is symmetric)
    ReLU              dy = dx · 1[y > 0]                (``threshold_backward``)
    AdaptiveAvgPool2d dy = pool(dx);   flatten / view between layers: the same reshape of dx

This is exact (the same linear map as forward mode, to float round-off; tests hold it to forward_ad) and saves
the primal convolutions and BatchNorm outputs of the JVP. The chain is checked while recording: every layer's
input must be the previous layer's output (same storage, same size — only a view such as ``flatten`` between
them) and every BatchNorm must normalise with batch statistics. A network with anything else (a residual
add, an unknown layer) is not a chain: ``TangentTape.of`` returns ``None`` or the recording is marked invalid,
and the caller falls back to forward mode.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: the layer types a chain may hold (exact types: a subclass may change ``forward``)
_LEAVES = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.AdaptiveAvgPool2d, nn.Identity, nn.Flatten)


def layer_chain(module: nn.Module) -> list[nn.Module] | None:
    """The leaf layers of ``module`` in the order its forward runs them, when ``module`` is known to be a
    plain chain (an ``nn.Sequential`` of supported layers, or ``convnet_small``); ``None`` otherwise."""
    from ..models.backbones import ConvNetSmall  # models is a lower layer; imported here to keep this module light

    if isinstance(module, ConvNetSmall):
        inner = layer_chain(module.features)
        return None if inner is None else [*inner, module.pool]
    if isinstance(module, nn.Sequential):
        out: list[nn.Module] = []
        for child in module:
            inner = layer_chain(child)
            if inner is None:
                return None
            out += inner
        return out
    if type(module) in _LEAVES and not (isinstance(module, nn.Conv2d) and module.padding_mode != "zeros"):
        return [module]
    return None


class TangentTape:
    """Records the layer inputs of a chain's forward passes (``record``) and computes J·v from them (``jvp``).

    ``TangentTape.of(m1, m2, ...)`` chains the modules in the order they are applied (e.g. a backbone, then
    its projector); each recorded pass runs the whole chain once, and ``jvp`` returns the tangents of the
    passes' outputs concatenated along the batch. ``outputs()`` gives the recorded outputs in the same order,
    so a caller can check they are the tensors it means.
    """

    def __init__(self, chain: Sequence[nn.Module]) -> None:
        self.chain = list(chain)
        self._calls: list[tuple[nn.Module, Tensor, Tensor]] = []
        self._valid = False

    @classmethod
    def of(cls, *modules: nn.Module) -> TangentTape | None:
        chain: list[nn.Module] = []
        for m in modules:
            part = layer_chain(m)
            if part is None:
                return None
            chain += part
        return cls(chain) if chain else None

    @contextlib.contextmanager
    def record(self) -> Iterator[None]:
        """Inside: every call of a chain layer is recorded (its input, detached, and its output)."""
        self.clear()

        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            stats = _saved_batch_stats(output) if isinstance(module, nn.modules.batchnorm._BatchNorm) else None
            self._calls.append((module, inputs[0].detach(), output.detach(), stats))

        handles = [m.register_forward_hook(hook) for m in dict.fromkeys(self.chain)]
        try:
            yield
        finally:
            for h in handles:
                h.remove()
        self._valid = self._check()

    def clear(self) -> None:
        self._calls, self._valid = [], False

    @property
    def valid(self) -> bool:
        return self._valid

    def _check(self) -> bool:
        n = len(self.chain)
        if not self._calls or len(self._calls) % n:
            return False
        for i, (module, x, _, _) in enumerate(self._calls):
            if module is not self.chain[i % n]:
                return False
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not (
                    module.training or module.running_mean is None):
                return False
            if i % n:
                prev = self._calls[i - 1][2]
                if x.data_ptr() != prev.data_ptr() or x.numel() != prev.numel():
                    return False
        return True

    def outputs(self) -> list[Tensor]:
        """The recorded outputs of the chain's last layer, one per pass."""
        n = len(self.chain)
        return [self._calls[i][2] for i in range(n - 1, len(self._calls), n)]

    def jvp(self, direction: Mapping[int, Tensor]) -> Tensor:
        """J·v of the recorded passes' outputs (concatenated along dim 0) for the parameter tangents
        ``direction`` = {id(parameter): tangent}; parameters it does not name have tangent 0."""
        if not self._valid:
            raise RuntimeError("TangentTape.jvp: no valid recording (record a forward of the chain first)")
        n, outs = len(self.chain), []
        for start in range(0, len(self._calls), n):
            t: Tensor | None = None
            for module, x, y, stats in self._calls[start:start + n]:
                t = _layer_tangent(module, x, y, None if t is None else t.reshape(x.shape), direction, stats)
            last = self._calls[start + n - 1][2]
            outs.append(torch.zeros_like(last) if t is None else t.reshape(last.shape))
        return torch.cat(outs)


def _param_tangent(direction: Mapping[int, Tensor], p: Tensor | None) -> Tensor | None:
    return None if p is None else direction.get(id(p))


def _saved_batch_stats(output: Tensor) -> tuple[Tensor, Tensor] | None:
    """(μ, 1/σ) of a BatchNorm call in training mode, as its autograd node saved them for the backward; read at
    the call (the node's saved tensors are freed by the backward); ``None`` without a native-kernel node."""
    node = output.grad_fn
    if node is None or type(node).__name__ != "NativeBatchNormBackward0":
        return None
    return node._saved_result1.detach(), node._saved_result2.detach()


def _batch_norm_tangent(module: nn.modules.batchnorm._BatchNorm, x: Tensor, t: Tensor | None, dw: Tensor | None,
                        db: Tensor | None, stats: tuple[Tensor, Tensor] | None) -> Tensor | None:
    """dy = J_x·t + x̂·dγ + dβ of a BatchNorm with batch statistics (module docstring)."""
    if t is None and dw is None and db is None:
        return None
    weight = module.weight if module.weight is not None else x.new_ones(x.shape[1])
    if stats is None:  # the statistics from a BatchNorm of x, which also gives x̂·dγ + dβ
        affine, mean, invstd = torch.native_batch_norm(x, torch.zeros_like(weight) if dw is None else dw,
                                                       torch.zeros_like(weight) if db is None else db, None, None,
                                                       True, 0.0, module.eps)
        if t is None:
            return affine
        out = torch.ops.aten.native_batch_norm_backward(t, x, weight, None, None, mean, invstd, True,
                                                        module.eps, [True, False, False])[0]
        return out.add_(affine)
    mean, invstd = stats
    shape = [1, -1] + [1] * (x.dim() - 2)
    dgamma = torch.zeros_like(weight) if dw is None else dw
    a, c = invstd * dgamma, torch.zeros_like(weight) if db is None else db.clone()
    scale = weight * invstd  # γ/σ
    if t is not None:  # Σ t·x̂ and Σ t per channel: the weight and bias gradients of BatchNorm's backward
        _, sum_tx, sum_t = torch.ops.aten.native_batch_norm_backward(t, x, weight, None, None, mean, invstd, True,
                                                                     module.eps, [False, True, True])
        n = x.numel() // x.shape[1]
        a = a - scale * invstd * sum_tx / n
        c = c - scale * sum_t / n
    c = c - a * mean  # x̂·k = (x − μ)·k/σ: the per-channel constant
    out = torch.addcmul(c.reshape(shape), x, a.reshape(shape))
    return out if t is None else out.addcmul_(t, scale.reshape(shape))


def _layer_tangent(module: nn.Module, x: Tensor, y: Tensor, t: Tensor | None, direction: Mapping[int, Tensor],
                   stats: tuple[Tensor, Tensor] | None = None) -> Tensor | None:
    """The output tangent of one layer at input x (output y) for input tangent t (None = 0); ``stats`` = a
    BatchNorm's (μ, 1/σ) from stage 1, or ``None``."""
    if isinstance(module, nn.Conv2d | nn.Linear):
        dw, db = _param_tangent(direction, module.weight), _param_tangent(direction, module.bias)
        if isinstance(module, nn.Conv2d):
            def op(inp: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
                return F.conv2d(inp, w, b, module.stride, module.padding, module.dilation, module.groups)
        else:
            op = F.linear
        out = op(t, module.weight, None) if t is not None else None
        if dw is not None:
            part = op(x, dw, db)
            return part if out is None else out.add_(part)
        if db is not None:
            part = db.reshape([1, -1] + [1] * (x.dim() - 2)).expand_as(y)
            return part.clone() if out is None else out.add_(part)
        return out
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return _batch_norm_tangent(module, x, t, _param_tangent(direction, module.weight),
                                   _param_tangent(direction, module.bias), stats)
    if t is None:
        return None
    if isinstance(module, nn.ReLU):
        return torch.ops.aten.threshold_backward(t, y, 0)
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return F.adaptive_avg_pool2d(t, module.output_size)
    return t  # Identity, Flatten: the reshape to the next input's shape does the rest
