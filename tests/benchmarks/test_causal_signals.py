"""Smoke test of benchmarks/causal_signals.py: a few steps of each method, the summary and the JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import causal_signals  # noqa: E402


@pytest.mark.parametrize("method", ["icl_msr", "metaug"])
def test_a_short_run_reports_the_mechanism(method, tmp_path):
    out = tmp_path / "signals.json"
    summary = causal_signals.main(["--method", method, "--steps", "4", "--batch-size", "16", "--set",
                                   "optim.warmup_steps=1", "--set", "train.log_every=1", "--set",
                                   "data.options.n=64", "--out", str(out)])
    payload = json.loads(out.read_text())
    assert payload["summary"] == summary and len(payload["rows"]["step"]) >= 1
    if method == "icl_msr":
        assert summary["min_share_after_warmup"] > 0
    else:
        assert summary["all_positive"] and summary["max_ratio_aug_margin"] >= 1


def test_a_bad_key_exits_with_code_2(tmp_path):
    with pytest.raises(SystemExit) as exc:
        causal_signals.main(["--set", "method.nope=1", "--steps", "1", "--out", str(tmp_path / "x.json")])
    assert exc.value.code == 2
