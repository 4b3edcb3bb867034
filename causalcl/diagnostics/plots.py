"""Plots of the main job that are not part of the evaluation layer (training curves, probe bars)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def probe_bars(results: dict[str, Any]):
    """Linear-probe accuracy of the trained encoder, the random encoder and the raw data, per fit split."""
    base = results["baselines"]
    raw = "raw_features" if "raw_features" in base else "raw_pixels"
    rows = {"trained": results["linear_probe"], "random encoder": base["random_encoder"]["linear_probe"],
            raw.replace("_", " "): base[raw]["linear_probe"]}
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    names = list(rows)
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [100 * rows[n]["accuracy"] for n in names], width=0.4,
           label="fit on probe (unconfounded)", color="#3b75af")
    if "confounded_fit_accuracy" in rows["trained"]:
        ax.bar([x + 0.2 for x in xs], [100 * rows[n]["confounded_fit_accuracy"] for n in names], width=0.4,
               label="fit on train (confounded)", color="#ef8636")
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_loss_curve(log: dict[str, list[float]]):
    """Loss (and every other logged term) against the step."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    for key, values in log.items():
        if key in ("step", "lr") or len(values) != len(log["step"]):
            continue
        ax.plot(log["step"], values, label=key, lw=1.4 if key == "loss" else 0.9)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig
