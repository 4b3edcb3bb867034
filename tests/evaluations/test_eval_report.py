"""Report: files written, JSON round trip, CSV flattening, self-contained HTML with inlined plots."""

from __future__ import annotations

import base64
import csv
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from evaluations.report import Report, flatten, to_jsonable


def _figure():
    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([1, 2, 3], [3, 1, 2])
    return fig


def _filled(tmp_path):
    rep = Report(tmp_path / "out", title="Test <run>")
    rep.add("linear_probe", {"accuracy": np.float32(0.873), "weight_decay": 1e-4, "n_iter": np.int64(12)})
    rep.add("knn", {"k200": {"accuracy": torch.tensor(0.5)}, "spectrum": torch.tensor([3.0, 2.0, 1.0])})
    rep.add("knn", {"k200": {"top5": 0.9}, "k20": {"accuracy": float("nan")}})  # merges
    rep.add_text("knn", "Weighted kNN on L2-normalised features; a < b is escaped.")
    rep.add_plot("spectrum", _figure(), caption="log singular values", section="knn")
    rep.add_plot("loose", _figure())
    rep.add_table(
        "fg_bg",
        pd.DataFrame({"full": [0.9, 0.7], "fg": [0.8, 0.85]}, index=["full", "fg"]),
        caption="train x test",
        section="linear_probe",
    )
    return rep


def test_write_creates_all_files_and_json_round_trips(tmp_path):
    rep = _filled(tmp_path)
    files = rep.write()
    for path in [files.json, files.csv, files.html, *files.plots, *files.tables]:
        assert path.is_file() and path.stat().st_size > 0
    assert sorted(p.name for p in files.plots) == ["loose.png", "spectrum.png"]
    loaded = json.loads(files.json.read_text())
    assert loaded == rep.results
    assert loaded["linear_probe"]["accuracy"] == pytest.approx(0.873, rel=1e-6)
    assert isinstance(loaded["linear_probe"]["n_iter"], int)
    assert loaded["knn"]["k200"] == {"accuracy": 0.5, "top5": 0.9}  # nested merge kept both
    assert loaded["knn"]["k20"]["accuracy"] is None  # NaN -> null
    assert loaded["knn"]["spectrum"] == [3.0, 2.0, 1.0]


def test_csv_is_flat_key_value(tmp_path):
    files = _filled(tmp_path).write()
    with open(files.csv, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["key", "value"]
    table = dict(rows[1:])
    assert float(table["linear_probe.accuracy"]) == pytest.approx(0.873, rel=1e-6)
    assert float(table["knn.k200.top5"]) == 0.9
    assert table["knn.k20.accuracy"] == ""
    assert float(table["knn.spectrum.2"]) == 1.0


def test_html_is_self_contained_with_inlined_plots(tmp_path):
    rep = _filled(tmp_path)
    files = rep.write()
    page = files.html.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "Test &lt;run&gt;" in page and "<run>" not in page
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 2
    assert base64.b64decode(images[0]) == (tmp_path / "out" / "plots" / "spectrum.png").read_bytes()
    assert "log singular values" in page  # caption
    assert "87.30%" in page  # accuracy shown as a percentage
    assert "How to read this" in page and "a &lt; b is escaped" in page
    assert "train x test" in page and "<table" in page
    assert not re.search(r"(src|href)=['\"]?(https?:|//|[a-z_]+/)", page)  # no external assets
    assert "<link" not in page and "<script" not in page


def test_summary_table_lists_headline_numbers(tmp_path):
    rep = _filled(tmp_path)
    text = rep.summary_table()
    assert "Test <run>" in text
    assert re.search(r"linear_probe\.accuracy\s+87\.30%", text)
    assert "knn.k20.accuracy" in text and "n/a" in text
    assert "spectrum" not in text.split("\n", 2)[2]  # lists are not headline numbers
    assert len(text.splitlines()) < 45
    rep.set_headline(["linear_probe.accuracy"])
    assert len(rep.summary_table().splitlines()) == 3


def test_to_jsonable_and_flatten():
    obj = {
        "a": np.arange(3),
        "b": {"c": np.float64(np.inf), "d": torch.tensor([[1, 2]])},
        3: (np.bool_(True),),
    }
    out = to_jsonable(obj)
    assert out == {"a": [0, 1, 2], "b": {"c": None, "d": [[1, 2]]}, "3": [True]}
    json.dumps(out, allow_nan=False)
    assert flatten(out) == {
        "a.0": 0,
        "a.1": 1,
        "a.2": 2,
        "b.c": None,
        "b.d.0.0": 1,
        "b.d.0.1": 2,
        "3.0": True,
    }
    assert not any(isinstance(v, float) and math.isnan(v) for v in flatten(out).values())


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda r: r.add("s", [1, 2]), "values"),
        (lambda r: r.add("", {"a": 1}), "section"),
        (lambda r: r.add_plot("../evil", _figure()), "name"),
        (lambda r: r.add_plot("ok", "not a figure"), "fig"),
        (lambda r: r.add_table("t", {"a": [1]}), "df"),
        (lambda r: r.add_text("s", 3), "html_or_text"),
    ],
)
def test_bad_inputs_raise(tmp_path, call, match):
    with pytest.raises(ValueError, match=match):
        call(Report(tmp_path))


def test_grids_are_rendered_as_2d_tables(tmp_path):
    from evaluations.report import Report

    report = Report(tmp_path)
    report.add("robustness", {"clean_error": 0.1, "table": {"fog": {"1": 0.2, "2": 0.3}, "snow": {"1": 0.4, "2": 0.5}}})
    report.set_headline(["robustness.clean_error"])
    page = report.to_html()
    assert "<th>fog</th>" in page and "<th>snow</th>" in page  # one row per corruption
    assert "table.fog.1" not in page  # not flattened into one row per leaf
    assert "clean_error" in page
    report.write()
    import json

    assert json.loads((tmp_path / "results.json").read_text())["robustness"]["table"]["snow"]["2"] == 0.5


def test_html_blocks_hidden_sections_and_custom_csv(tmp_path):
    report = Report(tmp_path)
    report.add("run", {"steps": 3})
    report.add("comparison", {"linear_probe.accuracy": {"a": 0.25, "b": 0.5}}, show=False)
    report.add_html("comparison", "<table id='mine'><tr><td>a &lt; b</td></tr></table>")
    report.set_csv(pd.DataFrame({"a": [0.25], "b": [0.5]}, index=pd.Index(["linear_probe.accuracy"], name="metric")))
    page = report.to_html()
    assert "<table id='mine'>" in page  # inserted as given, not escaped
    assert "linear_probe.accuracy.a" not in page and "25.00%" not in page  # hidden values stay off the page
    assert "comparison" not in report.summary_table()  # nor in the default summary
    report.write()
    assert json.loads((tmp_path / "results.json").read_text())["comparison"]["linear_probe.accuracy"]["b"] == 0.5
    with open(tmp_path / "results.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [["metric", "a", "b"], ["linear_probe.accuracy", "0.25", "0.5"]]
    with pytest.raises(ValueError, match="html_block"):
        report.add_html("comparison", 3)
    with pytest.raises(ValueError, match="df"):
        report.set_csv({"a": [1]})
