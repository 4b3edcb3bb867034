"""Plots of the main job that are not part of the evaluation layer (training curves, probe bars)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def probe_bars(results: dict[str, Any], chance: float | None = None):
    """Linear-probe accuracy of the trained encoder, the random encoder and the raw data, per fit split, with the
    random encoder's content-probe accuracy (dotted) and chance (dashed, the majority-class rate) as lines."""
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
    random_acc = 100 * rows["random encoder"]["accuracy"]
    ax.axhline(random_acc, color="#555555", ls=":", lw=1.2, label=f"random encoder, fit on probe ({random_acc:.1f}%)")
    if chance is not None:
        ax.axhline(100 * chance, color="black", ls="--", lw=1.0, label=f"chance ({100 * chance:.1f}%)")
    ax.set_title("Linear probe: trained vs random encoder vs raw data")
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
    ax.set_title("Training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig
