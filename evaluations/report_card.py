"""The first card of a report: a one-paragraph verdict, a compact table of the main metrics against their
baselines, the findings and the plots a reader needs first (the loss curve).

The table has one row per metric and the columns trained / random encoder / raw data / chance, one unit per row
(named in the row label): ``"%"`` shows fractions as percent (accuracies, errors), ``"points"`` shows a
difference of two fractions as signed percentage points (gaps), ``""`` shows the number as it is. An empty cell
(``—``) means the protocol has no such baseline for that metric.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

__all__ = ["Card", "CardRow", "card_html", "card_text", "format_cell"]

UNITS = ("%", "points", "")


@dataclass
class CardRow:
    """One metric of the card's table (values as stored: fractions for ``%`` and ``points``)."""

    label: str
    trained: float | None
    random: float | None = None
    raw: float | None = None
    chance: float | None = None
    unit: str = "%"
    key: str = ""  # the dotted results key, shown on hover

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit: expected one of {UNITS}, got {self.unit!r}")


@dataclass
class Card:
    """What the first card shows.

    Args:
        verdict: the one-paragraph verdict (plain text).
        rows: the compact table.
        warning: a sentence shown above the verdict (e.g. training was cut by a time limit); None = none.
        findings_section: the report section whose findings the card lists (and that section then omits).
        findings_title: the heading of that list (e.g. "Findings (from an under-trained encoder)").
        plots: names of plots shown in the card (and not again in their section), e.g. the loss curve.
        columns: the headers of the four value columns.
    """

    verdict: str
    rows: list[CardRow] = field(default_factory=list)
    warning: str | None = None
    findings_section: str | None = None
    findings_title: str = "Findings"
    plots: tuple[str, ...] = ()
    columns: tuple[str, str, str, str] = ("trained", "random encoder", "raw pixels", "chance")


def format_cell(value: float | None, unit: str) -> str:
    """``0.353, "%"`` → ``35.3``; ``0.2, "points"`` → ``+20.0``; ``None`` → ``—``."""
    if value is None:
        return "—"
    if unit == "%":
        return f"{100 * value:.1f}"
    if unit == "points":
        return f"{100 * value:+.1f}"
    return f"{value:.4g}"


def _label(row: CardRow) -> str:
    return f"{row.label} ({row.unit})" if row.unit else row.label


def card_html(card: Card, findings: list[str], figures: list[str]) -> str:
    """The card as an HTML section (``findings``: plain sentences; ``figures``: ready ``<figure>`` blocks)."""
    esc = html.escape
    parts = ["<section id='headline' class='card'><h2>Headline</h2>"]
    if card.warning:
        parts.append(f"<p class='warn'><strong>Under-trained.</strong> {esc(card.warning)}</p>")
    parts.append(f"<p class='verdict'>{esc(card.verdict)}</p>")
    if card.rows:
        head = "".join(f"<th>{esc(c)}</th>" for c in card.columns)
        body = []
        for row in card.rows:
            cells = "".join(f"<td class='num'>{format_cell(v, row.unit)}</td>"
                            for v in (row.trained, row.random, row.raw, row.chance))
            body.append(f"<tr><td title='{esc(row.key)}'>{esc(_label(row))}</td>{cells}</tr>")
        parts.append(f"<table class='card'><tr><th>metric</th>{head}</tr>{''.join(body)}</table>")
        parts.append("<p class='meta'>%: percent of the test set; points: a difference of two percentages; "
                     "— : no such baseline in the protocol; chance: what a constant guess of the majority class scores "
                     "on the samples that row is scored on (a read-out scored on half of the test split can have a "
                     "different chance from the probes').</p>")
    if findings:
        parts.append(f"<h3>{esc(card.findings_title)}</h3><ul class='findings'>"
                     + "".join(f"<li>{esc(f)}</li>" for f in findings) + "</ul>")
    parts.extend(figures)
    parts.append("</section>")
    return "\n".join(parts)


def card_text(card: Card) -> str:
    """The card for the terminal: the warning, the verdict and the compact table."""
    lines = []
    if card.warning:
        lines += [f"UNDER-TRAINED: {card.warning}", ""]
    lines += [card.verdict, ""]
    if card.rows:
        width = max(len(_label(r)) for r in card.rows) + 2
        lines.append(f"{'metric':<{width}}" + "".join(f"{c:>16}" for c in card.columns))
        for row in card.rows:
            lines.append(f"{_label(row):<{width}}" + "".join(
                f"{format_cell(v, row.unit):>16}" for v in (row.trained, row.random, row.raw, row.chance)))
    return "\n".join(lines)
