"""The seeds' claims as tests on the fidelity study's runs: effects paired by seed, 95 % intervals, verdicts.

Every claim is one or more *parts*. A part compares a metric of one configuration with the same metric of a
reference configuration (SimCLR unless stated), seed by seed, so the seed's data, initialisation and batches
cancel: effect_s = metric(config, seed s) − metric(reference, seed s). Some parts are a difference of two such
effects (C4) or a ratio (C7) or a single configuration's value (C1a); ``Part.values`` says which.

Statistics: the mean of the per-seed effects and its 95 % Student-t interval, mean ± t(0.975, n − 1)·sd/√n
(n = the seeds both configurations finished; t = 4.30 for 3 seeds, 12.7 for 2; none with 1 seed).

Verdict rule (stated once, applied to every part): with the claimed direction d (+1: the effect should be
above the threshold, −1: below; the threshold is 0 except C7's 0.5),
  * **reproduced** — the whole interval lies on the claimed side of the threshold;
  * **refuted** — the whole interval lies on the other side;
  * **inconclusive** — the interval contains the threshold;
  * **too few seeds** — fewer than 2 seeds are finished for both configurations (no interval: the part is
    not decided yet, which is not the same as tested and inconclusive).
A claim is *refuted* when any counted part is; otherwise *too few seeds* while any counted part is; otherwise
*reproduced* when all of its counted parts are, and *inconclusive* otherwise. Parts marked ``counted=False``
are shown for context (e.g. ReLIC with background interventions beside the paper's ReLIC) and do not enter the
claim's verdict. For C7 (a method that needs no
SCM closes at least half of the gap) the parts are alternatives: reproduced when any candidate is, refuted when
every candidate is (and *too few seeds* while no candidate is reproduced and any has too few seeds).
"""

from __future__ import annotations

import math
import statistics
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: two-sided 95 % Student-t quantiles by degrees of freedom (n − 1)
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}

Runs = dict[str, dict[int, dict[str, float]]]  # label -> seed -> metric -> value


@dataclass
class Part:
    """One tested statement: ``values(runs)`` gives the per-seed values whose mean should lie on the
    ``direction`` side of ``threshold``."""

    name: str
    metric: str
    direction: int
    values: Callable[[Runs], dict[int, float]]
    what: str
    threshold: float = 0.0
    counted: bool = True


@dataclass
class Claim:
    key: str
    text: str
    parts: list[Part]
    any_part: bool = False  # C7: the parts are alternatives
    needs: list[str] = field(default_factory=list)  # configurations the claim reads


def paired(metric: str, config: str, reference: str = "simclr") -> Callable[[Runs], dict[int, float]]:
    """Per-seed metric(config) − metric(reference) over the seeds both have."""
    def values(runs: Runs) -> dict[int, float]:
        a, b = runs.get(config, {}), runs.get(reference, {})
        return {s: a[s][metric] - b[s][metric] for s in sorted(set(a) & set(b))
                if _finite(a[s].get(metric)) and _finite(b[s].get(metric))}
    return values


def single(metric: str, config: str) -> Callable[[Runs], dict[int, float]]:
    def values(runs: Runs) -> dict[int, float]:
        return {s: r[metric] for s, r in sorted(runs.get(config, {}).items()) if _finite(r.get(metric))}
    return values


def difference_of(a: Callable[[Runs], dict[int, float]],
                  b: Callable[[Runs], dict[int, float]]) -> Callable[[Runs], dict[int, float]]:
    def values(runs: Runs) -> dict[int, float]:
        va, vb = a(runs), b(runs)
        return {s: va[s] - vb[s] for s in sorted(set(va) & set(vb))}
    return values


