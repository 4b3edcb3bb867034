r"""The SimCLR loss family (``SIMCLR_LOSSES``: debiased, hard, dcl, dclw, hard_threshold, align_uniform,
triplet) on the negatives of two other layouts: MoCo's queue and CMC's cross-view batch.

Every loss of the family is a function of, per anchor a, one positive similarity s⁺_a and a set of M
negative similarities {s_aj} (cosines of L2-normalised rows). SimCLR's layout (``_common``) takes 2N
anchors and the 2N − 2 other embeddings as negatives; the two layouts here only change those sets:

* queue (:func:`queue_variant_loss`, MoCo): anchors are the N queries q_i, the positive is the key k_i of
  the momentum encoder, the negatives are the K keys n_j of the queue (M = K; keys and queue carry no
  gradient): s⁺_i = q̂_i·k̂_i, s_ij = q̂_i·n̂_j, mean over the N queries.
* cross-view (:func:`cross_view_variant_loss`, CMC): the 2N anchors are u_i = ẑ1_i (against the v's) and
  v_i = ẑ2_i (against the u's); the positive of u_i is v_i, its negatives the N − 1 other v_k (and the same
  with the views swapped): s⁺ = u_i·v_i, s_ik = u_i·v_k (k ≠ i), M = N − 1, mean over the 2N anchors (the
  two directions averaged, as ``cross_view_info_nce``).

With t the temperature and the sets above, the variants read (the SimCLR forms with M negatives):

    infonce         ℓ_a = −log( e^{s⁺/t} / (e^{s⁺/t} + Σ_j e^{s_aj/t}) )
    debiased        Ng_a = max{ (Σ_j e^{s_aj/t} − τ⁺·M·e^{s⁺/t}) / (1 − τ⁺),  M·e^{−1/t} }
                    ℓ_a = −log( e^{s⁺/t} / (e^{s⁺/t} + Ng_a) )                       (Chuang et al. 2020)
    hard            Ng_a as debiased with Σ_j e^{s_aj/t} replaced by M·Σ_j w_aj e^{s_aj/t},
                    w_aj = e^{β s_aj/t} / Σ_l e^{β s_al/t}                              (HCL, Robinson et al. 2021)
    dcl / dclw      ℓ_a = −w_a·s⁺/t + log Σ_j e^{s_aj/t},  w = 1 (dcl) or, per pair p of the P = N pairs,
                    w_p = 2 − P·softmax_p(s⁺_p/σ) (dclw, detached)                       (Yeh et al. 2022)
    hard_threshold  infonce over the kept negatives only: the top_k most similar (default max(1, M // 4)),
                    or those with s_aj >= threshold                                     (Wang & Liu 2021)
    triplet         hardest: max(0, max_j s_aj − s⁺ + margin);  all: 1/M Σ_j max(0, s_aj − s⁺ + margin)
    align_uniform   queue: w_a·(1/N) Σ_i ‖q̂_i − k̂_i‖^α + w_u·log( mean_{d∈P} e^{−t·d} ), with P the squared
                    distances ‖q̂_i − n̂_j‖² = 2 − 2 s_ij of every query to every queue key plus, with
                    ``intra_batch`` (default), ‖q̂_i − q̂_l‖² for i < l (Wang & Isola's MoCo code,
                    SsnL/moco ``align_uniform``); cross-view: ``align_uniform(z1, z2)`` itself (its
                    uniformity is per view, it has no negative set).

Choices as in the SimCLR forms (see each function there): HCL's β multiplies s/t and its weights keep their
gradient unless ``detach_weights``; the debiased clamp floor is M·e^{−1/t}; the DCLW weight carries the
factor P and is detached. Option names and defaults are those of the SimCLR functions (``variant_options``
reads them from their signatures), plus ``intra_batch`` for the queue's align_uniform. The queue and
cross-view "infonce" are exactly ``info_nce_queue`` and ``cross_view_info_nce``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from numbers import Integral
from typing import Any

import torch
from torch import Tensor

from ._common import check_pair, check_real, check_tau_plus, check_temperature, normalize
from .align_uniform import _alignment, align_uniform
from .cross_view import cross_view_info_nce
from .debiased import _debiased_from_logits, debiased_info_nce, hard_info_nce
from .decoupled import decoupled_info_nce, decoupled_weighted_info_nce
from .hard_threshold import hard_threshold_info_nce
from .infonce import info_nce
from .moco import check_queue_inputs, info_nce_queue
from .triplet import triplet

#: the SimCLR form of each variant: its keyword parameters (after z1, z2) are the variant's options
_SIMCLR_FORMS: dict[str, Callable[..., Tensor]] = {
    "infonce": info_nce,
    "debiased": debiased_info_nce,
    "hard": hard_info_nce,
    "dcl": decoupled_info_nce,
    "dclw": decoupled_weighted_info_nce,
    "hard_threshold": hard_threshold_info_nce,
    "align_uniform": align_uniform,
    "triplet": triplet,
}
#: the variant names (the keys of ``SIMCLR_LOSSES``), valid for both layouts
VARIANT_LOSSES: tuple[str, ...] = tuple(_SIMCLR_FORMS)
LAYOUTS = ("queue", "cross_view")
_EXTRA_OPTIONS: dict[tuple[str, str], dict[str, Any]] = {("queue", "align_uniform"): {"intra_batch": True}}


@functools.cache
def _default_items(loss: str, layout: str) -> tuple[tuple[str, Any], ...]:
    params = list(inspect.signature(_SIMCLR_FORMS[loss]).parameters.values())[2:]
    return tuple(({p.name: p.default for p in params} | _EXTRA_OPTIONS.get((layout, loss), {})).items())


def _defaults(loss: str, layout: str) -> dict[str, Any]:
    return dict(_default_items(loss, layout))


def _check_values(opts: Mapping[str, Any], loss: str) -> None:
    """The options' values, checked before any data is seen (``ValueError`` naming ``loss_options.<key>``)."""
    def fail(key: str, why: str) -> None:
        raise ValueError(f"loss_options.{key}: {why}, got {opts[key]!r}")

    for key, value in opts.items():
        try:
            if key in ("temperature", "alpha", "t"):
                check_real(value, key, low=0.0, low_open=True)
            elif key == "tau_plus":
                check_tau_plus(value)
            elif key in ("beta", "margin"):
                check_real(value, key, low=0.0)
            elif key in ("align_weight", "unif_weight"):
                check_real(value, key)
            elif key == "weight_sigma" and (value is not None or loss == "dclw"):
                check_real(value, key, low=0.0, low_open=True)
            elif key == "threshold" and value is not None:
                check_real(value, key, low=-1.0, high=1.0)
        except ValueError as exc:
            raise ValueError(f"loss_options.{key}: {exc}") from exc
        if key in ("detach_weights", "intra_batch") and not isinstance(value, bool):
            fail(key, "expected a bool")
        if key == "negatives" and value not in ("hardest", "all"):
            fail(key, "expected 'hardest' or 'all'")
        if key == "top_k" and value is not None and (isinstance(value, bool) or not isinstance(value, Integral)
                                                     or value < 1):
            fail(key, "expected an int >= 1 or None")
    if opts.get("top_k") is not None and opts.get("threshold") is not None:
        raise ValueError("loss_options: top_k and threshold are exclusive: set at most one of them")


