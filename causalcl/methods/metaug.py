"""MetAug (Li, Qiang, Zheng, Su, Xiong; ICML 2022, arXiv 2203.05119, "MetAug: Contrastive Learning
via Meta Feature Augmentation") and ``metaug_oucl``, the paper's "MetAug (only OUCL)" ablation.

Two views x¹, x² give unit projections z_j = g_ν(f_θ(x^j)) (``base="simclr"``: one backbone and one
projector, as SimCLR) or z_L, z_ab (``base="cmc"``: CMC's L and ab views, one encoder and head per
view). Each view j has a meta feature augmentation generator (MAG) a_ω_j, an MLP on the unit
projection with a unit output, ẑ_j = a_ω_j(z_j). With ``OUCL(u, v)`` = ``causalcl.losses.oucl`` (each
sample pools 1 positive and 2N − 2 cross-view negatives, shifted cosine d = (cos+1)/2) the loss is

    L = OUCL(z1, z2) + λ_aug·[OUCL(ẑ1, z2) + OUCL(z1, ẑ2) + OUCL(ẑ1, ẑ2)] + λ_mi·R_σ,

R_σ = ``margin_injection`` with σ± from the original scores and the augmented scores of all three
augmented pairs (the official code's composite on its 3 CMC views; in batch mode both directions
of a pair use the augmented features, where the code's memory bank made 6 of its 12 "augmented"
score sets original ones). ``metaug_oucl`` is L = OUCL(z1, z2) alone (no MAGs, no meta step).

Step order (official ``train_MetAug.py``):
1. encoder step, by the Trainer: ``forward`` → backward → step over ``optim_parameters()``, which
   excludes the MAGs; ``forward`` runs the MAGs with detached weights, so no gradient reaches them;
2. ``meta_step(views, lr)``: L(θ, ω) at the new θ (θ = every non-MAG parameter: encoders and heads),
   g = ∇_θ L with ``create_graph=True``, θ' = θ − α·g (plain SGD, α = ``inner_lr`` or the Trainer's
   lr), then L(θ', ω) by ``torch.func.functional_call`` and the exact second-order gradient
   ∇_ω L(θ'(ω), ω) (direct term + the term through θ') steps the MAGs with the method's own
   optimiser. ``second_order=False`` drops the term through θ' (first-order ablation). Every
   functional call gets clones of all buffers, so BN batch statistics are used as in training but
   the running statistics (of encoders, heads and MAGs) are updated once per step, by the Trainer's
   forward, and never by the lookahead. Logs ``meta_grad_norm`` (‖∇_ω‖) and ``meta_objective``.
   With ``adaptive=True`` the OUCL weights are constants to autograd (Circle loss), so ∇_ω is then the
   gradient with the weights frozen. Under DDP the lookahead differentiates twice through ``gather``
   (torch.distributed.nn's all-gather, whose backward is differentiable); not tested multi-process.

Defaults: OUCL γ = 16, margins and adaptive weights off, m = 0.25, β = 1 (official code; here the
adaptive weights really apply when on); λ_aug = 1e-5, λ_mi = 1e-11 (official code: at these weights
the encoder sees almost only OUCL(z1, z2); raise ``aug_weight``, e.g. to 0.1, to let the MAGs
matter), positive hinge of R_σ weighted 1 (seed; the code uses 1e-4); α = Trainer lr (official
1e-3); MAG optimiser Adam, ``meta_lr`` 1e-3 (the code's SGD lr 0.03 / momentum 0.9 / wd 1e-4 is
``meta_optimizer="sgd", meta_lr=0.03``; an Adam step moves each weight by about lr whatever the tiny
λ scale of ∇_ω, hence the smaller lr); MAG widths d → 512 → 512 → d with BN + ReLU (official
128 → 2048 → 2048 → 128); projector feature_dim → 512 → 128. The MAG optimiser state
travels in the method's ``state_dict`` (``get_extra_state``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ..distributed import gather
from ..losses.oucl import margin_injection, oucl_from_scores, pair_scores
from ..models.heads import MLPHead
from .base import Method
from .bilevel import MetaOptimizerState, global_mean_grads
from .cmc import CMC

BASES = ("simclr", "cmc")


class MetAug(MetaOptimizerState, Method):
    """MetAug: OUCL + meta-learned feature augmentation (one MAG per view) + margin-injected R_σ.

    Args:
        backbone: the encoder f (the template of both encoders with ``base="cmc"``).
        gamma, margins, adaptive, m, beta: OUCL options (``causalcl.losses.oucl_from_scores``).
        aug_weight: λ_aug of the three augmented OUCL terms.
        margin_weight: λ_mi of R_σ; margin_pos_weight: weight of its positive hinge.
        inner_lr: α of the lookahead θ' = θ − α∇_θL (None: the Trainer's current lr).
        meta_lr: learning rate of the MAG optimiser; meta_optimizer: ``"adam"`` or ``"sgd"``
            (momentum 0.9, weight decay 1e-4, as the official code).
        second_order: keep the gradient through θ'(ω) (exact MetAug) or drop it (first order).
        mag_hidden: hidden widths of each MAG.
        projector: widths of g after the backbone width (``base="simclr"``).
        base: ``"simclr"`` (2 views, shared backbone) or ``"cmc"`` (L / ab, ``causalcl.methods.CMC``).
        base_options: keyword arguments of ``CMC`` (e.g. ``{"projector": [128], "same_crop": True}``).
    """

    name = "metaug"
    uses_mags = True

    def __init__(self, backbone: nn.Module, *, gamma: float = 16.0, margins: bool = False, adaptive: bool = False,
                 m: float = 0.25, beta: float = 1.0, aug_weight: float = 1e-5, margin_weight: float = 1e-11,
                 margin_pos_weight: float = 1.0, inner_lr: float | None = None, meta_lr: float = 1e-3,
                 meta_optimizer: str = "adam", second_order: bool = True, mag_hidden: Sequence[int] = (512, 512),
                 projector: Sequence[int] = (512, 128), base: str = "simclr",
                 base_options: dict[str, Any] | None = None) -> None:
        super().__init__(backbone)
        for value, key in ((gamma, "gamma"), (beta, "beta"), (meta_lr, "meta_lr")):
            if not value > 0:
                raise ValueError(f"{key}: expected a positive float, got {value}")
        for value, key in ((m, "m"), (aug_weight, "aug_weight"), (margin_weight, "margin_weight"),
                           (margin_pos_weight, "margin_pos_weight")):
            if not value >= 0:
                raise ValueError(f"{key}: expected a non-negative float, got {value}")
        if inner_lr is not None and not inner_lr > 0:
            raise ValueError(f"inner_lr: expected a positive float or None (the Trainer's lr), got {inner_lr}")
        if base not in BASES:
            raise ValueError(f"base: expected one of {list(BASES)}, got {base!r}")
        if meta_optimizer not in ("adam", "sgd"):
            raise ValueError(f"meta_optimizer: expected 'adam' or 'sgd', got {meta_optimizer!r}")
        self.oucl_options = {"gamma": gamma, "margins": bool(margins), "adaptive": bool(adaptive), "m": m,
                             "beta": beta}
        self.aug_weight, self.margin_weight, self.margin_pos_weight = aug_weight, margin_weight, margin_pos_weight
        self.inner_lr, self.second_order, self.base_name = inner_lr, bool(second_order), base
        if base == "cmc":
            self.base = CMC(backbone, **dict(base_options or {}))
            self.backbone = self.base.backbone  # the LabEncoder (shared, tied in the state_dict)
            self.feature_dim = self.base.feature_dim
            dim = self.base.projector_l.widths[-1]
        else:
            if base_options:
                raise ValueError(f"base_options: only used with base='cmc', got {base_options}")
            self.projector = MLPHead([self.feature_dim, *projector])
            dim = self.projector.widths[-1]
        owners: dict[int, int] = {}
        for module in self.modules():  # a parameter shared by two modules would escape the lookahead swap
            for p in module.parameters(recurse=False):
                if owners.setdefault(id(p), id(module)) != id(module):
                    raise ValueError("backbone: parameters shared between two modules are not supported by MetAug")
        self.mags: nn.ModuleList | None = None
        self.meta_optimizer: torch.optim.Optimizer | None = None
        if self.uses_mags:
            self.mags = nn.ModuleList(MLPHead([dim, *mag_hidden, dim]) for _ in range(2))
            if meta_optimizer == "adam":
                self.meta_optimizer = torch.optim.Adam(self.mags.parameters(), lr=meta_lr)
            else:
                self.meta_optimizer = torch.optim.SGD(self.mags.parameters(), lr=meta_lr, momentum=0.9,
                                                      weight_decay=1e-4)

    # --- views and embeddings -------------------------------------------------------------------
    def make_views(self, augment: Callable[..., Tensor], images: Tensor,
                   generator: torch.Generator | None = None) -> list[Tensor]:
        """Two augmented views; with ``base="cmc"``, CMC's (one crop split into L and ab by default)."""
        if self.base_name == "cmc":
            return self.base.make_views(augment, images, generator)
        return super().make_views(augment, images, generator)

    def embed(self, views: list[Tensor]) -> tuple[Tensor, Tensor]:
        """The two views' projections (un-gathered)."""
        if self.base_name == "cmc":
            return self.base.embed_views(views)
        self.check_views(views, 2)
        z = self.projector(self.backbone(torch.cat(list(views[:2]))))
        z1, z2 = z.chunk(2)
        return z1, z2

    def augment_features(self, j: int, z: Tensor, live: bool = False) -> Tensor:
        """ẑ = MAG_j(unit z), unit-normalised; ``live=False`` runs the MAG with detached weights."""
        mag = self.mags[j]  # type: ignore[index]
        x = F.normalize(z, dim=1)
        if live:
            out = mag(x)
        else:
            out = functional_call(mag, {n: p.detach() for n, p in mag.named_parameters()}, (x,))
        return F.normalize(out, dim=1)

    # --- loss -------------------------------------------------------------------------------------
    def forward(self, views: list[Tensor], *, live_mags: bool = False) -> dict[str, Any]:
        """Loss terms and embeddings; ``live_mags=True`` (used by ``meta_step``) lets gradients reach ω."""
        z1, z2 = self.embed(views)
        g1, g2 = gather(z1), gather(z2)  # the global batch under DDP
        pos, neg = pair_scores(g1, g2)
        base_loss = oucl_from_scores(pos, neg, **self.oucl_options)
        if self.mags is None:
            return {"loss": base_loss, "embeddings": [z1, z2]}
        a1, a2 = (gather(self.augment_features(j, z, live_mags)) for j, z in enumerate((z1, z2)))
        pairs = [pair_scores(a1, g2), pair_scores(g1, a2), pair_scores(a1, a2)]
        aug_loss = sum(oucl_from_scores(p, n, **self.oucl_options) for p, n in pairs)
        margin = margin_injection(pos, neg, torch.cat([p for p, _ in pairs], 1), torch.cat([n for _, n in pairs], 1),
                                  pos_weight=self.margin_pos_weight)
        loss = base_loss + self.aug_weight * aug_loss + self.margin_weight * margin
        return {"loss": loss, "oucl_loss": base_loss, "aug_loss": aug_loss, "margin_loss": margin,
                "embeddings": [z1, z2]}

    # --- bilevel step -------------------------------------------------------------------------
    def optim_parameters(self) -> Iterator[nn.Parameter]:
        """Every trainable parameter except the MAGs' (they have their own optimiser)."""
        mag_ids = {id(p) for p in self.mags.parameters()} if self.mags is not None else set()
        return (p for p in self.parameters() if p.requires_grad and id(p) not in mag_ids)

    def _functional_loss(self, params: dict[str, Tensor], views: list[Tensor]) -> Tensor:
        state = {**{n: b.clone() for n, b in self.named_buffers()}, **params}  # buffers: throw-away clones
        # names are de-duplicated and tie_weights=False: an aliased module (a backbone's `last_conv`, the
        # LabEncoder shared with CMC) is swapped once through its first name (tie_weights=True leaves
        # the lookahead weights in place after the call for aliased modules, seen with torch 2.14)
        return functional_call(self, state, (views,), {"live_mags": True}, tie_weights=False)["loss"]

    def meta_objective(self, views: list[Tensor], alpha: float) -> Tensor:
        """L(θ'(ω), ω) with θ' = θ − α∇_θL(θ, ω), differentiable in ω (to second order by default)."""
        if self.mags is None:
            raise ValueError(f"meta_objective: method {self.name!r} has no MAGs")
        mag_ids = {id(p) for p in self.mags.parameters()}
        theta = {n: p for n, p in self.named_parameters() if p.requires_grad and id(p) not in mag_ids}
        inner = self._functional_loss(theta, views)
        grads = global_mean_grads(torch.autograd.grad(inner, list(theta.values()), create_graph=self.second_order,
                                                 allow_unused=True))  # DDP: the global batch's gradient
        lookahead = {n: p if g is None else p - alpha * g for (n, p), g in zip(theta.items(), grads, strict=True)}
        return self._functional_loss(lookahead, views)

    def meta_step(self, views: list[Tensor], lr: float) -> dict[str, float]:
        """One MAG step on ∇_ω L(θ'(ω), ω); returns ``meta_grad_norm`` and ``meta_objective``."""
        if self.mags is None or self.meta_optimizer is None:
            return {}
        objective = self.meta_objective(views, self.inner_lr if self.inner_lr is not None else lr)
        params = list(self.mags.parameters())
        grads = global_mean_grads(torch.autograd.grad(objective, params))  # MAGs equal on every rank
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        self.meta_optimizer.step()
        for p in params:  # no stale MAG gradients for the Trainer's gradient clipping to see
            p.grad = None
        return {"meta_grad_norm": float(norm), "meta_objective": float(objective.detach())}


class MetAugOUCL(MetAug):
    """MetAug trained with OUCL alone (no MAGs, no margin term, no meta step): L = OUCL(z1, z2).

    Args: as ``MetAug`` (OUCL options, projector, base, base_options).
    """

    name = "metaug_oucl"
    uses_mags = False

    def __init__(self, backbone: nn.Module, *, gamma: float = 16.0, margins: bool = False, adaptive: bool = False,
                 m: float = 0.25, beta: float = 1.0, projector: Sequence[int] = (512, 128), base: str = "simclr",
                 base_options: dict[str, Any] | None = None) -> None:
        super().__init__(backbone, gamma=gamma, margins=margins, adaptive=adaptive, m=m, beta=beta,
                         projector=projector, base=base, base_options=base_options)
