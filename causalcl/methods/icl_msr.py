"""ICL-MSR: Interventional Contrastive Learning with a Meta Semantic Regularizer (Qiang, Li, Zheng,
Su, Xiong; ICML 2022, arXiv 2206.14702). No official code exists; this follows DESIGN §5.3.

It wraps a base method (``base="simclr" | "byol" | "ressl" | "moco"``; f = its backbone, f_ph = its
online heads) and adds a backdoor-adjusted loss over strata A_s = {a_t} made by f_msr
(``causalcl.causal.MetaSemanticRegularizer``) from the detached representation::

    P(Y | X, a_t) = e^{s_t/τ} / (e^{s_t/τ} + Σ_{k≠i} Σ_l e^{sim(z_i^j, z_k^l)/τ}),  s_t = sim(z_i^j, a_t ⊙ z_i^{3−j})
    P(Y | do(X)) = Σ_t P(Y | X, a_t) · 1/n                   (``causalcl.causal.BackdoorAdjustment``)
    L_msr = mean over the 2N anchors of −log P(Y | do(X))   (``causalcl.losses.msr_loss``; the paper's Σ / 2N)
    L_to  = L_ct + λ·L_msr,  L_ct = the base method's loss.

Stage 1 (``forward``; the Trainer backpropagates it): A_s is computed by f_msr without gradient,
so f_msr receives nothing from L_to. Stage 2 (``meta_step``, after the Trainer's backward and before
its optimiser step, so at the weights θ of (f, f_ph) that stage 1 saw — only the online parameters
that the Trainer optimises are looked ahead; EMA targets, key encoders and queues are read as they
are — and with A_s's graph to f_msr)::

    θ¹ = θ − α ∇_θ L_to(θ, A_s)                      (θ¹ depends on f_msr through A_s)
    f_msr ← Adam step on  L_ct(θ¹) + γ·L_uni(A_s),   L_uni = log Σ_{a_i,a_j} exp(2t·a_iᵀa_j − 2t)

The outer L_ct(θ¹) is the base loss only (no L_msr): its gradient reaches f_msr solely through the
lookahead, which is what ``meta_lookahead_grad_norm`` measures; ``meta_grad_norm`` is the norm of the
whole gradient (lookahead + γ·∇L_uni) and ``meta_lookahead_share`` their ratio. The lookahead is a plain
gradient step of size α whatever the Trainer's optimiser is (the paper's f¹ = f − α∇_f L_to). With λ = 0
the lookahead does not depend on f_msr and the share is 0. A share that stays below 0.05 for 50 steps
prints one ``InertMechanismWarning`` naming the keys to change.

The lookahead gradient (``meta_grad``): f_msr enters L_to only through the head L_msr(z, A_s), so
∇_φ L_ct(θ¹) = −αλ·∇_φ⟨J_z(θ)v, ∇_z L_msr(z, A_s(φ))⟩ with v = ∇_θ L_ct(θ¹) (``causalcl.methods.bilevel``).
``"jvp"`` (default) takes J_z(θ)v exactly: by the tangent pass alone over the layer inputs stage 1's forward
recorded when the online path projector(backbone(x)) is a plain chain (``convnet_small`` + MLP projector;
``causalcl.methods.tangent_tape``), else by one forward-mode pass of that path;
g = ∇_θ L_to and z are stage 1's (``p.grad`` and the stored embeddings: no repeated forward at θ), so
a meta step costs one forward + backward at θ¹ and one JVP. ``"reverse"`` differentiates
L_ct(θ − α∇L_to) twice through the base (BatchNorm's second derivative included; the reference the
tests hold jvp to, 1e-6 in float64). ``"finite_difference"`` replaces the JVP by a central difference
(two forwards without autograd; 0.7–2.2 % relative error on the meta-gradient in float32 at the default
radius, ``causalcl.methods.bilevel.directional_derivative``). Under DDP the reverse path is used.

Decisions: f_msr's input is the mean of the two views' backbone features (captured with a forward hook
during the base's own pass, detached), so n = batch size strata (``strata="learned"``: a bank of
``n_strata`` vectors). Stage-2 forwards run with cloned BatchNorm buffers (``functional_call``), so
the running statistics are updated once per step, by stage 1 only; the batch statistics used for
normalisation are the same as in training mode. f_msr's Adam state is part of ``state_dict()``
(``get_extra_state``). Under DDP A_s is all-gathered like the embeddings and f_msr's meta-gradient is
averaged over ranks.

Defaults: λ = 1, α = 0.03, γ = 0.02, measured on ``shapes`` (batch 256, AdamW 2e-3, 500 steps; the
share is ‖lookahead‖ / ‖lookahead + γ·∇L_uni‖, it swings from step to step with the batch and exceeds 1
when the two parts partly cancel). At α = 0.03, γ = 0.02 its minimum over the logged steps after the
50 warm-up steps was 0.47–0.49 (two runs whose float round-off differs), and L_uni spreads the strata
(uni_loss, the log of the n² pair sum, fell from log n² = 11.08 to 9.1–9.3; ``benchmarks/causal_signals.py
--method icl_msr --steps 500``). The runs that set these values: α = 2e-3 (the Trainer's lr, the old default):
share 0.003 by step 50; α = 0.1 (batch 128): L_ct(θ¹) > L_ct(θ) from step 40; α = 0.02 with γ = 0.1:
share 0.083 at step 120; with γ = 0.02: 0.067 at step 310; with γ = 0.005: share ≈ 1 but uni_loss stayed
at 11.08 — every stratum the same vector, a backdoor adjustment over one stratum, so that γ makes L_uni
inert instead. Others: f_msr Adam lr 1e-3, t = 2 (Wang & Isola's), τ of L_msr = the base's
``temperature`` (option or constructor default; 0.5 for bases without one), negatives from both views
(2N − 2, as SimCLR), strata="batch", f_msr hidden 512, ``meta_grad="jvp"``.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ..causal import BackdoorAdjustment, MetaSemanticRegularizer
from ..distributed import gather, gather_no_grad, world_size
from ..losses._common import check_real, check_temperature
from ..losses.msr import MSR_NEGATIVES, msr_loss, uniformity_of_strata
from .base import Method
from .bilevel import (
    InertMechanismWarning,
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
from .tangent_tape import TangentTape

#: ``meta_lookahead_share`` below this for ``SHARE_PATIENCE`` consecutive meta steps prints one warning
SHARE_FLOOR, SHARE_PATIENCE = 0.05, 50
#: the streak of low shares is counted on the device and read (one host sync) every this many meta steps
SHARE_CHECK_EVERY = 10
#: defaults of α and γ, chosen by measurement (module docstring)
DEFAULT_ALPHA, DEFAULT_GAMMA = 0.03, 0.02




class ICLMSR(MetaOptimizerState, Method):
    """ICL-MSR around a base method (see the module docstring for the formulas and step order).

    Args:
        backbone: the encoder f, handed to the base method.
        base: name of the wrapped method in ``causalcl.methods.METHODS`` (simclr, byol, ressl, moco).
        base_options: keyword arguments of the base method's constructor.
        lam: λ, the weight of L_msr in stage 1.
        gamma: γ, the weight of L_uni in stage 2.
        alpha: the lookahead step size α of the plain gradient step θ¹ = θ − α∇L_to (its own
            hyper-parameter: not the Trainer's learning rate, not scheduled).
        meta_lr: learning rate of f_msr's Adam optimiser.
        meta_grad: ``"jvp"`` (exact, forward mode), ``"reverse"`` (exact, reverse-over-reverse) or
            ``"finite_difference"`` (J_z·v by a central difference) — see ``causalcl.methods.bilevel``.
        fd_radius: r, the parameter-space length of the finite-difference step (``finite_difference``).
        strata: ``"batch"`` (one stratum per sample) or ``"learned"`` (a bank of ``n_strata``).
        n_strata: number of learned strata (only with ``strata="learned"``).
        msr_hidden: hidden width of f_msr's 2-layer MLP.
        temperature: τ of L_msr; ``None`` = the base's temperature (see the module docstring).
        negatives: ``"both_views"`` (DESIGN) or ``"other_view"`` (the seed's literal l ≠ j).
        uniformity_t: t of L_uni.
        embedding_dim: width of the base's embeddings; ``None`` = its projector's output width.
    """

    name = "icl_msr"

    def __init__(self, backbone: nn.Module, *, base: str = "simclr", base_options: dict[str, Any] | None = None,
                 lam: float = 1.0, gamma: float = DEFAULT_GAMMA, alpha: float = DEFAULT_ALPHA, meta_lr: float = 1e-3,
                 meta_grad: str = "jvp", fd_radius: float = 3e-4, strata: str = "batch", n_strata: int | None = None,
                 msr_hidden: int = 512, temperature: float | None = None, negatives: str = "both_views",
                 uniformity_t: float = 2.0, embedding_dim: int | None = None) -> None:
        super().__init__(backbone)
        del self.backbone  # registered once, inside the base method (see the ``backbone`` property)
        from . import get_method  # the registry imports this module

        try:
            cls = get_method(base)
        except ValueError as exc:
            raise ValueError(f"base: {exc}") from exc
        if cls is ICLMSR or cls.meta_step is not Method.meta_step:
            raise ValueError(f"base: expected a single-level method such as simclr, byol, ressl or moco, got {base!r}")
        options = dict(base_options or {})
        self.base = cls(backbone, **options)
        self.base_name = base
        self.num_views = self.base.num_views
        self.lam = check_real(lam, "lam", low=0.0)
        self.gamma = check_real(gamma, "gamma", low=0.0)
        self.alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
        self.meta_grad = check_meta_grad(meta_grad)
        self.fd_radius = check_real(fd_radius, "fd_radius", low=0.0, low_open=True)
        self._stage1: Stage1Record | None = None  # z1, z2, h of the last stage-1 forward
        has_online_path = hasattr(self.base, "projector") and hasattr(self.base, "backbone")
        self._tape = TangentTape.of(self.base.backbone, self.base.projector) if has_online_path else None
        # the current streak of low lookahead shares and whether it ever reached SHARE_PATIENCE (device tensors,
        # created at the first meta step), the meta steps taken, and whether the warning was given
        self._low_share_steps: Tensor | None = None
        self._share_streak_reached: Tensor | None = None
        self._meta_steps, self._share_warned = 0, False
        self.meta_lr = check_real(meta_lr, "meta_lr", low=0.0, low_open=True)
        self.uniformity_t = check_real(uniformity_t, "uniformity_t", low=0.0, low_open=True)
        if negatives not in MSR_NEGATIVES:
            raise ValueError(f"negatives: expected one of {list(MSR_NEGATIVES)}, got {negatives!r}")
        self.negatives = negatives
        if temperature is None:
            default = inspect.signature(cls.__init__).parameters.get("temperature")
            has_default = default is not None and isinstance(default.default, int | float)
            temperature = options.get("temperature", default.default if has_default else 0.5)
        self.temperature = check_temperature(temperature)
        if embedding_dim is None:
            widths = getattr(getattr(self.base, "projector", None), "widths", None)
            if not widths:
                raise ValueError(f"embedding_dim: base {base!r} has no projector with 'widths'; pass embedding_dim")
            embedding_dim = int(widths[-1])
        self.msr = MetaSemanticRegularizer(self.feature_dim, int(embedding_dim), hidden=msr_hidden, strata=strata,
                                           n_strata=n_strata)
        self.adjustment = BackdoorAdjustment()  # uniform prior P(a_t) = 1/n
        self.meta_optimizer = torch.optim.Adam(self.msr.parameters(), lr=self.meta_lr)

    # --- delegation to the base method --------------------------------------------------------
    @property
    def backbone(self) -> nn.Module:  # type: ignore[override]
        return self.base.backbone

    @property
    def encoder(self) -> nn.Module:
        return self.base.encoder

    def make_views(self, augment: Callable[..., Tensor], images: Tensor,
                   generator: torch.Generator | None = None) -> list[Tensor]:
        return self.base.make_views(augment, images, generator)

    def optim_parameters(self) -> Iterator[nn.Parameter]:
        """The base method's parameters; f_msr is stepped by ``meta_step`` with its own optimiser."""
        return self.base.optim_parameters()

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.base.on_step_end(step, total_steps)

    # --- pieces ---------------------------------------------------------------------------------
    @property
    def _msr_dtype(self) -> torch.dtype:
        return next(self.msr.parameters()).dtype

    @contextlib.contextmanager
    def _features(self) -> Iterator[list[Tensor]]:
        """Collects (detached) every output of the online backbone while the block runs."""
        feats: list[Tensor] = []
        handle = self.base.backbone.register_forward_hook(lambda _m, _i, out: feats.append(out.detach()))
        try:
            yield feats
        finally:
            handle.remove()

    @staticmethod
    def _representation(feats: list[Tensor], n: int) -> Tensor:
        """f_msr's input: the mean of the two views' backbone features (view 1 only if just N rows)."""
        h = torch.cat(feats) if feats else None
        if h is None or h.shape[0] < n:
            raise RuntimeError("icl_msr: the base method did not pass both views through its backbone")
        return (h[:n] + h[n:2 * n]) / 2 if h.shape[0] >= 2 * n else h[:n]

    def _base_forward(self, views: list[Tensor], tensors: dict[str, Tensor] | None = None,
                      targets: Tensor | None = None) -> tuple[dict[str, Tensor], Tensor, Tensor, Tensor]:
        """The base's output, its two embeddings and f_msr's input; ``tensors`` overrides parameters/buffers;
        ``targets`` (a base's ``"targets"`` output: BYOL's target, MoCo's keys, ReSSL's teacher) skips its
        no-grad target network when the views and target weights are those of the call that made them."""
        kwargs = {"targets": targets} if targets is not None else None
        with self._features() as feats:
            # tie_weights=False: the names come from named_parameters/named_modules (one per tensor); torch's
            # tied-weight handling restores aliased names (e.g. a backbone's ``last_conv``) wrongly
            out = self.base(views) if tensors is None else functional_call(self.base, tensors, (views,), kwargs,
                                                                           tie_weights=False)
        emb = out.get("embeddings")
        if not isinstance(emb, list | tuple) or len(emb) < 2:
            raise RuntimeError(f"icl_msr: base {self.base_name!r} does not return 'embeddings' [z1, z2]")
        z1, z2 = emb[0], emb[1]
        return out, z1, z2, self._representation(feats, z1.shape[0])

    def _msr(self, z1: Tensor, z2: Tensor, strata: Tensor) -> Tensor:
        dtype = torch.promote_types(z1.dtype, torch.float32)  # the loss in fp32 (or fp64) under autocast
        return msr_loss(gather(z1).to(dtype), gather(z2).to(dtype), strata.to(dtype), self.temperature,
                        self.negatives, self.adjustment)

    def _bn_buffers(self) -> dict[str, Tensor]:
        """Clones of the BatchNorm buffers: stage-2 forwards update these, not the model's statistics."""
        return {f"{name}.{b}": t.clone() for name, m in self.base.named_modules()
                if isinstance(m, nn.modules.batchnorm._NormBase) for b, t in m.named_buffers(recurse=False)}

    # --- the two stages -------------------------------------------------------------------------
    def forward(self, views: list[Tensor]) -> dict[str, Tensor]:
        """Stage 1: L_to = L_ct + λ·L_msr with A_s from f_msr, fixed (no gradient to f_msr).

        Keeps the detached embeddings and f_msr's input for ``meta_step`` (which reuses them with the
        gradient the Trainer's backward of this loss leaves in ``p.grad``)."""
        with recording(self._tape, self.meta_grad):
            out, z1, z2, h = self._base_forward(views)
        with torch.no_grad():
            strata = gather_no_grad(self.msr(h.to(self._msr_dtype)))
        msr = self._msr(z1, z2, strata)
        ct = out["loss"]
        loss = ct + self.lam * msr
        self._stage1 = (Stage1Record(views, self._theta()[1], loss, z1.detach(), z2.detach(), h, out.get("targets"))
                        if torch.is_grad_enabled() else None)
        result = dict(out)
        result.update(loss=loss, ct_loss=ct.detach(), msr_loss=msr.detach())
        return result

    def _theta(self) -> tuple[list[str], list[Tensor]]:
        """The looked-ahead parameters θ: the base's trainable (online) ones, by name."""
        named = [(k, p) for k, p in self.base.named_parameters() if p.requires_grad]
        return [k for k, _ in named], [p for _, p in named]

    def meta_objective(self, views: list[Tensor], alpha: float) -> tuple[Tensor, Tensor, Tensor]:
        """(L_ct(θ¹), L_uni(A_s), L_msr(θ, A_s)) with θ¹ = θ − α∇_θ L_to; the first two keep their
        graphs to f_msr's parameters (the stage-2 objective is L_ct(θ¹) + γ·L_uni). The reverse-mode
        reference (``meta_grad="reverse"``): differentiating it runs a double backward through the base."""
        names, params = self._theta()
        out, z1, z2, h = self._base_forward(views, self._bn_buffers())
        strata = self.msr(h.to(self._msr_dtype))
        msr = self._msr(z1, z2, gather(strata))
        grads = torch.autograd.grad(out["loss"] + self.lam * msr, params, create_graph=True, allow_unused=True)
        grads = global_mean_grads(grads)  # under DDP the lookahead steps on the global batch's gradient
        looked = {k: p if g is None else p - alpha * g for k, p, g in zip(names, params, grads, strict=True)}
        outer = self._base_forward(views, {**looked, **self._bn_buffers()})[0]["loss"]
        uni = uniformity_of_strata(strata if self.msr.bank is not None else gather(strata), self.uniformity_t)
        return outer, uni, msr

    def _embed(self, views: list[Tensor], params: dict[str, Tensor]) -> list[Tensor]:
        """[z1, z2] of the base at ``params`` (throw-away BN buffer clones): only the online path
        projector(backbone(x)) when the base has one, so no target/key network runs again."""
        state = {**self._bn_buffers(), **params}
        if hasattr(self.base, "projector") and hasattr(self.base, "backbone"):
            z = functional_call(_OnlineEmbedding(self.base), {f"base.{k}": v for k, v in state.items()},
                                (views,), tie_weights=False)
            return list(z.chunk(2))
        return list(functional_call(self.base, state, (views,), tie_weights=False)["embeddings"][:2])

    def forward_mode_meta_gradients(self, views: list[Tensor], alpha: float, mode: str = "jvp",
                                    inner_grads: list[Tensor] | None = None
                                    ) -> tuple[list[Tensor], list[Tensor], Tensor, Tensor]:
        """(∇_φ L_ct(θ¹), ∇_φ γ·L_uni, L_ct(θ¹), L_uni) with the lookahead term in forward mode
        (``causalcl.methods.bilevel``): −αλ·∇_φ⟨J_z(θ)v, ∇_z L_msr(z, A_s(φ))⟩, v = ∇_θ L_ct(θ¹).

        ``inner_grads`` is g = ∇_θ L_to(θ) (the Trainer's stage-1 gradient, in ``_theta`` order); with
        ``None`` it is recomputed (one more forward and backward). Single process."""
        names, params = self._theta()
        stash, self._stage1 = self._stage1, None
        if inner_grads is None or stash is None or not stash.usable(views, params):
            out, z1, z2, h = self._base_forward(views, self._bn_buffers())
            with torch.no_grad():
                strata = self.msr(h.to(self._msr_dtype))
            inner = out["loss"] + self.lam * self._msr(z1, z2, strata)
            inner_grads = grads_or_zeros(inner, params)
            z1, z2, targets = z1.detach(), z2.detach(), out.get("targets")
            stash = None  # stage 1's recording (if any) is not of these weights
        else:
            z1, z2, h, targets = stash.tensors
        theta = {k: p.detach() for k, p in zip(names, params, strict=True)}
        looked = {k: (theta[k] - alpha * g).requires_grad_(True) for k, g in zip(names, inner_grads, strict=True)}
        outer = self._base_forward(views, {**self._bn_buffers(), **looked}, targets)[0]["loss"]  # targets: stage 1's
        v = dict(zip(names, grads_or_zeros(outer, list(looked.values())), strict=True))
        u = recorded_tangents(self._tape, (z1, z2), params, list(v.values())) if stash is not None else None
        if u is None:  # forward mode (or the central difference) at θ
            u = directional_derivative(lambda ps: self._embed(views, ps), theta, v, mode, self.fd_radius)
        u1, u2 = u
        z1, z2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
        phi = [p for p in self.msr.parameters() if p.requires_grad]
        strata = self.msr(h.to(self._msr_dtype))
        w1, w2 = torch.autograd.grad(self._msr(z1, z2, strata), (z1, z2), create_graph=True)
        pairing = (u1.to(w1.dtype) * w1).sum() + (u2.to(w2.dtype) * w2).sum()  # ⟨J_z v, ∇_z L_msr⟩
        g_look = grads_or_zeros(-alpha * self.lam * pairing, phi, retain_graph=True)
        uni = uniformity_of_strata(strata, self.uniformity_t)
        return g_look, grads_or_zeros(self.gamma * uni, phi), outer.detach(), uni.detach()

    def meta_step(self, views: list[Tensor], lr: float, *, log_terms: bool = True) -> dict[str, Tensor]:
        """Stage 2: one Adam step of f_msr on L_ct(θ¹) + γ·L_uni; returns the logged terms (0-dim device tensors:
        no host synchronisation, the Trainer reads them at its logging steps).

        Called by the Trainer after the backward of ``forward(views)`` and before its optimiser step,
        so θ is the point stage 1 differentiated and ``p.grad`` holds g = ∇_θ L_to (reused). ``lr`` is
        not used: the lookahead step is ``alpha``. ``log_terms`` is not used either: the lookahead share is
        watched at every step."""
        mode = self.meta_grad if world_size() == 1 else "reverse"  # forward-mode paths: single process
        phi = [p for p in self.msr.parameters() if p.requires_grad]
        if mode == "reverse":
            self._stage1 = None
            outer, uni, _ = self.meta_objective(views, self.alpha)
            g_look = grads_or_zeros(outer, phi, retain_graph=True)
            g_uni = grads_or_zeros(self.gamma * uni, phi)
        else:
            inner = stage1_gradients(self._theta()[1])
            g_look, g_uni, outer, uni = self.forward_mode_meta_gradients(views, self.alpha, mode, inner)
        total = global_mean_grads([a + b for a, b in zip(g_look, g_uni, strict=True)])  # f_msr equal on every rank
        for p, g in zip(phi, total, strict=True):
            p.grad = g.detach()
        self.meta_optimizer.step()
        self.meta_optimizer.zero_grad(set_to_none=True)
        total_norm, look_norm = grad_norm(total), grad_norm(g_look)
        share = torch.where(total_norm > 0, look_norm / total_norm, torch.zeros_like(total_norm))
        self._watch_share(share)
        return {"uni_loss": uni.detach(), "meta_ct_loss": outer.detach(),
                "meta_grad_norm": total_norm, "meta_lookahead_grad_norm": look_norm, "meta_lookahead_share": share}

    def _watch_share(self, share: Tensor) -> None:
        """Warn once when the lookahead share stays below ``SHARE_FLOOR`` for ``SHARE_PATIENCE`` meta steps.

        The streak is counted on the device; whether it reached ``SHARE_PATIENCE`` is read every
        ``SHARE_CHECK_EVERY`` meta steps, so the warning comes at most that many steps late."""
        if self._low_share_steps is None or self._share_streak_reached is None:
            self._low_share_steps = torch.zeros((), dtype=torch.long, device=share.device)
            self._share_streak_reached = torch.zeros((), dtype=torch.bool, device=share.device)
        low = share < SHARE_FLOOR
        self._low_share_steps = torch.where(low, self._low_share_steps + 1, torch.zeros_like(self._low_share_steps))
        self._share_streak_reached = self._share_streak_reached | (self._low_share_steps >= SHARE_PATIENCE)
        self._meta_steps += 1
        if (not self._share_warned and self._meta_steps % SHARE_CHECK_EVERY == 0
                and bool(self._share_streak_reached)):
            self._share_warned = True
            warnings.warn(f"icl_msr: meta_lookahead_share has stayed below {SHARE_FLOOR} for {SHARE_PATIENCE} steps, "
                          "so f_msr learns from L_uni alone; raise method.alpha or method.lam, or lower method.gamma",
                          InertMechanismWarning, stacklevel=3)


class _OnlineEmbedding(nn.Module):
    """projector(backbone(cat(views[:2]))) of a base method: its online embeddings, nothing else."""

    def __init__(self, base: Method) -> None:
        super().__init__()
        self.base = base

    def forward(self, views: list[Tensor]) -> Tensor:
        return self.base.projector(self.base.backbone(torch.cat(list(views[:2]))))
