"""Content/style identifiability on the SCM datasets' latents (von Kügelgen et al., NeurIPS 2021).

Each latent is read out of the frozen test features — R² of a linear regression for continuous
latents, logistic-regression accuracy for categorical ones — for the trained and the random
encoder. The regression is least squares (the paper's) when the fit half of the test split has at least
``MIN_ROWS_PER_FEATURE`` samples per feature, else ridge with its penalty chosen by leave-one-out error
(``kind="auto"``; clips: 250 fit samples for 128 features, where least squares scored R² far below 0 for
every latent of trained and random encoders alike). Latents that wrap around (hues, angles: the dataset's
``latent_periods``) are read out as their point on the unit circle (``evaluations.identifiability``); a raw
hue regression scores an encoder that keeps the hue well below 1 (LooC on ``shapes``, 3000 steps: raw R² of
fg_hue / bg_hue 0.63 / 0.62, circular 0.87 / 0.92). A latent with a symmetry that depends on the class (a
shape's rotation: the dataset's ``latent_symmetries``) is read out within each class up to its symmetry; those
read-outs fit on one class's samples, so their regression kind is chosen from that count. Contrastive
learning with style augmentations should keep content and drop style. The samples are images, clips
(``moving_shapes``: class and motion are content; speed, colours and background are style) or graph nodes
(``scm_graph``: community = content, the feature signal = style).
"""

from __future__ import annotations

import html
from typing import Any

import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from evaluations import identifiability  # noqa: E402

from .context import Context  # noqa: E402

#: ``kind="auto"`` uses least squares from this many fit samples per feature on, ridge below
MIN_ROWS_PER_FEATURE = 5

NOTE = (
    "How well each latent factor of the SCM can be read out of the frozen test features: R² of a linear "
    "regression (ridge, its penalty chosen by leave-one-out error, when there are fewer than 5 fit samples per "
    "feature) for continuous latents (hues and angles: of their point on the unit circle, so that the wrap-around "
    "counts as near; a shape's rotation within each shape, modulo its symmetry), accuracy of a logistic "
    "regression for categorical ones (chance = largest class share), fit on half of the test split and scored "
    "on the other half. Content latents should be "
    "recoverable; style latents (hues, brightness, background) should not, if the encoder is invariant to "
    "style. Compare with the random encoder's row.")


def regression_kind(n_samples: int, n_features: int, kind: str = "auto") -> str:
    """The read-out ``latent_r2`` gets: ``kind`` itself, or for ``"auto"`` least squares (``"linear"``) when the
    fit half (``latent_r2``'s default split) has at least ``MIN_ROWS_PER_FEATURE`` rows per feature, else
    ``"ridge"``."""
    if kind != "auto":
        return kind
    fit_rows = n_samples - int(round(0.5 * n_samples))
    return "linear" if fit_rows >= MIN_ROWS_PER_FEATURE * n_features else "ridge"


def run_identifiability(ctx: Context, kind: str = "auto", circular: bool = True) -> dict[str, Any]:
    """The read-out of every latent of the test split from the trained and the random encoder. ``circular``:
    the latents of the dataset's ``latent_periods`` as points on the unit circle, those of its
    ``latent_symmetries`` within each class up to its symmetry (False: all as raw values)."""
    latents = {name: values.numpy() for name, values in ctx.splits.latents("test").items()}  # per node on graphs
    tables: dict[str, pd.DataFrame] = {}
    values: dict[str, Any] = {}  # the read-out choices: the same for both encoders (same rows, same feature width)
    for which in ("trained", "random"):
        tables[which], choice = read_out(ctx.features(which)["test"].x, latents, ctx.splits.test, kind=kind,
                                         circular=circular, seed=ctx.seed)
        values = values or choice
    for which, df in tables.items():
        values[which] = {row.latent: _score(row) for row in df.itertuples()}
    ctx.report.add("identifiability", values, note=NOTE, show=False)  # shown as one latent × encoder table
    ctx.report.add_html("identifiability", table_html(values))
    ctx.report.add_plot("latent_readout", _plot(tables), section="identifiability", caption=(
        "Read-out of each latent from the trained and the random encoder: accuracy of the categorical latents "
        "(left, black tick = chance) and R² of the continuous ones (right; 0 = no better than the mean, negative = "
        "worse, bars past the axis end are labelled with their value)."))
    return {"identifiability": values}


