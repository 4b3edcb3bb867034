"""Linear probe: multinomial logistic regression on frozen, standardised features.

The evaluation of CLIP (Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision", ICML 2021, App. A.3): L-BFGS logistic regression with an L2 penalty chosen on a validation
split. Here, with features standardised by the train mean and standard deviation (x - mu) / sigma, the fitted
model is logits = W x + b and the objective is::

    L(W, b) = (1/n) sum_i CE(softmax(W x_i + b), y_i) + (wd / 2) * ||W||_F^2      (the bias is not penalised)

minimised full-batch with ``torch.optim.LBFGS`` (strong-Wolfe line search) until max |gradient| <= 1e-4
(scikit-learn's default tol; 1e-7 for float64 features) or ``max_iter`` iterations. scikit-learn's
``LogisticRegression`` minimises C * sum_i CE_i + ||W||^2 / 2, which has the same minimiser when
**C = 1 / (n * wd)** (n = number of training samples).

When ``weight_decay`` is None it is chosen from the log grid ``WD_GRID`` (1e-6 ... 1e-1) by accuracy on a
seeded, stratified 20 % hold-out of the training features (ties go to the larger weight decay); the probe is
then refit on all training features with the chosen value, warm-started from the hold-out solution.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init

from ._validate import as_features, as_labels, check_int, check_positive_float, check_same_dim

__all__ = ["ProbeResult", "LinearProbeClassifier", "linear_probe", "WD_GRID"]

WD_GRID: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
_HOLDOUT_FRACTION = 0.2
_SPLIT_SEED = 0
# L-BFGS stops when max |gradient| <= tol: scikit-learn's default tol (1e-4) for float32 features, where the
# float32 loss cannot resolve much finer; 1e-7 for float64 features, for reference-quality fits.
_TOL_GRAD = {torch.float32: 1e-4, torch.float64: 1e-7}
_ABSENT_CLASS_BIAS = -1.0e4  # logit bias of classes never seen in training: never predicted


class LinearProbeClassifier(nn.Module):
    """Maps raw features to logits: ``linear((x - mean) / std)``. Standardisation is part of the module."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("std", std.detach().clone())
        # skip_init: no random initialisation (it would advance the global RNG); the values are copied in.
        self.linear = skip_init(
            nn.Linear, weight.shape[1], weight.shape[0], dtype=weight.dtype, device=weight.device
        )
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            self.linear.bias.copy_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x.to(self.mean.dtype) - self.mean) / self.std)


@dataclass
class ProbeResult:
    """Result of :func:`linear_probe`. Accuracies are fractions in [0, 1]."""

    accuracy: float
    classifier: LinearProbeClassifier
    weight_decay: float
    train_accuracy: float
    n_iter: int = 0
    converged: bool = True
    val_accuracy: dict[float, float] = field(default_factory=dict)  # weight decay -> held-out accuracy


def _fit(
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    wd: float,
    max_iter: int,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
    """Minimise mean CE + wd/2 ||W||^2 with full-batch L-BFGS. Returns (W, b, iterations, converged)."""
    d = x.shape[1]
    if init is None:
        w = torch.zeros(n_classes, d, dtype=x.dtype, device=x.device, requires_grad=True)
        b = torch.zeros(n_classes, dtype=x.dtype, device=x.device, requires_grad=True)
    else:
        w = init[0].detach().clone().requires_grad_(True)
        b = init[1].detach().clone().requires_grad_(True)
    tol_grad = _TOL_GRAD[x.dtype]
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=max_iter,
        max_eval=int(max_iter * 1.25) + 1,
        tolerance_grad=tol_grad,
        tolerance_change=1e-10,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    half_wd = 0.5 * wd

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=False)
        logits = torch.addmm(b, x, w.t())
        loss = F.cross_entropy(logits, y) + half_wd * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    state = opt.state[opt._params[0]]
    n_iter = int(state.get("n_iter", 0))
    # L-BFGS stops on a small gradient or a stalled loss/step (converged as far as the precision allows), or
    # on its iteration / evaluation budget (not converged).
    converged = n_iter < max_iter and int(state.get("func_evals", 0)) < opt.defaults["max_eval"]
    return w.detach(), b.detach(), n_iter, converged


