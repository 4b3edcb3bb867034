"""Collect evaluation results and write them as JSON, CSV, PNG plots and one self-contained HTML page.

Usage::

    report = Report("runs/exp1", title="SimCLR on shapes")
    report.add("linear_probe", {"accuracy": 0.873, "weight_decay": 1e-4})
    report.add_text("linear_probe", "Accuracy of a logistic-regression probe on frozen features.")
    report.add_plot("spectrum", fig, caption="DirectCLR spectrum", section="spectrum")
    report.add_table("fg_bg", dataframe, caption="train x test accuracy", section="foreground")
    report.add_html("links", "<a href='other/report.html'>other run</a>")   # the caller's own HTML block
    paths = report.write()       # results.json, results.csv, plots/*.png, tables/*.csv, report.html
    print(report.summary_table())

``results.json`` holds the nested results ``{section: values}`` made JSON-safe (numpy/torch scalars become
numbers, arrays become lists, NaN/inf become null). ``results.csv`` holds one ``key,value`` row per leaf with
dotted keys (``linear_probe.accuracy``; list items get their index, ``spectrum.values.0``), or the DataFrame
given to :meth:`Report.set_csv` (e.g. a side-by-side comparison). ``add(..., show=False)`` keeps a section's
values in the JSON/CSV but off the page, for callers that show them their own way (``add_html``). The HTML page
inlines every plot as a base64 PNG and carries its CSS inline, so it can be mailed or archived as one file.

Values whose last key names an accuracy, error, rate or gap (``accuracy``, ``knn_acc``, ``bg_gap``,
``error``...), the accuracies per background variant (``variants.*``) and the Grad-CAM fractions (``energy*``,
``pointing_game*``), when they lie in [-1, 1], are shown as percentages in the HTML and the terminal summary;
the stored numbers stay fractions.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as _dt
import html
import io
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .report_card import Card, card_html

__all__ = ["Report", "ReportFiles", "to_jsonable", "flatten"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_PERCENT_TOKENS = {"acc", "accuracy", "top1", "top5", "error", "err", "gap", "rate", "fraction"}
_HTML_TAG_RE = re.compile(r"<[A-Za-z/][^>]*>")
_SUMMARY_ROWS = 40


def to_jsonable(obj: Any) -> Any:
    """Convert nested results to JSON-safe Python: numbers, strings, bools, None, lists and str-keyed dicts.

    numpy/torch scalars become Python numbers, arrays/tensors become (nested) lists, non-finite floats become
    None, paths become strings, dataclasses become dicts, DataFrames become lists of row dicts.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int | np.integer) and not isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, float | np.floating):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu()
        return to_jsonable(obj.item() if obj.dim() == 0 else obj.tolist())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # pandas DataFrame
        return to_jsonable(obj.to_dict(orient="records"))
    return str(obj)


def flatten(tree: Any, prefix: str = "", *, lists: bool = True) -> dict[str, Any]:
    """Flatten nested dicts (and lists, with index keys, when ``lists``) into ``{dotted.key: leaf}``."""
    out: dict[str, Any] = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k), lists=lists))
    elif isinstance(tree, list) and lists:
        for i, v in enumerate(tree):
            out.update(flatten(v, f"{prefix}.{i}" if prefix else str(i), lists=lists))
    else:
        out[prefix] = tree
    return out


def _deep_merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_merge(dst[k], v)
        else:
            dst[k] = v


def _is_percent_key(key: str) -> bool:
    """Accuracy-like leaves, the accuracies per background variant (``….variants.mixed_same``) and the fractions
    of Grad-CAM energy / pointing-game hits (``energy_in_mask``, ``pointing_game_baseline``)."""
    parts = key.lower().split(".")
    last = parts[-1]
    if "variants" in parts[:-1] or last.startswith(("energy", "pointing_game")):
        return True
    return any(tok in _PERCENT_TOKENS for tok in re.split(r"[_\-\s]+", last))