def gap_fraction(metric: str, config: str, low: str = "simclr",
                 high: str = "simclr+interventional") -> Callable[[Runs], dict[int, float]]:
    """Per seed, (metric(config) − metric(low)) / (metric(high) − metric(low)): the share of the gap closed."""
    def values(runs: Runs) -> dict[int, float]:
        c, lo, hi = runs.get(config, {}), runs.get(low, {}), runs.get(high, {})
        out = {}
        for s in sorted(set(c) & set(lo) & set(hi)):
            span = hi[s][metric] - lo[s][metric]
            if abs(span) > 1e-9:
                out[s] = (c[s][metric] - lo[s][metric]) / span
        return out
    return values


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95 % t interval; low = high = nan with fewer than 2 values."""
    if not values:
        return math.nan, math.nan, math.nan
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


#: the verdict of a part without an interval (fewer than 2 paired seeds)
TOO_FEW = "too few seeds"


def verdict(low: float, high: float, direction: int, threshold: float = 0.0) -> str:
    """The module docstring's rule for one interval."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return TOO_FEW
    above, below = low > threshold, high < threshold
    if (direction > 0 and above) or (direction < 0 and below):
        return "reproduced"
    if (direction > 0 and below) or (direction < 0 and above):
        return "refuted"
    return "inconclusive"


def combine(verdicts: list[str], any_part: bool) -> str:
    """A claim's verdict from its counted parts' (module docstring); ``any_part``: the parts are alternatives."""
    if not verdicts:
        return TOO_FEW
    decided = "reproduced" if any_part else "refuted"  # one such part decides the claim
    if decided in verdicts:
        return decided
    if TOO_FEW in verdicts:
        return TOO_FEW
    other = "refuted" if any_part else "reproduced"
    return other if all(v == other for v in verdicts) else "inconclusive"


