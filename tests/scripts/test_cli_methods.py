"""``causalcl --methods a,b``: one folder per method plus one combined report whose table is the per-method results."""

import csv
import json

import pytest
import yaml

from causalcl.cli import main
from causalcl.methods import METHODS

TINY = ["--steps", "2", "--batch-size", "16", "--set", "data.options.n=128", "--set", "data.image_size=16",
        "--set", "eval.knn_k=20", "--set", "method.projector=[64,32]", "--diagnostics", "linear,knn"]
SECOND = next((m for m in ("barlow_twins", "byol") if m in METHODS), None)
needs_two = pytest.mark.skipif(SECOND is None, reason="needs barlow_twins or byol in METHODS")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSALCL_CACHE", str(tmp_path / "cache"))


@needs_two
def test_two_methods_side_by_side_then_resume(tmp_path, capsys):
    out = tmp_path / "zoo"
    methods = ["simclr", SECOND]
    assert main(["--methods", ",".join(methods), *TINY, "--set", "method.temperature=0.3", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "method.temperature applies to simclr only" in captured.err
    for m in methods:
        for name in ("config.yaml", "train_log.csv", "checkpoint.pt", "results.json", "report.html"):
            assert (out / m / name).is_file(), f"{m}/{name}"
    saved = {m: yaml.safe_load((out / m / "config.yaml").read_text())["method"] for m in methods}
    assert saved["simclr"]["temperature"] == 0.3 and "temperature" not in saved[SECOND]
    assert saved["simclr"]["projector"] == saved[SECOND]["projector"] == [64, 32]
    for name in ("report.html", "results.json", "results.csv", "plots/metrics.png", "plots/loss_curves.png"):
        assert (out / name).is_file(), name

    per_method = {m: json.loads((out / m / "results.json").read_text()) for m in methods}
    combined = json.loads((out / "results.json").read_text())
    assert combined["run"]["methods"] == methods
    table = combined["comparison"]
    for key, section, leaf in (("linear_probe.accuracy", "linear_probe", "accuracy"),
                               ("linear_probe.spurious_gap", "linear_probe", "spurious_gap"),
                               ("knn.accuracy", "knn", "accuracy")):
        assert table[key] == {m: per_method[m][section][leaf] for m in methods}, key
    assert "foreground.bg_gap" not in table  # not diagnosed, so no row
    for m in methods:
        assert combined["methods"][m]["results"] == per_method[m]
        assert combined["methods"][m]["report"] == f"{m}/report.html"

    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["metric", "label", *methods]
    by_key = {r["metric"]: r for r in rows}
    for m in methods:
        assert float(by_key["knn.accuracy"][m]) == pytest.approx(per_method[m]["knn"]["accuracy"])
        assert float(by_key["baselines.raw_pixels.linear_probe.accuracy"][m]) == pytest.approx(
            per_method[m]["baselines"]["raw_pixels"]["linear_probe"]["accuracy"])

    page = (out / "report.html").read_text()
    for m in methods:
        assert f"href='{m}/report.html'" in page
    assert page.count("data:image/png;base64,") == 2  # bars and loss curves
    acc = per_method["simclr"]["linear_probe"]["accuracy"]
    assert f"{100 * acc:.2f}%" in page
    summary = captured.out.rsplit("side by side", 1)[1]
    assert "linear probe accuracy" in summary and "kNN accuracy" in summary
    assert all(m[:11] in summary for m in methods) and f"{100 * acc:.2f}%" in summary

    # --resume: both runs finished with the same config, so they are reused, not trained again
    stamp = (out / "simclr" / "checkpoint.pt").stat().st_mtime_ns
    assert main(["--methods", ",".join(methods), *TINY, "--set", "method.temperature=0.3", "--out", str(out),
                 "--resume"]) == 0
    assert capsys.readouterr().out.count("reusing") == 2
    assert (out / "simclr" / "checkpoint.pt").stat().st_mtime_ns == stamp
    assert json.loads((out / "results.json").read_text())["comparison"] == table


@pytest.mark.parametrize("argv,message", [
    (["--methods", "simclr,simclrr"], "did you mean 'simclr'?"),
    (["--methods", "simclr,simclr"], "more than once"),
    (["--methods", "simclr", "--set", "method.temprature=0.1"], "did you mean 'method.temperature'"),
    (["--methods", "simclr", "--set", "method.temperature=-1"], "temperature"),
])
def test_bad_methods_fail_before_training(tmp_path, capsys, argv, message):
    out = tmp_path / "x"
    assert main([*argv, *TINY, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not (out / "simclr" / "checkpoint.pt").exists() and not (out / "simclr" / "train_log.csv").exists()


def test_method_and_methods_are_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--method", "simclr", "--methods", "simclr", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def _fake_run(folder, acc, gap, energy, loss0):
    folder.mkdir(parents=True)
    results = {"run": {"steps": 20, "train_seconds": 1.5},
               "linear_probe": {"accuracy": acc, "spurious_gap": gap},
               "foreground": {"bg_gap": 0.1, "variants": {"only_fg": 0.3}},
               "grounding": {"probe": {"energy_in_mask": energy}},
               "identifiability": {"trained": {"cls": {"score": 0.4, "metric": "accuracy", "role": "content"}}},
               "spectrum": {"values": [3.0, 2.0]}}
    (folder / "results.json").write_text(json.dumps(results))
    (folder / "train_log.csv").write_text(f"step,loss,lr\n10,{loss0},0.1\n20,{loss0 / 2},0.1\n")
    return results


def test_comparison_report_from_run_folders(tmp_path):
    from causalcl.diagnostics.compare import side_by_side, summary_text, write_comparison

    runs = {"a": tmp_path / "a", "b": tmp_path / "b"}
    res = {"a": _fake_run(runs["a"], 0.5, 0.2, 0.3, 5.0), "b": _fake_run(runs["b"], 0.25, 0.05, None, -0.5)}
    del res["b"]["grounding"]  # a metric one method lacks
    (runs["b"] / "results.json").write_text(json.dumps(res["b"]))
    report = write_comparison(tmp_path, runs, run_info={"dataset": "shapes"}, failed={"c": "non-finite loss"})
    table = json.loads((tmp_path / "results.json").read_text())["comparison"]
    assert table["linear_probe.accuracy"] == {"a": 0.5, "b": 0.25}
    assert table["grounding.probe.energy_in_mask"] == {"a": 0.3, "b": None}
    assert "knn.accuracy" not in table
    page = (tmp_path / "report.html").read_text()
    assert "<strong>50.00%</strong>" in page and "<strong>5.00%</strong>" in page  # best accuracy, lowest gap
    assert "n/a" in page and "non-finite loss" in page and "href='b/report.html'" in page
    assert "Highest linear probe accuracy: a (50.00%)" in page
    with open(tmp_path / "results.csv", newline="") as fh:
        rows = {r["metric"]: r for r in csv.DictReader(fh)}
    assert rows["linear_probe.spurious_gap"]["b"] == "0.05" and rows["grounding.probe.energy_in_mask"]["b"] == ""
    assert "spectrum.values" not in rows  # lists are not compared
    text = summary_text(side_by_side(res), ["a", "b"])
    assert len(text.splitlines()) < 25 and "50.00%*" in text and "n/a" in text
    assert report.results["run"]["failed"] == {"c": "non-finite loss"}


def test_finished_runs_are_reused_only_with_the_same_config(tmp_path):
    import os

    from causalcl.multi import finished
    from causalcl.train.config import Config, save_yaml

    config = Config()
    config.set("train.steps", 5)
    folder = tmp_path / "simclr"
    folder.mkdir()
    save_yaml(config, folder / "config.yaml")
    (folder / "checkpoint.pt").write_bytes(b"x")
    results = folder / "results.json"
    results.write_text(json.dumps({"run": {"steps": 5, "total_steps": 5, "stopped_early": False}}))
    assert finished(config, folder)
    other = Config()
    other.set("train.steps", 6)
    assert not finished(other, folder)  # a changed config trains again
    stamp = results.stat().st_mtime_ns
    os.utime(folder / "checkpoint.pt", ns=(stamp + 10**9, stamp + 10**9))
    assert not finished(config, folder)  # a checkpoint newer than the results: diagnosis did not finish
    os.utime(folder / "checkpoint.pt", ns=(stamp, stamp))
    results.write_text(json.dumps({"run": {"steps": 3, "total_steps": 5, "stopped_early": True}}))
    assert not finished(config, folder)  # stopped by the time limit: --resume continues it


def _with_baselines(results, random_acc, raw_acc):
    results["baselines"] = {"random_encoder": {"linear_probe": {"accuracy": random_acc, "spurious_gap": 0.02}},
                            "raw_pixels": {"linear_probe": {"accuracy": raw_acc, "spurious_gap": 0.01},
                                           "what": "raw pixels"}}
    results["identifiability"]["random"] = {"cls": {"score": 0.15, "metric": "accuracy", "role": "content"}}
    return results


def test_comparison_has_baseline_columns_and_flags_methods_below_the_random_encoder(tmp_path):
    """BYOL-like: the lowest spurious gap but a probe below the random encoder is never 'best', and is flagged."""
    from causalcl.diagnostics.compare import comparison_findings, side_by_side, summary_text, write_comparison

    runs = {"good": tmp_path / "good", "byol": tmp_path / "byol"}
    res = {"good": _fake_run(runs["good"], 0.40, 0.20, 0.3, 5.0), "byol": _fake_run(runs["byol"], 0.143, 0.01, 0.2, 1)}
    for name, r in res.items():
        _with_baselines(r, 0.166, 0.11)
        (runs[name] / "results.json").write_text(json.dumps(r))
    write_comparison(tmp_path, runs)
    page = (tmp_path / "report.html").read_text()
    assert "<th class='baseline'>random encoder</th>" in page and "<th class='baseline'>raw pixels</th>" in page
    assert "16.60%" in page and "11.00%" in page and "15.00%" not in page.split("random encoder")[0]
    assert "<strong>1.00%</strong>" not in page and "<strong>20.00%</strong>" in page  # best gap among the eligible
    table = side_by_side(res)
    sentences = comparison_findings(table, res)
    assert sentences[0].startswith("byol is below the random encoder on the content probe (14.30% vs 16.60%)")
    assert "Lowest spurious gap: good (20.00%)." in sentences
    assert "byol is below the random encoder" in page
    text = summary_text(table, list(res), results=res)
    assert "(random enc…" in text.splitlines()[0] and "(raw pixels)" in text.splitlines()[0]
    assert "1.00%*" not in text and "20.00%*" in text and "16.60%" in text


def test_no_best_when_no_method_beats_the_random_encoder(tmp_path):
    from causalcl.diagnostics.compare import comparison_findings, side_by_side

    res = {m: _with_baselines(_fake_run(tmp_path / m, acc, 0.1 * acc, 0.3, 1.0), 0.5, 0.2)
           for m, acc in (("a", 0.3), ("b", 0.4))}
    sentences = comparison_findings(side_by_side(res), res)
    assert sentences[-1] == "No method beats the random encoder on the content probe: no best value is marked."
    assert len(sentences) == 3
