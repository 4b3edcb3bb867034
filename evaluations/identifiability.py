"""Which ground-truth latents can be read out of a representation: the content/style probe.

von Kügelgen et al., "Self-Supervised Learning with Data Augmentations Provably Isolates Content from Style"
(NeurIPS 2021) show that contrastive SSL with style-changing augmentations block-identifies the *content*
latents and discards the *style* latents. They measure it by predicting each standardised latent from the
standardised encoder output:

* continuous latent z_k -> R^2 of a regression  z_k ~ f(features)  on held-out samples,
  R^2 = 1 - sum_i (z_i - f(x_i))^2 / sum_i (z_i - mean z)^2:
  ``kind="linear"`` -> ``LinearRegression``; ``kind="kernel"`` -> ``KernelRidge(kernel="rbf")`` with
  ``GridSearchCV(cv=3)`` over alpha in {1, 0.1, 0.01, 0.001} and gamma in logspace(-2, 2, 4) (their grid);
  ``kind="ridge"`` -> ``RidgeCV`` over :data:`RIDGE_ALPHAS` = logspace(-2, 4, 13), the penalty chosen by
  efficient leave-one-out error on the fit part (ours, not the paper's: with few samples per feature —
  e.g. 250 clips and 128 features — least squares over-fits and its held-out R^2 goes far below 0 for
  every latent, trained and random encoder alike; the penalty removes that artefact);
* categorical latent (e.g. the object class) -> accuracy of a multinomial ``LogisticRegression``, reported
  beside the chance level = the largest class share among the scored samples;
* circular latent (an angle, a hue: ``circular={name: period}``) -> the same regression of its point on the
  unit circle, u = (cos 2πz/P, sin 2πz/P), both coordinates at once, scored by the R^2 of that 2-D target,
  R^2 = 1 - sum_i ||u_i - û_i||^2 / sum_i ||u_i - mean u||^2 (ours: a linear read-out of the raw value z
  cannot follow the wrap-around — a hue of 0.99 is next to 0.01 — so it scores an encoder that keeps the
  latent perfectly well below 1: LooC on ``shapes`` after 3000 steps reads fg_hue / bg_hue with raw R^2 0.63
  / 0.62 and circular R^2 0.87 / 0.92). A latent with a symmetry (a square's rotation repeats every quarter
  turn) is identifiable only up to it: its circular R^2 stays below 1 for any encoder unless the period given
  is the symmetry's. ``symmetry={name: (by, orders)}`` reads such a latent out up to the symmetry of each
  sample (ours): ``by`` names a categorical latent (the shape) and ``orders`` maps each of its levels to the
  order k of the symmetry (k = 4: a square repeats every quarter turn; 1: none; 0: continuous, a disc's rotation
  is invisible and its samples are skipped). The target becomes (cos 2πkz/P, sin 2πkz/P), and the read-out is
  fitted and scored separately within each level of ``by`` (how a square's orientation shows in the features
  need not be how a triangle's does); the score is the mean of the levels' R^2 weighted by their scored samples.
  Measured on ``shapes`` (3000 steps, ridge, seeds 0 / 1): the rotation read on the plain circle scores −0.16
  to 0.00 for every encoder of the fidelity study; up to its symmetry, within each shape, 0.75 / 0.76 for SimCLR
  trained on interventional views and −0.02 / −0.01 for SimCLR with pixel augmentations.

Protocol here: the samples are split once, seeded, into a fit part and a scored part (``test_fraction`` = 0.5
by default), or the caller passes a separate ``test_features`` / ``test_latents``. Features and continuous
latents are standardised with the fit part's mean and standard deviation. The fit part is subsampled to at most
``n_fit`` samples (kernel default 2048, as their 2048-sample batches; linear default: all), so the kernel grid
stays fast. High content R^2 and low style R^2 is the signature of content isolation.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV

from ._validate import as_features, check_int

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["KERNEL_GRID", "RIDGE_ALPHAS", "latent_r2", "plot_latent_r2"]

KERNEL_GRID: dict[str, list[float]] = {
    "alpha": [1.0, 0.1, 0.01, 0.001],
    "gamma": [float(g) for g in np.logspace(-2, 2, 4)],
}
#: the ridge penalties ``kind="ridge"`` chooses from (features and latent standardised)
RIDGE_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 4, 13))
_KINDS = ("linear", "ridge", "kernel")
_ROLES = ("content", "style")
_KERNEL_DEFAULT_N_FIT = 2048
_ROLE_COLORS = {"content": "#4c72b0", "style": "#dd8452", None: "#8c8c8c"}


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, pd.Series):
        return x.to_numpy()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected a 1-D array of numbers, got {type(x).__name__}") from err
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected numeric values, got dtype {arr.dtype}")
    return arr


def _parse_latents(latents: Any, n: int, name: str) -> dict[str, np.ndarray]:
    """name -> (n,) array; 2-D (n, k) entries expand to name[0] ... name[k-1]."""
    if isinstance(latents, pd.DataFrame):
        items: Iterable[tuple[Any, Any]] = ((str(c), latents[c]) for c in latents.columns)
    elif isinstance(latents, Mapping):
        items = latents.items()
    else:
        raise ValueError(f"{name}: expected a dict name -> (N,) array or a DataFrame, got {type(latents).__name__}")
    out: dict[str, np.ndarray] = {}
    for key, value in items:
        arr = _to_numpy(value, f"{name}[{key!r}]")
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim not in (1, 2):
            raise ValueError(f"{name}[{key!r}]: expected an (N,) array, got shape {arr.shape}")
        cols = [(str(key), arr)] if arr.ndim == 1 else [(f"{key}[{j}]", arr[:, j]) for j in range(arr.shape[1])]
        for k, col in cols:
            if col.shape[0] != n:
                raise ValueError(f"{name}[{key!r}]: expected {n} values (one per feature row), got {col.shape[0]}")
            if col.dtype.kind == "f" and not np.isfinite(col).all():
                raise ValueError(f"{name}[{key!r}]: expected finite values, found NaN/inf")
            out[k] = col
    if not out:
        raise ValueError(f"{name}: expected at least one latent, got none")
    return out


def _is_categorical(values: np.ndarray, max_levels: int) -> bool:
    return values.dtype.kind in "biu" and np.unique(values).size <= max_levels


def _standardise(fit: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    mean = fit.mean(axis=0)
    std = fit.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple((a - mean) / std for a in (fit, *others))


def _regressor(kind: str) -> Any:
    if kind == "linear":
        return LinearRegression()
    if kind == "ridge":
        return RidgeCV(alphas=RIDGE_ALPHAS)
    return GridSearchCV(KernelRidge(kernel="rbf"), KERNEL_GRID, cv=3)


def _check_periods(circular: Mapping[str, float] | None, lat: Mapping[str, np.ndarray], cat: set[str],
                   max_levels: int) -> dict[str, float]:
    if circular is None:
        return {}
    if not isinstance(circular, Mapping):
        raise ValueError(f"circular: expected a dict latent name -> period, got {type(circular).__name__}")
    periods = {}
    for name, period in circular.items():
        if name not in lat:
            raise ValueError(f"circular: unknown latent name {name!r}; latents are {sorted(lat)}")
        if name in cat or _is_categorical(lat[name], max_levels):
            raise ValueError(f"circular: {name!r} is categorical; only continuous latents can be circular")
        if isinstance(period, bool) or not isinstance(period, int | float) or not (0 < period < float("inf")):
            raise ValueError(f"circular: the period of {name!r} must be a positive number, got {period!r}")
        periods[name] = float(period)
    return periods


def _check_symmetry(symmetry: Mapping[str, Any] | None, periods: Mapping[str, float], lat: Mapping[str, np.ndarray],
                    cat: set[str], max_levels: int) -> dict[str, tuple[str, dict[int, int]]]:
    if symmetry is None:
        return {}
    if not isinstance(symmetry, Mapping):
        raise ValueError(f"symmetry: expected a dict latent name -> (by, orders), got {type(symmetry).__name__}")
    out = {}
    for name, spec in symmetry.items():
        if name not in periods:
            raise ValueError(f"symmetry: {name!r} must also be circular (give its period in circular=)")
        if not (isinstance(spec, tuple | list) and len(spec) == 2 and isinstance(spec[1], Mapping)):
            raise ValueError(f"symmetry: expected (by, {{level: order}}) for {name!r}, got {spec!r}")
        by, orders = spec
        if by not in lat or not (by in cat or _is_categorical(lat[by], max_levels)):
            raise ValueError(f"symmetry: {name!r} is grouped by {by!r}, which is not a categorical latent")
        for level, order in orders.items():
            if isinstance(order, bool) or not isinstance(order, int) or order < 0:
                raise ValueError(f"symmetry: the order of {name!r} at {by}={level!r} must be an integer >= 0, "
                                 f"got {order!r}")
        out[name] = (by, {int(k): int(v) for k, v in orders.items()})
    return out


def _check_scored(scored: Iterable[str] | None, lat: Mapping[str, np.ndarray]) -> set[str]:
    if scored is None:
        return set(lat)
    if isinstance(scored, str):
        raise ValueError(f"scored: expected a list of latent names, got the string {scored!r}")
    names = set(scored)
    if not names or names - set(lat):
        raise ValueError(f"scored: expected a non-empty subset of the latents {sorted(lat)}, got {sorted(names)}")
    return names


def _check_levels(symmetries: Mapping[str, tuple[str, dict[int, int]]], *lats: Mapping[str, np.ndarray]) -> None:
    for name, (by, orders) in symmetries.items():
        missing = sorted(set().union(*(np.unique(lat[by]).tolist() for lat in lats)) - set(orders))
        if missing:
            raise ValueError(f"symmetry: no order of {name!r} for {by} levels {missing}")


def _circle(z: np.ndarray, period: float, order: np.ndarray | float = 1.0) -> np.ndarray:
    angle = 2.0 * np.pi * order * z / period
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)


def _circular_fit(kind: str, x_fit: np.ndarray, u_fit: np.ndarray, x_test: np.ndarray,
                  u_test: np.ndarray) -> tuple[float, float]:
    """Residual and total sum of squares of the read-out of the points ``u`` on the unit circle, both coordinates
    regressed (each standardised on the fit part) and scored together on the unit-circle scale."""
    mu, sd = u_fit.mean(0), u_fit.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    model = _regressor(kind)
    model.fit(x_fit, (u_fit - mu) / sd)
    pred = model.predict(x_test) * sd + mu
    return float(((u_test - pred) ** 2).sum()), float(((u_test - u_test.mean(0)) ** 2).sum())


def _circular_r2(kind: str, x_fit: np.ndarray, z_fit: np.ndarray, x_test: np.ndarray, z_test: np.ndarray,
                 period: float) -> float:
    """R² of the read-out of (cos 2πz/P, sin 2πz/P) (module docstring); NaN when the scored points do not
    vary."""
    resid, total = _circular_fit(kind, x_fit, _circle(z_fit, period), x_test, _circle(z_test, period))
    return float("nan") if total == 0 else 1.0 - resid / total


def _symmetric_r2(kind: str, x_fit: np.ndarray, z_fit: np.ndarray, g_fit: np.ndarray, x_test: np.ndarray,
                  z_test: np.ndarray, g_test: np.ndarray, period: float, orders: Mapping[int, int]) -> float:
    """R² of (cos 2πkz/P, sin 2πkz/P) read out within each level g of ``by`` (order k = ``orders[g]``; 0 skips
    the level), the levels' R² averaged with weights = their scored samples; a level with fewer than 4 fit or 2
    scored samples, or whose scored points do not vary, is skipped; NaN when none is left."""
    scores, weights = [], []
    for level, order in sorted(orders.items()):
        fit, test = g_fit == level, g_test == level
        if order == 0 or fit.sum() < 4 or test.sum() < 2:
            continue
        resid, total = _circular_fit(kind, x_fit[fit], _circle(z_fit[fit], period, order), x_test[test],
                                     _circle(z_test[test], period, order))
        if total > 0:
            scores.append(1.0 - resid / total)
            weights.append(int(test.sum()))
    return float(np.average(scores, weights=weights)) if scores else float("nan")


def _accuracy_probe(x_fit: np.ndarray, y_fit: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    classes = np.unique(y_fit)
    if classes.size < 2:
        return float((y_test == classes[0]).mean())
    clf = LogisticRegression(max_iter=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_fit, y_fit)
    return float((clf.predict(x_test) == y_test).mean())


def latent_r2(
    features: Any,
    latents: Any,
    *,
    kind: str = "linear",
    categorical: Iterable[str] | None = None,
    roles: Mapping[str, str] | None = None,
    n_fit: int | None = None,
    test_features: Any = None,
    test_latents: Any = None,
    test_fraction: float = 0.5,
    max_levels: int = 20,
    circular: Mapping[str, float] | None = None,
    symmetry: Mapping[str, tuple[str, Mapping[int, int]]] | None = None,
    scored: Iterable[str] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Score how well each latent can be predicted from ``features`` (module docstring for the protocol).

    Args:
        features: (N, D) representation (tensor or numpy), finite.
        latents: dict name -> (N,) array (as the SCM datasets give; (N, k) arrays expand to ``name[j]``) or a
            DataFrame with one column per latent.
        kind: ``"linear"`` (LinearRegression), ``"ridge"`` (RidgeCV over :data:`RIDGE_ALPHAS`, leave-one-out) or
            ``"kernel"`` (RBF kernel ridge, CV grid :data:`KERNEL_GRID`).
        categorical: names scored by logistic-regression accuracy; in addition, integer/bool latents with at
            most ``max_levels`` distinct values are treated as categorical.
        roles: optional name -> ``"content"`` / ``"style"``, copied into the ``role`` column.
        n_fit: at most this many samples to fit each read-out (seeded subsample); default all for linear,
            2048 for kernel.
        test_features, test_latents: a separate scored set; then all of ``features`` is the fit part.
        test_fraction: share of the samples scored when no test set is given (seeded split).
        circular: optional name -> period (> 0) of the continuous latents that wrap around (an angle: 2π, a
            hue: 1); each is read out as its point on the unit circle (module docstring).
        symmetry: optional name -> (``by``, {level: order}) for circular latents identifiable only up to a
            symmetry that depends on the categorical latent ``by`` (a shape's rotation): read out within each
            level, modulo period / order (module docstring); every level of ``by`` needs an order.
        scored: the latents that get a row (default every latent); the others are not read out, only used
            (a ``by`` of ``symmetry`` that is not scored groups the rows without its own logistic fit).
            Each row's score is the same as in a call that scores every latent.
        seed: seeds the split and the subsampling.

    Returns:
        DataFrame with one row per latent and columns ``latent``, ``kind`` (``"r2"`` or ``"accuracy"``),
        ``score``, ``chance`` (largest class share for accuracy rows, NaN for R^2), ``role`` (None when not
        given), ``model`` (``"linear"`` / ``"ridge"`` / ``"kernel"`` / ``"logistic"``), ``n_fit``, ``n_test``. A
        constant continuous latent has no R^2: its score is NaN.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind: expected one of {list(_KINDS)}, got {kind!r}")
    x = as_features(features, "features", min_rows=4).cpu().double().numpy()
    n = x.shape[0]
    lat = _parse_latents(latents, n, "latents")
    seed = check_int(seed, "seed")
    max_levels = check_int(max_levels, "max_levels", low=2)
    cat = set(categorical or ())
    unknown = cat - set(lat)
    if unknown:
        raise ValueError(f"categorical: unknown latent names {sorted(unknown)}; latents are {sorted(lat)}")
    role_map = dict(roles or {})
    bad = {k: v for k, v in role_map.items() if k not in lat or v not in _ROLES}
    if bad:
        raise ValueError(f"roles: expected latent names {sorted(lat)} mapped to 'content' or 'style', got {bad}")
    periods = _check_periods(circular, lat, cat, max_levels)
    symmetries = _check_symmetry(symmetry, periods, lat, cat, max_levels)
    scored_names = _check_scored(scored, lat)
    if n_fit is None:
        n_fit = _KERNEL_DEFAULT_N_FIT if kind == "kernel" else None
    else:
        n_fit = check_int(n_fit, "n_fit", low=4)
    rng = np.random.default_rng(seed)

    if test_features is not None or test_latents is not None:
        if test_features is None or test_latents is None:
            raise ValueError("test_features: pass test_features and test_latents together")
        xt = as_features(test_features, "test_features").cpu().double().numpy()
        if xt.shape[1] != x.shape[1]:
            raise ValueError(f"test_features: expected {x.shape[1]} columns like features, got {xt.shape[1]}")
        lat_t = _parse_latents(test_latents, xt.shape[0], "test_latents")
        if set(lat_t) != set(lat):
            raise ValueError(f"test_latents: expected the latents {sorted(lat)}, got {sorted(lat_t)}")
        fit_idx = rng.permutation(n)
        x_fit_all, x_test = x, xt
        lat_fit_all, lat_test = lat, lat_t
    else:
        if not (isinstance(test_fraction, float | int) and 0 < test_fraction < 1):
            raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
        perm = rng.permutation(n)
        n_test = max(1, min(n - 2, int(round(test_fraction * n))))
        test_idx, fit_idx = perm[:n_test], perm[n_test:]
        x_fit_all, x_test = x, x[test_idx]
        lat_fit_all = lat
        lat_test = {k: v[test_idx] for k, v in lat.items()}
    _check_levels(symmetries, lat_fit_all, lat_test)
    if n_fit is not None and fit_idx.size > n_fit:
        fit_idx = fit_idx[:n_fit]
    x_fit, x_test = _standardise(x_fit_all[fit_idx], x_test)

    rows = []
    for name, values in lat.items():
        if name not in scored_names:
            continue
        y_fit, y_test = lat_fit_all[name][fit_idx], lat_test[name]
        role = role_map.get(name)
        if name in cat or _is_categorical(values, max_levels):
            _, counts = np.unique(y_test, return_counts=True)
            score = _accuracy_probe(x_fit, y_fit, x_test, y_test)
            rows.append((name, "accuracy", score, float(counts.max() / y_test.size), role, "logistic"))
            continue
        y_fit = y_fit.astype(np.float64)
        y_test = y_test.astype(np.float64)
        if y_fit.std() == 0 or y_test.size < 2:
            score = float("nan")
        elif name in symmetries:
            by, orders = symmetries[name]
            score = _symmetric_r2(kind, x_fit, y_fit, lat_fit_all[by][fit_idx], x_test, y_test, lat_test[by],
                                  periods[name], orders)
        elif name in periods:
            score = _circular_r2(kind, x_fit, y_fit, x_test, y_test, periods[name])
        else:
            mu, sd = y_fit.mean(), y_fit.std()
            model = _regressor(kind)
            model.fit(x_fit, (y_fit - mu) / sd)
            score = float(r2_score((y_test - mu) / sd, model.predict(x_test)))
        rows.append((name, "r2", score, float("nan"), role, kind))
    df = pd.DataFrame(rows, columns=["latent", "kind", "score", "chance", "role", "model"])
    df["role"] = pd.Series([r[4] for r in rows], dtype=object)  # keep None (not NaN) for "no role"
    df["n_fit"] = int(fit_idx.size)
    df["n_test"] = int(x_test.shape[0])
    return df


def plot_latent_r2(df: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Horizontal bars of the score per latent, content first then style, coloured by role.

    Accuracy rows are labelled "(acc)" and their chance level is marked with a black tick.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    need = {"latent", "kind", "score"}
    if not isinstance(df, pd.DataFrame) or not need <= set(df.columns) or len(df) == 0:
        raise ValueError(f"df: expected the non-empty DataFrame of latent_r2 (columns {sorted(need)})")
    d = df.copy()
    raw_roles = d["role"].tolist() if "role" in d.columns else [None] * len(d)
    d["role"] = pd.Series([r if r in _ROLES else None for r in raw_roles], index=d.index, dtype=object)
    order = {"content": 0, "style": 1, None: 2}
    d["_o"] = [order[r] for r in d["role"]]
    d = d.sort_values("_o", kind="stable").reset_index(drop=True)

    fig = Figure(figsize=(6.0, 0.35 * len(d) + 1.4))
    ax = fig.add_subplot(1, 1, 1)
    ypos = np.arange(len(d))[::-1]
    scores = d["score"].to_numpy(dtype=float)
    shown = np.nan_to_num(np.clip(scores, -1.0, 1.0), nan=0.0)
    ax.barh(ypos, shown, color=[_ROLE_COLORS[r] for r in d["role"]])
    for yp, s, row in zip(ypos, scores, d.itertuples(), strict=True):
        ax.text(
            max(0.0, float(np.nan_to_num(s))) + 0.01, yp, "n/a" if np.isnan(s) else f"{s:.2f}", va="center", fontsize=8
        )
        if row.kind == "accuracy" and "chance" in d.columns and np.isfinite(row.chance):
            ax.plot([row.chance, row.chance], [yp - 0.4, yp + 0.4], color="black", lw=1.5)
    labels = [f"{r.latent} (acc)" if r.kind == "accuracy" else str(r.latent) for r in d.itertuples()]
    ax.set_yticks(ypos)
    ax.set_yticklabels(labels)
    ax.axvline(0, color="#444444", lw=0.8)
    ax.set_xlim(min(-0.05, float(np.nanmin(shown))) - 0.02, 1.15)
    ax.set_xlabel("R² (accuracy for categorical latents; tick = chance)")
    ax.set_title(title or "Latent read-out from the representation")
    present = [r for r in ("content", "style", None) if r in set(d["role"])]
    if len(present) > 1 or present != [None]:
        ax.legend(
            handles=[Patch(color=_ROLE_COLORS[r], label=r or "unassigned") for r in present],
            loc="lower right",
            fontsize=8,
        )
    fig.tight_layout()
    return fig