CLAIMS: list[Claim] = [
    Claim("C1", "ICL-MSR: training on full images hurts foreground accuracy (2×2 protocol) and MSR narrows that gap; "
                "MSR lowers the BG-gap and raises only_fg / mixed_rand accuracy", [
        Part("full-image training costs foreground accuracy (SimCLR)", "fg_gap", +1, single("fg_gap", "simclr"),
             "acc(fg-trained, fg test) − acc(full-trained, fg test), SimCLR"),
        Part("MSR narrows that gap", "fg_gap", -1, paired("fg_gap", "icl_msr"), "icl_msr − simclr"),
        Part("MSR lowers the BG-gap", "bg_gap", -1, paired("bg_gap", "icl_msr"), "icl_msr − simclr"),
        Part("MSR raises only_fg accuracy", "only_fg", +1, paired("only_fg", "icl_msr"), "icl_msr − simclr"),
        Part("MSR raises mixed_rand accuracy", "mixed_rand", +1, paired("mixed_rand", "icl_msr"), "icl_msr − simclr"),
    ], needs=["simclr", "icl_msr"]),
    Claim("C2", "ReLIC: invariance across style interventions lowers the mean corruption error and the rendition "
                "error versus SimCLR", [
        Part("ReLIC lowers the corruption error", "mce", -1, paired("mce", "relic"), "relic − simclr"),
        Part("ReLIC lowers the rendition error", "rendition_error", -1, paired("rendition_error", "relic"),
             "relic − simclr"),
        Part("ReLIC + background interventions: corruption error", "mce", -1, paired("mce", "relic+background_swap"),
             "relic(interventions=[background_swap]) − simclr", counted=False),
        Part("ReLIC + background interventions: rendition error", "rendition_error", -1,
             paired("rendition_error", "relic+background_swap"), "relic(interventions=[background_swap]) − simclr",
             counted=False),
    ], needs=["simclr", "relic", "relic+background_swap"]),
    Claim("C3", "DirectCLR: without a projector the representation's spectrum collapses", [
        Part("RankMe falls without the projector", "rankme", -1, paired("rankme", "simclr-no-projector"),
             "simclr without projector − simclr"),
        Part("fewer singular values above 1e-3 of the largest", "n_sv", -1, paired("n_sv", "simclr-no-projector"),
             "simclr without projector − simclr"),
    ], needs=["simclr", "simclr-no-projector"]),
    Claim("C4", "MetAug: its gain over SimCLR is larger at batch 32 than at batch 256", [
        Part("gain at batch 32 − gain at batch 256", "content", +1,
             difference_of(paired("content", "metaug@32", "simclr@32"), paired("content", "metaug@256", "simclr@256")),
             "(metaug − simclr)@32 − (metaug − simclr)@256, content probe"),
        Part("gain at batch 32", "content", +1, paired("content", "metaug@32", "simclr@32"), "metaug − simclr @32",
             counted=False),
        Part("gain at batch 256", "content", +1, paired("content", "metaug@256", "simclr@256"),
             "metaug − simclr @256", counted=False),
    ], needs=["simclr@32", "metaug@32", "simclr@256", "metaug@256"]),
    Claim("C5", "LooC: keeps style information — higher read-out of the augmented latents (rotation, colour) than "
                "SimCLR at equal content accuracy", [
        Part("higher read-out of rotation and colour", "looc_readout_circular", +1,
             paired("looc_readout_circular", "looc"),
             "looc − simclr, mean R² of rotation (per shape, up to its symmetry), fg_hue, bg_hue (on the circle) "
             "and brightness"),
        Part("… the rotation alone", "readout_rotation_per_shape", +1, paired("readout_rotation_per_shape", "looc"),
             "looc − simclr, R² of the rotation per shape, up to its symmetry", counted=False),
        Part("… read out as raw values", "looc_readout", +1, paired("looc_readout", "looc"),
             "looc − simclr, the same with rotation and hues as raw numbers", counted=False),
        Part("content accuracy not lower by more than 2 points", "content", +1,
             lambda runs: {s: v + 0.02 for s, v in paired("content", "looc")(runs).items()},
             "looc − simclr + 0.02 (non-inferiority margin of 2 points)"),
    ], needs=["simclr", "looc"]),
    Claim("C6", "True interventions raise content accuracy and cut the spurious gap", [
        Part("content accuracy rises", "content", +1, paired("content", "simclr+interventional"),
             "simclr on interventional views − simclr"),
        Part("the spurious gap falls", "spurious_gap", -1, paired("spurious_gap", "simclr+interventional"),
             "simclr on interventional views − simclr"),
        Part("interventional views + pixel augmentation: content", "content", +1,
             paired("content", "simclr+interventional+augment"),
             "simclr on interventional views with the pixel augmentation too − simclr", counted=False),
        Part("… against background swaps: content", "content", +1,
             paired("content", "simclr+interventional+augment", "simclr+background_swap"),
             "simclr on augmented interventional views − simclr+background_swap", counted=False),
    ], needs=["simclr", "simclr+interventional"]),
    Claim("C7", "A method that needs no SCM closes at least half of the content gap between SimCLR and SimCLR on "
                "true interventional views (rho 0.9, equal steps)", [
        Part(f"{c} closes ≥ half the gap", "content", +1, gap_fraction("content", c),
             f"({c} − simclr) / (simclr+interventional − simclr)", threshold=0.5)
        for c in ("simclr+background_swap", "relic+background_swap", "icl_msr")
    ] + [
        Part(f"{c}, gap to augmented interventions", "content", +1,
             gap_fraction("content", c, high="simclr+interventional+augment"),
             f"({c} − simclr) / (simclr+interventional+augment − simclr)", threshold=0.5, counted=False)
        for c in ("simclr+background_swap", "relic+background_swap", "icl_msr")
    ], any_part=True, needs=["simclr", "simclr+interventional", "simclr+background_swap", "relic+background_swap",
                             "icl_msr"]),
]


def evaluate(runs: Runs) -> list[dict[str, Any]]:
    """Every claim with its parts' per-seed values, intervals and verdicts, and the claim's verdict."""
    table = []
    for claim in CLAIMS:
        parts, counted = [], []
        for part in claim.parts:
            values = part.values(runs)
            mean, low, high = interval(list(values.values()))
            v = verdict(low, high, part.direction, part.threshold)
            parts.append({"name": part.name, "metric": part.metric, "what": part.what, "direction": part.direction,
                          "threshold": part.threshold, "counted": part.counted, "seeds": sorted(values),
                          "values": [values[s] for s in sorted(values)], "mean": mean, "low": low, "high": high,
                          "verdict": v})
            if part.counted:
                counted.append(v)
        table.append({"claim": claim.key, "text": claim.text, "verdict": combine(counted, claim.any_part),
                      "parts": parts})
    return table