def format_value(key: str, value: Any) -> str:
    """Readable value: fractions of accuracy-like keys as percentages, floats to 4 significant digits."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if _is_percent_key(key) and -1.0 <= value <= 1.0:
            return f"{100.0 * value:.2f}%"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    if isinstance(value, list):
        shown = ", ".join(format_value(key, v) for v in value[:6])
        return f"[{shown}, …] ({len(value)} items)" if len(value) > 6 else f"[{shown}]"
    return str(value)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _check_name(name: Any, what: str = "name") -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"{what}: expected a file-name-safe string (letters, digits, '_', '-', '.'), got {name!r}"
        )
    return name


def _check_section(section: Any) -> str:
    if not isinstance(section, str) or not section.strip():
        raise ValueError(f"section: expected a non-empty string, got {section!r}")
    return section


@dataclass
class _Plot:
    name: str
    png: bytes
    caption: str
    section: str | None
    path: Path


@dataclass
class _Table:
    name: str
    frame: Any  # pandas.DataFrame
    caption: str
    section: str | None


@dataclass
class ReportFiles:
    """Paths written by :meth:`Report.write`."""

    json: Path
    csv: Path
    html: Path
    plots: list[Path]
    tables: list[Path]


class Report:
    """Collects results by section and writes ``results.json``, ``results.csv``, plots and ``report.html``.

    Args:
        out_dir: output directory (created on demand).
        title: page title of the HTML report.
    """

    def __init__(self, out_dir: str | os.PathLike[str], title: str = "causalcl report"):
        if not isinstance(out_dir, str | os.PathLike):
            raise ValueError(f"out_dir: expected a path, got {type(out_dir).__name__}")
        self.out_dir = Path(out_dir)
        self.title = str(title)
        self._results: dict[str, dict[str, Any]] = {}
        self._notes: dict[str, list[str]] = {}
        self._plots: list[_Plot] = []
        self._tables: list[_Table] = []
        self._headline: list[str] | None = None
        self._finding_sections: set[str] = set()
        self._html: dict[str, list[str]] = {}
        self._hidden: set[str] = set()
        self._csv_frame: Any = None
        self._card: Card | None = None

    # ------------------------------------------------------------------ collecting
    def add(self, section: str, values: dict[str, Any], *, note: str | None = None, show: bool = True) -> None:
        """Add (nested) ``values`` to ``section``; adding to the same section again merges recursively.

        ``show=False``: the section's values go to results.json / results.csv but are not listed on the page.
        """
        section = _check_section(section)
        if not isinstance(values, dict):
            raise ValueError(f"values: expected a dict of results, got {type(values).__name__}")
        _deep_merge(self._results.setdefault(section, {}), to_jsonable(values))
        if not show:
            self._hidden.add(section)
        if note:
            self.add_text(section, note)

    def add_text(self, section: str, html_or_text: str) -> None:
        """Attach a "how to read this" note to ``section``.

        Plain text is escaped; text that contains tags is inserted as the caller's own HTML.
        """
        section = _check_section(section)
        if not isinstance(html_or_text, str):
            raise ValueError(f"html_or_text: expected a string, got {type(html_or_text).__name__}")
        self._results.setdefault(section, {})
        self._notes.setdefault(section, []).append(html_or_text)

    def add_html(self, section: str, html_block: str) -> None:
        """Insert the caller's own HTML block (a table, a list of links) in ``section``, unescaped and unlabelled."""
        section = _check_section(section)
        if not isinstance(html_block, str):
            raise ValueError(f"html_block: expected a string, got {type(html_block).__name__}")
        self._results.setdefault(section, {})
        self._html.setdefault(section, []).append(html_block)

    def set_csv(self, df: Any) -> None:
        """Write this pandas DataFrame (index included) as results.csv instead of the ``key,value`` rows."""
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise ValueError(f"df: expected a pandas DataFrame, got {type(df).__name__}")
        self._csv_frame = df.copy()

    def add_finding(self, section: str, text: str) -> None:
        """Attach a plain-language finding to ``section`` (shown as "Finding." instead of "How to read this.");
        a section holds either findings or reading notes."""
        self.add_text(section, text)
        self._finding_sections.add(_check_section(section))

    def add_plot(self, name: str, fig: Any, caption: str = "", *, section: str | None = None) -> Path:
        """Save ``fig`` (a matplotlib Figure) as ``plots/<name>.png`` now and keep it for the HTML page.

        The figure is not closed; close pyplot figures yourself when making many.
        """
        name = _check_name(name)
        if not hasattr(fig, "savefig"):
            raise ValueError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
        if section is not None:
            section = _check_section(section)
            self._results.setdefault(section, {})
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        png = buf.getvalue()
        plot_dir = self.out_dir / "plots"
        plot_dir.mkdir(parents=True, exist_ok=True)
        path = plot_dir / f"{name}.png"
        _atomic_write(path, png)
        self._plots = [p for p in self._plots if p.name != name]
        self._plots.append(_Plot(name, png, str(caption), section, path))
        return path

    def add_table(self, name: str, df: Any, caption: str = "", *, section: str | None = None) -> None:
        """Keep a pandas DataFrame for the HTML page; it is also written as ``tables/<name>.csv``."""
        import pandas as pd

        name = _check_name(name)
        if not isinstance(df, pd.DataFrame):
            raise ValueError(f"df: expected a pandas DataFrame, got {type(df).__name__}")
        if section is not None:
            section = _check_section(section)
            self._results.setdefault(section, {})
        self._tables = [t for t in self._tables if t.name != name]
        self._tables.append(_Table(name, df.copy(), str(caption), section))

    def set_card(self, card: Card) -> None:
        """Open the page with ``card`` (``evaluations.report_card``): the verdict, the compact table, the findings
        of ``card.findings_section`` and the plots ``card.plots``, which their sections then leave out."""
        if not isinstance(card, Card):
            raise ValueError(f"card: expected an evaluations.report_card.Card, got {type(card).__name__}")
        self._card = card

    def set_headline(self, keys: Iterable[str]) -> None:
        """Choose the dotted keys shown in the summary tables (default: every scalar, up to 40 rows)."""
        self._headline = [str(k) for k in keys]

    # ------------------------------------------------------------------ views
    @property
    def results(self) -> dict[str, Any]:
        """The nested, JSON-safe results (a deep copy)."""
        return json.loads(json.dumps(self._results))

    def flat(self) -> dict[str, Any]:
        """All leaves as ``{dotted.key: value}`` (list items indexed)."""
        return flatten(self._results)

    def _headline_rows(self) -> tuple[list[tuple[str, Any]], int]:
        shown = {s: v for s, v in self._results.items() if s not in self._hidden or self._headline is not None}
        scalars = {k: v for k, v in flatten(shown, lists=False).items() if not isinstance(v, list | dict)}
        if self._headline is not None:
            rows = [(k, scalars.get(k)) for k in self._headline]
            return rows, 0
        rows = list(scalars.items())
        return rows[:_SUMMARY_ROWS], max(0, len(rows) - _SUMMARY_ROWS)

    def summary_table(self) -> str:
        """A plain-text, one-screen table of the headline numbers, for the terminal."""
        rows, hidden = self._headline_rows()
        if not rows:
            return f"{self.title}\n(no results)"
        width = min(60, max(len(k) for k, _ in rows))
        lines = [self.title, "=" * max(len(self.title), width + 16)]
        for key, value in rows:
            shown = key if len(key) <= width else "…" + key[-(width - 1) :]
            lines.append(f"{shown:<{width}}  {format_value(key, value)}")
        if hidden:
            lines.append(f"… {hidden} more values in results.csv")
        return "\n".join(lines)

    # ------------------------------------------------------------------ writing
    def write(self) -> ReportFiles:
        """Write results.json, results.csv, tables/*.csv and report.html (plots are already saved)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        json_path = self.out_dir / "results.json"
        _atomic_write(json_path, (json.dumps(self._results, indent=2, allow_nan=False) + "\n").encode())

        csv_path = self.out_dir / "results.csv"
        sio = io.StringIO()
        if self._csv_frame is not None:
            self._csv_frame.to_csv(sio, lineterminator="\n")
        else:
            writer = csv.writer(sio, lineterminator="\n")
            writer.writerow(["key", "value"])
            for key, value in self.flat().items():
                writer.writerow([key, "" if value is None else value])
        _atomic_write(csv_path, sio.getvalue().encode())

        table_paths = []
        if self._tables:
            table_dir = self.out_dir / "tables"
            table_dir.mkdir(parents=True, exist_ok=True)
            for table in self._tables:
                path = table_dir / f"{table.name}.csv"
                _atomic_write(path, table.frame.to_csv().encode())
                table_paths.append(path)

        html_path = self.out_dir / "report.html"
        _atomic_write(html_path, self.to_html().encode("utf-8"))
        return ReportFiles(json_path, csv_path, html_path, [p.path for p in self._plots], table_paths)

    def to_html(self) -> str:
        """The self-contained HTML page as a string (inline CSS, plots inlined as base64 PNG)."""
        esc = html.escape
        sections = list(self._results)
        carded = set(self._card.plots) if self._card is not None else set()
        loose_plots = [p for p in self._plots if p.section is None and p.name not in carded]
        loose_tables = [t for t in self._tables if t.section is None]
        ids = _unique_ids(sections + (["Figures and tables"] if loose_plots or loose_tables else []))
        stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
        card = self._card
        in_card = carded
        parts: list[str] = []
        if ids:
            links = " ".join(f"<a href='#{i}'>{esc(s)}</a>" for s, i in ids.items())
            first = "<a href='#headline'>Headline</a> " if card is not None else ""
            parts.append(f"<nav>{first}{links}</nav>")
        if card is not None:
            findings = self._notes.get(card.findings_section, []) if card.findings_section else []
            figures = [_figure_html(p) for name in card.plots for p in self._plots if p.name == name]
            parts.append(card_html(card, findings, figures))
        rows, hidden = self._headline_rows()
        title = "Summary" if card is None else "Headline numbers by key"
        parts.append(f"<section id='summary'><h2>{title}</h2>")
        if rows:
            parts.append(_kv_table(rows))
            if hidden:
                parts.append(
                    f"<p class='meta'>{hidden} more values in the sections below and in results.csv.</p>"
                )
        else:
            parts.append("<p class='meta'>No results were recorded.</p>")
        parts.append("</section>")
        for section in sections:
            parts.append(f"<section id='{ids[section]}'><h2>{esc(section)}</h2>")
            for note in self._notes.get(section, []):
                if card is not None and section == card.findings_section:
                    break  # listed in the card
                label = "Finding." if section in self._finding_sections else "How to read this."
                parts.append(f"<div class='note'><strong>{label}</strong> {_note_html(note)}</div>")
            parts.extend(self._html.get(section, []))
            values = {} if section in self._hidden else self._results[section]
            scalars, matrices = _split_matrices(values)
            if scalars:
                flat = flatten(scalars, lists=False)
                parts.append(_kv_table([(f"{section}.{k}", v) for k, v in flat.items()], strip=f"{section}."))
            parts.extend(_matrix_html(f"{section}.{name}", m) for name, m in matrices.items())
            parts.extend(_table_html(t) for t in self._tables if t.section == section)
            parts.extend(_figure_html(p) for p in self._plots if p.section == section and p.name not in in_card)
            parts.append("</section>")
        if loose_plots or loose_tables:
            parts.append(f"<section id='{ids['Figures and tables']}'><h2>Figures and tables</h2>")
            parts.extend(_table_html(t) for t in loose_tables)
            parts.extend(_figure_html(p) for p in loose_plots)
            parts.append("</section>")
        parts.append(
            "<footer>Self-contained report: numbers in results.json / results.csv, "
            "plots in plots/.</footer></body></html>"
        )
        body = "\n".join(parts)
        n_tables = body.count("<table")  # every table on the page: summary, sections, grids, the caller's own
        head = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(self.title)}</title><style>{_CSS}</style></head><body>",
            f"<header><h1>{esc(self.title)}</h1><p class='meta'>Generated {stamp} &middot; "
            f"{len(sections)} section(s), {len(self._plots)} plot(s), {n_tables} table(s)</p></header>",
        ]
        return "\n".join(head) + "\n" + body + "\n"


_CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328;
background:#f6f8fa;margin:0;line-height:1.5}
header,nav,section,footer{max-width:1100px;margin:0 auto;padding:0 24px}
header{padding-top:24px}h1{margin:0 0 4px;font-size:1.8em}
h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:32px}
.meta{color:#656d76;font-size:.9em;margin:0}
nav{padding-top:8px;padding-bottom:8px}nav a{margin-right:14px;color:#0969da;text-decoration:none}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;margin-top:20px;padding-bottom:16px}
table{border-collapse:collapse;margin:12px 0;font-size:.92em}
th,td{border:1px solid #d0d7de;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f3f6}tr:nth-child(even) td{background:#fafbfc}
td.num{text-align:right;font-variant-numeric:tabular-nums;font-family:ui-monospace,Menlo,Consolas,monospace}
.note{background:#eef6ff;border-left:4px solid #0969da;padding:8px 12px;margin:12px 0;border-radius:4px}
figure{margin:16px 0;text-align:center}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{color:#444c56;font-size:.9em;margin-top:6px}
.caption{color:#444c56;font-size:.9em;margin-bottom:0}
footer{color:#656d76;font-size:.85em;padding:24px}
section.card{border:2px solid #0969da}.verdict{font-size:1.05em;margin:12px 0}
.warn{background:#fff8c5;border-left:4px solid #bf8700;padding:8px 12px;margin:12px 0;border-radius:4px}
ul.findings li{margin:4px 0}
"""


