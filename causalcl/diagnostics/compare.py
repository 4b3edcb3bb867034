"""Side-by-side comparison of several diagnosed runs (``causalcl --methods simclr,byol,barlow_twins``).

Each method has its own run folder (``<out>/<method>/`` with config.yaml, train_log.csv, checkpoint.pt,
results.json, report.html); :func:`write_comparison` reads those folders and writes, in ``<out>/``:

- ``results.json``: ``run`` (what was compared), ``comparison`` (headline metric → method → value, the numbers
  of the table) and ``methods`` (per method: its folder, its report and its full ``results.json``);
- ``results.csv``: one row per scalar result key of any method (the headline metrics first), one column per
  method, plus a ``label`` column for the headline rows;
- ``plots/metrics.png`` (grouped bars of the main fractions), ``plots/loss_curves.png`` (every method's
  training loss), and ``report.html``: the side-by-side table with the random-encoder and raw-data columns
  (:mod:`.compare_baselines`; best value per row in bold where "better" has a direction, among the methods that
  beat the random encoder on the content probe), the plots and a link to each method's own report.

Values in the table are exactly the per-method ``results.json`` values; nothing is recomputed here.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from evaluations.report import Report, flatten, format_value  # noqa: E402

from ..train.log import read_log  # noqa: E402
from .compare_baselines import baseline_columns, below_random_findings, eligible  # noqa: E402


@dataclass(frozen=True)
class Metric:
    key: str  # dotted key in a run's results.json
    label: str  # short row label (terminal and HTML)
    better: str | None  # "higher", "lower" or None (no direction)
    bar: bool = False  # a fraction shown in the grouped bar plot


#: the rows of the side-by-side table, in order; rows no method has are left out
METRICS: tuple[Metric, ...] = (
    Metric("linear_probe.accuracy", "linear probe accuracy", "higher", bar=True),
    Metric("linear_probe.confounded_fit_accuracy", "probe fit on confounded train", None),
    Metric("linear_probe.spurious_gap", "spurious gap", "lower", bar=True),
    Metric("knn.accuracy", "kNN accuracy", "higher", bar=True),
    Metric("spectrum.rankme", "RankMe (effective rank)", "higher"),
    Metric("spectrum.alpha", "alpha-ReQ", None),
    Metric("geometry.alignment", "alignment", "lower"),
    Metric("geometry.uniformity", "uniformity", "lower"),
    Metric("foreground.bg_gap", "BG-gap", "lower", bar=True),
    Metric("foreground.variants.only_fg", "accuracy on only-foreground", "higher"),
    Metric("grounding.probe.energy_in_mask", "CAM energy in mask", "higher", bar=True),
    Metric("grounding.probe.pointing_game", "CAM pointing game", "higher"),
    Metric("robustness.clean_error", "clean error", "lower"),
    Metric("robustness.mean_error", "mean corruption error", "lower", bar=True),
    Metric("robustness.mce", "mCE vs AlexNet (%)", "lower"),
    Metric("identifiability.trained.cls.score", "content read-out: class acc.", "higher", bar=True),
    Metric("identifiability.trained.bg_texture.score", "style read-out: bg texture acc.", "lower", bar=True),
    Metric("identifiability.trained.bg_source.score", "style read-out: bg source acc.", "lower", bar=True),
    Metric("run.steps", "training steps", None),
    Metric("run.train_seconds", "training time (s)", None),
)

NOTE = (
    "Each column is one method trained with the same data, backbone, batch, seed and step budget, then diagnosed "
    "with the same protocol; every number is copied from that method's own results.json (follow the links for "
    "the full reports). Bold marks the best value of a row whose direction is clear, among the methods whose "
    "content probe beats the random encoder (a method below it learned nothing decodable, so its low gaps are no "
    "win): higher content accuracy and CAM energy, lower spurious gap, BG-gap, corruption error and style "
    "read-out. Spurious gap = probe fit on unconfounded minus on confounded data; BG-gap = accuracy on mixed-same "
    "minus mixed-rand backgrounds. The grey columns are the baselines every run measures with the same protocol: "
    "a randomly initialised encoder of the same architecture, and the raw data.")


def load_runs(runs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """``{method: results.json contents}`` of each run folder."""
    return {name: json.loads((Path(folder) / "results.json").read_text()) for name, folder in runs.items()}


def side_by_side(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{metric key: {method: value}}`` for the headline metrics at least one method has (None where absent)."""
    flat = {name: flatten(r, lists=False) for name, r in results.items()}
    table: dict[str, dict[str, Any]] = {}
    for metric in METRICS:
        if any(f.get(metric.key) is not None for f in flat.values()):
            table[metric.key] = {name: flat[name].get(metric.key) for name in results}
    return table


