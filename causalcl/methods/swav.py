"""SwAV (Caron, Misra, Mairal, Goyal, Bojanowski, Joulin; NeurIPS 2020, arXiv 2006.09882).

Each crop x_v gives an L2-normalised embedding z_v = g(f(x_v)) / ‖·‖ and prototype scores
s_v = z_v Cᵀ against K prototypes C (a bias-free linear layer whose rows are unit vectors). Codes
q_s = Sinkhorn-Knopp(s_s) (ε = 0.05, 3 iterations, equipartition over the GLOBAL batch, no gradient)
of each large crop s are predicted from every other crop t with p_t = softmax(s_t / τ)::

    L = 1/|S| Σ_{s∈S} 1/(V − 1) Σ_{t≠s} −(1/N) Σ_n Σ_k q_s[n, k] log p_t[n, k]

(``causalcl.losses.swav_loss``). Under DDP the scores of every rank are gathered with the
differentiable ``causalcl.distributed.gather`` first, so Sinkhorn and the loss see the global batch.

Decisions (all options):
* Prototype rows are L2-normalised at construction and after every optimiser step in
  ``on_step_end`` (the official code normalises at the start of each iteration; same effect), so
  the gradient reaches the raw rows, not through a normalisation.
* Frozen prototypes for the first ``freeze_prototypes_steps`` optimiser steps (the paper freezes
  them for the first epoch; the method does not know the epoch length, so the default 40 is about
  one epoch of the embedded ``shapes`` default, 10,000 images at batch 256 — set it per recipe).
  While frozen the prototypes take part in the graph with a zero gradient (``w.detach() + 0·w``),
  so DDP needs no ``find_unused_parameters``; the only change an optimiser can then make is weight
  decay, a rescaling of each row that the next normalisation undoes. The step count is saved in
  the state dict, so ``--resume`` keeps the schedule.
* Multi-crop: ``num_crops=(n_large, n_small)``; ``make_views`` draws the large crops from the
  configured augmentation and the small ones from a copy with ``small_crop_size`` (16 px, about the
  paper's 96/224 of a 32-px image) and area ``small_crop_scale`` (0.05, 0.14), as in the paper
  (which also uses (0.14, 1) for the large crops: set ``augment.scale`` to that). Only the large
  crops get codes.
* Queue (the paper's, for batches small against K; e.g. 3840 at batch 256 with K = 3000): with
  ``queue_length`` L > 0, the normalised embeddings of each of the two assigned crops enter a FIFO of L
  rows per crop after every optimiser step past ``queue_start_step`` (the paper starts it after some epochs,
  15 on ImageNet); once the queue is full, the codes of crop s come from Sinkhorn-Knopp over the queue's
  scores under the current prototypes and the batch's, q_s = SK(cat(Q_s Cᵀ, z_s Cᵀ))[−N:] (no gradient;
  ``swav_loss(queue_scores=…)``), so the equipartition spans L + N rows. As in the official code a queue is
  used only when full, the queue rows take no part in the loss, and the newest rows come first. The queue
  and its fill count are saved in checkpoints. DDP: the paper keeps one queue per rank (L / W rows of that
  rank's embeddings) and runs Sinkhorn over the union of every rank's queue and batch; here every rank
  stores that union (the keys of all ranks are enqueued, so the queues are identical on every rank and
  rank 0's checkpoint restores every rank) and computes the scores of its own 1/W share of the rows,
  gathered like the batch's: the same codes and per-rank compute as the paper (L·D floats of memory per
  rank rather than L·D / W).
* ``loss="hard"`` / ``"debiased"`` ("SwAV + Hard" of MetAug's table, which names Robinson et al. 2021 as
  "Hard" and gives no code or formula for SwAV): SwAV's only negatives are the prototypes other than the
  predicted one in p_t = softmax(z_t Cᵀ/τ), so HCL's importance reweighting (β, default 1) and debiasing
  (τ⁺, default 0.1) act on them: −log p_t[k] becomes −log(e^{l_k} / (e^{l_k} + Ng_k)) with Ng_k the HCL
  estimate over the K − 1 other prototypes (``causalcl.losses.prototype_log_probs`` has the formula);
  ``loss_options`` sets ``beta``, ``tau_plus``, ``detach_weights``. β = τ⁺ = 0 is plain SwAV.
* ``embeddings`` are the normalised z of the first two (large) crops.
* ``--views interventional``: the ``num_crops[0]`` large crops become counterfactuals; refused with
  small crops (they are pixel crops of one image, with no counterfactual reading).

Defaults: τ = 0.1, ε = 0.05, 3 Sinkhorn iterations, projector feature_dim → 512 → 128 (BN + ReLU on the
hidden layer, as the paper's and solo-learn's heads; ``projector_bn=False`` drops it), K = 128 prototypes (the
paper's 3000 are for ImageNet with 4096-image batches), crops (2, 0), loss ``swav``, no queue (K = 128 is
below the default batch of 256; turn it on when the global batch is small against K).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.augment import SimCLRAugment
from ..distributed import gather, gather_no_grad, rank, world_size
from ..losses import swav_loss
from ..losses._common import check_real, check_tau_plus, check_temperature
from ..models.heads import MLPHead
from .base import Method


class SwAV(Method):
    """SwAV with optional multi-crop and a prototype freeze at the start.

    Args:
        backbone: the encoder f.
        temperature: τ > 0 of the prediction softmax.
        epsilon: ε > 0 of Sinkhorn-Knopp.
        sinkhorn_iterations: >= 1.
        num_prototypes: K.
        projector: hidden and output widths of g after the backbone width.
        num_crops: (large, small) crops per image; large >= 2, small >= 0.
        small_crop_size: side of the small crops in pixels.
        small_crop_scale: area range of the small crops' random resized crop.
        freeze_prototypes_steps: optimiser steps during which the prototypes get no gradient.
        queue_length: rows L of the queue of each assigned crop (0: no queue).
        queue_start_step: optimiser steps before the queue starts filling.
        loss: ``"swav"``, ``"hard"`` (HCL over the other prototypes) or ``"debiased"``.
        loss_options: ``beta``, ``tau_plus``, ``detach_weights`` of the hard / debiased loss.
        projector_bn: BatchNorm on the projector's hidden layers.
    """

    name = "swav"
    interventional_refusal = None  # set in __init__ with small crops

    def __init__(
        self,
        backbone: nn.Module,
        *,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        num_prototypes: int = 128,
        projector: Sequence[int] = (512, 128),
        num_crops: Sequence[int] = (2, 0),
        small_crop_size: int = 16,
        small_crop_scale: Sequence[float] = (0.05, 0.14),
        freeze_prototypes_steps: int = 40,
        queue_length: int = 0,
        queue_start_step: int = 0,
        loss: str = "swav",
        loss_options: dict[str, Any] | None = None,
        projector_bn: bool = True,
    ) -> None:
        super().__init__(backbone)
        self.temperature = check_temperature(temperature)
        self.epsilon = check_temperature(epsilon, "epsilon")
        ints = {"sinkhorn_iterations": (sinkhorn_iterations, 1), "num_prototypes": (num_prototypes, 1),
                "small_crop_size": (small_crop_size, 1), "freeze_prototypes_steps": (freeze_prototypes_steps, 0),
                "queue_length": (queue_length, 0), "queue_start_step": (queue_start_step, 0)}
        for key, (value, low) in ints.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{key}: expected an integer >= {low}, got {value!r}")
        crops = list(num_crops)
        if len(crops) != 2 or any(isinstance(c, bool) or not isinstance(c, int) for c in crops) \
                or crops[0] < 2 or crops[1] < 0:
            raise ValueError(f"num_crops: expected (large >= 2, small >= 0) integers, got {num_crops!r}")
        scale = [check_real(s, "small_crop_scale", low=0.0, low_open=True, high=1.0) for s in small_crop_scale]
        if len(scale) != 2 or scale[0] > scale[1]:
            raise ValueError(f"small_crop_scale: expected (lo, hi) with 0 < lo <= hi <= 1, got {small_crop_scale!r}")
        self.sinkhorn_iterations, self.num_prototypes = sinkhorn_iterations, num_prototypes
        self.num_crops: tuple[int, int] = (crops[0], crops[1])
        self.num_views = crops[0] + crops[1]
        if crops[1]:  # (without small crops the large ones are num_crops[0] counterfactuals)
            self.interventional_refusal = (f"its {crops[1]} small multi-crop views (num_crops={list(crops)}) are "
                                           f"pixel crops, not counterfactuals; use num_crops=[{crops[0]}, 0]")
        self.small_crop_size, self.small_crop_scale = small_crop_size, (scale[0], scale[1])
        self.freeze_prototypes_steps = freeze_prototypes_steps
        self.steps_done = 0  # optimiser steps taken so far (saved through get_extra_state)
        self.loss_name, self.loss_options = loss, swav_loss_options(loss, loss_options)
        self.projector = MLPHead([self.feature_dim, *projector], hidden_bn=projector_bn)
        self.prototypes = nn.Linear(self.projector.widths[-1], num_prototypes, bias=False)
        self.normalize_prototypes_()
        self.queue_length, self.queue_start_step = queue_length, queue_start_step
        self.queue_filled = 0  # rows of the queue filled so far (saved through get_extra_state)
        if queue_length:  # one queue per assigned crop (0 and 1); a buffer, so checkpoints carry it
            self.register_buffer("queue", torch.zeros(2, queue_length, self.projector.widths[-1]))
        self._pending: list[torch.Tensor] | None = None  # this step's embeddings, enqueued in on_step_end

    @torch.no_grad()
    def normalize_prototypes_(self) -> None:
        """In place: every prototype (row of ``prototypes.weight``) scaled to unit L2 norm."""
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    @property
    def prototypes_frozen(self) -> bool:
        return self.steps_done < self.freeze_prototypes_steps

    @property
    def queue_in_use(self) -> bool:
        """The queue joins Sinkhorn-Knopp once full (as in the official code)."""
        return self.queue_length > 0 and self.queue_filled >= self.queue_length

    @torch.no_grad()
    def queue_scores(self, crop: int, w: torch.Tensor) -> torch.Tensor:
        """(L, K) scores of crop ``crop``'s queue under prototypes ``w``; under DDP each rank scores its 1/W
        share of the (identical) queue and the shares are gathered in rank order."""
        rows = self.queue[crop].to(w.dtype)
        ranks = world_size()
        if ranks > 1 and rows.shape[0] % ranks == 0:
            return gather_no_grad(rows.chunk(ranks)[rank()] @ w.detach().T)
        return rows @ w.detach().T

    def make_views(self, augment: Callable[..., torch.Tensor], images: torch.Tensor,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """``num_crops[0]`` draws of ``augment``, then ``num_crops[1]`` small crops (see the module docstring)."""
        large, small = self.num_crops
        views = [augment(images, generator) for _ in range(large)]
        if small:
            if not isinstance(augment, SimCLRAugment):
                raise ValueError("num_crops: small crops need a SimCLRAugment view generator to copy, got "
                                 f"{type(augment).__name__}; use num_crops=({large}, 0)")
            small_aug = SimCLRAugment(self.small_crop_size, scale=self.small_crop_scale, ratio=augment.ratio,
                                      flip_p=augment.flip_p, jitter=augment.jitter, jitter_p=augment.jitter_p,
                                      grayscale_p=augment.grayscale_p, blur_p=augment.blur_p,
                                      blur_sigma=augment.blur_sigma)
            views += [small_aug(images, generator) for _ in range(small)]
        return views

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        large, small = self.num_crops
        if not isinstance(views, list | tuple) or len(views) != large + small:
            raise ValueError(f"views: expected {large} large + {small} small crops (num_crops), got "
                             f"{len(views) if isinstance(views, list | tuple) else type(views).__name__}")
        self.check_views(list(views[:large]), large)
        if small:
            self.check_views(list(views[large:]), small)
        z: list[torch.Tensor] = []
        for group in (views[:large], views[large:]):  # one backbone pass per resolution
            if group:
                z += F.normalize(self.projector(self.backbone(torch.cat(list(group)))), dim=1).chunk(len(group))
        w = self.prototypes.weight
        if self.prototypes_frozen:
            w = w.detach() + 0.0 * w  # zero gradient, still in the graph (see the module docstring)
        scores = [gather(zv @ w.T) for zv in z]  # global batch under DDP
        queue = [self.queue_scores(c, w) for c in (0, 1)] if self.queue_in_use else None
        loss = swav_loss(scores, temperature=self.temperature, epsilon=self.epsilon,
                         sinkhorn_iterations=self.sinkhorn_iterations, assign_crops=(0, 1), queue_scores=queue,
                         **self.loss_options)
        if self.queue_length:
            self._pending = [z[0].detach(), z[1].detach()]
        return {"loss": loss, "embeddings": [z[0], z[1]]}

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.steps_done = int(step)
        self.normalize_prototypes_()
        if self._pending is not None and step > self.queue_start_step:
            self.enqueue_(self._pending)
        self._pending = None

    @torch.no_grad()
    def enqueue_(self, embeddings: Sequence[torch.Tensor]) -> None:
        """Put the embeddings of the two assigned crops (of every rank) at the front of their queues."""
        for crop, zc in enumerate(embeddings):
            new = gather_no_grad(zc.detach()).to(self.queue.dtype)[: self.queue_length]
            n = new.shape[0]
            self.queue[crop, n:] = self.queue[crop, : self.queue_length - n].clone()
            self.queue[crop, :n] = new
        self.queue_filled = min(self.queue_length, self.queue_filled + n)

    def get_extra_state(self) -> Any:
        return {"steps_done": self.steps_done, "queue_filled": self.queue_filled}

    def set_extra_state(self, state: Any) -> None:
        self.steps_done = int(state["steps_done"])
        self.queue_filled = int(state.get("queue_filled", 0))


SWAV_LOSSES = ("swav", "hard", "debiased")


def swav_loss_options(loss: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """The ``swav_loss`` keywords of SwAV's ``loss`` (``beta``, ``tau_plus``, ``detach_weights``), checked."""
    if loss not in SWAV_LOSSES:
        raise ValueError(f"loss: name must be one of {list(SWAV_LOSSES)}, got {loss!r}")
    given = dict(options or {})
    valid = {"swav": (), "hard": ("beta", "tau_plus", "detach_weights"), "debiased": ("tau_plus",)}[loss]
    unknown = [key for key in given if key not in valid]
    if unknown:
        raise ValueError(f"loss_options: {unknown} are not parameters of loss {loss!r}; valid: {list(valid)}")
    opts: dict[str, Any] = {}
    if loss == "hard":
        opts = {"beta": 1.0, "tau_plus": 0.1, "detach_weights": False} | given
        opts["beta"] = check_real(opts["beta"], "loss_options.beta", low=0.0)
        if not isinstance(opts["detach_weights"], bool):
            raise ValueError(f"loss_options.detach_weights: expected a bool, got {opts['detach_weights']!r}")
    elif loss == "debiased":
        opts = {"tau_plus": 0.1} | given
    if "tau_plus" in opts:
        try:
            opts["tau_plus"] = check_tau_plus(opts["tau_plus"])
        except ValueError as exc:
            raise ValueError(f"loss_options.{exc}") from exc
    return opts