def _unique_ids(names: list[str]) -> dict[str, str]:
    ids: dict[str, str] = {}
    used: set[str] = {"summary"}
    for name in names:
        base = "sec-" + (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "section")
        slug, n = base, 2
        while slug in used:
            slug, n = f"{base}-{n}", n + 1
        used.add(slug)
        ids[name] = slug
    return ids


def _note_html(note: str) -> str:
    if _HTML_TAG_RE.search(note):
        return note  # the caller's own HTML
    paragraphs = [p.strip() for p in note.split("\n\n") if p.strip()]
    return "<br>".join(html.escape(p) for p in paragraphs)


def _split_matrices(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, dict[str, Any]]]]:
    """Separate the entries that are grids — a dict of at least two dicts of scalars sharing their keys, such as
    corruption → severity → error — so the page shows them as 2-D tables instead of one row per leaf."""
    scalars: dict[str, Any] = {}
    matrices: dict[str, dict[str, dict[str, Any]]] = {}
    for key, value in values.items():
        rows = value if isinstance(value, dict) else None
        is_grid = (
            rows is not None and len(rows) >= 2 and all(isinstance(r, dict) and r for r in rows.values())
            and all(not isinstance(v, dict | list) for r in rows.values() for v in r.values())
            and len({tuple(r) for r in rows.values()}) == 1
        )
        if is_grid:
            matrices[key] = rows  # type: ignore[assignment]
        else:
            scalars[key] = value
    return scalars, matrices