def _best(metric: Metric, row: dict[str, Any], allowed: set[str] | None = None) -> set[str]:
    """The methods with the best value of ``row`` among ``allowed`` (all when None); empty when the row has no
    direction, fewer than two values, all values equal, or no allowed method."""
    values = {k: v for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if metric.better is None or len(values) < 2 or len(set(values.values())) < 2:
        return set()
    values = {k: v for k, v in values.items() if allowed is None or k in allowed}
    if not values:
        return set()
    target = (max if metric.better == "higher" else min)(values.values())
    return {k for k, v in values.items() if v == target}


def _metric(key: str) -> Metric:
    return next(m for m in METRICS if m.key == key)


def table_html(table: dict[str, dict[str, Any]], methods: list[str], baselines: dict[str, dict[str, Any]] | None = None,
               allowed: set[str] | None = None) -> str:
    """The side-by-side table: one row per metric, one column per method (each header links to its report), then
    one column per baseline (``baselines``: label → metric → value, in grey); bold marks the best of the
    ``allowed`` methods."""
    esc = html.escape
    baselines = baselines or {}
    head = "".join(f"<th><a href='{esc(m)}/report.html'>{esc(m)}</a></th>" for m in methods)
    head += "".join(f"<th class='baseline'>{esc(b)}</th>" for b in baselines)
    body = []
    for key, row in table.items():
        metric = _metric(key)
        best = _best(metric, row, allowed)
        arrow = {"higher": " ↑", "lower": " ↓"}.get(metric.better or "", "")
        cells = []
        for m in methods:
            text = esc(format_value(key, row.get(m)))
            cells.append(f"<td class='num'>{f'<strong>{text}</strong>' if m in best else text}</td>")
        for values in baselines.values():
            text = esc(format_value(key, values.get(key))) if key in values else "—"
            cells.append(f"<td class='num baseline' style='color:#666'>{text}</td>")
        body.append(f"<tr><td title='{esc(key)}'>{esc(metric.label)}{arrow}</td>{''.join(cells)}</tr>")
    return ("<table class='comparison'><tr><th>metric</th>" + head + "</tr>" + "".join(body) + "</table>"
            "<p class='meta'>↑ higher is better, ↓ lower is better; bold: the best of the methods that beat the random "
            "encoder on the content probe; grey columns: the baselines of the same protocol (— where it has none); "
            "hover a metric for its key in results.json.</p>")


def links_html(runs: dict[str, Path], out: Path, failed: dict[str, str]) -> str:
    esc = html.escape
    items = [f"<li><a href='{esc(_relative(folder, out))}/report.html'>{esc(name)}</a> "
             f"<span class='meta'>({esc(_relative(folder, out))}/)</span></li>" for name, folder in runs.items()]
    items += [f"<li>{esc(name)}: <strong>failed</strong> — {esc(reason)}</li>" for name, reason in failed.items()]
    return "<ul>" + "".join(items) + "</ul>"


def _relative(folder: Path, out: Path) -> str:
    try:
        return Path(folder).resolve().relative_to(Path(out).resolve()).as_posix()
    except ValueError:
        return Path(folder).resolve().as_uri()


def plot_metrics(table: dict[str, dict[str, Any]], methods: list[str]):
    """Grouped bars: one group per main metric (a fraction, shown in %), one bar per method; None if none."""
    keys = [k for k in table if _metric(k).bar]
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(max(6.4, 1.1 * len(keys) * max(1, len(methods)) ** 0.5 + 2), 3.8))
    width = 0.8 / len(methods)
    colours = plt.get_cmap("tab10").colors
    for j, m in enumerate(methods):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(keys))]
        ys = [100 * v if isinstance(v := table[k].get(m), int | float) else 0.0 for k in keys]
        ax.bar(xs, ys, width=width * 0.95, label=m, color=colours[j % len(colours)])
    ax.set_xticks(range(len(keys)), [_metric(k).label.replace(": ", ":\n") for k in keys], rotation=25, ha="right",
                  fontsize=8)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("%")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(frameon=False, fontsize=8, ncol=min(len(methods), 4))
    fig.tight_layout()
    return fig


