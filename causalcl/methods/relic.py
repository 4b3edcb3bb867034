"""ReLIC and ReLIC_T (Mitrovic, McWilliams, Walker, Buesing, Blundell, "Representation Learning via
Invariant Causal Mechanisms", ICLR 2021, arXiv 2010.07922).

Each view x^{a_l} is one draw of a ``StyleIntervention`` do(S = a_l) (the configured augmentation,
or with ``interventions`` a true style intervention followed by it, see below).
For the ordered pairs a_lk = (a_l, a_k), l ≠ k (``StyleIntervention.pairs``), the logit matrix
L_lk[i, j] = cos(g(f(x_i^{a_l})), g(h(x_j^{a_k})))/τ (N × N) and its row-softmax p^{do(a_lk)} give

    L = 1/|P| Σ_{a_lk} 1/N Σ_i −log p^{do(a_lk)}_{ii}
        + α · 1/(|P|(|P|−1)) Σ_{a_lk ≠ a_qt} 1/N Σ_i KL(p^{do(a_lk)}_i ‖ p^{do(a_qt)}_i)

(``causalcl.losses.relic_terms``); with two views, the InfoNCE of L₁₂ and L₂₁ plus α times the
symmetrised KL between p^{do(12)} and p^{do(21)}. More views (``num_views``) average over all
ordered pairs. The paper's sums are taken as means, which rescales α relative to the paper.

* ``relic``: h = f (one network; gradients flow through both sides of every logit).
* ``relic_t``: h is an EMA target copy of the backbone and projector (BYOL's architecture, which
  the paper follows "exactly" for ReLIC_T: the online side adds a predictor q, the target side is
  never differentiated). Target update in ``on_step_end`` with BYOL's cosine schedule τ_base → 1.

Stop-gradient (``kl_stop_gradient``, ``causalcl.losses.relic_kl``): ``"none"`` (default) is the exact
KL gradient, which moves each p^{do(a_lk)} towards the other distributions (KL → 0, and with q fixed
H(p) → H(q)): the invariance the penalty states. ``"entropy"`` computes ``sg[Σ p log p] − Σ p log q``
(the form research/methods.md §3 attributes to the paper, unverified: ReLIC v1 released no
pre-training code); its gradient is the cross-entropy H(p, q)'s, which *sharpens* p onto q's mode
(with q fixed, H(p) 3.65 → 0.001 while the KL stayed at 2.39) rather than matching q, so it is kept
as an ablation only. ``"target"`` detaches p (the first argument) entirely: distillation of q towards p.

Interventions (``interventions``, DESIGN §5.3a): the names of the style interventions the views are
drawn from, ``"augment"`` (the pixel augmentation alone: today's default, ``None`` = ``["augment"]``),
``"background_swap"`` (do(background = b′): the object, cut out by its mask, pasted on another
image's background; ``causalcl.causal.background_swap``) or ``"texture_swap"`` (the same on a
procedural texture). View l is one independent draw of ``interventions[l mod m]`` followed by the
pixel augmentation, x^{a_l} = augment(do(background = b′_l)(x)), so with ``["background_swap"]`` every
view shows the same object on another background and the KL penalty compares true style
interventions, as the paper intends; ``["augment", "background_swap"]`` alternates. The swaps need
the batch's foreground masks, which ``make_views`` does not get: the Trainer's view function
(``causalcl.build.build_view_fn``, from the dataset's ``masks``) binds them and calls
``make_intervened_views``; a dataset without masks is refused there.

Defaults (CPU / CIFAR-scale): τ = 0.5 (SimCLR's calibrated value on ``shapes``; the paper's is not
given), α = 1 (the reimplementation filipbasara0/relic; the paper sweeps it), projector
feature_dim → 512 → 128 with BatchNorm + ReLU; ``relic_t``: predictor 128 → 512 → 128, τ_base 0.99.
Under DDP the projections are gathered (with gradients; targets without) before the loss.
With ``--views interventional`` the ``num_views`` views are true counterfactuals do(style = s')
of the SCM datasets instead of augmentation draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from ..causal.background import MASK_INTERVENTIONS
from ..causal.style import StyleIntervention
from ..distributed import gather, gather_no_grad
from ..losses._common import check_real
from ..losses.relic import KL_STOP_GRADIENTS, relic_terms
from ..models.heads import MLPHead
from .base import Method
from .momentum import cosine_momentum, ema_update_, frozen_copy

#: the names ``interventions`` accepts: the pixel augmentation and the mask-based background swaps
RELIC_INTERVENTIONS = ("augment", *MASK_INTERVENTIONS)


class ReLIC(Method):
    """ReLIC: InfoNCE over ordered augmentation pairs + α·KL invariance penalty, h = f.

    Args:
        backbone: the encoder f.
        temperature: τ of the logits (cosine similarity / τ).
        alpha: α, the weight of the KL invariance penalty (≥ 0).
        num_views: V ≥ 2 views per image, each a draw of the augmentation read as ``do(S = a)``.
        kl_stop_gradient: ``"none"`` (default, the exact KL gradient) | ``"entropy"`` | ``"target"`` (see the
            module docstring).
        projector: hidden and output widths of the critic g after the backbone width.
        interventions: names from ``RELIC_INTERVENTIONS``; view l is a draw of ``interventions[l mod m]``
            followed by the augmentation (module docstring). ``None``: every view is the augmentation alone.
    """

    name = "relic"
    #: takes ``--views interventional``: ``num_views`` counterfactuals, true do(S = a) draws, ReLIC's own reading
    interventional_refusal = None

    def __init__(self, backbone: nn.Module, *, temperature: float = 0.5, alpha: float = 1.0, num_views: int = 2,
                 kl_stop_gradient: str = "none", projector: Sequence[int] = (512, 128),
                 interventions: Sequence[str] | None = None) -> None:
        super().__init__(backbone)
        self.temperature = check_real(temperature, "temperature", low=0.0, low_open=True)
        self.alpha = check_real(alpha, "alpha", low=0.0)
        if isinstance(num_views, bool) or not isinstance(num_views, int) or num_views < 2:
            raise ValueError(f"num_views: expected an integer >= 2, got {num_views!r}")
        if kl_stop_gradient not in KL_STOP_GRADIENTS:
            raise ValueError(f"kl_stop_gradient: expected one of {KL_STOP_GRADIENTS}, got {kl_stop_gradient!r}")
        if len(projector) < 1:
            raise ValueError("projector: expected at least the output width, got an empty list")
        self.num_views = num_views
        self.kl_stop_gradient = kl_stop_gradient
        self.interventions = _check_interventions(interventions, num_views)
        self.projector = MLPHead([self.feature_dim, *projector])

    @property
    def mask_interventions(self) -> tuple[str, ...]:
        """The interventions that need foreground masks (``"background_swap"``, ``"texture_swap"``), in order."""
        return tuple(dict.fromkeys(n for n in self.interventions if n != "augment"))

    def make_views(self, augment: Callable[..., torch.Tensor], images: torch.Tensor,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """``num_views`` draws of the augmentation read as a style intervention do(S = a)."""
        if self.mask_interventions:
            raise ValueError(f"interventions: {list(self.mask_interventions)} need the batch's foreground masks; "
                             "call make_intervened_views with them bound (causalcl.build.build_view_fn does)")
        intervention = augment if isinstance(augment, StyleIntervention) else StyleIntervention("augment", augment)
        return [intervention(images, generator) for _ in range(self.num_views)]

    def make_intervened_views(self, augment: Callable[..., torch.Tensor], images: torch.Tensor,
                              generator: torch.Generator | None,
                              styles: Mapping[str, StyleIntervention]) -> list[torch.Tensor]:
        """View l = ``augment(styles[name_l](images, generator), generator)``, name_l = ``interventions[l mod m]``
        (``"augment"``: the augmentation alone). ``styles`` maps each name of ``mask_interventions`` to its
        ``StyleIntervention`` bound to this batch's masks (``causalcl.causal.BackgroundSwap.bind``)."""
        missing = [n for n in self.mask_interventions if n not in styles]
        if missing:
            raise ValueError(f"styles: no intervention bound for {missing} (got {sorted(styles)})")
        views = []
        for view in range(self.num_views):
            name = self.interventions[view % len(self.interventions)]
            x = images if name == "augment" else styles[name](images, generator)
            views.append(augment(x, generator))
        return views

    def online(self, x: torch.Tensor) -> torch.Tensor:
        """Online projections g(f(x)) (``relic_t`` adds its predictor)."""
        return self.projector(self.backbone(x))

    def targets(self, x: torch.Tensor, online: torch.Tensor) -> torch.Tensor:
        """h-side projections; h = f in ReLIC, so the online projections themselves."""
        return online

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        self.check_views(views, self.num_views)
        views = list(views[: self.num_views])
        x = torch.cat(views)  # one backbone pass over all views
        z = self.online(x)
        t = self.targets(x, z)
        online = [gather(v) for v in z.chunk(len(views))]
        target = [gather(v) if v.requires_grad else gather_no_grad(v) for v in t.chunk(len(views))]
        infonce, kl = relic_terms(online, target, self.temperature, self.kl_stop_gradient)
        loss = infonce + self.alpha * kl
        return {"loss": loss, "infonce": infonce.detach(), "kl": kl.detach(), "embeddings": list(z.chunk(len(views)))}


