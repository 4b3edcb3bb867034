"""The report's first card for a single run: the verdict, the compact metric table and the under-trained warning.

Rows (each only when the run has it), trained / random encoder / raw data / chance, in one unit per row:
content probe, probe fit on the confounded train split and spurious gap (linear protocol, all three encoders;
chance = the test split's majority-class rate, 0 for a gap), kNN, BG-gap, Grad-CAM energy in the object mask
(chance = a uniform map), mean corruption error (chance = 1 − majority rate), and the read-out of the class and
of the background texture (identifiability; random encoder and chance from that diagnostic).
"""

from __future__ import annotations

from typing import Any

import torch

from evaluations.report import flatten
from evaluations.report_card import Card, CardRow


def undertrained_note(steps: int, total: int, time_limit_s: float | None) -> str:
    """The words a run stopped by its time limit is reported with (console and the report's first card)."""
    limit = f" of {time_limit_s:g} s" if time_limit_s is not None else ""
    return (f"The time limit{limit} stopped training at step {steps} of {total} planned; every finding below is "
            "about an under-trained encoder, not about what this method learns with its full schedule.")


def majority_rate(dataset: Any) -> float | None:
    """The share of the most frequent class among the labels of ``dataset`` (None when it has no labels)."""
    labels = getattr(dataset, "labels", None)
    if labels is None and hasattr(dataset, "node_labels"):
        labels = dataset.node_labels()
    if not isinstance(labels, torch.Tensor) or labels.numel() == 0:
        return None
    return float(torch.bincount(labels.long().flatten()).max()) / labels.numel()


def card_rows(results: dict[str, Any], chance: float | None) -> list[CardRow]:
    """The compact table of the card (see the module docstring)."""
    flat = flatten(results, lists=False)
    raw = "raw_features" if any(k.startswith("baselines.raw_features.") for k in flat) else "raw_pixels"
    rows: list[CardRow] = []

    def row(label: str, key: str, unit: str = "%", random: str | None = None, raw_key: str | None = None,
            chance_value: float | None = None) -> None:
        if flat.get(key) is not None:
            rows.append(CardRow(label, flat[key], flat.get(random) if random else None,
                                flat.get(raw_key) if raw_key else None, chance_value, unit, key))

    for leaf, label, unit, ch in (("accuracy", "content probe accuracy", "%", chance),
                                  ("confounded_fit_accuracy", "probe fit on the confounded train split", "%", chance),
                                  ("spurious_gap", "spurious gap", "points", 0.0)):
        row(label, f"linear_probe.{leaf}", unit, f"baselines.random_encoder.linear_probe.{leaf}",
            f"baselines.{raw}.linear_probe.{leaf}", ch)
    row("kNN accuracy", "knn.accuracy", chance_value=chance)
    row("BG-gap (mixed-same − mixed-rand)", "foreground.bg_gap", "points", chance_value=0.0)
    row("Grad-CAM energy in the object mask", "grounding.probe.energy_in_mask",
        chance_value=flat.get("grounding.probe.energy_baseline"))
    row("mean corruption error", "robustness.mean_error", chance_value=None if chance is None else 1 - chance)
    for latent, label in (("cls", "class read-out"), ("bg_texture", "background-texture read-out")):
        if flat.get(f"identifiability.trained.{latent}.metric") == "accuracy":
            row(label, f"identifiability.trained.{latent}.score", random=f"identifiability.random.{latent}.score",
                chance_value=flat.get(f"identifiability.trained.{latent}.chance"))
    return rows


def verdict(results: dict[str, Any], method: str, dataset: str, steps: int) -> str:
    """One paragraph: content decodability against the random encoder and raw data, then the spurious gap."""
    flat = flatten(results, lists=False)
    acc = flat.get("linear_probe.accuracy")
    head = f"{method}, trained for {steps} steps on {dataset}"
    if acc is None:
        return f"{head}: no linear probe was run, so there is no headline accuracy; see the sections below."
    rand = flat.get("baselines.random_encoder.linear_probe.accuracy")
    raw = flat.get("baselines.raw_pixels.linear_probe.accuracy",
                   flat.get("baselines.raw_features.linear_probe.accuracy"))
    text = f"{head}, reaches {acc:.1%} on the content probe"
    if rand is not None:
        diff = 100 * (acc - rand)
        where = "level with" if abs(diff) < 0.05 else f"{abs(diff):.1f} points {'above' if diff > 0 else 'below'}"
        text += f", {where} a random encoder of the same architecture ({rand:.1%})"
    if raw is not None:
        text += f" and {'above' if acc > raw else 'below'} the raw data ({raw:.1%})"
    text += "."
    if rand is not None and acc <= rand:
        text += " Training added no linearly decodable content: read every other number as that of a failed run."
    gap, rgap = flat.get("linear_probe.spurious_gap"), flat.get("baselines.random_encoder.linear_probe.spurious_gap")
    if gap is not None:
        text += f" Its spurious gap is {100 * gap:.1f} points"
        if rgap is not None:
            text += f" (random encoder: {100 * rgap:.1f})"
        text += (": a probe fit where the background predicts the class leans on it." if gap > 0.05 else
                 ": a probe fit on confounded data barely leans on the background.")
    return text


def build_card(results: dict[str, Any], run: dict[str, Any], chance: float | None,
               time_limit_s: float | None = None) -> Card:
    """The card of a single run (``run``: the report's ``run`` section: method, dataset, steps, total_steps,
    stopped_early); findings come from the ``run`` section, the loss curve is shown in the card."""
    warning = None
    title = "Findings"
    if run.get("stopped_early"):
        warning = undertrained_note(run["steps"], run["total_steps"], time_limit_s)
        title = "Findings (from an under-trained encoder)"
    raw_label = "raw features" if "raw_features" in results.get("baselines", {}) else "raw pixels"
    return Card(verdict(results, run["method"], run["dataset"], run["steps"]), card_rows(results, chance),
                warning=warning, findings_section="run", findings_title=title, plots=("loss_curve",),
                columns=("trained", "random encoder", raw_label, "chance"))