def _matrix_html(key: str, rows: dict[str, dict[str, Any]]) -> str:
    columns = list(next(iter(rows.values())))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    for name, row in rows.items():
        cells = []
        for c in columns:
            v = row[c]
            cls = " class='num'" if isinstance(v, int | float) and not isinstance(v, bool) else ""
            cells.append(f"<td{cls}>{html.escape(format_value(key, v))}</td>")
        body.append(f"<tr><th>{html.escape(str(name))}</th>{''.join(cells)}</tr>")
    title = html.escape(key.split(".", 1)[-1])
    return f"<p class='caption'><strong>{title}</strong></p><table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def _kv_table(rows: list[tuple[str, Any]], strip: str = "") -> str:
    body = []
    for key, value in rows:
        shown = key[len(strip) :] if strip and key.startswith(strip) else key
        cls = " class='num'" if isinstance(value, int | float) and not isinstance(value, bool) else ""
        body.append(
            f"<tr><td>{html.escape(shown)}</td><td{cls}>{html.escape(format_value(key, value))}</td></tr>"
        )
    return "<table class='kv'><tr><th>metric</th><th>value</th></tr>" + "".join(body) + "</table>"


def _table_html(table: _Table) -> str:
    def fmt(v: Any) -> str:
        return format_value("", float(v)) if isinstance(v, float | np.floating) else str(v)

    inner = table.frame.to_html(escape=True, float_format=fmt, border=0, na_rep="n/a")
    cap = f"<p class='caption'><strong>{html.escape(table.name)}</strong>"
    cap += f": {html.escape(table.caption)}</p>" if table.caption else "</p>"
    return cap + inner


def _figure_html(plot: _Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    alt = html.escape(plot.caption or plot.name)
    cap = html.escape(plot.caption) if plot.caption else html.escape(plot.name)
    return (
        f"<figure><img src='data:image/png;base64,{data}' alt='{alt}'><figcaption>{cap}</figcaption></figure>"
    )