def read_out(x: Any, latents: dict[str, Any], dataset: Any, *, kind: str = "auto", circular: bool = True,
             seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``latent_r2`` of ``latents`` from the features ``x`` of ``dataset``'s samples, with its ``latent_roles``,
    its ``latent_periods`` and ``latent_symmetries`` (``circular``) and the regression kind of
    :func:`regression_kind` (a symmetric latent: from one class's share of the rows). Returns the table and
    what was chosen: ``kind``, ``circular`` (names), ``symmetric`` (name -> the class latent), ``kinds``."""
    n, dim = x.shape
    periods = {k: p for k, p in getattr(dataset, "latent_periods", {}).items() if k in latents} if circular else {}
    symmetries = {k: s for k, s in getattr(dataset, "latent_symmetries", {}).items()
                  if k in periods and s[0] in latents}
    kinds = {"all": regression_kind(n, dim, kind)}
    kinds.update({name: regression_kind(n // max(1, sum(o > 0 for o in orders.values())), dim, kind)
                  for name, (_, orders) in symmetries.items()})
    table = _read_out(x, latents, kinds, getattr(dataset, "latent_roles", None), periods, symmetries, seed)
    return table, {"kind": kinds["all"], "circular": sorted(periods),
                   "symmetric": {name: by for name, (by, _) in symmetries.items()},
                   "kinds": {name: k for name, k in kinds.items() if name != "all"}}


def _read_out(x: Any, latents: dict[str, Any], kinds: dict[str, str], roles: dict[str, str] | None,
              periods: dict[str, float], symmetries: dict[str, Any], seed: int) -> pd.DataFrame:
    """``latent_r2`` of every latent; a symmetric latent whose kind differs from the others' read out apart."""
    roles = _only(roles or {}, latents)
    apart = [name for name in symmetries if kinds[name] != kinds["all"]]
    together = {k: v for k, v in latents.items() if k not in apart}
    parts = [identifiability.latent_r2(x, together, kind=kinds["all"], seed=seed, roles=_only(roles, together),
                                       circular=_only(periods, together), symmetry=_only(symmetries, together))]
    for name in apart:  # fit on the class latent's levels apart, with the kind chosen for that row count
        by = symmetries[name][0]  # groups the rows only: its own read-out is in the part above
        parts.append(identifiability.latent_r2(x, {name: latents[name], by: latents[by]}, kind=kinds[name],
                                               seed=seed, roles=_only(roles, [name]), circular=_only(periods, [name]),
                                               symmetry=_only(symmetries, [name]), scored=[name]))
    order = {name: i for i, name in enumerate(latents)}
    return pd.concat(parts).sort_values("latent", key=lambda c: c.map(order)).reset_index(drop=True)


def _only(mapping: dict[str, Any], names: Any) -> dict[str, Any]:
    """The entries of ``mapping`` whose key is in ``names``."""
    return {k: v for k, v in mapping.items() if k in names}


def _score(row: Any) -> dict[str, Any]:
    out = {"score": float(row.score), "metric": row.kind, "role": row.role}
    if row.kind == "accuracy":
        out["chance"] = float(row.chance)
    return out


def _cell(score: float | None, metric: str) -> str:
    if score is None or score != score:  # None or NaN
        return "n/a"
    return f"{100 * score:.1f}%" if metric == "accuracy" else f"{score:.3f}"


def table_html(values: dict[str, Any]) -> str:
    """One row per latent: its role, the read-out kind (accuracy or R²), trained, random encoder and chance."""
    trained, random = values.get("trained", {}), values.get("random", {})
    order = sorted(trained, key=lambda n: (str(trained[n].get("role")), n))
    body = []
    for name in order:
        t = trained[name]
        metric = t["metric"]
        r = random.get(name, {}).get("score")
        chance = _cell(t.get("chance"), metric) if metric == "accuracy" else "0.000"
        regression = values.get("kinds", {}).get(name, values.get("kind"))
        kind = "accuracy" if metric == "accuracy" else ("R² (ridge)" if regression == "ridge" else "R²")
        if name in values.get("symmetric", {}):
            kind += f", on the circle, per {values['symmetric'][name]} up to its symmetry"
        elif name in values.get("circular", ()):
            kind += ", on the circle"
        body.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(str(t.get('role')))}</td><td>{kind}</td>"
                    f"<td class='num'>{_cell(t['score'], metric)}</td><td class='num'>{_cell(r, metric)}</td>"
                    f"<td class='num'>{chance}</td></tr>")
    return ("<table class='identifiability'><tr><th>latent</th><th>role</th><th>read-out</th><th>trained</th>"
            "<th>random encoder</th><th>chance</th></tr>" + "".join(body) + "</table>"
            "<p class='meta'>Chance: the largest class share for accuracy; 0 for R² (predicting the mean).</p>")


