"""MetAug (Li, Qiang, Zheng, Su, Xiong; ICML 2022, arXiv 2203.05119, "MetAug: Contrastive Learning
via Meta Feature Augmentation") and ``metaug_oucl``, the paper's "MetAug (only OUCL)" ablation.

Two views x¹, x² give unit projections z_j = g_ν(f_θ(x^j)) (``base="simclr"``: one backbone and one
projector, as SimCLR) or z_L, z_ab (``base="cmc"``: CMC's L and ab views, one encoder and head per
view). Each view j has a meta feature augmentation generator (MAG) a_ω_j, an MLP on the unit
projection with a unit output, ẑ_j = a_ω_j(z_j). With ``OUCL(u, v)`` = ``causalcl.losses.oucl`` (each
sample pools 1 positive and 2N − 2 cross-view negatives, shifted cosine d = (cos+1)/2) the encoder
loss and the MAG objective are (seed: "ω ← ω − ℓ'·∇_ω L(…) + α·R_σ", R_σ in the ω update only)

    L_enc = OUCL(z1, z2) + λ_aug·[OUCL(ẑ1, z2) + OUCL(z1, ẑ2) + OUCL(ẑ1, ẑ2)]
    M     = L_enc + λ_mi·R_σ      (minimised by the MAGs at the looked-ahead θ')

R_σ = ``margin_injection`` with σ± from the original scores, detached (targets for the MAGs: the
augmented positives should be no more similar than the hardest original pair, the augmented
negatives no less), and the augmented scores of all three augmented pairs (the official code's
composite on its 3 CMC views; in batch mode both directions of a pair use the augmented features,
where the code's memory bank made 6 of its 12 "augmented" score sets original ones). The official
code adds R_σ to the encoder loss too, with σ not detached; here the encoder never sees it (its
``margin_loss`` is logged only). ``metaug_oucl`` is L = OUCL(z1, z2) alone (no MAGs, no meta step).

OUCL's scale: ``causalcl.losses.oucl`` is the paper's (1/γ)·log(1 + Σ exp(…)); the official code
multiplies it by 16/γ instead (16× ours at γ = 16). ``oucl_scale`` multiplies every OUCL term
(16 = the code's; ``preset="official"`` sets it).

Step order (official ``train_MetAug.py``, with one change: the MAG step uses the weights of the
encoder step's forward, whose gradient it reuses):
1. ``forward`` → the Trainer's backward of L_enc; ``forward`` runs the MAGs with detached weights, so
   no gradient reaches them, and ``optim_parameters()`` excludes them;
2. ``meta_step(views, lr)``, before the Trainer's optimiser step: θ' = θ − α·g with g = ∇_θ L_enc the
   stage-1 gradient (θ = every non-MAG parameter: encoders and heads; plain SGD, α = ``inner_lr``),
   and the exact gradient ∇_ω M(θ'(ω), ω) = [direct terms at θ'] − α∇_ω⟨J_z(θ)v, ∇_z L_enc(z, ω)⟩,
   v = ∇_θ M(θ', ω) (``meta_grad="jvp"``: one forward + backward at θ' and one JVP — the tangent pass alone on
   stage 1's recorded layer inputs with ``base="simclr"`` on a plain-chain backbone, forward mode otherwise;
   ``"reverse"``: the reverse-over-reverse reference; ``"finite_difference"``: J_z(θ)v by a central
   difference; see ``causalcl.methods.bilevel``). ``second_order=False`` drops the term through θ'
   (first-order ablation). Every functional call gets clones of all buffers, so BN batch statistics
   are used as in training but the running statistics (of encoders, heads and MAGs) are updated once
   per step, by the Trainer's forward. Logs ``meta_grad_norm`` (‖∇_ω M‖), ``meta_objective`` and
   each term's norm: ``mag_grad_norm_aug`` (λ_aug·∇_ω L_aug at θ'), ``mag_grad_norm_margin``
   (λ_mi·∇_ω R_σ at θ'; these two at the Trainer's logged steps only) and ``mag_grad_norm_lookahead`` (the
   term through θ'). With ``adaptive=True``
   the OUCL weights are constants to autograd (Circle loss). Under DDP the reverse path is used; it
   differentiates twice through ``gather`` (torch.distributed.nn's all-gather).

Defaults (``preset="default"``, chosen by measurement on ``shapes``, batch 256): λ_aug = 0.1 (at the
official 1e-5 the MAGs barely touch the encoder and MetAug is ``metaug_oucl`` at 8× the cost),
λ_mi = 1 (at the official 1e-11 R_σ's gradient on ω was 3.7e-12 against 5.3e-6 for the augmentation
term: no anti-collapse margin at all), positive hinge of R_σ weighted 1 (seed; the code uses 1e-4),
``oucl_scale`` 1 (paper), α = ``inner_lr`` 0.1, MAG optimiser Adam with lr 1e-3. Measured over 200 steps
(``shapes``, batch 256, AdamW 2e-3; ``benchmarks/causal_signals.py --method metaug --steps 200``):
``mag_grad_norm_aug`` 0.0083–0.013, ``mag_grad_norm_margin`` 0.012–0.038, ``mag_grad_norm_lookahead``
0.0004–0.0096 — the two direct terms within 3.3× of each other at every logged step, all three within
43×. ``preset="official"``: λ_aug 1e-5, λ_mi 1e-11, positive hinge 1e-4, ``oucl_scale`` 16, α 1e-3, MAG SGD
lr 0.03 / momentum 0.9 / wd 1e-4. Any option given explicitly overrides its preset. OUCL γ = 16, margins and
adaptive weights off, m = 0.25, β = 1 (official code; here the adaptive weights really apply when on); MAG
widths d → 512 → 512 → d with BN + ReLU (official 128 → 2048 → 2048 → 128); projector feature_dim → 512 →
128. The MAG optimiser state travels in the method's ``state_dict`` (``get_extra_state``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ..distributed import gather, world_size
from ..losses.oucl import margin_injection, oucl_from_scores, pair_scores
from ..models.heads import MLPHead
from .base import Method
from .bilevel import (
    MetaOptimizerState,
    Stage1Record,
    check_meta_grad,
    directional_derivative,
    global_mean_grads,
    grad_norm,
    grads_or_zeros,
    recorded_tangents,
    recording,
    stage1_gradients,
)
from .cmc import CMC
from .tangent_tape import TangentTape

BASES = ("simclr", "cmc")


#: hyper-parameter presets: ``"default"`` (chosen by measurement, module docstring) and ``"official"``
#: (jiangmengli/metaug's train_MetAug.py scale)
PRESETS: dict[str, dict[str, Any]] = {
    "default": {"aug_weight": 0.1, "margin_weight": 1.0, "margin_pos_weight": 1.0, "oucl_scale": 1.0,
                "inner_lr": 0.1, "meta_optimizer": "adam", "meta_lr": 1e-3},
    "official": {"aug_weight": 1e-5, "margin_weight": 1e-11, "margin_pos_weight": 1e-4, "oucl_scale": 16.0,
                 "inner_lr": 1e-3, "meta_optimizer": "sgd", "meta_lr": 0.03},
}


class MetAug(MetaOptimizerState, Method):
    """MetAug: OUCL + meta-learned feature augmentation (one MAG per view) + margin-injected R_σ.

    Args:
        backbone: the encoder f (the template of both encoders with ``base="cmc"``).
        gamma, margins, adaptive, m, beta: OUCL options (``causalcl.losses.oucl_from_scores``).
        preset: ``"default"`` or ``"official"`` — the values of the options below left at ``None``.
        aug_weight: λ_aug of the three augmented OUCL terms (encoder loss and MAG objective).
        margin_weight: λ_mi of R_σ (MAG objective only); margin_pos_weight: weight of its positive hinge.
        oucl_scale: factor on every OUCL term (1: the paper's 1/γ; 16: the official code's 16/γ).
        inner_lr: α of the lookahead θ' = θ − α∇_θ L_enc (its own hyper-parameter, not the Trainer's lr).
        meta_lr: learning rate of the MAG optimiser; meta_optimizer: ``"adam"`` or ``"sgd"``
            (momentum 0.9, weight decay 1e-4, as the official code).
        second_order: keep the gradient through θ'(ω) (exact MetAug) or drop it (first order).
        meta_grad: ``"jvp"`` | ``"reverse"`` | ``"finite_difference"`` (``causalcl.methods.bilevel``).
        fd_radius: r of the finite-difference step (``meta_grad="finite_difference"``).
        mag_hidden: hidden widths of each MAG.
        projector: widths of g after the backbone width (``base="simclr"``).
        base: ``"simclr"`` (2 views, shared backbone) or ``"cmc"`` (L / ab, ``causalcl.methods.CMC``).
        base_options: keyword arguments of ``CMC`` (e.g. ``{"projector": [128], "same_crop": True}``).
    """

    name = "metaug"
    uses_mags = True

    def __init__(self, backbone: nn.Module, *, gamma: float = 16.0, margins: bool = False, adaptive: bool = False,
                 m: float = 0.25, beta: float = 1.0, preset: str = "default", aug_weight: float | None = None,
                 margin_weight: float | None = None, margin_pos_weight: float | None = None,
                 oucl_scale: float | None = None, inner_lr: float | None = None, meta_lr: float | None = None,
                 meta_optimizer: str | None = None, second_order: bool = True, meta_grad: str = "jvp",
                 fd_radius: float = 3e-4, mag_hidden: Sequence[int] = (512, 512),
                 projector: Sequence[int] = (512, 128), base: str = "simclr",
                 base_options: dict[str, Any] | None = None) -> None:
        super().__init__(backbone)
        if preset not in PRESETS:
            raise ValueError(f"preset: expected one of {list(PRESETS)}, got {preset!r}")
        given = {"aug_weight": aug_weight, "margin_weight": margin_weight, "margin_pos_weight": margin_pos_weight,
                 "oucl_scale": oucl_scale, "inner_lr": inner_lr, "meta_lr": meta_lr, "meta_optimizer": meta_optimizer}
        v = {k: PRESETS[preset][k] if value is None else value for k, value in given.items()}
        for value, key in ((gamma, "gamma"), (beta, "beta"), (v["meta_lr"], "meta_lr"), (v["inner_lr"], "inner_lr"),
                           (v["oucl_scale"], "oucl_scale"), (fd_radius, "fd_radius")):
            if not value > 0:
                raise ValueError(f"{key}: expected a positive float, got {value}")
        for value, key in ((m, "m"), (v["aug_weight"], "aug_weight"), (v["margin_weight"], "margin_weight"),
                           (v["margin_pos_weight"], "margin_pos_weight")):
            if not value >= 0:
                raise ValueError(f"{key}: expected a non-negative float, got {value}")
        if base not in BASES:
            raise ValueError(f"base: expected one of {list(BASES)}, got {base!r}")
        if v["meta_optimizer"] not in ("adam", "sgd"):
            raise ValueError(f"meta_optimizer: expected 'adam' or 'sgd', got {v['meta_optimizer']!r}")
        self.preset = preset
        self.oucl_options = {"gamma": gamma, "margins": bool(margins), "adaptive": bool(adaptive), "m": m,
                             "beta": beta}
        self.aug_weight, self.margin_weight = float(v["aug_weight"]), float(v["margin_weight"])
        self.margin_pos_weight, self.oucl_scale = float(v["margin_pos_weight"]), float(v["oucl_scale"])
        self.inner_lr, self.second_order, self.base_name = float(v["inner_lr"]), bool(second_order), base
        self.meta_grad, self.fd_radius = check_meta_grad(meta_grad), float(fd_radius)
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
        self._stage1: Stage1Record | None = None  # z1, z2 of the last stage-1 forward
        self._tape = TangentTape.of(self.backbone, self.projector) if base == "simclr" else None
        if self.uses_mags:
            self.mags = nn.ModuleList(MLPHead([dim, *mag_hidden, dim]) for _ in range(2))
            if v["meta_optimizer"] == "adam":
                self.meta_optimizer = torch.optim.Adam(self.mags.parameters(), lr=v["meta_lr"])
            else:
                self.meta_optimizer = torch.optim.SGD(self.mags.parameters(), lr=v["meta_lr"], momentum=0.9,
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

    def augment_features(self, j: int, z: Tensor, live: bool = False, own_stats: bool = False) -> Tensor:
        """ẑ = MAG_j(unit z), unit-normalised; ``live=False`` runs the MAG with detached weights;
        ``own_stats=True`` gives its BatchNorm throw-away buffer clones (the meta step's calls)."""
        mag = self.mags[j]  # type: ignore[index]
        x = F.normalize(z, dim=1)
        if live and not own_stats:
            out = mag(x)
        else:
            state = {n: p if live else p.detach() for n, p in mag.named_parameters()}
            if own_stats:
                state.update({n: b.clone() for n, b in mag.named_buffers()})
            out = functional_call(mag, state, (x,))
        return F.normalize(out, dim=1)

    # --- loss -------------------------------------------------------------------------------------
    def _oucl(self, pos: Tensor, neg: Tensor) -> Tensor:
        return self.oucl_scale * oucl_from_scores(pos, neg, **self.oucl_options)

    def head_terms(self, z1: Tensor, z2: Tensor, live_mags: bool = False,
                   own_stats: bool = False) -> dict[str, Tensor]:
        """The loss terms of this rank's embeddings z1, z2, on the global batch under DDP (the MAGs run on
        the rank's rows, then everything is gathered): ``oucl_loss``, ``aug_loss`` (the three augmented
        OUCL terms) and ``margin_loss`` R_σ with σ± detached (a target for the MAGs, as the seed's ω update)."""
        g1, g2 = gather(z1), gather(z2)
        pos, neg = pair_scores(g1, g2)
        terms = {"oucl_loss": self._oucl(pos, neg)}
        if self.mags is None:
            return terms
        pairs = self._augmented_pairs(z1, z2, g1, g2, live_mags, own_stats)
        terms["aug_loss"] = self._augmented_loss(pairs)
        terms["margin_loss"] = margin_injection(pos.detach(), neg.detach(), torch.cat([p for p, _ in pairs], 1),
                                                torch.cat([n for _, n in pairs], 1), pos_weight=self.margin_pos_weight)
        return terms

    def _augmented_pairs(self, z1: Tensor, z2: Tensor, g1: Tensor, g2: Tensor, live_mags: bool,
                         own_stats: bool) -> list[tuple[Tensor, Tensor]]:
        """The (positive, negative) scores of the three augmented pairs (ẑ1, z2), (z1, ẑ2), (ẑ1, ẑ2); g1, g2 are
        z1, z2 gathered (the global batch under DDP)."""
        a1, a2 = (gather(self.augment_features(j, z, live_mags, own_stats)) for j, z in enumerate((z1, z2)))
        return [pair_scores(a1, g2), pair_scores(g1, a2), pair_scores(a1, a2)]

    def _augmented_loss(self, pairs: list[tuple[Tensor, Tensor]]) -> Tensor:
        """L_aug: the OUCL terms of the augmented pairs (``_augmented_pairs``)."""
        return sum(self._oucl(p, n) for p, n in pairs)  # type: ignore[return-value]

    def forward(self, views: list[Tensor], *, live_mags: bool = False) -> dict[str, Any]:
        """Encoder loss L_enc = OUCL(z1, z2) + λ_aug·[three augmented OUCL terms] and the logged terms
        (``margin_loss`` R_σ is logged, not in L_enc: it belongs to the MAG objective). ``live_mags=True``
        lets gradients reach ω (the reverse-mode meta step)."""
        with recording(self._tape if self.mags is not None and self.second_order and not live_mags else None,
                       self.meta_grad):
            z1, z2 = self.embed(views)
        terms = self.head_terms(z1, z2, live_mags)  # the global batch under DDP
        if self.mags is None:
            return {"loss": terms["oucl_loss"], "embeddings": [z1, z2]}
        loss = self.encoder_loss(terms)
        if torch.is_grad_enabled() and not live_mags:
            self._stage1 = Stage1Record(views, list(self._theta().values()), loss, z1.detach(), z2.detach())
        return {"loss": loss, **{k: t.detach() for k, t in terms.items()}, "embeddings": [z1, z2]}

    def encoder_loss(self, terms: dict[str, Tensor]) -> Tensor:
        """L_enc = OUCL + λ_aug·[the three augmented OUCL terms], from ``head_terms``."""
        return terms["oucl_loss"] + self.aug_weight * terms["aug_loss"]

    def mag_objective(self, terms: dict[str, Tensor]) -> Tensor:
        """M = L_enc + λ_mi·R_σ, the objective the MAGs minimise (at the looked-ahead θ')."""
        return self.encoder_loss(terms) + self.margin_weight * terms["margin_loss"]

    # --- bilevel step -------------------------------------------------------------------------
    def optim_parameters(self) -> Iterator[nn.Parameter]:
        """Every trainable parameter except the MAGs' (they have their own optimiser)."""
        mag_ids = {id(p) for p in self.mags.parameters()} if self.mags is not None else set()
        return (p for p in self.parameters() if p.requires_grad and id(p) not in mag_ids)

    def _theta(self) -> dict[str, Tensor]:
        mag_ids = {id(p) for p in self.mags.parameters()} if self.mags is not None else set()
        return {n: p for n, p in self.named_parameters() if p.requires_grad and id(p) not in mag_ids}

    def _state(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        # buffers: throw-away clones; names are de-duplicated and tie_weights=False: an aliased module (a
        # backbone's `last_conv`, the LabEncoder shared with CMC) is swapped once through its first name
        # (tie_weights=True leaves the lookahead weights in place after the call for aliased modules, torch 2.14)
        return {**{n: b.clone() for n, b in self.named_buffers()}, **params}

    def _functional_loss(self, params: dict[str, Tensor], views: list[Tensor], objective: bool = False) -> Tensor:
        z1, z2 = self._embed_at(views)(params)
        terms = self.head_terms(z1, z2, live_mags=True, own_stats=True)
        return self.mag_objective(terms) if objective else self.encoder_loss(terms)

    def meta_objective(self, views: list[Tensor], alpha: float) -> Tensor:
        """M(θ'(ω), ω) with θ' = θ − α∇_θ L_enc(θ, ω), differentiable in ω (to second order by default):
        the reverse-mode reference (``meta_grad="reverse"``)."""
        if self.mags is None:
            raise ValueError(f"meta_objective: method {self.name!r} has no MAGs")
        theta = self._theta()
        inner = self._functional_loss(theta, views)
        grads = global_mean_grads(torch.autograd.grad(inner, list(theta.values()), create_graph=self.second_order,
                                                 allow_unused=True))  # DDP: the global batch's gradient
        lookahead = {n: p if g is None else p - alpha * g for (n, p), g in zip(theta.items(), grads, strict=True)}
        return self._functional_loss(lookahead, views, objective=True)

    def _embed_at(self, views: list[Tensor]) -> Callable[[dict[str, Tensor]], list[Tensor]]:
        def fn(params: dict[str, Tensor]) -> list[Tensor]:
            state = {f"m.{k}": t for k, t in self._state(params).items()}
            return list(functional_call(_Embedding(self), state, (views,), tie_weights=False))
        return fn

    def meta_gradients(self, views: list[Tensor], alpha: float, mode: str = "jvp",
                       inner_grads: list[Tensor] | None = None,
                       split: bool = True) -> tuple[dict[str, list[Tensor]], Tensor]:
        """The MAG gradient of M(θ'(ω), ω) split into its terms, and M's value (single process).

        ``{"aug": ∇_ω λ_aug·L_aug(θ', ω), "margin": ∇_ω λ_mi·R_σ(θ', ω)`` (direct terms, θ' held fixed),
        ``"lookahead": −α∇_ω⟨J_z(θ)v, ∇_z L_enc(z, ω)⟩`` (the term through θ'(ω), v = ∇_θ M(θ', ω); zero
        with ``second_order=False``)``}``. ``split=False`` gives their sum ``"direct"`` in place of
        ``"aug"`` and ``"margin"`` (one backward through the MAGs fewer). ``inner_grads`` = ∇_θ L_enc(θ, ω) in
        ``_theta`` order (the Trainer's stage-1 gradient); ``None`` recomputes it."""
        live = self._theta()
        theta = {n: p.detach() for n, p in live.items()}
        stash, self._stage1 = self._stage1, None
        if inner_grads is None or stash is None or not stash.usable(views, list(live.values())):
            params = {n: p.requires_grad_(True) for n, p in ((n, t.clone()) for n, t in theta.items())}
            inner_grads = grads_or_zeros(self._functional_loss(params, views), list(params.values()))
            stash = None
        looked = {n: (t - alpha * g).requires_grad_(True) for (n, t), g in zip(theta.items(), inner_grads, strict=True)}
        z1l, z2l = self._embed_at(views)(looked)
        y1, y2 = z1l.detach().requires_grad_(True), z2l.detach().requires_grad_(True)
        terms = self.head_terms(y1, y2, live_mags=True, own_stats=True)
        omega = list(self.mags.parameters())  # type: ignore[union-attr]
        margin = (grads_or_zeros(self.margin_weight * terms["margin_loss"], omega, retain_graph=True)
                  if split else None)
        objective = self.mag_objective(terms)
        # one backward gives ∇_ω M at θ' (OUCL(y1, y2) does not depend on ω: the aug and margin terms) and ∇_z M
        *direct, e1, e2 = grads_or_zeros(objective, [*omega, y1, y2])
        grads = ({"aug": [d - g for d, g in zip(direct, margin, strict=True)], "margin": margin}
                 if margin is not None else {"direct": direct})
        if not self.second_order:
            grads["lookahead"] = [torch.zeros_like(p) for p in omega]
            return grads, objective.detach()
        v = dict(zip(looked, grads_or_zeros((z1l * e1).sum() + (z2l * e2).sum(), list(looked.values())), strict=True))
        u = (recorded_tangents(self._tape, stash.tensors, list(live.values()), list(v.values()))
             if stash is not None else None)
        if u is None:  # forward mode (or the central difference) at θ
            u = directional_derivative(self._embed_at(views), theta, v, mode, self.fd_radius)
        u1, u2 = u
        if stash is None:
            with torch.no_grad():
                z1, z2 = self._embed_at(views)(theta)
        else:
            z1, z2 = stash.tensors
        z1, z2 = z1.detach().requires_grad_(True), z2.detach().requires_grad_(True)
        # ⟨J_z v, ∇_z L_enc⟩: of L_enc only the augmented terms depend on ω (OUCL(z1, z2) adds a constant)
        pairs = self._augmented_pairs(z1, z2, z1, z2, live_mags=True, own_stats=True)
        aug = self.aug_weight * self._augmented_loss(pairs)
        w1, w2 = torch.autograd.grad(aug, (z1, z2), create_graph=True)
        pairing = (u1.to(w1.dtype) * w1).sum() + (u2.to(w2.dtype) * w2).sum()
        grads["lookahead"] = grads_or_zeros(-alpha * pairing, omega)
        return grads, objective.detach()

    def meta_step(self, views: list[Tensor], lr: float, *, log_terms: bool = True) -> dict[str, Tensor]:
        """One MAG step on ∇_ω M(θ'(ω), ω); returns ``meta_grad_norm``, ``meta_objective`` and the norm of
        each term (``mag_grad_norm_aug``, ``mag_grad_norm_margin``, ``mag_grad_norm_lookahead``), as 0-dim device
        tensors (no host synchronisation; the Trainer reads them at its logging steps). With
        ``log_terms=False`` the aug / margin split, which only feeds the log, is not computed (the step is the
        same: their sum comes from one backward either way); it cost one more backward through the MAGs,
        ≈ 1 % of the step at the defaults.

        Called by the Trainer after the backward of ``forward(views)`` and before its optimiser step:
        θ is the point stage 1 differentiated and ``p.grad`` holds ∇_θ L_enc (reused)."""
        if self.mags is None or self.meta_optimizer is None:
            return {}
        params = list(self.mags.parameters())
        mode = self.meta_grad if world_size() == 1 else "reverse"  # forward-mode paths: single process
        if mode == "reverse":
            self._stage1 = None
            objective = self.meta_objective(views, self.inner_lr)
            total = global_mean_grads(torch.autograd.grad(objective, params))  # MAGs equal on every rank
            parts: dict[str, list[Tensor]] = {}
        else:
            inner = stage1_gradients(list(self._theta().values()))
            parts, objective = self.meta_gradients(views, self.inner_lr, mode, inner, split=log_terms)
            total = [sum(gs) for gs in zip(*parts.values(), strict=True)]
        for p, g in zip(params, total, strict=True):
            p.grad = g
        self.meta_optimizer.step()
        for p in params:  # no stale MAG gradients for the Trainer's gradient clipping to see
            p.grad = None
        out = {"meta_grad_norm": grad_norm(total), "meta_objective": objective.detach()}  # device tensors: no sync
        out.update({f"mag_grad_norm_{k}": grad_norm(g) for k, g in parts.items() if k != "direct"})
        return out


class _Embedding(nn.Module):
    """MetAug's ``embed`` as a module (for ``functional_call``): views → (z1, z2)."""

    def __init__(self, method: MetAug) -> None:
        super().__init__()
        self.m = method

    def forward(self, views: list[Tensor]) -> tuple[Tensor, Tensor]:
        return self.m.embed(views)




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