def variant_options(loss: str, options: Mapping[str, Any] | None = None, temperature: float | None = None,
                    layout: str = "queue") -> dict[str, Any]:
    """The keyword options of variant ``loss`` on ``layout``, checked: ``options`` over the defaults of the
    SimCLR form, with ``temperature`` filled in when the loss takes one and ``options`` does not set it.

    Raises:
        ValueError: ``loss`` not one of ``VARIANT_LOSSES`` (the message lists them), ``layout`` unknown, an
            option the loss does not take (``loss_options``, with the valid names) or a bad value
            (``loss_options.<key>``).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    if not isinstance(loss, str) or loss not in _SIMCLR_FORMS:
        raise ValueError(f"loss: name must be one of {sorted(_SIMCLR_FORMS)}, got {loss!r}")
    defaults = _defaults(loss, layout)
    given = dict(options or {})
    unknown = [key for key in given if key not in defaults]
    if unknown:
        raise ValueError(f"loss_options: {unknown} are not parameters of loss {loss!r}; valid: {list(defaults)}")
    if temperature is not None and "temperature" in defaults:
        given.setdefault("temperature", temperature)
    opts = defaults | given
    _check_values(opts, loss)
    return opts


def _kernel(loss: str, pos: Tensor, neg: Tensor, pair_pos: Tensor, opts: Mapping[str, Any]) -> Tensor:
    """Mean over anchors of variant ``loss`` from cosine similarities: ``pos`` (A,) of each anchor with its
    positive, ``neg`` (A, M) with its negatives, ``pair_pos`` (P,) of the P pairs (A a multiple of P, anchor
    a belongs to pair a mod P) for DCLW's weights."""
    m = neg.shape[1]
    if loss in ("debiased", "hard"):
        t = check_temperature(opts["temperature"])
        beta = check_real(opts["beta"], "beta", low=0.0) if loss == "hard" else None
        detach = bool(opts.get("detach_weights", False))
        return _debiased_from_logits(pos / t, neg / t, t, check_tau_plus(opts["tau_plus"]), beta, detach)
    if loss in ("dcl", "dclw"):
        t = check_temperature(opts["temperature"])
        pos_term = pos / t
        if opts["weight_sigma"] is not None:
            sigma = check_temperature(opts["weight_sigma"], "weight_sigma")
            p = pair_pos.shape[0]
            w = 2.0 - p * torch.softmax(pair_pos.detach() / sigma, dim=0)
            pos_term = w.repeat(pos.shape[0] // p) * pos_term
        return (torch.logsumexp(neg / t, dim=1) - pos_term).mean()
    if loss == "hard_threshold":
        t = check_temperature(opts["temperature"])
        l_pos = pos / t
        if opts["threshold"] is None:
            k = max(1, m // 4) if opts["top_k"] is None else opts["top_k"]
            if isinstance(k, bool) or not isinstance(k, Integral) or not 1 <= k <= m:
                raise ValueError(f"top_k must be an int in [1, M = {m}] (M negatives per anchor), got {k!r}")
            kept = torch.topk(neg / t, int(k), dim=1).values
        else:
            c = check_real(opts["threshold"], "threshold", low=-1.0, high=1.0)
            kept = (neg / t).masked_fill(neg < c, float("-inf"))
        return (torch.logsumexp(torch.cat([l_pos.unsqueeze(1), kept], dim=1), dim=1) - l_pos).mean()
    if loss == "triplet":
        margin = check_real(opts["margin"], "margin", low=0.0)
        if opts["negatives"] == "hardest":
            return torch.relu(neg.max(dim=1).values - pos + margin).mean()
        return torch.relu(neg - pos.unsqueeze(1) + margin).mean()
    raise ValueError(f"loss: no similarity kernel for {loss!r}")  # infonce / align_uniform are routed before


def queue_variant_loss(q: Tensor, k: Tensor, queue: Tensor, loss: str = "infonce", **options: Any) -> Tensor:
    r"""Variant ``loss`` of the SimCLR family with MoCo's negatives: query q_i, positive key k_i, the K keys of
    the queue as negatives (formulas in the module docstring, M = K).

    Queries, keys and queue rows are L2-normalised inside; keys and queue are detached. ``"infonce"`` is
    :func:`info_nce_queue`. ``options`` are those of the variant's SimCLR form (e.g. ``temperature``,
    ``tau_plus``, ``beta``), with its defaults; ``align_uniform`` also takes ``intra_batch`` (default True).
    The mean is over the N queries (MoCo's symmetric loss averages two calls).

    Args:
        q: (N, D) queries (gradients flow), N >= 2.
        k: (N, D) positive keys (row i is the key of query i).
        queue: (K, D) negative keys, K >= 1 (cast to the dtype of ``q``).
        loss: one of ``VARIANT_LOSSES``.
        **options: keyword options of that variant.

    Returns:
        Scalar tensor.

    Raises:
        ValueError: bad shapes/dtypes/devices, non-finite inputs (``NonFiniteEmbeddingError``), an unknown
            loss or option, a bad option value (``top_k`` above M = K included).
    """
    opts = variant_options(loss, options, layout="queue")
    if loss == "infonce":
        return info_nce_queue(q, k, queue, temperature=opts["temperature"])
    check_queue_inputs(q, k, queue)
    qn, kn = normalize(q), normalize(k.detach())
    keys = normalize(queue.detach().to(q.dtype))
    pos = (qn * kn).sum(dim=1)
    neg = qn @ keys.T
    if loss == "align_uniform":
        a = check_real(opts["alpha"], "alpha", low=0.0, low_open=True)
        tt = check_real(opts["t"], "t", low=0.0, low_open=True)
        sq = (2.0 - 2.0 * neg).clamp_min(0.0).flatten()
        if opts["intra_batch"]:
            n = q.shape[0]
            i, j = torch.triu_indices(n, n, offset=1, device=q.device)
            sq = torch.cat([sq, (2.0 - 2.0 * (qn @ qn.T))[i, j].clamp_min(0.0)])
        unif = torch.logsumexp(-tt * sq, dim=0) - math.log(sq.numel())
        return opts["align_weight"] * _alignment(qn, kn, a) + opts["unif_weight"] * unif
    return _kernel(loss, pos, neg, pos, opts)


def _off_diagonal_index(n: int, device: torch.device) -> Tensor:
    """(N, N − 1): the columns k != i of row i, in increasing order."""
    i = torch.arange(n, device=device).unsqueeze(1)
    j = torch.arange(n - 1, device=device).unsqueeze(0)
    return j + (j >= i).long()


def cross_view_variant_loss(z1: Tensor, z2: Tensor, loss: str = "infonce", **options: Any) -> Tensor:
    r"""Variant ``loss`` of the SimCLR family with CMC's cross-view candidates: anchor u_i = ẑ1_i against the
    N rows of ẑ2 (positive v_i, N − 1 negatives v_k, k ≠ i), and v_i against the rows of ẑ1; the mean over the
    2N anchors (formulas in the module docstring, M = N − 1).

    Rows are L2-normalised inside. ``"infonce"`` is :func:`cross_view_info_nce`; ``"align_uniform"`` is
    :func:`align_uniform` (no negative set). ``options`` as in :func:`queue_variant_loss` (no ``intra_batch``).

    Args:
        z1, z2: (N, D) embeddings of the two views, N >= 2; row i of each is a positive pair.
        loss: one of ``VARIANT_LOSSES``.
        **options: keyword options of that variant.

    Returns:
        Scalar tensor.

    Raises:
        ValueError: bad shapes/dtypes, non-finite inputs, an unknown loss or option, a bad option value
            (``top_k`` above M = N − 1 included).
    """
    opts = variant_options(loss, options, layout="cross_view")
    if loss == "infonce":
        return cross_view_info_nce(z1, z2, temperature=opts["temperature"])
    if loss == "align_uniform":
        return align_uniform(z1, z2, **opts)
    check_pair(z1, z2)
    n = z1.shape[0]
    sim = normalize(z1) @ normalize(z2).T
    idx = _off_diagonal_index(n, sim.device)
    diag = sim.diagonal()
    pos = torch.cat([diag, diag])
    neg = torch.cat([sim.gather(1, idx), sim.T.gather(1, idx)])
    return _kernel(loss, pos, neg, diag, opts)
