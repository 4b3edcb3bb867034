"""f_msr, the meta semantic regularizer of ICL-MSR: it produces the strata A_s = {a_t} of the
backdoor adjustment.

ICL-MSR (Qiang, Li, Zheng, Su, Xiong; ICML 2022, arXiv 2206.14702) replaces the unobserved
background confounder by n "semantically relevant" weight vectors a_t ∈ R^d that reweight the
features element-wise (z ⊙ a_t) before the contrastive probability P(Y | X, a_t) is computed; the
backdoor adjustment then averages over them (``causalcl.causal.BackdoorAdjustment``). The paper
leaves f_msr's input and squashing open; this project's decisions (DESIGN §5.3):

* ``strata="batch"`` (default): a 2-layer MLP ``Linear(in, hidden) → ReLU → Linear(hidden, out)``
  (no BatchNorm, so A_s does not depend on batch statistics) on the **detached** representation
  h_i of every sample of the batch, so n = batch size strata;
* ``strata="learned"`` (ablation): a bank of ``n_strata`` learnable vectors, input ignored;
* both pass the raw output through a sigmoid (positive weights), then L2-normalise each row and
  scale by √d, so every a_t has norm √d — the norm of the all-ones vector, i.e. a_t = 1 leaves z
  unchanged and a mean weight of 1 per coordinate is preserved on average.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.heads import MLPHead

__all__ = ["MetaSemanticRegularizer"]

STRATA = ("batch", "learned")


class MetaSemanticRegularizer(nn.Module):
    """f_msr: representations (B, in_dim) → strata weight vectors A_s (n, out_dim), ‖a_t‖ = √out_dim.

    Args:
        in_dim: width of the representation h fed to the MLP (``strata="batch"``).
        out_dim: d, the width of the features the strata reweight (the projection width).
        hidden: hidden width of the 2-layer MLP (default 512).
        strata: ``"batch"`` (one stratum per sample, from its detached representation) or
            ``"learned"`` (a bank of ``n_strata`` learnable vectors).
        n_strata: number of learned strata (required for, and only valid with, ``"learned"``).

    Example:
        >>> msr = MetaSemanticRegularizer(128, 64)
        >>> msr(torch.randn(8, 128)).shape
        torch.Size([8, 64])
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 512, strata: str = "batch",
                 n_strata: int | None = None) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("hidden", hidden)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if strata not in STRATA:
            raise ValueError(f"strata: expected one of {STRATA}, got {strata!r}")
        self.in_dim, self.out_dim, self.strata = int(in_dim), int(out_dim), strata
        if strata == "batch":
            if n_strata is not None:
                raise ValueError("n_strata: only used with strata='learned' (with 'batch', n = batch size)")
            self.mlp: nn.Module | None = MLPHead([self.in_dim, int(hidden), self.out_dim], hidden_bn=False)
            self.bank: nn.Parameter | None = None
        else:
            if n_strata is None or isinstance(n_strata, bool) or int(n_strata) != n_strata or n_strata < 1:
                raise ValueError(f"n_strata: strata='learned' needs a positive number of strata, got {n_strata!r}")
            self.mlp = None
            # random init: identical strata would all receive the same gradient and never separate
            self.bank = nn.Parameter(torch.randn(int(n_strata), self.out_dim))

    @property
    def n_strata(self) -> int | None:
        """n for learned strata; ``None`` for batch strata (n = batch size)."""
        return None if self.bank is None else self.bank.shape[0]

    def squash(self, raw: Tensor) -> Tensor:
        """sigmoid, then each row L2-normalised and scaled by √out_dim."""
        return F.normalize(torch.sigmoid(raw), dim=-1) * math.sqrt(self.out_dim)

    def forward(self, h: Tensor | None = None) -> Tensor:
        """A_s of shape (n, out_dim): n = len(h) for ``"batch"``; ``h`` is ignored for ``"learned"``.

        The representation is detached: f_msr's gradient never reaches the encoder through its input.
        """
        if self.bank is not None:
            return self.squash(self.bank)
        if not isinstance(h, Tensor) or h.dim() != 2 or h.shape[1] != self.in_dim:
            shape = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
            raise ValueError(f"h: expected representations of shape (B, {self.in_dim}), got {shape}")
        if h.shape[0] < 1:
            raise ValueError("h: expected at least one representation")
        assert self.mlp is not None
        return self.squash(self.mlp(h.detach()))

    def extra_repr(self) -> str:
        n = f", n_strata={self.n_strata}" if self.bank is not None else ""
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}, strata={self.strata!r}{n}"
