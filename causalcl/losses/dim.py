"""Deep InfoMax's global–local mutual-information losses (JSD and InfoNCE estimators).

Hjelm, Fedorov, Lavoie-Marchildon, Grewal, Bachman, Trischler, Bengio; ICLR 2019, "Learning deep
representations by mutual information estimation and maximization", arXiv 1808.06670 (official code:
github.com/rdevon/DIM, ``cortex_DIM/functions/dim_losses.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import NonFiniteEmbeddingError, value_checks_deferred

#: mutual-information estimators of ``dim_loss``
DIM_ESTIMATORS = ("jsd", "infonce")
_LOG2 = math.log(2.0)


def _check_inputs(local: object, global_: object) -> tuple[Tensor, Tensor]:
    if not isinstance(local, Tensor) or local.dim() != 3 or not local.is_floating_point():
        shape = tuple(local.shape) if isinstance(local, Tensor) else type(local).__name__
        raise ValueError(f"local: expected a floating-point (N, L, D) tensor (N images, L locations), got {shape}")
    if local.shape[0] < 2 or local.shape[1] < 1 or local.shape[2] < 1:
        raise ValueError(f"local: expected N >= 2 images, L >= 1 locations and D >= 1, got {tuple(local.shape)}")
    if not isinstance(global_, Tensor) or global_.dim() != 2 or not global_.is_floating_point():
        shape = tuple(global_.shape) if isinstance(global_, Tensor) else type(global_).__name__
        raise ValueError(f"global_: expected a floating-point (N, D) tensor, got {shape}")
    if global_.shape != (local.shape[0], local.shape[2]):
        raise ValueError(f"global_: expected shape {(local.shape[0], local.shape[2])} to match local "
                         f"{tuple(local.shape)}, got {tuple(global_.shape)}")
    if global_.dtype != local.dtype or global_.device != local.device:
        raise ValueError(f"global_: expected the dtype and device of local ({local.dtype}, {local.device}), "
                         f"got ({global_.dtype}, {global_.device})")
    if not value_checks_deferred():
        for name, t in (("local", local), ("global_", global_)):
            if not bool(torch.isfinite(t).all()):
                raise NonFiniteEmbeddingError(f"{name} contains NaN or infinite values")
    return local, global_


def dim_scores(local: Tensor, global_: Tensor) -> Tensor:
    """(N, N, L) scores u[i, j, l] = global_[i] · local[j, l] (the encode-and-dot-product critic T).

    One (N·L, D) × (D, N) matmul with ``local`` on the left, so the gradient that reaches ``local`` is
    contiguous (an einsum gave a transposed one, which the gloo all-gather backward of
    ``causalcl.distributed.gather`` does not sum correctly)."""
    n, n_loc, d = local.shape
    return (local.reshape(n * n_loc, d) @ global_.T).view(n, n_loc, n).permute(2, 0, 1)


def dim_loss(local: Tensor, global_: Tensor, estimator: str = "jsd") -> Tensor:
    r"""Local DIM: minus a lower bound on the mutual information between the global feature of an image and
    each of its local features (Hjelm et al., ICLR 2019, arXiv 1808.06670).

    ``local[j, l]`` is the encoded local feature of image j at location l, ``global_[i]`` the encoded global
    feature of image i, u_ijl = global_[i] · local[j, l] (:func:`dim_scores`). Positive pairs are (i, i, l), the
    negatives (i, j, l) with j ≠ i (every location of every other image in the batch). With sp = softplus:

    * ``"jsd"`` (the paper's default, Eq. 4, with the official code's log 2 offsets, so the loss is 0 at u = 0)::

          E_pos = 1/(NL) Σ_{i,l} (log 2 − sp(−u_iil)),   E_neg = 1/(N(N−1)L) Σ_{i≠j,l} (sp(u_ijl) − log 2)
          L     = E_neg − E_pos

    * ``"infonce"`` (the official ``infonce_loss``): for each anchor (i, l), the positive u_iil against the
      (N − 1)·L negatives u_ijl', j ≠ i, every location l' (same-image pairs are left out exactly; the
      official code keeps them in the softmax with the score −10)::

          L = 1/(NL) Σ_{i,l} −log( exp(u_iil) / (exp(u_iil) + Σ_{j≠i} Σ_{l'} exp(u_ijl')) )

    Args:
        local: (N, L, D) local features, N ≥ 2 (the global batch under DDP), L ≥ 1 locations.
        global_: (N, D) global features; row i is image i.
        estimator: one of ``DIM_ESTIMATORS``.

    Returns:
        Scalar tensor (half-precision inputs are scored in float32 with autocast off).

    Raises:
        ValueError: bad shapes/dtypes/devices, non-finite inputs (``NonFiniteEmbeddingError``) or estimator.
    """
    if estimator not in DIM_ESTIMATORS:
        raise ValueError(f"estimator: expected one of {DIM_ESTIMATORS}, got {estimator!r}")
    local, global_ = _check_inputs(local, global_)
    if local.dtype in (torch.float16, torch.bfloat16):  # the scores in float32 (in bf16 they drifted 27 % in 3 steps)
        local, global_ = local.float(), global_.float()
    with torch.autocast(local.device.type, enabled=False):
        return _dim_loss(local, global_, estimator)


def _dim_loss(local: Tensor, global_: Tensor, estimator: str) -> Tensor:
    n, n_loc = local.shape[0], local.shape[1]
    u = dim_scores(local, global_)  # (N, N, L)
    same = torch.eye(n, dtype=torch.bool, device=u.device)
    if estimator == "jsd":
        positive = torch.diagonal(u).T  # (N, L): u_iil
        e_pos = (_LOG2 - F.softplus(-positive)).mean()
        e_neg = ((F.softplus(u) - _LOG2).masked_fill(same[:, :, None], 0.0)).sum() / (n * (n - 1) * n_loc)
        return e_neg - e_pos
    positive = torch.diagonal(u).T  # (N, L)
    negatives = u.masked_fill(same[:, :, None], float("-inf")).reshape(n, 1, n * n_loc).expand(n, n_loc, -1)
    logits = torch.cat([positive.unsqueeze(2), negatives], dim=2)  # (N, L, 1 + N·L)
    return -(positive - torch.logsumexp(logits, dim=2)).mean()
