"""Contrastive Predictive Coding's InfoNCE over a sequence of latents (time steps, rows of patches, frames).

van den Oord, Li, Vinyals, "Representation Learning with Contrastive Predictive Coding", arXiv 1807.03748
(2018); Hénaff, Srinivas, De Fauw, Razavi, Doersch, Eslami, van den Oord, "Data-Efficient Image Recognition
with Contrastive Predictive Coding" (CPC v2), ICML 2020, arXiv 1905.09272.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._common import NonFiniteEmbeddingError, value_checks_deferred

#: above this many logits (predictions × candidates) the loss is computed in chunks of rows, and the backward
#: pass recomputes each chunk's logits (``_ChunkedInfoNCE``), so memory stays at one chunk's logits
MAX_CHUNK_LOGITS = 1 << 25


def _check(z: object, predictions: object) -> tuple[Tensor, list[Tensor]]:
    if not isinstance(z, Tensor) or z.dim() != 4 or not z.is_floating_point():
        shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise ValueError(f"z: expected a floating-point (B, T, P, D) tensor (batch, sequence, positions, "
                         f"features), got {shape}")
    b, t, p, d = z.shape
    if t < 2 or min(b, p, d) < 1 or b * t * p < 2:
        raise ValueError(f"z: expected T >= 2 steps and at least 2 latents in all, got shape {tuple(z.shape)}")
    if not isinstance(predictions, Sequence) or isinstance(predictions, Tensor) or not 1 <= len(predictions) < t:
        raise ValueError(f"predictions: expected a sequence of K tensors, 1 <= K <= T - 1 = {t - 1} (one per "
                         f"offset k = 1..K), got {type(predictions).__name__}"
                         + (f" of length {len(predictions)}" if isinstance(predictions, Sequence) else ""))
    for k, pred in enumerate(predictions, start=1):
        want = (b, t - k, p, d)
        if not isinstance(pred, Tensor) or tuple(pred.shape) != want:
            shape = tuple(pred.shape) if isinstance(pred, Tensor) else type(pred).__name__
            raise ValueError(f"predictions[{k - 1}]: expected shape {want} (offset k = {k}: the predictions of "
                             f"z[:, {k}:] from the contexts of steps 0..T-{k + 1}), got {shape}")
        if pred.dtype != z.dtype or pred.device != z.device:
            raise ValueError(f"predictions[{k - 1}]: expected the dtype and device of z ({z.dtype}, {z.device}), "
                             f"got ({pred.dtype}, {pred.device})")
    if not value_checks_deferred():
        if not bool(torch.isfinite(z).all()):
            raise NonFiniteEmbeddingError("z contains NaN or infinite values")
        for k, pred in enumerate(predictions):
            if not bool(torch.isfinite(pred).all()):
                raise NonFiniteEmbeddingError(f"predictions[{k}] contains NaN or infinite values")
    return z, list(predictions)


def _weighted_nll(rows: Tensor, candidates: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
    """Σ_r weights[r] · −log softmax(rows[r] · candidatesᵀ)[targets[r]]."""
    logits = rows @ candidates.T
    return (F.cross_entropy(logits, targets, reduction="none") * weights).sum()


class _ChunkedInfoNCE(torch.autograd.Function):
    """``_weighted_nll`` over chunks of ``step`` rows: the forward keeps only each row's log-sum-exp, the backward
    recomputes a chunk's logits and applies ∂/∂logits = w·(softmax − onehot) (one matmul more than autograd's
    three, memory of one chunk instead of the whole (rows × candidates) matrix)."""

    @staticmethod
    def forward(ctx, rows: Tensor, candidates: Tensor, targets: Tensor, weights: Tensor, step: int) -> Tensor:
        lse = rows.new_empty(rows.shape[0])
        for start in range(0, rows.shape[0], step):
            lse[start:start + step] = torch.logsumexp(rows[start:start + step] @ candidates.T, dim=1)
        positive = (rows * candidates[targets]).sum(1)
        ctx.save_for_backward(rows, candidates, targets, weights, lse)
        ctx.step = step
        return (weights * (lse - positive)).sum()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        rows, candidates, targets, weights, lse = ctx.saved_tensors
        grad_rows, grad_candidates = torch.empty_like(rows), torch.zeros_like(candidates)
        scale = weights * grad
        for start in range(0, rows.shape[0], ctx.step):
            chunk = slice(start, start + ctx.step)
            d_logits = (rows[chunk] @ candidates.T).sub_(lse[chunk, None]).exp_().mul_(scale[chunk, None])
            d_logits[torch.arange(d_logits.shape[0], device=d_logits.device), targets[chunk]] -= scale[chunk]
            torch.mm(d_logits, candidates, out=grad_rows[chunk])
            grad_candidates.addmm_(d_logits.T, rows[chunk])
        return grad_rows, grad_candidates, None, None, None


def cpc_loss(z: Tensor, predictions: Sequence[Tensor], *, max_chunk_logits: int = MAX_CHUNK_LOGITS) -> Tensor:
    r"""CPC's InfoNCE (van den Oord et al. 2018; CPC v2, Hénaff et al., ICML 2020) over a generic sequence axis.

    ``z[b, t, p]`` is the latent of item b at step t (a row of patches, a frame, ...) and position p (a
    column, a spatial cell, or a single position); ``predictions[k-1][b, t, p]`` = W_k c_{b,t,p} predicts
    ``z[b, t+k, p]`` from the context c of steps ≤ t (t = 0..T−k−1). The positive of a prediction is the true
    latent at the offset; the candidates are all B·T·P latents of ``z`` (every other position and step of the
    same item, and every latent of the other items: CPC v2's "other locations in the image and other images in
    the mini-batch")::

        ℓ_{k,b,t,p} = −log( exp(ẑᵀ z_{b,t+k,p}) / Σ_{b',t',p'} exp(ẑᵀ z_{b',t',p'}) ),   ẑ = W_k c_{b,t,p}
        L = 1/K Σ_{k=1..K} mean_{b,t,p} ℓ_{k,b,t,p}

    Raw dot products, no temperature or normalisation (as the papers). Each offset weighs the same whatever its
    number of predictions. Gradients reach both the predictions and every latent of ``z`` (positives and
    negatives). Above ``max_chunk_logits`` logits in all, rows are processed in chunks (same value and gradient;
    the backward pass recomputes each chunk's logits instead of keeping the whole matrix; first-order only).
    Half-precision inputs are scored in float32 with autocast off.

    Args:
        z: (B, T, P, D) latents, T ≥ 2 (under DDP the global batch).
        predictions: K tensors, ``predictions[k-1]`` of shape (B, T−k, P, D), 1 ≤ K ≤ T−1.
        max_chunk_logits: the most logits held at once before chunking (≥ 1).

    Returns:
        Scalar tensor.

    Raises:
        ValueError: bad shapes/dtypes/devices, non-finite inputs (``NonFiniteEmbeddingError``).
    """
    z, predictions = _check(z, predictions)
    if isinstance(max_chunk_logits, bool) or not isinstance(max_chunk_logits, int) or max_chunk_logits < 1:
        raise ValueError(f"max_chunk_logits: expected a positive int, got {max_chunk_logits!r}")
    b, t, p, d = z.shape
    k_max = len(predictions)
    candidates = z.reshape(b * t * p, d)
    rows = torch.cat([pred.reshape(-1, d) for pred in predictions])
    if z.dtype in (torch.float16, torch.bfloat16):  # a softmax over B·T·P candidates: computed in float32
        rows, candidates = rows.float(), candidates.float()
    index = torch.arange(b * t * p, device=z.device).view(b, t, p)
    targets = torch.cat([index[:, k:].reshape(-1) for k in range(1, k_max + 1)])
    weights = torch.cat([torch.full((b * (t - k) * p,), 1.0 / (k_max * b * (t - k) * p), dtype=rows.dtype,
                                    device=z.device) for k in range(1, k_max + 1)])
    n_rows, n_cand = rows.shape[0], candidates.shape[0]
    with torch.autocast(z.device.type, enabled=False):
        if n_rows * n_cand <= max_chunk_logits:
            return _weighted_nll(rows, candidates, targets, weights)
        return _ChunkedInfoNCE.apply(rows, candidates, targets, weights, max(1, max_chunk_logits // n_cand))
