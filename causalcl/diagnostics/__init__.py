"""Diagnoses a trained encoder with the ``evaluations`` layer and fills a ``Report``.

Protocol (DESIGN.md §4.1, §6): features of the frozen backbone on the ``train`` (confounded),
``probe`` and ``test`` (unconfounded) splits;
- ``linear``: a probe fit on ``probe`` and scored on ``test`` (content decodability) and the same
  probe fit on a probe-sized random subset of the confounded ``train`` split
  (``confounded_fit_accuracy``); their difference is the spurious gap. The same protocol runs on a
  randomly initialised encoder of the same architecture and on raw pixels, so every number is read
  against those baselines.
- ``knn``: weighted kNN, ``probe`` features as the bank, ``test`` as queries.
- ``spectrum``: DirectCLR singular spectrum, RankMe and α-ReQ of the ``test`` features.
- ``geometry``: alignment of two augmented views and uniformity of the ``test`` features.
- ``fgbg``: ImageNet-9 background variants and BG-gap, and the ICL-MSR 2×2 full-vs-foreground matrix.
- ``robustness``: synthetic corruptions (19 × 5 severities) and renditions.
- ``cam``: Grad-CAM grounding against the foreground masks (embedded data).
- ``identifiability``: read-out of each SCM latent, content vs style.

Samples are images, clips or graph nodes (``samples``); a diagnostic that does not apply to the dataset (no masks,
no latents, or not defined on clips / nodes) is skipped with one line saying why (``applicability``), in the
report's ``not_applicable`` section and its findings.

``DIAGNOSTICS`` is the registry: name → (function of a ``Context``, what the dataset must provide).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from evaluations.report import flatten

from .applicability import NOT_APPLICABLE, applicable
from .context import Context, Splits
from .findings import findings
from .foreground import run_fgbg
from .grounding import run_cam
from .identifiability import run_identifiability
from .plots import plot_loss_curve
from .probes import run_knn, run_linear
from .representation import run_geometry, run_spectrum
from .robustness import run_robustness

#: name → (runner, requirement): requirement "" = any dataset, "masks" / "latents" = embedded SCM data
DIAGNOSTICS: dict[str, tuple[Callable[[Context], dict[str, Any]], str]] = {
    "linear": (run_linear, ""),
    "knn": (run_knn, ""),
    "spectrum": (run_spectrum, ""),
    "geometry": (run_geometry, ""),
    "fgbg": (run_fgbg, "masks"),
    "robustness": (run_robustness, ""),
    "cam": (run_cam, "masks"),
    "identifiability": (run_identifiability, "latents"),
}

#: what each diagnostic does, for its numbered progress line (``[3/8] fgbg: background variants, …``)
DESCRIPTIONS: dict[str, str] = {
    "linear": "linear probes of the trained encoder, the random encoder and the raw data",
    "knn": "weighted kNN accuracy",
    "spectrum": "singular spectrum, RankMe, alpha-ReQ",
    "geometry": "alignment and uniformity",
    "fgbg": "foreground vs background: background variants, BG-gap; the 2×2 protocol (a separate study)",
    "robustness": "corruptions and renditions",
    "cam": "Grad-CAM grounding against the foreground masks",
    "identifiability": "read-out of each latent factor",
}

HEADLINE = (
    "linear_probe.accuracy", "linear_probe.confounded_fit_accuracy", "linear_probe.spurious_gap",
    "baselines.random_encoder.linear_probe.accuracy", "baselines.random_encoder.linear_probe.spurious_gap",
    "baselines.raw_pixels.linear_probe.accuracy", "baselines.raw_features.linear_probe.accuracy", "knn.accuracy",
    "spectrum.rankme", "spectrum.alpha",
    "geometry.alignment", "geometry.uniformity", "foreground.bg_gap", "foreground.variants.mixed_same",
    "foreground.variants.mixed_rand", "robustness.clean_error", "robustness.mean_error",
    "grounding.probe.energy_in_mask",
    "grounding.probe.energy_baseline", "grounding.probe.pointing_game", "grounding.probe.pointing_game_baseline",
)


def parse_diagnostics(text: str | list[str] | None) -> list[str]:
    """``"linear,knn"`` → ["linear", "knn"]; ``None``/``"all"`` → every diagnostic; ``"none"`` → []."""
    if text is None or text == "all" or text == ["all"]:
        return list(DIAGNOSTICS)
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in DIAGNOSTICS]
    if unknown:
        raise ValueError(f"--diagnostics: unknown name(s) {unknown}; valid names are {list(DIAGNOSTICS)} "
                         "(or 'all' / 'none')")
    return names


def supported(names: list[str], splits: Splits) -> tuple[list[str], list[str]]:
    """Split ``names`` into those the dataset supports and those it cannot (no masks / latents, or not defined on
    its clips / nodes: ``applicability.NOT_APPLICABLE``)."""
    ok, reasons = applicable(names, {n: DIAGNOSTICS[n][1] for n in names}, splits)
    return ok, list(reasons)


NOT_APPLICABLE_NOTE = ("Diagnostics that were asked for but do not apply to this dataset, each with the reason; "
                       "nothing was computed for them.")


def diagnose(ctx: Context, names: list[str]) -> dict[str, Any]:
    """Run the diagnostics ``names`` in order; results are added to ``ctx.report`` and returned.

    The wall time of each diagnostic goes to the report as ``run.diagnostic_seconds``. With ``ctx.progress`` set,
    each diagnostic is announced by a numbered line (``[5/8] fgbg: …``) and closed by one with its time
    (``[5/8] fgbg done in 12.3 s``)."""
    results: dict[str, Any] = {}
    runnable, reasons = applicable(names, {n: DIAGNOSTICS[n][1] for n in names}, ctx.splits)
    seconds: dict[str, float] = {}
    say = ctx.progress or (lambda _line: None)
    for i, name in enumerate(runnable, 1):
        start = time.perf_counter()
        say(f"[{i}/{len(runnable)}] {name}: {DESCRIPTIONS.get(name, name)} …")
        out = DIAGNOSTICS[name][0](ctx)
        reasons.update(out.pop("not_applicable", {}))  # a part of a diagnostic that does not apply (named)
        results.update(out)
        seconds[name] = round(time.perf_counter() - start, 2)
        say(f"[{i}/{len(runnable)}] {name} done in {seconds[name]:.1f} s")
    ctx.report.add("run", {"diagnostic_seconds": seconds})
    skipped = [n for n in reasons if n in DIAGNOSTICS]
    if skipped:
        ctx.report.add("run", {"skipped_diagnostics": skipped})
    if reasons:
        results["not_applicable"] = reasons
        ctx.report.add("not_applicable", reasons, note=NOT_APPLICABLE_NOTE)
    for sentence in findings(results):
        ctx.report.add_finding("run", sentence)
    flat = flatten(results, lists=False)
    ctx.report.set_headline(["run.steps", "run.train_seconds", *(k for k in HEADLINE if k in flat)])
    return results


__all__ = ["DIAGNOSTICS", "NOT_APPLICABLE", "Context", "Splits", "diagnose", "parse_diagnostics", "plot_loss_curve",
           "supported"]
