"""Robustness of the encoder + content probe to synthetic corruptions and renditions.

The 19 corruptions of ``evaluations.robustness`` at severities 1–5 (CIFAR-10-C parameters below
64 px, ImageNet-C parameters above) and the OpenCV renditions, on the first ``n`` test images.
Results are labelled "synthetic corruptions": they are not ImageNet-C.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from evaluations import robustness  # noqa: E402

from .context import Context  # noqa: E402

NOTE = (
    "Top-1 error of the encoder + content probe on synthetic corruptions of the test split (ImageNet-C "
    "style; CIFAR-10-C parameters below 64 px), severities 1–5, and on OpenCV renditions (stylization, pencil, "
    "cartoon, edge-preserving). mean_error averages the 15 benchmark corruptions over severities; compare it "
    "with clean_error. Labelled 'synthetic corruptions', not ImageNet-C.")


def run_robustness(ctx: Context) -> dict[str, Any]:
    images, labels = ctx.test_images(ctx.options.get("robustness_images", 500))
    result = robustness.corruption_errors(ctx.classifier(), (images, labels), seed=ctx.seed,
                                          batch_size=ctx.batch_size, device=ctx.device, renditions=True)
    values = result.to_dict()
    ctx.report.add("robustness", values, note=NOTE)
    ctx.report.add_plot("corruption_errors", corruption_heatmap(result), section="robustness", caption=(
        f"Top-1 error (%) by corruption (rows) and severity (columns), {result.label}, {result.n_images} test images; "
        f"clean error {100 * result.clean_error:.1f}%: darker = more errors than clean, blue = fewer."))
    return {"robustness": values}


def corruption_heatmap(result: robustness.CorruptionResult):
    """A corruption × severity heat-map of the error in %, each cell labelled, coloured by its difference from
    the clean error (red = worse, blue = better). The renditions have no severity: they stay in the section's
    table."""
    table = result.table.astype(float)
    rows = [(str(c), [float(v) for v in table.loc[c]]) for c in table.index]
    severities = [str(s) for s in table.columns]
    values = [[100 * v for v in r] for _, r in rows]
    delta = [[v - 100 * result.clean_error for v in r] for r in values]
    span = max([abs(d) for r in delta for d in r if d == d] + [1.0])
    fig, ax = plt.subplots(figsize=(1.0 * len(severities) + 3.0, 0.3 * len(rows) + 1.3))
    ax.imshow(delta, cmap="RdBu_r", vmin=-span, vmax=span, aspect="auto")
    for i, r in enumerate(values):
        for j, v in enumerate(r):
            if v == v:  # dark cells get white text
                colour = "white" if abs(delta[i][j]) > 0.6 * span else "black"
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(len(severities)), [f"severity {s}" for s in severities], fontsize=8)
    ax.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=8)
    ax.set_title(f"Top-1 error (%) under synthetic corruptions; clean {100 * result.clean_error:.1f}%", fontsize=9)
    fig.tight_layout()
    return fig