def markdown(table: list[dict[str, Any]]) -> str:
    """The claims table for the README: one row per part, the claim's verdict on its first row."""
    lines = ["| claim | part | effect (mean, 95 % interval) | seeds | verdict |", "|---|---|---|---|---|"]
    for row in table:
        for i, p in enumerate(row["parts"]):
            claim = f"**{row['claim']}** {row['verdict']}" if i == 0 else ""
            scale = 1.0 if p["metric"] in ("rankme", "n_sv") or p["threshold"] else 100.0
            unit = "" if scale == 1.0 else " pts"
            effect = ("—" if not math.isfinite(p["mean"]) else
                      f"{scale * p['mean']:+.1f}{unit}" + (f" [{scale * p['low']:+.1f}, {scale * p['high']:+.1f}]"
                                                           if math.isfinite(p["low"]) else ""))
            name = p["name"] + ("" if p["counted"] else " (context)")
            lines.append(f"| {claim} | {name}: {p['what']} | {effect} | {len(p['seeds'])} | {p['verdict']} |")
    return "\n".join(lines)


def plot(table: list[dict[str, Any]], path: Any) -> None:
    """One panel per claim: each part's mean effect with its 95 % interval, coloured by verdict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"reproduced": "#2a9d4b", "refuted": "#c0392b", "inconclusive": "#7f8c8d", TOO_FEW: "#bdc3c7"}
    fig, axes = plt.subplots(4, 2, figsize=(14, 17))
    for ax, row in zip(axes.flat, table, strict=False):
        parts = row["parts"]
        ys = list(range(len(parts)))[::-1]
        for y, p in zip(ys, parts, strict=True):
            scale = 1.0 if p["metric"] in ("rankme", "n_sv") or p["threshold"] else 100.0
            if math.isfinite(p["mean"]):
                err = ([[scale * (p["mean"] - p["low"])], [scale * (p["high"] - p["mean"])]]
                       if math.isfinite(p["low"]) else None)
                ax.errorbar(scale * p["mean"], y, xerr=err, fmt="o", color=colours[p["verdict"]], capsize=4,
                            alpha=1.0 if p["counted"] else 0.5)
                ax.annotate(f"n={len(p['seeds'])}", (scale * p["mean"], y), textcoords="offset points",
                            xytext=(0, 6), ha="center", fontsize=7, color="dimgrey")
            else:
                ax.annotate("no finished runs yet", (0.02, y), xycoords=("axes fraction", "data"), fontsize=8,
                            color="dimgrey", va="center")
            ax.axvline(scale * p["threshold"], color="black", lw=0.8, ls="--" if p["threshold"] else "-")
        ax.set_yticks(ys, [textwrap.fill(("" if p["counted"] else "(context) ") + p["name"], 30) for p in parts],
                      fontsize=8)
        ax.set_ylim(-0.6, len(parts) - 0.4)
        unit = "effect (points)" if all(p["metric"] not in ("rankme", "n_sv") and not p["threshold"]
                                        for p in parts) else "effect"
        ax.set_xlabel(unit, fontsize=9)
        ax.set_title(f"{row['claim']}: {row['verdict']}", fontsize=11, color=colours[row["verdict"]], loc="left")
    for ax in list(axes.flat)[len(table):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=k) for k, c in colours.items()]
    fig.legend(handles=handles, loc="lower right", fontsize=10, title="verdict (95 % interval vs threshold)")
    fig.suptitle("Fidelity study: each claim's effect vs SimCLR, paired by seed (mean and 95 % t interval)",
                 fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)
