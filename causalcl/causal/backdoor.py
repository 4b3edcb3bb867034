"""The backdoor adjustment over a discrete confounder, as a stand-alone object.

When a confounder Z (here: the background, or a set of learned semantic strata z_1..z_T) opens a
backdoor path X ← Z → Y, the interventional distribution is (Pearl, *Causality*, 2009, Thm 3.3.2)

    P(Y | do(X)) = Σ_{t=1..T} P(Y | X, z_t) · P(z_t),

the per-stratum conditionals averaged under the *prior* of the strata instead of their posterior
given X. ICL-MSR (Qiang, Li, Zheng, Su, Xiong; ICML 2022, arXiv 2206.14702; DESIGN §5.3) uses it
with n learned strata and a uniform prior, and needs ``log P(Y | do(X))`` from log-probabilities,
which ``log_prob`` computes stably as ``logsumexp_t(log P(Y | X, z_t) + log P(z_t))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..losses._common import value_checks_deferred

__all__ = ["BackdoorAdjustment"]


class BackdoorAdjustment:
    """``P(Y | do(X)) = Σ_t P(Y | X, z_t) P(z_t)`` over the last axis of the conditionals.

    Args:
        prior: P(z_t), a 1-D sequence/tensor of T non-negative numbers summing to 1 (within
            ``atol``); ``None`` (default) = uniform over however many strata the input has.
        atol: tolerance of the sum-to-one check.

    Raises:
        ValueError: a prior that is not 1-D, empty, non-finite, negative or does not sum to 1; at
            call time, conditionals whose last axis does not match T, or that are not probabilities.

    Example:
        >>> adj = BackdoorAdjustment([0.25, 0.75])
        >>> adj(torch.tensor([0.2, 0.6]))  # 0.2·0.25 + 0.6·0.75
        tensor(0.5000)
    """

    def __init__(self, prior: Sequence[float] | Tensor | None = None, *, atol: float = 1e-6) -> None:
        self.atol = float(atol)
        if prior is None:
            self.prior: Tensor | None = None
            return
        p = torch.as_tensor(prior, dtype=torch.float64).detach().cpu()
        if p.dim() != 1 or p.numel() == 0:
            raise ValueError(f"prior: expected a non-empty 1-D vector of stratum probabilities, "
                             f"got shape {tuple(p.shape)}")
        if not bool(torch.isfinite(p).all()):
            raise ValueError(f"prior: expected finite probabilities, got {p.tolist()}")
        if bool((p < 0).any()):
            raise ValueError(f"prior: expected non-negative probabilities, got {p.tolist()}")
        if abs(float(p.sum()) - 1.0) > self.atol:
            raise ValueError(f"prior: probabilities must sum to 1, got sum {float(p.sum())!r}")
        self.prior = p

    @property
    def num_strata(self) -> int | None:
        """T, or ``None`` for a uniform prior that adapts to the input."""
        return None if self.prior is None else self.prior.numel()

    def weights(self, num_strata: int, *, device: torch.device | str | None = None,
                dtype: torch.dtype = torch.float32) -> Tensor:
        """P(z_t) as a (T,) tensor (uniform 1/T when no prior was given)."""
        if self.prior is None:
            if num_strata < 1:
                raise ValueError(f"conditionals: expected at least one stratum on the last axis, got {num_strata}")
            return torch.full((num_strata,), 1.0 / num_strata, device=device, dtype=dtype)
        if num_strata != self.prior.numel():
            raise ValueError(f"conditionals: the last axis must hold T = {self.prior.numel()} strata (the prior's "
                             f"length), got {num_strata}")
        return self.prior.to(device=device, dtype=dtype)

    def _check(self, x: object, name: str) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 1:
            raise ValueError(f"{name}: expected a floating tensor of shape (..., T)")
        if not value_checks_deferred() and bool(torch.isnan(x).any()):
            raise ValueError(f"{name}: contains NaN")
        return x

    def __call__(self, conditionals: Tensor) -> Tensor:
        """Σ_t conditionals[..., t] · P(z_t): shape (...) from (..., T) probabilities in [0, 1]."""
        c = self._check(conditionals, "conditionals")
        if not value_checks_deferred() and (bool((c < 0).any()) or bool((c > 1 + self.atol).any())):
            raise ValueError("conditionals: expected probabilities P(Y | X, z_t) in [0, 1] (use log_prob for logs)")
        return c @ self.weights(c.shape[-1], device=c.device, dtype=c.dtype)

    def log_prob(self, log_conditionals: Tensor) -> Tensor:
        """log P(Y | do(X)) = logsumexp_t(log P(Y | X, z_t) + log P(z_t)), shape (...) from (..., T).

        Stable for very negative log-probabilities (no exp underflow); strata with P(z_t) = 0 drop out.
        """
        c = self._check(log_conditionals, "log_conditionals")
        if not value_checks_deferred() and bool((c > self.atol).any()):
            raise ValueError("log_conditionals: expected log-probabilities (<= 0)")
        t = c.shape[-1]
        if self.prior is None:
            self.weights(t)  # validates t >= 1
            return torch.logsumexp(c, dim=-1) - math.log(t)
        log_w = self.weights(t, device=c.device, dtype=c.dtype).log()
        return torch.logsumexp(c + log_w, dim=-1)

    #: alias of ``log_prob``: the adjustment applied in log space
    log_call = log_prob

    def __repr__(self) -> str:
        prior = "uniform" if self.prior is None else [round(v, 6) for v in self.prior.tolist()]
        return f"BackdoorAdjustment(prior={prior})"