def plot_losses(runs: dict[str, Path]):
    """Every method's training loss: raw (symlog scale: losses differ in sign and size) and min-max scaled."""
    logs = {}
    for name, folder in runs.items():
        path = Path(folder) / "train_log.csv"
        log = read_log(path) if path.is_file() else {}
        if log.get("loss"):
            logs[name] = log
    if not logs:
        return None
    fig, (raw, scaled) = plt.subplots(1, 2, figsize=(10, 3.4))
    for name, log in logs.items():
        steps, loss = log["step"][: len(log["loss"])], log["loss"]
        style = {"label": name, "lw": 1.3, "marker": "o" if len(loss) < 30 else None, "ms": 3}
        raw.plot(steps, loss, **style)
        low, high = min(loss), max(loss)
        scaled.plot(steps, [(v - low) / (high - low) if high > low else 0.0 for v in loss], **style)
    raw.set_yscale("symlog", linthresh=1.0)
    raw.set_title("loss", fontsize=9)
    scaled.set_title("loss scaled to [0, 1] per method", fontsize=9)
    for ax in (raw, scaled):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    raw.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def comparison_findings(table: dict[str, dict[str, Any]],
                        results: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """A sentence per method below the random encoder on the content probe (from ``results``), then one per
    directed headline metric: which method is best, among those that beat the random encoder."""
    out = below_random_findings(results) if results else []
    allowed = eligible(results) if results else None
    for key in ("linear_probe.accuracy", "linear_probe.spurious_gap", "foreground.bg_gap",
                "grounding.probe.energy_in_mask", "robustness.mean_error"):
        if key not in table:
            continue
        metric, best = _metric(key), _best(_metric(key), table[key], allowed)
        if best:
            value = format_value(key, table[key][next(iter(best))])
            out.append(f"{'Highest' if metric.better == 'higher' else 'Lowest'} {metric.label}: "
                       f"{', '.join(sorted(best))} ({value}).")
    return out


def wide_csv(results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Every scalar result key of any method as a row (headline metrics first), one column per method."""
    flat = {name: {k: v for k, v in flatten(r, lists=False).items() if not isinstance(v, list | dict)}
            for name, r in results.items()}
    keys: list[str] = [m.key for m in METRICS if any(m.key in f for f in flat.values())]
    for f in flat.values():
        keys += [k for k in f if k not in keys]
    labels = {m.key: m.label for m in METRICS}
    frame = pd.DataFrame({"label": [labels.get(k, "") for k in keys],
                          **{name: [f.get(k) for k in keys] for name, f in flat.items()}},
                         index=pd.Index(keys, name="metric"))
    return frame


def write_comparison(out: str | Path, runs: dict[str, Path], *, run_info: dict[str, Any] | None = None,
                     failed: dict[str, str] | None = None, title: str | None = None) -> Report:
    """Write the combined results.json, results.csv, plots and report.html of ``runs`` (method → folder)."""
    out = Path(out)
    failed = dict(failed or {})
    results = load_runs(runs)
    methods = list(results)
    table = side_by_side(results)
    report = Report(out, title=title or f"causalcl — {', '.join(methods)} side by side")
    report.add("comparison", table, show=False)
    report.add_text("comparison", NOTE)
    baselines = baseline_columns(results, list(table))
    report.add("comparison_baselines", baselines, show=False)
    report.add_html("comparison", table_html(table, methods, baselines, eligible(results)))
    fig = plot_metrics(table, methods)
    if fig is not None:
        report.add_plot("metrics", fig, section="comparison", caption=(
            "Main metrics per method, in %: content accuracy (probe, kNN, read-out) should be high; spurious gap, "
            "BG-gap, corruption error and style read-out low."))
        plt.close(fig)
    fig = plot_losses(runs)
    if fig is not None:
        report.add_plot("loss_curves", fig, section="comparison",
                        caption="Training loss per logged step; the losses of different methods have different "
                                "scales, so the right panel scales each to [0, 1].")
        plt.close(fig)
    for sentence in comparison_findings(table, results):
        report.add_finding("findings", sentence)
    folders = {name: _relative(runs[name], out) for name in methods}
    report.add("methods", {name: {"dir": folders[name], "report": f"{folders[name]}/report.html",
                                  "results": results[name]} for name in methods}, show=False)
    report.add_html("methods", links_html(runs, out, failed))
    info = {"methods": methods, **(run_info or {})}
    if failed:
        info["failed"] = failed
    report.add("run", info)
    report.set_csv(wide_csv(results))
    report.set_headline([f"run.{k}" for k, v in info.items() if not isinstance(v, list | dict)])
    report.write()
    return report


def summary_text(table: dict[str, dict[str, Any]], methods: list[str], width: int = 12,
                 results: dict[str, dict[str, Any]] | None = None) -> str:
    """A one-screen plain-text side-by-side table for the terminal; with ``results``, the baseline columns after
    the methods and the best marked only among the methods that beat the random encoder."""
    baselines = baseline_columns(results, list(table)) if results else {}
    allowed = eligible(results) if results else None
    label_w = max([len("metric")] + [len(_metric(k).label) + 2 for k in table])
    names = [*methods, *(f"({b})" for b in baselines)]
    cols = [m if len(m) <= width else m[: width - 1] + "…" for m in names]
    lines = [f"{'metric':<{label_w}}" + "".join(f"{c:>{width + 2}}" for c in cols)]
    lines.append("-" * len(lines[0]))
    for key, row in table.items():
        metric = _metric(key)
        best = _best(metric, row, allowed)
        arrow = {"higher": " ↑", "lower": " ↓"}.get(metric.better or "", "")
        cells = "".join(f"{format_value(key, row.get(m)) + ('*' if m in best else ''):>{width + 2}}" for m in methods)
        cells += "".join(f"{format_value(key, v[key]) if key in v else '—':>{width + 2}}" for v in baselines.values())
        lines.append(f"{metric.label + arrow:<{label_w}}{cells}")
    lines.append("(* best of the row among the methods that beat the random encoder on the content probe; "
                 "↑ higher / ↓ lower is better; (…) baselines)")
    return "\n".join(lines)
