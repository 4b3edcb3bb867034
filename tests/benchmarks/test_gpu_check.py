"""``benchmarks/gpu_check.sh`` (issue 17): its ``--quick`` run on the CPU prints lines that parse, one per figure;
bad arguments get one line and exit status 2. The whole ``--quick`` run is a slow test; the fast ones run two
methods through the methods part and the argument checks."""

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from causalcl.methods import METHODS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
SHELL = ROOT / "benchmarks" / "gpu_check.sh"
MISSING_DEVICE = "cuda:7" if not torch.cuda.is_available() else "tpu"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_methods_part_prints_a_step_line_per_method(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CAUSALCL_CACHE", str(tmp_path / "cache"))
    script = load_script()
    out = tmp_path / "out"
    assert script.main(["--quick", "--parts", "env,methods", "--methods", "simclr,icl_msr", "--out", str(out)]) == 0
    records = script.parse_output(capsys.readouterr().out)
    env = {r["name"]: r["value"] for r in records["ENV"]}
    assert env["device"] == "cpu" and env["quick"] == "True" and env["torch"]
    steps = {r["name"]: r for r in records["STEP"]}
    assert set(steps) == {"simclr", "icl_msr"}
    for record in steps.values():
        assert record["value"] > 0 and math.isfinite(record["loss"])
        assert record["backbone"] == "convnet_small" and record["batch"] == 16 and record["timed"] == 1
    assert [r["name"] for r in records["DONE"]] == ["env", "methods"]
    assert records["SUMMARY"][0]["value"] == 0 and not records["FAIL"]
    assert (out / "methods.json").is_file()


@pytest.mark.parametrize("argv,needle", [
    (["--parts", "env,gpu"], "--parts: unknown part(s) ['gpu']"),
    (["--methods", "simclrr"], "--methods: unknown name(s) ['simclrr']"),
    (["--steps", "1"], "--steps: expected an integer >= 2, got 1"),
    (["--steps", "5", "--warmup", "5"], "--warmup: expected an integer in [0, --steps), got 5"),
    (["--batch-size", "1"], "--batch-size: expected an integer >= 2, got 1"),
    (["--device", MISSING_DEVICE], f"--device: {MISSING_DEVICE!r} "),
])
def test_bad_arguments_get_one_line_and_status_2(argv, needle, tmp_path, capsys):
    assert load_script().main(["--quick", "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    assert load_script().main(["--quick", "--out", str(path)]) == 2
    assert "--out: " in capsys.readouterr().err


def test_parse_output_reads_every_kind_and_refuses_a_broken_line():
    script = load_script()
    text = "\n".join([  # made-up figures, in the format the check prints
        "ENV gpu Example GPU 80GB", "RATIO simclr_step_overhead_resnet18_cuda_bf16 1.031  step_s=0.1  bare_s=0.097",
        "STEP simclr 0.01234 dataset=shapes backbone=resnet18 batch=256 steps=60 timed=50 loss=5.1 peak_mib=2048",
        "SKIP taco moving_shapes does not train here", "JOB main 95.2 train_s=40.1 diagnostics_s=55.1 steps=450 out=x",
        "DONE methods 80.0", "warning: the A/A ratio is 1.08", "SUMMARY 0 seconds=400.0 device=cuda out=x"])
    records = script.parse_output(text)
    assert records["ENV"][0] == {"name": "gpu", "value": "Example GPU 80GB"}
    assert records["RATIO"][0]["value"] == 1.031 and records["RATIO"][0]["bare_s"] == 0.097
    assert records["STEP"][0]["peak_mib"] == 2048 and records["STEP"][0]["dataset"] == "shapes"
    assert records["JOB"][0]["diagnostics_s"] == 55.1 and records["SUMMARY"][0]["value"] == 0
    with pytest.raises(ValueError, match="the line 'STEP simclr fast' does not parse"):
        script.parse_output("STEP simclr fast")


def test_shell_wrapper_runs_the_script():
    done = subprocess.run(["bash", str(SHELL), "--help"], capture_output=True, text=True, timeout=120,
                          env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and "--quick" in done.stdout and "--parts" in done.stdout


@pytest.mark.slow
def test_whole_quick_run_through_the_shell_script(tmp_path):
    """What CI runs: ``bash benchmarks/gpu_check.sh --quick`` (2–3 minutes on 2 shared cores)."""
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(SHELL), "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=1800, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin",
                                             "CAUSALCL_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = load_script().parse_output(done.stdout)
    assert [r["name"] for r in records["DONE"]] == ["env", "overhead", "methods", "job", "cost"]
    ratios = {r["name"]: r["value"] for r in records["RATIO"]}
    assert {"simclr_step_overhead_resnet18_cpu", "simclr_step_overhead_convnet_small_cpu"} <= set(ratios)
    assert {f"step_cost_{m}" for m in ("relic", "icl_msr", "metaug", "looc", "simclr_aa")} <= set(ratios)
    assert all(v > 0 for v in ratios.values())
    image_methods = {n for n, c in METHODS.items() if c.input_kind == "image"}
    stepped = {r["name"] for r in records["STEP"]}
    skipped = {r["name"] for r in records["SKIP"]}
    assert image_methods <= stepped and {"taco", "dgi"} <= stepped | skipped
    assert all(r["value"] > 0 and math.isfinite(r["loss"]) for r in records["STEP"])
    job = records["JOB"][0]
    assert job["steps"] == 2 and job["train_s"] > 0 and job["diagnostics_s"] > 0
    assert records["SUMMARY"][0]["value"] == 0 and not records["FAIL"]
    assert (out / "job" / "report.html").is_file() and (out / "step_cost.json").is_file()