#: the left end of the R² axis; a bar below it is drawn to it and labelled with its value
R2_FLOOR = -1.0


def _plot(tables: dict[str, Any]):
    """Two panels on their own axes: accuracy of the categorical latents with chance ticks, R² of the continuous
    ones (negative values visible, from ``R2_FLOOR``)."""
    trained, random = tables["trained"], tables["random"]
    panels = [(metric, trained[trained.kind == metric].sort_values(["role", "latent"]).latent.tolist())
              for metric in ("accuracy", "r2")]
    panels = [(m, names) for m, names in panels if names]
    height = 0.36 * max(len(names) for _, names in panels) + 1.4
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), height), squeeze=False)
    roles = trained.set_index("latent")["role"]
    for ax, (metric, names) in zip(axes[0], panels, strict=True):
        ys = range(len(names))
        low = 0.0
        for offset, (label, df, colour) in enumerate((("trained", trained, "#3b75af"),
                                                      ("random encoder", random, "#b0b0b0"))):
            scores = df.set_index("latent").loc[names, "score"].fillna(0).to_numpy(dtype=float)
            pos = [y + 0.2 - 0.4 * offset for y in ys]
            if metric == "r2":
                low = min(low, max(R2_FLOOR, float(scores.min()) - 0.05))
                shown = scores.clip(min=R2_FLOOR)
                for y, value in zip(pos, scores, strict=True):
                    if value < R2_FLOOR:
                        ax.text(R2_FLOOR + 0.02, y, f"{value:.3g}", va="center", fontsize=7)
            else:
                shown = scores
            ax.barh(pos, shown, height=0.38, color=colour, label=label)
        if metric == "accuracy":
            chance = trained.set_index("latent").loc[names, "chance"].to_numpy(dtype=float)
            for y, c in zip(ys, chance, strict=True):
                ax.plot([c, c], [y - 0.45, y + 0.45], color="black", lw=1.5)
            ax.set_xlim(0, 1)
            ax.set_xlabel("accuracy (black tick = chance)")
            ax.set_title("Categorical latents: accuracy")
        else:
            ax.axvline(0, color="black", lw=0.8)
            ax.set_xlim(min(low, -0.1), 1)
            ax.set_xlabel("R² (0 = predicting the mean)")
            ax.set_title("Continuous latents: R²")
        ax.set_yticks(list(ys), [f"{name}  ({roles[name]})" for name in names])
        ax.invert_yaxis()
        ax.legend(frameon=False, fontsize=8, loc="best")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
