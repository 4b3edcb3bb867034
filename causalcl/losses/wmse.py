"""W-MSE: whitening of sub-batches by Cholesky, then MSE between the whitened, normalised views.

Ermolov, Siarohin, Sangineto, Sebe; ICML 2021, "Whitening for Self-Supervised Representation
Learning", arXiv 2007.06346.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import NonFiniteEmbeddingError, check_embeddings, check_real, value_checks_deferred


class WhiteningError(NonFiniteEmbeddingError):
    """The covariance of a sub-batch is not positive definite (collapsed or degenerate embeddings).

    A ``NonFiniteEmbeddingError`` (so a ``ValueError``): the Trainer stops as after a diverged step.
    """


def whiten(x: Tensor, eps: float = 0.0) -> Tensor:
    r"""Whiten the rows of ``x`` with the inverse Cholesky factor of their covariance (W-MSE eq. 4).

    ``x̄ = x − mean(x)``, ``Σ = x̄ᵀx̄ / (N − 1)`` (unbiased, as in the official code), shrunk to
    ``Σ_ε = (1 − ε) Σ + ε I``, factorised ``Σ_ε = L Lᵀ``; returns ``x̄ Wᵀ`` with ``W = L⁻¹`` (a triangular
    solve, no explicit inverse), whose covariance is ``W Σ Wᵀ = I`` when ε = 0. Gradients flow through
    the mean, the covariance and the factorisation (as in the paper). Half-precision inputs are
    computed in float32 with autocast off.

    Args:
        x: (N, D) embeddings, N >= 2; with ε = 0 N must exceed D (otherwise Σ is singular).
        eps: ε in [0, 1], the shrinkage towards the identity (0, the official default).

    Returns:
        (N, D) whitened embeddings.

    Raises:
        ValueError: bad input or ε; ``WhiteningError`` when Σ_ε is not positive definite (inside
            ``deferred_value_checks``, as in the Trainer's steps: NaN rows instead, so no host sync).
    """
    check_embeddings(x, "x")
    eps = check_real(eps, "eps", low=0.0, high=1.0)
    n, d = x.shape
    if eps == 0.0 and n <= d:
        raise ValueError(f"x: whitening {d}-dimensional embeddings needs more than {d} samples, got N = {n} "
                         "(use more samples, a smaller embedding, or eps > 0)")
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    with torch.autocast(x.device.type, enabled=False):
        xc = x - x.mean(dim=0)
        cov = xc.T @ xc / (n - 1)
        if eps > 0:
            cov = (1.0 - eps) * cov + eps * torch.eye(d, dtype=cov.dtype, device=cov.device)
        chol, info = torch.linalg.cholesky_ex(cov)
        if value_checks_deferred():  # no host sync: a failed factorisation gives NaN, the Trainer's non-finite loss
            chol = torch.where(info == 0, chol, torch.full_like(chol, float("nan")))
        elif int(info) != 0:
            raise WhiteningError(f"x: the covariance of {n} samples in {d} dimensions is not positive definite "
                                 "(collapsed embeddings?); use eps > 0 or more samples")
        return torch.linalg.solve_triangular(chol, xc.T, upper=False).T


def wmse_loss(z1: Tensor, z2: Tensor, *more: Tensor, w_size: int = 128, w_iter: int = 1, eps: float = 0.0,
              normalize: bool = True, generator: torch.Generator | None = None) -> Tensor:
    r"""W-MSE loss (Ermolov et al., ICML 2021, arXiv 2007.06346) over V >= 2 views.

    For each of ``w_iter`` iterations a random permutation of the N samples is split into
    ``max(1, N // w_size)`` sub-batches of near-equal size (each >= ``w_size`` when N >= ``w_size``);
    every view is whitened separately inside every sub-batch (:func:`whiten`, the same sub-batches
    for all views), giving w_v. Then, over the V(V−1)/2 view pairs (u, v)::

        normalize=True:   ℓ(u, v) = (1/N) Σ_n ‖ w_u[n]/‖w_u[n]‖ − w_v[n]/‖w_v[n]‖ ‖²
                                  = 2 − 2 · mean_n cos(w_u[n], w_v[n])
        normalize=False:  ℓ(u, v) = (1/N) Σ_n ‖ w_u[n] − w_v[n] ‖²
        L = mean over iterations and pairs of ℓ(u, v)

    Decisions: the official code needs N divisible by ``w_size`` (``randperm(N).view(-1, w_size)``);
    here the last ``N mod w_size`` samples are spread over the sub-batches instead, which gives the
    same sub-batches when N is a multiple of ``w_size`` (default w_size 128, w_iter 1, ε 0,
    normalised MSE — the official CIFAR settings).

    Args:
        z1, z2, *more: (N, D) embeddings of each view (the global batch under DDP), one shape.
        w_size: >= 2, the sub-batch size for whitening; needs ``N // max(1, N // w_size) > D`` when ε = 0.
        w_iter: >= 1 whitening iterations (fresh sub-batches each).
        eps: shrinkage ε of :func:`whiten`.
        normalize: normalised MSE (the paper's, default) or plain MSE of the whitened vectors.
        generator: the ``torch.Generator`` (CPU) drawing the permutations (global RNG when ``None``).

    Returns:
        Scalar tensor.
    """
    views = (z1, z2, *more)
    for v, z in enumerate(views):
        check_embeddings(z, f"z{v + 1}")
    if any(z.shape != z1.shape for z in views):
        raise ValueError(f"z2: all views must have the same shape, got {[tuple(z.shape) for z in views]}")
    for name, value, low in (("w_size", w_size, 2), ("w_iter", w_iter, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    n, d = z1.shape
    chunks = max(1, n // w_size)
    if check_real(eps, "eps", low=0.0, high=1.0) == 0.0 and n // chunks <= d:
        raise ValueError(f"w_size: sub-batches of {n // chunks} samples cannot whiten {d}-dimensional embeddings "
                         f"(N = {n}, w_size = {w_size}); use a batch and w_size above {d}, a smaller embedding, "
                         "or eps > 0")
    total = z1.new_zeros((), dtype=torch.promote_types(z1.dtype, torch.float32))
    pairs = [(u, v) for u in range(len(views)) for v in range(u + 1, len(views))]
    for _ in range(w_iter):
        perm = torch.randperm(n, generator=generator)  # on the CPU: the same sub-batches on every device
        if z1.device.type == "cuda":  # pinned, so the copy does not synchronise the host
            perm = perm.pin_memory()
        perm = perm.to(z1.device, non_blocking=True)
        parts = torch.tensor_split(perm, chunks)
        white = [torch.cat([whiten(z[idx], eps) for idx in parts]) for z in views]
        if normalize:
            white = [F.normalize(w, dim=1) for w in white]
        for u, v in pairs:
            total = total + (white[u] - white[v]).pow(2).sum(dim=1).mean()
    return total / (w_iter * len(pairs))
