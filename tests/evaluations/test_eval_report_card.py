"""The report's first card (``evaluations.report_card``) and how ``Report`` places it: first, with the findings
of its section and its plots, which the sections then leave out; the header counts every table on the page."""

import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from evaluations.report import Report
from evaluations.report_card import Card, CardRow, card_text, format_cell


def test_format_cell_one_unit_per_row():
    assert format_cell(0.353, "%") == "35.3"
    assert format_cell(0.2, "points") == "+20.0"
    assert format_cell(-0.008, "points") == "-0.8"
    assert format_cell(2.1349, "") == "2.135"
    assert format_cell(None, "%") == "—"
    with pytest.raises(ValueError, match="unit"):
        CardRow("x", 0.1, unit="fraction")


def _report(tmp_path, card):
    report = Report(tmp_path, title="t")
    report.add("run", {"steps": 3})
    report.add_finding("run", "The probe leans on the background.")
    report.add("linear_probe", {"accuracy": 0.4, "spurious_gap": 0.2}, note="How the probe works.")
    report.add("robustness", {"grid": {"fog": {"1": 0.1, "2": 0.2}, "snow": {"1": 0.3, "2": 0.4}}})
    report.add_table("extra", pd.DataFrame({"a": [1.0]}), section="robustness")
    fig, ax = plt.subplots()
    ax.plot([1, 2], [2, 1])
    report.add_plot("loss_curve", fig, caption="Training loss per logged step.")
    plt.close(fig)
    if card is not None:
        report.set_card(card)
    return report.to_html()


def test_card_comes_first_with_findings_and_the_loss_curve(tmp_path):
    card = Card("simclr reaches 40.0% on the content probe.",
                [CardRow("content probe accuracy", 0.4, 0.2, 0.1, 0.125, "%", "linear_probe.accuracy"),
                 CardRow("spurious gap", 0.2, 0.01, 0.0, 0.0, "points")],
                findings_section="run", plots=("loss_curve",))
    page = _report(tmp_path, card)
    body = page.split("</header>", 1)[1]
    assert body.index("id='headline'") < body.index("id='summary'") < body.index("id='sec-run'")
    headline = body.split("id='headline'", 1)[1].split("</section>", 1)[0]
    assert "simclr reaches 40.0%" in headline and "content probe accuracy (%)" in headline
    assert "<td class='num'>40.0</td><td class='num'>20.0</td><td class='num'>10.0</td><td class='num'>12.5</td>" \
        in headline
    assert "spurious gap (points)" in headline and "+20.0" in headline
    assert "chance: what a constant guess of the majority class scores on the samples that row is scored on" \
        in headline  # why two rows' chance can differ
    assert "The probe leans on the background." in headline and "Training loss per logged step." in headline
    assert page.count("The probe leans on the background.") == 1  # not again in the run section
    assert page.count("<figcaption>Training loss per logged step.") == 1 and "Figures and tables" not in page
    assert "Under-trained" not in page


def test_header_counts_every_table(tmp_path):
    for card in (None, Card("v", [CardRow("a", 0.5)])):
        page = _report(tmp_path, card)
        counted = int(re.search(r"(\d+) table\(s\)", page).group(1))
        assert counted == page.split("</header>", 1)[1].count("<table") and counted >= 4


def test_undertrained_card_says_so_in_words(tmp_path):
    card = Card("v", [], warning="The time limit stopped training at step 7 of 450 planned.",
                findings_section="run", findings_title="Findings (from an under-trained encoder)")
    page = _report(tmp_path, card)
    headline = page.split("id='headline'", 1)[1].split("</section>", 1)[0]
    assert "<strong>Under-trained.</strong> The time limit stopped training at step 7 of 450" in headline
    assert "Findings (from an under-trained encoder)" in headline
    text = card_text(card)
    assert text.startswith("UNDER-TRAINED: The time limit stopped training")


def test_set_card_refuses_other_objects(tmp_path):
    with pytest.raises(ValueError, match="card: expected"):
        Report(tmp_path).set_card({"verdict": "x"})


def test_variant_accuracies_and_cam_fractions_read_as_percent():
    from evaluations.report import format_value

    assert format_value("foreground.variants.mixed_same", 0.224) == "22.40%"
    assert format_value("grounding.probe.energy_in_mask", 0.18) == "18.00%"
    assert format_value("grounding.probe.pointing_game_baseline", 0.5) == "50.00%"
    assert format_value("spectrum.alpha", 0.5) == "0.5"
