"""Acceptance: a run killed with SIGKILL after its first checkpoint, then resumed with --resume,
ends with the same weights as the uninterrupted run (CPU)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from causalcl.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--steps", "200", "--checkpoint-every", "20", "--diagnostics", "none", "--batch-size", "64",
        "--set", "data.options.n=512", "--set", "data.image_size=16", "--set", "train.threads=1"]


def _cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / "train_then_diagnose.py"), *ARGS, "--out", str(out), *extra]


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    env = {**os.environ, "CAUSALCL_CACHE": str(tmp_path / "cache")}
    subprocess.run(_cmd(tmp_path / "full"), env=env, check=True, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = killed / "checkpoint.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    step_at_kill = load_checkpoint(checkpoint)["step"]
    assert 20 <= step_at_kill < 200, step_at_kill  # the kill landed mid-run

    subprocess.run(_cmd(killed, "--resume"), env=env, check=True, capture_output=True)
    full, resumed = load_checkpoint(tmp_path / "full" / "checkpoint.pt"), load_checkpoint(checkpoint)
    assert resumed["step"] == full["step"] == 200
    for key, value in full["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    rows = (killed / "train_log.csv").read_text().splitlines()
    assert len(rows) == 1 + 200 // 10  # header + one row per log interval, none duplicated
