"""Content/style identifiability on the SCM datasets' latents (von Kügelgen et al., NeurIPS 2021).

Each latent is read out of the frozen test features — R² of a linear regression for continuous
latents, logistic-regression accuracy for categorical ones — for the trained and the random
encoder. Contrastive learning with style augmentations should keep content and drop style.
The samples are images, clips (``moving_shapes``: class and motion are content; speed, colours and
background are style) or graph nodes (``scm_graph``: community = content, the feature signal = style).
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from evaluations import identifiability  # noqa: E402

from .context import Context  # noqa: E402

NOTE = (
    "How well each latent factor of the SCM can be read out of the frozen test features: R² of a linear "
    "regression for continuous latents, accuracy of a logistic regression for categorical ones (chance = largest "
    "class share), fit on half of the test split and scored on the other half. Content latents should be "
    "recoverable; style latents (hues, brightness, background) should not, if the encoder is invariant to "
    "style. Compare with the random encoder's row.")


def run_identifiability(ctx: Context, kind: str = "linear") -> dict[str, Any]:
    test = ctx.splits.test
    latents = {name: values.numpy() for name, values in ctx.splits.latents("test").items()}  # per node on graphs
    roles = getattr(test, "latent_roles", None)
    tables = {which: identifiability.latent_r2(ctx.features(which)["test"].x, latents, kind=kind, roles=roles,
                                               seed=ctx.seed)
              for which in ("trained", "random")}
    values: dict[str, Any] = {"kind": kind}
    for which, df in tables.items():
        values[which] = {row.latent: _score(row) for row in df.itertuples()}
    ctx.report.add("identifiability", values, note=NOTE)
    ctx.report.add_plot("latent_readout", _plot(tables), section="identifiability", caption=(
        "Read-out of each latent (R² or accuracy) from the trained and the random encoder, content vs style."))
    return {"identifiability": values}


def _score(row: Any) -> dict[str, Any]:
    out = {"score": float(row.score), "metric": row.kind, "role": row.role}
    if row.kind == "accuracy":
        out["chance"] = float(row.chance)
    return out


def _plot(tables: dict[str, Any]):
    trained, random = tables["trained"], tables["random"]
    order = trained.sort_values(["role", "latent"]).latent.tolist()
    fig, ax = plt.subplots(figsize=(7.0, 0.36 * len(order) + 1.2))
    ys = range(len(order))
    for offset, (label, df, colour) in enumerate((("trained", trained, "#3b75af"),
                                                  ("random encoder", random, "#b0b0b0"))):
        scores = df.set_index("latent").loc[order, "score"].fillna(0).clip(lower=0)
        ax.barh([y + 0.2 - 0.4 * offset for y in ys], scores, height=0.38, color=colour, label=label)
    roles = trained.set_index("latent").loc[order, "role"].tolist()
    ax.set_yticks(list(ys), [f"{name}  ({role})" for name, role in zip(order, roles, strict=True)])
    ax.set_xlim(0, 1)
    ax.set_xlabel("R² (continuous) / accuracy (categorical)")
    ax.invert_yaxis()
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
