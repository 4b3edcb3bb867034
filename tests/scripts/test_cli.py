import json
import re

import pytest

from causalcl.cli import main

TINY = ["--steps", "6", "--batch-size", "32", "--set", "data.options.n=256", "--set", "data.image_size=16",
        "--set", "eval.knn_k=20", "--set", "eval.fgbg_steps=3", "--set", "eval.fgbg_batch_size=32",
        "--set", "eval.robustness_images=32", "--set", "eval.cam_images=32"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSALCL_CACHE", str(tmp_path / "cache"))


def test_main_job_writes_every_output(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TINY, "--out", str(out)]) == 0
    for name in ("config.yaml", "train_log.csv", "checkpoint.pt", "results.json", "results.csv", "report.html",
                 "plots/loss_curve.png", "plots/spectrum.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    lp = results["linear_probe"]
    assert lp["spurious_gap"] == pytest.approx(lp["accuracy"] - lp["confounded_fit_accuracy"])
    assert set(results["knn"]) >= {"accuracy", "k", "temperature"}
    assert set(results["spectrum"]) >= {"rankme", "alpha"}
    assert set(results["geometry"]) == {"alignment", "uniformity"}
    for baseline in ("random_encoder", "raw_pixels"):
        assert 0 <= results["baselines"][baseline]["linear_probe"]["accuracy"] <= 1
    fg = results["foreground"]
    assert fg["bg_gap"] == pytest.approx(fg["variants"]["mixed_same"] - fg["variants"]["mixed_rand"])
    assert set(fg["full_vs_foreground"]) == {"train: full", "train: foreground"}
    assert results["robustness"]["label"] == "synthetic corruptions"
    assert len(results["robustness"]["table"]) == 19
    assert results["identifiability"]["trained"]["cls"]["metric"] == "accuracy"
    assert results["identifiability"]["trained"]["bg_texture"]["role"] == "style"
    assert results["identifiability"]["circular"] == ["bg_hue", "fg_hue", "rotation"]  # read on the circle
    assert results["identifiability"]["symmetric"] == {"rotation": "cls"}  # per shape, up to its symmetry
    seconds = results["run"]["diagnostic_seconds"]  # wall time per diagnostic, in the order they ran
    assert list(seconds) == ["linear", "knn", "spectrum", "geometry", "fgbg", "robustness", "cam", "identifiability"]
    assert all(v >= 0 for v in seconds.values()) and sum(seconds.values()) <= results["run"]["total_seconds"]
    grounding = results["grounding"]["probe"]
    assert 0 <= grounding["energy_in_mask"] <= 1 and 0 < grounding["energy_baseline"] < 1
    assert (out / "plots" / "cam_overlays.png").is_file()
    printed = capsys.readouterr().out
    assert "linear_probe" in printed and "Spurious gap" in printed  # the summary table and the findings
    # progress in a pipe (pytest's stdout is not a terminal): training, each diagnostic numbered, probe fits, 2×2
    assert "train simclr: done at step 6/6" in printed
    for i, name in enumerate(seconds, 1):
        assert f"[{i}/8] {name}: " in printed and f"[{i}/8] {name} done in " in printed
    assert "linear probe (trained, fit on probe): choosing weight decay from 6 values" in printed
    assert "linear probe (random encoder, fit on probe): weight decay " in printed
    assert printed.count("linear probe (") <= 2 * 7  # two lines per fit (search start, choice + refit)
    assert "2×2 protocol pre-training simclr (encoder 1 of 2: full images): done at step 3/3" in printed
    assert "2×2 protocol pre-training simclr (encoder 2 of 2: foreground images)" in printed
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert "How to read this." in html
    # headline first: the card (verdict, compact table, findings, loss curve) before every other section
    body = html.split("</header>", 1)[1]
    assert body.index("id='headline'") < body.index("id='summary'") < body.index("id='sec-run'")
    card = body.split("id='headline'", 1)[1].split("</section>", 1)[0]
    assert "on the content probe" in card and "content probe accuracy (%)" in card and "spurious gap (points)" in card
    assert "<h3>Findings</h3>" in card and "Spurious gap" in card and "Training loss per logged step." in card
    assert int(re.search(r"(\d+) table\(s\)", html).group(1)) == body.count("<table")
    assert "content probe accuracy (%)" in printed and "Under-trained" not in printed


def test_unknown_method_lists_valid_names(tmp_path, capsys):
    assert main(["--method", "simclrr", "--out", str(tmp_path / "x"), *TINY]) == 2
    assert "simclr" in capsys.readouterr().err


def test_unknown_dataset_lists_valid_names(tmp_path, capsys):
    assert main(["--dataset", "mnist", "--out", str(tmp_path / "x"), "--steps", "1"]) == 2
    assert "shapes" in capsys.readouterr().err


def test_unknown_config_key_names_nearest(tmp_path, capsys):
    assert main(["--set", "optim.lrr=0.1", "--out", str(tmp_path / "x")]) == 2
    assert "did you mean 'optim.lr'" in capsys.readouterr().err
    assert main(["--set", "method.temprature=0.1", "--out", str(tmp_path / "x"), *TINY]) == 2
    assert "did you mean 'method.temperature'" in capsys.readouterr().err


def test_unknown_diagnostic(tmp_path, capsys):
    assert main(["--diagnostics", "linear,cams", "--out", str(tmp_path / "x")]) == 2
    assert "knn" in capsys.readouterr().err


def test_missing_real_dataset_root_names_layout(tmp_path, capsys):
    assert main(["--dataset", "cifar10", "--data-root", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    assert "cifar-10-batches-py" in capsys.readouterr().err


def test_shipped_configs_load():
    from pathlib import Path

    from causalcl.build import build_method
    from causalcl.train.config import Config, load_yaml

    for path in sorted(Path(__file__).resolve().parents[2].glob("assets/configs/*.yaml")):
        build_method(Config.from_dict(load_yaml(path)))  # every method option is one its constructor accepts


def test_a_run_cut_by_its_time_limit_says_so(tmp_path, capsys):
    """--time-limit 0 stops after the first step: the console and the report's first card say so in words."""
    out = tmp_path / "run"
    assert main([*TINY, "--time-limit", "0", "--diagnostics", "knn", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Under-trained: The time limit of 0 s stopped training at step 1 of 6 planned" in printed
    assert "UNDER-TRAINED: The time limit of 0 s stopped training" in printed
    assert "Findings (from an under-trained encoder):" in printed
    card = (out / "report.html").read_text().split("id='headline'", 1)[1].split("</section>", 1)[0]
    assert "<strong>Under-trained.</strong> The time limit of 0 s stopped training at step 1 of 6" in card
    assert "Findings (from an under-trained encoder)" in card or "<h3>" not in card
