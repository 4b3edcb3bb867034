"""The main job on clips and graphs (issue 16): ``--dataset moving_shapes --method taco|cpc`` and ``--dataset
scm_graph --method dgi`` with the default diagnostics, the one-line refusals of a method or backbone that does not
fit the dataset, and ``--views interventional`` on both new datasets."""

from __future__ import annotations

import json

import pytest

from causalcl.cli import main

CLIPS = ["--dataset", "moving_shapes", "--steps", "2", "--batch-size", "8", "--set", "data.options.n=48",
         "--set", "data.options.frames=4", "--set", "data.image_size=16"]
GRAPHS = ["--dataset", "scm_graph", "--steps", "2", "--batch-size", "4", "--set", "data.options.n=16",
          "--set", "data.options.nodes=16"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSALCL_CACHE", str(tmp_path / "cache"))


def _common_findings(results: dict, raw: str, style: str) -> None:
    lp = results["linear_probe"]
    assert lp["spurious_gap"] == pytest.approx(lp["accuracy"] - lp["confounded_fit_accuracy"])
    for baseline in ("random_encoder", raw):
        assert 0 <= results["baselines"][baseline]["linear_probe"]["accuracy"] <= 1
    assert set(results["knn"]) >= {"accuracy", "k"} and set(results["spectrum"]) >= {"rankme", "alpha"}
    ident = results["identifiability"]
    for which in ("trained", "random"):
        assert ident[which]["cls"]["role"] == "content" and ident[which]["cls"]["metric"] == "accuracy"
        assert ident[which][style]["role"] == "style"


@pytest.mark.parametrize("method,backbone", [("taco", "video_small"), ("cpc", "convnet_small")])
def test_clips_with_the_default_diagnostics(method, backbone, tmp_path, capsys):
    out = tmp_path / method
    assert main(["--method", method, *CLIPS, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["backbone"] == backbone  # the default follows the method on clips
    _common_findings(results, "raw_pixels", "bg_texture")
    assert set(results["geometry"]) == {"alignment", "uniformity"}
    fg = results["foreground"]
    assert fg["frame_by_frame"] is True and set(fg["variants"]) >= {"only_fg", "mixed_same", "mixed_rand"}
    assert fg["bg_gap"] == pytest.approx(fg["variants"]["mixed_same"] - fg["variants"]["mixed_rand"])
    assert "bg_gap" in fg["confounded_probe"]
    assert list(results["run"]["diagnostic_seconds"]) == ["linear", "knn", "spectrum", "geometry", "fgbg",
                                                          "identifiability"]
    assert set(results["not_applicable"]) == {"robustness", "cam", "fgbg.full_vs_foreground"}
    printed = capsys.readouterr().out
    for text in ("Content probe accuracy", "Spurious gap", "Read-out: ", "BG-gap of the content probe",
                 "Not run: robustness — ", "Not run: cam — ", "Not run: fgbg.full_vs_foreground — "):
        assert text in printed, text
    assert "not_applicable" in (out / "report.html").read_text()


def test_graphs_with_the_default_diagnostics(tmp_path, capsys):
    out = tmp_path / "dgi"
    assert main(["--method", "dgi", *GRAPHS, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["backbone"] == "gcn"
    _common_findings(results, "raw_features", "style")
    assert "raw_pixels" not in results["baselines"]
    assert set(results["not_applicable"]) == {"geometry", "fgbg", "robustness", "cam"}
    assert results["run"]["skipped_diagnostics"] == ["geometry", "fgbg", "robustness", "cam"]
    printed = capsys.readouterr().out
    assert "for raw node features" in printed and "confounded style signal" in printed
    assert printed.count("Not run: ") == 4


@pytest.mark.parametrize("argv,text", [
    (["--method", "taco", "--dataset", "shapes"],
     "error: method 'taco' trains on video clips, but dataset 'shapes' gives images (datasets of clips: "
     "moving_shapes)"),
    (["--method", "dgi", "--dataset", "scm_graph", "--backbone", "resnet18"],
     "error: model.backbone: 'resnet18' takes images, but 'dgi' on 'scm_graph' needs a backbone for graphs (gcn)"),
    (["--dataset", "scm_graph", "--backbone", "resnet18"],
     "error: method 'simclr' trains on images, but dataset 'scm_graph' gives graphs (methods for graphs: dgi)"),
    (["--method", "taco", "--dataset", "moving_shapes", "--backbone", "convnet_small"],
     "error: model.backbone: 'convnet_small' takes images, but 'taco' on 'moving_shapes' needs a backbone for "
     "video clips (video_small)"),
    (["--methods", "simclr,dgi"], "error: method 'dgi' trains on graphs, but dataset 'shapes' gives images"),
    (["--method", "dgi", "--dataset", "scm_graph", "--set", "data.image_size=16"],
     "error: data.image_size: dataset 'scm_graph' has no image size"),
    (["--method", "taco", "--dataset", "moving_shapes", "--set", "augment.background_swap_p=0.5"],
     "error: augment.background_swap_p: background swaps act on images, and method 'taco' trains on the clips"),
    (["--method", "dgi", "--dataset", "scm_graph", "--views", "interventional", "--set",
      "augment.augment_counterfactuals=true"], "error: augment.augment_counterfactuals: dataset 'scm_graph' has no "
                                               "pixel augmentation"),
])
def test_a_mismatch_is_one_line_and_exit_2(argv, text, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*argv, "--steps", "1", "--batch-size", "4", "--set", "data.options.n=16", "--diagnostics", "none",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(text) and err.count("\n") == 1, err
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize("method,data", [("taco", CLIPS), ("cpc", CLIPS), ("dgi", GRAPHS)])
def test_interventional_views_on_clips_and_graphs(method, data, tmp_path):
    out = tmp_path / method
    assert main(["--method", method, *data, "--views", "interventional", "--diagnostics", "none",
                 "--out", str(out)]) == 0
    log = (out / "train_log.csv").read_text().splitlines()
    assert log[0].startswith("step,loss") and len(log) == 2  # the last step is logged