class ReLICT(ReLIC):
    """ReLIC_T: the h side is an EMA target network (BYOL architecture: online predictor).

    Args (besides ``ReLIC``'s):
        base_momentum: τ_base of the target's cosine EMA schedule (rises to 1), in [0, 1].
        predictor: hidden and output widths of the online predictor after the projector output
            (last width = projector output), or ``None`` for no predictor.
    """

    name = "relic_t"

    def __init__(self, backbone: nn.Module, *, temperature: float = 0.5, alpha: float = 1.0, num_views: int = 2,
                 kl_stop_gradient: str = "none", projector: Sequence[int] = (512, 128),
                 predictor: Sequence[int] | None = (512, 128), base_momentum: float = 0.99,
                 interventions: Sequence[str] | None = None) -> None:
        super().__init__(backbone, temperature=temperature, alpha=alpha, num_views=num_views,
                         kl_stop_gradient=kl_stop_gradient, projector=projector, interventions=interventions)
        if not 0.0 <= base_momentum <= 1.0:
            raise ValueError(f"base_momentum: expected a value in [0, 1], got {base_momentum}")
        if predictor is not None and (len(predictor) < 1 or int(predictor[-1]) != int(projector[-1])):
            raise ValueError(f"predictor: the output width must equal the projector output {projector[-1]}, "
                             f"got {predictor}")
        self.base_momentum = float(base_momentum)
        self.predictor = MLPHead([int(projector[-1]), *predictor]) if predictor is not None else nn.Identity()
        self.target_backbone = frozen_copy(self.backbone)
        self.target_projector = frozen_copy(self.projector)
        self.register_buffer("tau", torch.tensor(self.base_momentum))

    def online(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.projector(self.backbone(x)))

    @torch.no_grad()
    def targets(self, x: torch.Tensor, online: torch.Tensor) -> torch.Tensor:
        return self.target_projector(self.target_backbone(x))

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        out = super().forward(views)
        out["momentum"] = self.tau.detach().clone()
        return out

    def on_step_end(self, step: int, total_steps: int) -> None:
        """target ← τ·target + (1 − τ)·online, τ = cosine_momentum(τ_base, step − 1, total_steps)."""
        tau = cosine_momentum(self.base_momentum, step - 1, total_steps)
        ema_update_(self.target_backbone, self.backbone, tau)
        ema_update_(self.target_projector, self.projector, tau)
        self.tau.fill_(tau)


def _check_interventions(interventions: Sequence[str] | None, num_views: int) -> tuple[str, ...]:
    """``interventions`` as a tuple of valid names (``None`` → ``("augment",)``), each used by some view."""
    if interventions is None:
        return ("augment",)
    if isinstance(interventions, str) or not isinstance(interventions, Sequence) or not interventions:
        raise ValueError(f"interventions: expected a non-empty list of names from {list(RELIC_INTERVENTIONS)}, "
                         f"got {interventions!r}")
    unknown = [n for n in interventions if n not in RELIC_INTERVENTIONS]
    if unknown:
        raise ValueError(f"interventions: unknown {unknown}; valid: {list(RELIC_INTERVENTIONS)}")
    if len(interventions) > num_views:
        raise ValueError(f"interventions: {len(interventions)} names but num_views={num_views}; view l draws "
                         f"interventions[l mod m], so raise method.num_views to at least {len(interventions)}")
    return tuple(interventions)
