"""ReLIC's loss: InfoNCE over ordered augmentation pairs plus the KL invariance penalty."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import check_pair, check_real, check_temperature, normalize

#: where ``relic_kl`` puts the stop-gradient (see its docstring); ``"none"`` (exact KL gradient) is the default
KL_STOP_GRADIENTS = ("entropy", "none", "target")


def relic_logits(online: Tensor, target: Tensor, temperature: float = 0.5) -> Tensor:
    """(N, N) logits L_lk[i, j] = φ(f(x_i^{a_l}), h(x_j^{a_k})) / τ, φ = cosine similarity.

    Row i, softmaxed, is p^{do(a_lk)}(Y^R = j | f(x_i)): which of the N targets of view k is the
    proxy class ("the same image") of anchor i of view l.
    """
    check_pair(online, target)
    t = check_temperature(temperature)
    return normalize(online) @ normalize(target).T / t


def relic_kl(logits_p: Tensor, logits_q: Tensor, stop_gradient: str = "none") -> Tensor:
    r"""Mean over rows i of KL(p_i ‖ q_i), p = row-softmax(logits_p), q = row-softmax(logits_q).

        KL(p_i ‖ q_i) = Σ_j p_ij log p_ij − Σ_j p_ij log q_ij

    ``stop_gradient`` (the value is the same in every mode, only the gradient differs):

    * ``"none"`` (default): the exact KL gradient. For p's logits u it is
      ∂KL/∂u_j = p_j (log p_j − log q_j − KL), zero exactly at p = q: descending it moves p towards q
      (and q towards p through the second argument), which is the invariance ReLIC asks for.
    * ``"entropy"``: ``sg[Σ_j p log p] − Σ_j p log q``, the form research/methods.md §3 attributes to
      the ReLIC paper ([unverified]: ReLIC v1 released no pre-training code). Its gradient is that of
      the cross-entropy H(p, q) = −Σ_j p_j log q_j, i.e. ∂/∂u_j = −p_j (log q_j + H(p, q)): on p's side it
      only moves p's mass onto q's most likely entries, so with q fixed it *sharpens* p to a one-hot
      on argmax q (issue 11 measured H(p) 3.65 → 0.001 while the KL stayed at 2.39;
      ``test_entropy_stop_gradient_sharpens_p_instead`` checks it) instead of matching q. The dropped
      entropy term is exactly what would keep p spread out like q. Kept as an ablation.
    * ``"target"``: ``p`` fully detached, so p is a fixed distillation target and only q receives
      gradient: descending moves q towards p (the teacher/student form of BYOL-style targets).

    Args:
        logits_p, logits_q: (N, M) logit matrices with the same shape (rows are distributions).
        stop_gradient: one of ``KL_STOP_GRADIENTS``.

    Returns:
        Scalar tensor: (1/N) Σ_i KL(p_i ‖ q_i).
    """
    if stop_gradient not in KL_STOP_GRADIENTS:
        raise ValueError(f"stop_gradient: expected one of {KL_STOP_GRADIENTS}, got {stop_gradient!r}")
    if logits_p.shape != logits_q.shape or logits_p.dim() != 2:
        raise ValueError(f"logits_q: expected the shape of logits_p, a 2-D (N, M) matrix, got "
                         f"{tuple(logits_q.shape)} vs {tuple(logits_p.shape)}")
    log_p, log_q = F.log_softmax(logits_p, dim=1), F.log_softmax(logits_q, dim=1)
    if stop_gradient == "target":
        log_p = log_p.detach()
    p = log_p.exp()
    neg_entropy = (p * log_p).sum(1)
    if stop_gradient == "entropy":
        neg_entropy = neg_entropy.detach()
    return (neg_entropy - (p * log_q).sum(1)).mean()


def relic_terms(online: Sequence[Tensor], target: Sequence[Tensor], temperature: float = 0.5,
                stop_gradient: str = "none") -> tuple[Tensor, Tensor]:
    r"""ReLIC's two terms over V ≥ 2 views (Mitrovic, McWilliams, Walker, Buesing, Blundell,
    "Representation Learning via Invariant Causal Mechanisms", ICLR 2021, arXiv 2010.07922).

    ``online[l]`` = g(f(x^{a_l})) and ``target[k]`` = g(h(x^{a_k})) are the (N, D) projections of
    view l by the online network f and of view k by the target network h (h = f in ReLIC, an EMA
    copy in ReLIC_T). For each ordered pair a_lk = (l, k), l ≠ k, L_lk = ``relic_logits`` and
    p^{do(a_lk)} = row-softmax(L_lk). With P the V(V−1) ordered pairs::

        infonce = 1/|P| Σ_{(l,k)∈P} 1/N Σ_i −log p^{do(a_lk)}_{ii}
        kl      = 1/(|P|(|P|−1)) Σ_{a_lk ≠ a_qt ∈ P} 1/N Σ_i KL(p^{do(a_lk)}_i ‖ p^{do(a_qt)}_i)

    For two views, infonce = ½(CE(L₁₂) + CE(L₂₁)) and kl = ½(KL(p^{do(12)} ‖ p^{do(21)}) +
    KL(p^{do(21)} ‖ p^{do(12)})): the paper's sums over a_lk and (a_lk, a_qt), taken as means.

    ``stop_gradient`` selects the KL's gradient (``relic_kl``; default ``"none"``, the exact gradient).

    Returns:
        ``(infonce, kl)``, two scalars; ReLIC's loss is ``infonce + α·kl`` (``relic_loss``).
    """
    if len(online) < 2 or len(online) != len(target):
        raise ValueError(f"online/target: expected the same number V >= 2 of views, got {len(online)} and "
                         f"{len(target)}")
    pairs = [(lv, kv) for lv in range(len(online)) for kv in range(len(online)) if lv != kv]
    logits = {(lv, kv): relic_logits(online[lv], target[kv], temperature) for lv, kv in pairs}
    n = online[0].shape[0]
    labels = torch.arange(n, device=online[0].device)
    infonce = sum(F.cross_entropy(logits[pair], labels) for pair in pairs) / len(pairs)
    kls = [relic_kl(logits[a], logits[b], stop_gradient) for a in pairs for b in pairs if a != b]
    return infonce, sum(kls) / len(kls)


def relic_loss(online: Sequence[Tensor], target: Sequence[Tensor], temperature: float = 0.5, alpha: float = 1.0,
               stop_gradient: str = "none") -> Tensor:
    """ReLIC's loss ``infonce + α·kl`` with the two terms of ``relic_terms`` (Mitrovic et al., ICLR 2021,
    arXiv 2010.07922): InfoNCE over the ordered view pairs plus α times the mean KL between their
    distributions p^{do(a_lk)}. Defaults τ = 0.5, α = 1, the exact KL gradient (``stop_gradient="none"``;
    see ``relic_kl`` for the other modes).

    Raises:
        ValueError: α < 0, or any input that ``relic_terms`` refuses.
    """
    a = check_real(alpha, "alpha", low=0.0)
    infonce, kl = relic_terms(online, target, temperature, stop_gradient)
    return infonce + a * kl