def _stratified_split(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded per-class split: floor(fraction * n_c) samples of each class go to the hold-out part."""
    gen = torch.Generator().manual_seed(seed)
    y_cpu = y.cpu()
    held, kept = [], []
    for c in torch.unique(y_cpu).tolist():
        idx = torch.nonzero(y_cpu == c).flatten()
        idx = idx[torch.randperm(idx.numel(), generator=gen)]
        m = int(math.floor(fraction * idx.numel()))
        held.append(idx[:m])
        kept.append(idx[m:])
    return torch.cat(kept).sort().values, torch.cat(held).sort().values


def _accuracy(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> float:
    with torch.no_grad():
        return float((torch.addmm(b, x, w.t()).argmax(1) == y).double().mean())


def linear_probe(
    train_x: Any,
    train_y: Any,
    test_x: Any,
    test_y: Any,
    *,
    weight_decay: float | None = None,
    max_iter: int = 1000,
    progress: Callable[[str], None] | None = None,
) -> ProbeResult:
    """Fit a multinomial logistic-regression probe on ``train_x`` and report its accuracy on ``test_x``.

    Args:
        train_x, test_x: (n, d) features (tensor or numpy array), finite; float64 input is fitted in float64,
            anything else in float32.
        train_y, test_y: integer labels >= 0. At least two classes must occur in ``train_y``. Test classes
            that never occur in training are never predicted (they count as errors).
        weight_decay: the L2 strength ``wd`` (see the module docstring; sklearn's C = 1 / (n * wd)); None =
            choose it from ``WD_GRID`` on a 20 % stratified hold-out of the training features.
        max_iter: maximum number of L-BFGS iterations per fit.
        progress: called with two lines: one as the weight-decay search starts (``choosing weight decay
            from 6 values on a 20% hold-out of 60 samples``; when ``weight_decay`` is given: ``fitting with
            weight decay 1e-02 on 60 samples``) and one when the probe is fitted, with the hold-out accuracy of
            every searched value (``weight decay 1e-03 chosen (hold-out accuracy: 1e-01 28.0% · … · 1e-03
            31.2% · …), refit on all 60 samples``); None = silent.

    Returns:
        :class:`ProbeResult` with the test accuracy, the fitted classifier (standardisation included, raw
        features -> logits over classes 0..C-1), the weight decay used and the training accuracy.
    """
    tx = as_features(train_x, "train_x", min_rows=2)
    dtype = torch.float64 if tx.dtype == torch.float64 else torch.float32
    tx = tx.to(dtype)
    qx = as_features(test_x, "test_x", dtype=dtype, device=tx.device)
    check_same_dim(tx, qx, "train_x", "test_x")
    ty = as_labels(train_y, "train_y", n=tx.shape[0], device=tx.device)
    qy = as_labels(test_y, "test_y", n=qx.shape[0], device=tx.device)
    max_iter = check_int(max_iter, "max_iter", low=1)
    if weight_decay is not None:
        weight_decay = check_positive_float(weight_decay, "weight_decay", allow_zero=True)

    present = torch.unique(ty)  # sorted class ids seen in training
    if present.numel() < 2:
        raise ValueError(f"train_y: expected at least 2 distinct classes, got {present.tolist()}")
    n_out = max(int(ty.max()), int(qy.max())) + 1
    remap = torch.full((n_out,), -1, dtype=torch.long, device=tx.device)
    remap[present] = torch.arange(present.numel(), device=tx.device)
    yc = remap[ty]  # compact labels 0..K-1
    k = present.numel()

    mean = tx.mean(0)
    std = tx.std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    xs = (tx - mean) / std

    val_acc: dict[float, float] = {}
    if weight_decay is None:
        fit_idx, val_idx = _stratified_split(yc, _HOLDOUT_FRACTION, _SPLIT_SEED)
        if val_idx.numel() < 2 or torch.unique(yc[fit_idx]).numel() < 2:
            raise ValueError(
                f"train_x: too few samples ({tx.shape[0]}) to choose weight_decay on a hold-out split; "
                "pass weight_decay explicitly"
            )
        fit_idx, val_idx = fit_idx.to(tx.device), val_idx.to(tx.device)
        if progress is not None:
            progress(f"choosing weight decay from {len(WD_GRID)} values on a {100 * _HOLDOUT_FRACTION:.0f}% "
                     f"hold-out of {tx.shape[0]} samples")
        x_fit, y_fit, x_val, y_val = xs[fit_idx], yc[fit_idx], xs[val_idx], yc[val_idx]
        init: tuple[torch.Tensor, torch.Tensor] | None = None
        solutions: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}
        for wd in sorted(WD_GRID, reverse=True):  # strong -> weak, warm-started
            w, b, _, _ = _fit(x_fit, y_fit, k, wd, max_iter, init)
            init = solutions[wd] = (w, b)
            val_acc[wd] = _accuracy(x_val, y_val, w, b)
        best = max(val_acc.values())
        weight_decay = max(wd for wd, acc in val_acc.items() if acc == best)
        refit_init = solutions[weight_decay]  # the refit on all features starts from the hold-out solution
        del x_fit, x_val, solutions
        if progress is not None:
            searched = " · ".join(f"{wd:.0e} {100 * acc:.1f}%" for wd, acc in val_acc.items())
            progress(f"weight decay {weight_decay:.0e} chosen (hold-out accuracy: {searched}), "
                     f"refit on all {tx.shape[0]} samples")
    else:
        refit_init = None
        if progress is not None:
            progress(f"fitting with weight decay {weight_decay:.0e} on {tx.shape[0]} samples")

    w, b, n_iter, converged = _fit(xs, yc, k, weight_decay, max_iter, refit_init)
    if not converged:
        warnings.warn(
            f"linear_probe: L-BFGS stopped after max_iter={max_iter} iterations before converging "
            f"(weight_decay={weight_decay:g}); consider a larger max_iter or weight_decay",
            RuntimeWarning,
            stacklevel=2,
        )
    train_acc = _accuracy(xs, yc, w, b)

    # Expand to all classes 0..n_out-1 (absent classes get zero weights and a very negative bias).
    w_full = torch.zeros(n_out, w.shape[1], dtype=dtype, device=tx.device)
    b_full = torch.full((n_out,), _ABSENT_CLASS_BIAS, dtype=dtype, device=tx.device)
    w_full[present] = w
    b_full[present] = b
    classifier = LinearProbeClassifier(mean, std, w_full, b_full).eval()
    with torch.no_grad():
        test_acc = float((classifier(qx).argmax(1) == qy).double().mean())
    return ProbeResult(
        accuracy=test_acc,
        classifier=classifier.cpu(),
        weight_decay=float(weight_decay),
        train_accuracy=train_acc,
        n_iter=n_iter,
        converged=converged,
        val_accuracy=val_acc,
    )
