"""Smoke test of ``benchmarks/step_cost.py --quick``: RATIO lines that parse, positive, and the JSON beside them."""

import importlib.util
import json
import re
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "step_cost.py"


def load_script():
    spec = importlib.util.spec_from_file_location("step_cost_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_prints_a_ratio_per_method_and_writes_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CAUSALCL_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    out = tmp_path / "step_cost.json"
    methods = ["swav", "icl_msr"]  # a method with its own make_views and a bilevel one (meta_step in the step)
    assert load_script().main(["--quick", "--methods", ",".join(methods), "--set", "method.temperature=0.2",
                               "--out", str(out)]) == 0
    assert torch.get_num_threads() == threads  # restored
    stdout = capsys.readouterr().out
    ratios = dict(re.findall(r"^RATIO step_cost_(\w+) (\S+)", stdout, flags=re.M))
    assert set(ratios) == {*methods, "simclr_aa"}
    assert all(float(v) > 0 for v in ratios.values())
    payload = json.loads(out.read_text())
    assert set(payload["methods"]) == set(methods) and payload["quick"] is True
    for name in methods:
        entry = payload["methods"][name]
        assert abs(entry["ratio"] - float(ratios[name])) <= 5e-4
        assert entry["step_s"] > 0 and entry["views_s"] > 0 and len(entry["round_ratios"]) == payload["repeats"]
        assert entry["method"]["temperature"] == 0.2
    assert payload["simclr_aa"]["ratio"] > 0 and payload["torch_threads"] >= 1


def test_unknown_method_option_is_an_error(capsys):
    assert load_script().main(["--quick", "--methods", "simclr,byol", "--set", "method.no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err


def test_default_methods_train_on_images_and_others_are_refused(capsys):
    script = load_script()
    assert "taco" not in script.IMAGE_METHODS and "dgi" not in script.IMAGE_METHODS and "npid" in script.IMAGE_METHODS
    assert script.main(["--quick", "--methods", "simclr,taco"]) == 2
    assert "['taco'] do not train on images" in capsys.readouterr().err
