"""ICL-MSR: Interventional Contrastive Learning with a Meta Semantic Regularizer (Qiang, Li, Zheng,
Su, Xiong; ICML 2022, arXiv 2206.14702). No official code exists; this follows DESIGN §5.3.

It wraps a base method (``base="simclr" | "byol" | "ressl" | "moco"``; f = its backbone, f_ph = its
online heads) and adds a backdoor-adjusted loss over strata A_s = {a_t} made by f_msr
(``causalcl.causal.MetaSemanticRegularizer``) from the detached representation::

    P(Y | X, a_t) = e^{s_t/τ} / (e^{s_t/τ} + Σ_{k≠i} Σ_l e^{sim(z_i^j, z_k^l)/τ}),  s_t = sim(z_i^j, a_t ⊙ z_i^{3−j})
    P(Y | do(X)) = Σ_t P(Y | X, a_t) · 1/n                   (``causalcl.causal.BackdoorAdjustment``)
    L_msr = mean over the 2N anchors of −log P(Y | do(X))   (``causalcl.losses.msr_loss``; the paper's Σ / 2N)
    L_to  = L_ct + λ·L_msr,  L_ct = the base method's loss.

Stage 1 (``forward``; the Trainer steps (f, f_ph) on it): A_s is computed by f_msr without gradient,
so f_msr receives nothing from L_to. Stage 2 (``meta_step``, after the Trainer's step): with the
current weights θ of (f, f_ph) — only the online parameters that the Trainer optimises are looked ahead;
EMA targets, key encoders and queues are read as they are — and A_s with its graph to f_msr,

    θ¹ = θ − α ∇_θ L_to(θ, A_s)                      (create_graph: θ¹ depends on f_msr through A_s)
    f_msr ← Adam step on  L_ct(θ¹) + γ·L_uni(A_s),   L_uni = log Σ_{a_i,a_j} exp(2t·a_iᵀa_j − 2t)

The outer L_ct(θ¹) is the base loss only (no L_msr): its gradient reaches f_msr solely through the
lookahead, which is what ``meta_lookahead_grad_norm`` measures; ``meta_grad_norm`` is the norm of
the whole gradient (lookahead + γ·∇L_uni). The lookahead is a plain gradient step of size α whatever
the Trainer's optimiser is (the paper's f¹ = f − α∇_f L_to). With λ = 0 the lookahead does not depend
on f_msr and ``meta_lookahead_grad_norm`` is 0. Cost: stage 2 adds two forward passes of the base and a
double backward per step (about 3× a plain step).

Decisions: f_msr's input is the mean of the two views' backbone features (captured with a forward hook
during the base's own pass, detached), so n = batch size strata (``strata="learned"``: a bank of
``n_strata`` vectors). Stage-2 forwards run with cloned BatchNorm buffers (``functional_call``), so
the running statistics are updated once per step, by stage 1 only; the batch statistics used for
normalisation are the same as in training mode. f_msr's Adam state is part of ``state_dict()``
(``get_extra_state``). Under DDP A_s is all-gathered like the embeddings and f_msr's meta-gradient is
averaged over ranks; the lookahead gradient is the rank's own (not tested under DDP).

Defaults: λ = 1, γ = 0.1, α = the Trainer's current learning rate, f_msr Adam lr 1e-3, t = 2
(Wang & Isola's), τ of L_msr = the base's ``temperature`` (option or constructor default; 0.5 for
bases without one), negatives from both views (2N − 2, as SimCLR), strata="batch", f_msr hidden 512.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ..causal import BackdoorAdjustment, MetaSemanticRegularizer
from ..distributed import gather, gather_no_grad
from ..losses._common import check_real, check_temperature
from ..losses.msr import MSR_NEGATIVES, msr_loss, uniformity_of_strata
from .base import Method
from .bilevel import MetaOptimizerState, global_mean_grads


def _grads(loss: Tensor, params: list[Tensor], retain_graph: bool = False) -> list[Tensor]:
    got = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, got, strict=True)]


def _norm(grads: list[Tensor]) -> float:
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))


class ICLMSR(MetaOptimizerState, Method):
    """ICL-MSR around a base method (see the module docstring for the formulas and step order).

    Args:
        backbone: the encoder f, handed to the base method.
        base: name of the wrapped method in ``causalcl.methods.METHODS`` (simclr, byol, ressl, moco).
        base_options: keyword arguments of the base method's constructor.
        lam: λ, the weight of L_msr in stage 1.
        gamma: γ, the weight of L_uni in stage 2.
        alpha: the lookahead step size α; ``None`` = the Trainer's current learning rate.
        meta_lr: learning rate of f_msr's Adam optimiser.
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
                 lam: float = 1.0, gamma: float = 0.1, alpha: float | None = None, meta_lr: float = 1e-3,
                 strata: str = "batch", n_strata: int | None = None, msr_hidden: int = 512,
                 temperature: float | None = None, negatives: str = "both_views", uniformity_t: float = 2.0,
                 embedding_dim: int | None = None) -> None:
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
        self.alpha = None if alpha is None else check_real(alpha, "alpha", low=0.0, low_open=True)
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

    def _base_forward(self, views: list[Tensor], tensors: dict[str, Tensor] | None = None
                      ) -> tuple[dict[str, Tensor], Tensor, Tensor, Tensor]:
        """The base's output, its two embeddings and f_msr's input; ``tensors`` overrides parameters/buffers."""
        with self._features() as feats:
            # tie_weights=False: the names come from named_parameters/named_modules (one per tensor); torch's
            # tied-weight handling restores aliased names (e.g. a backbone's ``last_conv``) wrongly
            out = self.base(views) if tensors is None else functional_call(self.base, tensors, (views,),
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
        """Stage 1: L_to = L_ct + λ·L_msr with A_s from f_msr, fixed (no gradient to f_msr)."""
        out, z1, z2, h = self._base_forward(views)
        with torch.no_grad():
            strata = gather_no_grad(self.msr(h.to(self._msr_dtype)))
        msr = self._msr(z1, z2, strata)
        ct = out["loss"]
        result = dict(out)
        result.update(loss=ct + self.lam * msr, ct_loss=ct.detach(), msr_loss=msr.detach())
        return result

    def meta_objective(self, views: list[Tensor], alpha: float) -> tuple[Tensor, Tensor, Tensor]:
        """(L_ct(θ¹), L_uni(A_s), L_msr(θ, A_s)) with θ¹ = θ − α∇_θ L_to; the first two keep their
        graphs to f_msr's parameters (the stage-2 objective is L_ct(θ¹) + γ·L_uni)."""
        named = [(k, p) for k, p in self.base.named_parameters() if p.requires_grad]
        names, params = [k for k, _ in named], [p for _, p in named]
        out, z1, z2, h = self._base_forward(views, self._bn_buffers())
        strata = self.msr(h.to(self._msr_dtype))
        msr = self._msr(z1, z2, gather(strata))
        grads = torch.autograd.grad(out["loss"] + self.lam * msr, params, create_graph=True, allow_unused=True)
        grads = global_mean_grads(grads)  # under DDP the lookahead steps on the global batch's gradient
        looked = {k: p if g is None else p - alpha * g for k, p, g in zip(names, params, grads, strict=True)}
        outer = self._base_forward(views, {**looked, **self._bn_buffers()})[0]["loss"]
        uni = uniformity_of_strata(strata if self.msr.bank is not None else gather(strata), self.uniformity_t)
        return outer, uni, msr

    def meta_step(self, views: list[Tensor], lr: float) -> dict[str, float]:
        """Stage 2: one Adam step of f_msr on L_ct(θ¹) + γ·L_uni; returns the logged terms."""
        alpha = float(lr) if self.alpha is None else self.alpha
        phi = [p for p in self.msr.parameters() if p.requires_grad]
        outer, uni, _ = self.meta_objective(views, alpha)
        g_look = _grads(outer, phi, retain_graph=True)
        g_uni = _grads(self.gamma * uni, phi)
        total = global_mean_grads([a + b for a, b in zip(g_look, g_uni, strict=True)])  # f_msr equal on every rank
        for p, g in zip(phi, total, strict=True):
            p.grad = g.detach()
        self.meta_optimizer.step()
        self.meta_optimizer.zero_grad(set_to_none=True)
        return {"uni_loss": float(uni.detach()), "meta_ct_loss": float(outer.detach()),
                "meta_grad_norm": _norm(total), "meta_lookahead_grad_norm": _norm(g_look)}
