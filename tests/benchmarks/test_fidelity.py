"""The fidelity study: its statistics against scipy, the verdict rule, and a smoke run that resumes."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
from scipy import stats

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


claims = load("fidelity_claims")


@pytest.mark.parametrize("values", [[0.1, 0.3, 0.2], [1.0, -2.0], [0.5, 0.4, 0.45, 0.6, 0.2]])
def test_interval_is_the_student_t_interval(values):
    mean, low, high = claims.interval(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=sum(values) / len(values), scale=stats.sem(values))
    assert mean == pytest.approx(sum(values) / len(values))
    assert (low, high) == pytest.approx(expected, rel=1e-3)


def test_interval_needs_two_values():
    assert math.isnan(claims.interval([0.3])[1]) and math.isnan(claims.interval([])[0])


@pytest.mark.parametrize("low, high, direction, threshold, expected", [
    (0.1, 0.3, +1, 0.0, "reproduced"), (-0.3, -0.1, +1, 0.0, "refuted"), (-0.1, 0.2, +1, 0.0, "inconclusive"),
    (-0.3, -0.1, -1, 0.0, "reproduced"), (0.1, 0.3, -1, 0.0, "refuted"), (0.6, 0.9, +1, 0.5, "reproduced"),
    (0.2, 0.45, +1, 0.5, "refuted"), (math.nan, math.nan, +1, 0.0, "too few seeds")])
def test_verdict_rule(low, high, direction, threshold, expected):
    assert claims.verdict(low, high, direction, threshold) == expected


def test_combine():
    assert claims.combine(["reproduced", "reproduced"], False) == "reproduced"
    assert claims.combine(["reproduced", "inconclusive"], False) == "inconclusive"
    assert claims.combine(["reproduced", "refuted"], False) == "refuted"
    assert claims.combine(["refuted", "reproduced"], True) == "reproduced"
    assert claims.combine(["refuted", "refuted"], True) == "refuted"
    assert claims.combine([], False) == "too few seeds"
    assert claims.combine(["reproduced", "too few seeds"], False) == "too few seeds"  # not decided yet
    assert claims.combine(["refuted", "too few seeds"], False) == "refuted"  # one refuted part decides it
    assert claims.combine(["refuted", "too few seeds"], True) == "too few seeds"
    assert claims.combine(["inconclusive", "refuted"], True) == "inconclusive"


def test_evaluate_pairs_by_seed_and_decides():
    """C6 from made-up runs: a large paired effect is reproduced even when the seeds differ a lot in level."""
    runs = {"simclr": {0: {"content": 0.20, "spurious_gap": 0.10}, 1: {"content": 0.40, "spurious_gap": 0.12},
                       2: {"content": 0.30, "spurious_gap": 0.11}},
            "simclr+interventional": {0: {"content": 0.50, "spurious_gap": 0.01},
                                      1: {"content": 0.71, "spurious_gap": 0.02},
                                      2: {"content": 0.59, "spurious_gap": 0.015}}}
    table = {row["claim"]: row for row in claims.evaluate(runs)}
    c6 = table["C6"]
    assert c6["verdict"] == "reproduced"
    assert c6["parts"][0]["values"] == pytest.approx([0.30, 0.31, 0.29])
    assert table["C2"]["verdict"] == "too few seeds" and table["C2"]["parts"][0]["seeds"] == []
    # C7: the share of the gap closed, per seed
    runs["icl_msr"] = {s: {"content": runs["simclr"][s]["content"] + 0.1} for s in range(3)}
    c7 = {row["claim"]: row for row in claims.evaluate(runs)}["C7"]
    icl = [p for p in c7["parts"] if p["name"].startswith("icl_msr")][0]
    assert icl["values"] == pytest.approx([0.1 / 0.3, 0.1 / 0.31, 0.1 / 0.29])
    assert icl["verdict"] == "refuted" and c7["verdict"] == "too few seeds"  # the other candidates have no runs
    assert "| **C6** reproduced |" in claims.markdown(claims.evaluate(runs))


@pytest.mark.slow  # 4 tiny runs with their data generated afresh and every measurement: ≈ 1–2 min on 2 quiet cores
def test_quick_study_runs_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CAUSALCL_CACHE", str(tmp_path / "cache"))
    fidelity = load("fidelity")
    argv = ["--quick", "--workers", "1", "--results-dir", str(tmp_path / "res"), "--summary-dir",
            str(tmp_path / "sum"), "--run-dir", str(tmp_path / "runs"),
            "--configs", "simclr,simclr+interventional"]
    assert fidelity.main(argv) == 0
    first = capsys.readouterr().out
    assert "start foreground twin of simclr seed 0" in first and "done foreground twin of simclr seed 1" in first
    summary = json.loads((tmp_path / "sum" / "fidelity_quick.json").read_text())
    assert summary["finished_runs"] == 4  # 2 configurations, 2 seeds
    assert (tmp_path / "sum" / "fidelity_quick.png").is_file()
    result = json.loads((tmp_path / "res" / "simclr" / "seed0.json").read_text())
    for key in ("content", "spurious_gap", "bg_gap", "only_fg", "mixed_rand", "mce", "rendition_error", "rankme",
                "n_sv", "looc_readout", "fg_gap"):
        assert isinstance(result["metrics"][key], int | float), key
    assert result["wall_s"] > 0 and result["cpu_s"] > 0 and result["steps"] == 6
    metrics = result["metrics"]
    assert metrics["looc_readout_circular"] == pytest.approx((metrics["readout_rotation_per_shape"] + sum(
        metrics[f"readout_circular_{k}"] for k in ("fg_hue", "bg_hue", "brightness"))) / 4)
    assert result["metrics"]["readout_circular_brightness"] == pytest.approx(result["metrics"]["readout_brightness"])
    assert result["train_seconds_all_parts"] > 0 and result["twin_train_seconds_all_parts"] > 0
    assert result["twin_wall_s"] > 0 and set(result["metrics"]["full_vs_foreground"]) == {
        "train: full", "train: foreground"}
    # a run measured before a late metric existed gets it from its final checkpoint, equal to a fresh measurement;
    # a run without its twin (a --subset study's) gets the twin added, equal to the one measured with the run
    path = tmp_path / "res" / "simclr" / "seed0.json"
    late = {k: result["metrics"].pop(k) for k in list(result["metrics"]) if "circular" in k or "per_shape" in k}
    seconds = result.pop("train_seconds_all_parts")  # as a run trained before the sum was recorded
    twin = {k: result["metrics"].pop(k) for k in ("fg_gap", "full_vs_foreground")}
    path.write_text(json.dumps(result))
    assert fidelity.main(argv) == 0  # nothing is trained again
    out = capsys.readouterr().out
    assert "4 finished run(s) reused, 0 to train, 1 foreground twin(s) to add" in out
    assert "simclr seed 0: looc_readout_circular, readout_rotation_per_shape measured on its final checkpoint" in out
    filled = json.loads(path.read_text())
    assert filled["late_metrics"]["keys"] == sorted(late)
    assert filled["train_seconds_all_parts"] == pytest.approx(seconds, abs=0.25)  # from the final checkpoint
    for key, value in late.items():
        assert filled["metrics"][key] == pytest.approx(value, abs=1e-9), key
    assert filled["metrics"]["fg_gap"] == pytest.approx(twin["fg_gap"], abs=1e-12)
    assert filled["metrics"]["full_vs_foreground"] == twin["full_vs_foreground"]
    # on another machine, without the run's checkpoints: the twin trains the run's encoder again (deterministic:
    # the same content probe and the same fg_gap)
    import shutil

    shutil.rmtree(tmp_path / "runs" / "simclr" / "seed0")
    filled["metrics"].pop("fg_gap")
    path.write_text(json.dumps(filled))
    assert fidelity.main(argv) == 0
    assert "its encoder trained again: content" in capsys.readouterr().out
    again = json.loads(path.read_text())
    assert again["twin_encoder_retrained"]["content_retrained"] == again["metrics"]["content"]
    assert again["metrics"]["fg_gap"] == pytest.approx(twin["fg_gap"], abs=1e-12)
    filled = again
    # --subset (C6 and C3) leaves a missing twin missing
    filled["metrics"].pop("fg_gap")
    path.write_text(json.dumps(filled))
    assert fidelity.main([*argv, "--subset", "--report-only"]) == 0
    assert "to train, 0 foreground twin(s) to add" in capsys.readouterr().out


def test_bad_arguments(capsys):
    fidelity = load("fidelity")
    assert fidelity.main(["--configs", "simclr,nope", "--report-only"]) == 2
    assert "--configs: unknown ['nope']" in capsys.readouterr().err


def test_learning_curve_quick_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CAUSALCL_CACHE", str(tmp_path / "cache"))
    curve = load("learning_curve")
    out = tmp_path / "curve"
    assert curve.main(["--quick", "--out", str(out)]) == 0
    points = json.loads((out / "curve.json").read_text())["points"]
    assert [p["step"] for p in points] == [0, 6, 12] and all(0 <= p["content_probe"] <= 1 for p in points)
    assert curve.main(["--quick", "--out", str(out)]) == 0
    assert "resuming at step 12" in capsys.readouterr().out
    assert curve.plateau_step([{"step": 0, "content_probe": 0.1}, {"step": 5, "content_probe": 0.5},
                               {"step": 9, "content_probe": 0.51}], 0.02) == 5


def test_learning_curve_plot_draws_every_stored_curve(tmp_path):
    curve = load("learning_curve")
    for views, acc in (("augment", [0.17, 0.3, 0.44]), ("interventional", [0.17, 0.6, 0.78])):
        (tmp_path / f"learning_curve_simclr_{views}.json").write_text(json.dumps({
            "method": "simclr", "views": views, "plateau_gain": 0.02, "plateau_step": 1000,
            "points": [{"step": s, "content_probe": a} for s, a in zip((0, 1000, 3000), acc, strict=True)]}))
    (tmp_path / "learning_curve_simclr_augment_quick.json").write_text("{}")  # smoke-test results are left out
    assert curve.plot(tmp_path) == tmp_path / "learning_curve.png" and (tmp_path / "learning_curve.png").is_file()
    assert curve.plot(tmp_path / "empty") is None
    assert curve.main([]) == 2  # training needs --out


def test_every_configuration_builds_and_every_claim_reads_known_configurations():
    runs_module = load("fidelity_runs")
    from causalcl.build import build_method

    for label, spec in runs_module.CONFIGS.items():
        config = runs_module.make_config(label, 0, 10)
        for key, value in spec.settings.items():
            section, _, name = key.partition(".")
            got = getattr(config, section)
            for part in name.split("."):
                got = got[part] if isinstance(got, dict) else getattr(got, part)
            assert got == value, (label, key)
        if not spec.supervised:
            build_method(config)
    for claim in claims.CLAIMS:
        assert set(claim.needs) <= set(runs_module.CONFIGS), claim.key


def test_supervised_run_keeps_its_backbone_for_later_measurements(tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSALCL_CACHE", str(tmp_path / "cache"))
    import torch

    runs_module = load("fidelity_runs")
    config = runs_module.make_config("supervised", 0, 2, quick=True)
    backbone, info = runs_module.train_supervised(config, tmp_path)
    assert info["train_seconds_all_parts"] > 0
    _, loaded = runs_module._final_encoder("supervised", 0, 2, tmp_path, "cpu", True)
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(backbone(x), loaded(x))
    with pytest.raises(ValueError, match="run_dir: .* at step 2, not 3"):
        runs_module._final_encoder("supervised", 0, 3, tmp_path, "cpu", True)
