"""Issue 13, table-driven: every fault case of the CLI (resume, typed config, config files, checkpoints, errors)
with its exit status and the one line it prints, run in-process on tiny 4-step runs.

Each case gets a copy of one finished 4-step run (``{run}``) or a fresh folder (``{new}``); ``prepare`` damages the
copy first, ``patch`` stands in for what a test cannot do for real (a full disk, a read-only folder, a NaN loss),
``check`` inspects the folder afterwards. Exit status 2 = bad input or unwritable output, 3 = non-finite loss.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from causalcl.cli import main
from causalcl.train import load_checkpoint
from causalcl.train.log import read_log
from causalcl.train.trainer import Trainer

TINY = ["--batch-size", "16", "--set", "data.options.n=64", "--set", "data.image_size=16", "--diagnostics", "none",
        "--set", "train.log_every=1"]
NO_CUDA = "cuda" if not torch.cuda.is_available() else "cuda:99"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One dataset cache for the module: the tiny shapes splits are rendered once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cache) -> Path:
    """One finished 4-step run (checkpoint at step 2 and 4), copied by every case that needs a run."""
    root = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAUSALCL_CACHE", str(cache))
        assert main([*TINY, "--steps", "4", "--checkpoint-every", "2", "--out", str(root / "run")]) == 0
    return root / "run"


@pytest.fixture(autouse=True)
def _cache(cache, monkeypatch):
    monkeypatch.setenv("CAUSALCL_CACHE", str(cache))


# --- helpers that damage a run folder -------------------------------------------------------------------------
def _edit_checkpoint(edit):
    def prepare(run: Path) -> None:
        state = load_checkpoint(run / "checkpoint.pt")
        edit(state)
        torch.save(state, run / "checkpoint.pt")
    return prepare


def _nan_weight(state):
    first = next(iter(state["model"]))
    state["model"][first] = torch.full_like(state["model"][first], float("nan"))


def _drop_weight(state):
    del state["model"][next(iter(state["model"]))]


def _reshape_weight(state):
    state["model"][next(iter(state["model"]))] = torch.zeros(3, 3)


def _write(name: str, text: str):
    def prepare(run: Path) -> None:
        (run / name).write_text(text)
    return prepare


def _truncate(name: str, keep: int):
    def prepare(run: Path) -> None:
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[:keep])
    return prepare


def _stale_temp_files(run: Path) -> None:
    for tag in ("abc123", "zz9"):
        (run / f".checkpoint.pt.{tag}.tmp").write_bytes(b"half a checkpoint")


def _nan_at_step(step: int):
    """Patch: the views of step ``step`` (0-based) are NaN, so the loss of step ``step + 1`` is NaN."""
    def patch(mp: pytest.MonkeyPatch) -> None:
        original = Trainer.views_for_step

        def poisoned(self, s):
            views = original(self, s)
            return [v * float("nan") for v in views] if s == step else views

        mp.setattr(Trainer, "views_for_step", poisoned)
    return patch


def _full_disk(mp: pytest.MonkeyPatch) -> None:
    """torch.save fails the way it does on a full disk; the free-space probe says 0 bytes."""
    def save(_obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1216 vs 1104")

    mp.setattr("causalcl.train.checkpoint.torch.save", save)
    mp.setattr("causalcl.train.files._free_bytes", lambda _folder: 0)


def _read_only(mp: pytest.MonkeyPatch) -> None:
    """The output folder's parent is not writable (chmod does not stop root, so os.access answers for it)."""
    mp.setattr("causalcl.job.os.access", lambda _path, _mode: False)


def _internal_bug(mp: pytest.MonkeyPatch) -> None:
    def broken(*_args, **_kwargs):
        raise KeyError("a bug")

    mp.setattr("causalcl.build.load_split", broken)


# --- checks on the folder afterwards ---------------------------------------------------------------------------
def _config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def _extended_to_8(run: Path) -> None:
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["step"] == state["total_steps"] == 8
    assert _config(run)["train"]["steps"] == 8 and state["config"]["train"]["steps"] == 8
    log = read_log(run / "train_log.csv")
    assert log["step"] == list(range(1, 9))
    assert all(lr > 0 for lr in log["lr"][4:7]), log["lr"]  # steps 5..7 train at a real lr, not 0


def _record_unchanged(run: Path) -> None:
    assert _config(run)["optim"]["lr"] == 0.002
    assert load_checkpoint(run / "checkpoint.pt")["config"]["optim"]["lr"] == 0.002


def _no_folder(run: Path) -> None:
    assert not run.exists()


def _no_temp_files(run: Path) -> None:
    assert not list(run.glob(".checkpoint.pt.*.tmp"))


def _seconds_summed(run: Path) -> None:
    """The first part is recorded as 1000 s (prepare); the resumed part adds its own few seconds."""
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["step"] == 6 and 1000.0 < state["train_seconds"] < 1100.0
    assert 1000.0 < json.loads((run / "results.json").read_text())["run"]["train_seconds"] < 1100.0


def _lr_is(value: float):
    def check(run: Path) -> None:
        assert math.isclose(_config(run)["optim"]["lr"], value)
        assert isinstance(_config(run)["optim"]["lr"], float)
    return check


def _steps_are(value: int):
    def check(run: Path) -> None:
        assert _config(run)["train"]["steps"] == value
        assert load_checkpoint(run / "checkpoint.pt")["step"] == value
    return check


def _no_partial_checkpoint(run: Path) -> None:
    assert not list(run.glob(".checkpoint.pt.*.tmp")) and not (run / "checkpoint.pt").exists()


# (id, folder, arguments, prepare, patch, exit status, what stderr says, check)
CASES = [
    # 1. resume checks the run: the checkpoint's config is the truth
    ("resume --steps 8 extends and re-plans", "run", ["--steps", "8", "--resume"], None, None, 0,
     r"note: --resume: the run planned for 4 steps now runs to 8", _extended_to_8),
    ("resume --set optim.lr is refused", "run", ["--set", "optim.lr=0.05", "--resume"], None, None, 2,
     r"optim\.lr: 0\.002 → 0\.05", _record_unchanged),
    ("resume with another batch size", "run", ["--resume", "--batch-size", "32"], None, None, 2,
     r"train\.batch_size: 16 → 32", _record_unchanged),
    ("resume with another dataset", "run", ["--resume", "--dataset", "digits"], None, None, 2,
     r"data\.name: shapes → digits", None),
    ("resume with another seed", "run", ["--resume", "--seed", "1"], None, None, 2, r"train\.seed: 0 → 1", None),
    ("resume with another method option", "run", ["--resume", "--set", "method.temperature=0.2"], None, None, 2,
     r"method\.temperature: 0\.5 → 0\.2", None),
    ("resume with the default method option is no change", "run",
     ["--resume", "--set", "method.temperature=0.5"], None, None, 0, "", None),
    ("resume with another method", "run", ["--resume", "--method", "byol"], None, None, 2,
     r"holds a 'simclr' model on backbone 'convnet_small', not the requested 'byol'", None),
    ("resume with another backbone", "run", ["--resume", "--backbone", "resnet18"], None, None, 2,
     r"holds a 'simclr' model on backbone 'convnet_small', not the requested 'simclr' on 'resnet18'", None),
    ("resume with another optimiser", "run", ["--resume", "--set", "optim.name=sgd"], None, None, 2,
     r"optim\.name: adamw → sgd", None),
    ("resume to fewer steps than trained", "run", ["--resume", "--steps", "2"], None, None, 2,
     r"has already trained 4 steps; it cannot be shortened to 2", None),
    ("resume --out missing/ creates nothing", "new", ["--resume"], None, None, 2,
     r"no run folder .* to resume \(nothing was created\)", _no_folder),
    # 2. typed configuration
    ("--set optim.lr=1e-3 is a number", "new", ["--steps", "2", "--set", "optim.lr=1e-3"], None, None, 0, "",
     _lr_is(1e-3)),
    ("lr: 2E-4 in a YAML file is a number", "new", ["--steps", "2", "--config", "{tmp}/lr.yaml"],
     None, None, 0, "", _lr_is(2e-4)),
    ("--set train.steps=5e0 is the integer 5", "new", ["--set", "train.steps=5e0"], None, None, 0, "", _steps_are(5)),
    ("--set optim.lr=abc is refused before anything is written", "new", ["--set", "optim.lr=abc"], None, None, 2,
     r"^error: optim\.lr: expected a number, got 'abc'$", _no_folder),
    ("lr: abc in a YAML file is refused", "new", ["--config", "{tmp}/bad_lr.yaml"], None, None, 2,
     r"optim\.lr: expected a number, got 'abc'", _no_folder),
    ("--set train.steps=1.5 is refused", "new", ["--set", "train.steps=1.5"], None, None, 2,
     r"train\.steps: expected an integer, got 1\.5", _no_folder),
    ("--set train.tensorboard=maybe is refused", "new", ["--set", "train.tensorboard=maybe"], None, None, 2,
     r"train\.tensorboard: expected true or false, got 'maybe'", _no_folder),
    ("--set method.temperature=abc is refused", "new", ["--set", "method.temperature=abc"], None, None, 2,
     r"method\.temperature: expected a number, got 'abc'", _no_folder),
    # config.yaml: damaged ones are clear errors naming the file; written only after validation
    ("empty config.yaml on --resume", "run", ["--resume"], _write("config.yaml", ""), None, 2,
     r"config file '.*config\.yaml' is empty; the checkpoint holds the run's settings", None),
    ("truncated config.yaml on --resume", "run", ["--resume"], _truncate("config.yaml", 300), None, 2,
     r"config file '.*config\.yaml' is (truncated or damaged|incomplete|not valid YAML)", None),
    ("config.yaml that is not YAML on --resume", "run", ["--resume"], _write("config.yaml", "optim: [1,\n"), None, 2,
     r"config file '.*config\.yaml' is not valid YAML: .* at line 2", None),
    ("config.yaml edited against the checkpoint", "run", ["--resume"],
     lambda run: (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("lr: 0.002", "lr: 0.1")),
     None, 2, r"config\.yaml' disagrees with the checkpoint .*optim\.lr: 0\.002 → 0\.1", None),
    ("a method typo does not rewrite config.yaml", "run", ["--method", "simclrr"], None, None, 2,
     r"unknown name 'simclrr'; did you mean 'simclr'\?", _record_unchanged),
    ("--steps -5 does not rewrite config.yaml", "run", ["--steps", "-5"], None, None, 2,
     r"train\.steps: expected an integer >= 1, got -5", _record_unchanged),
    ("a YAML constructor error names the file", "new", ["--config", "{tmp}/evil.yaml"], None, None, 2,
     r"config file '.*evil\.yaml' is not valid YAML: could not determine a constructor", _no_folder),
    ("train.log_every=0 is refused before training", "new", ["--set", "train.log_every=0"], None, None, 2,
     r"train\.log_every: expected an integer >= 1, got 0", _no_folder),
    # 3. checkpoints
    ("resume refuses non-finite weights", "run", ["--resume"], _edit_checkpoint(_nan_weight), None, 2,
     r"holds non-finite weights \(NaN/inf in 'backbone\.", None),
    ("a checkpoint with missing weights", "run", ["--resume"], _edit_checkpoint(_drop_weight), None, 2,
     r"does not fit the 'simclr' model on backbone 'convnet_small': missing weights: backbone\.", None),
    ("a checkpoint with wrong shapes", "run", ["--resume"], _edit_checkpoint(_reshape_weight), None, 2,
     r"wrong shapes \(checkpoint vs model\): backbone\.\S+ \(3, 3\) vs", None),
    ("a checkpoint without the Trainer's keys", "run", ["--resume"],
     _edit_checkpoint(lambda s: s.pop("optimizer")), None, 2, r"is missing the key\(s\) optimizer", None),
    ("a truncated checkpoint", "run", ["--resume"], _truncate("checkpoint.pt", 4000), None, 2,
     r"checkpoint '.*checkpoint\.pt' could not be loaded safely", None),
    ("stale temp files are removed", "run", ["--resume", "--steps", "6"], _stale_temp_files, None, 0,
     r"removed 2 unfinished checkpoint write", _no_temp_files),
    ("train_seconds sums the resumed parts", "run", ["--resume", "--steps", "6"],
     _edit_checkpoint(lambda s: s.update(train_seconds=1000.0)), None, 0, "", _seconds_summed),
    ("a new run over an earlier one says so", "run", ["--steps", "2"], None, None, 0,
     r"holds an earlier run \(train_log\.csv, checkpoint\.pt\); this new run replaces it", None),
    ("NaN loss in a reused folder names no other run's checkpoint", "run", ["--steps", "4", "--checkpoint-every",
     "50"], None, _nan_at_step(1), 3, r"non-finite loss at step 2: .*this run has written no checkpoint yet", None),
    ("NaN loss names this run's last good checkpoint", "new", ["--steps", "4", "--checkpoint-every", "2"], None,
     _nan_at_step(2), 3, r"non-finite loss at step 3: .*the last good checkpoint is '.*checkpoint\.pt' \(step 2\)",
     None),
    # 4. one clear line, exit status 2
    ("--device cuda without CUDA", "new", ["--device", NO_CUDA], None, None, 2,
     r"^error: train\.device: '.*' was asked for, but", _no_folder),
    ("--out is an existing file", "file", [], None, None, 2, r"^error: --out '.*' is a file, not a folder$", None),
    ("--out is not writable", "new", [], None, _read_only, 2, r"^error: --out '.*' is not writable$", _no_folder),
    ("the disk fills while writing the checkpoint", "new", ["--steps", "2"], None, _full_disk, 2,
     r"^error: cannot write '.*checkpoint\.pt' \(the disk is full\): \[enforce fail", _no_partial_checkpoint),
    ("an internal error is one line too", "new", [], None, _internal_bug, 1,
     r"^error: internal error, KeyError: 'a bug' \(rerun with --debug for the traceback\)$", None),
]


def _folder(kind: str, finished: Path, tmp_path: Path) -> Path:
    if kind == "run":
        shutil.copytree(finished, tmp_path / "run")
        return tmp_path / "run"
    if kind == "file":
        (tmp_path / "afile").write_text("not a folder")
        return tmp_path / "afile"
    return tmp_path / "new"


def _yaml_files(tmp_path: Path) -> None:
    (tmp_path / "lr.yaml").write_text("optim:\n  lr: 2E-4\n")
    (tmp_path / "bad_lr.yaml").write_text("optim:\n  lr: abc\n")
    (tmp_path / "evil.yaml").write_text("train: !!python/object/apply:os.system ['echo hi']\n")


@pytest.mark.parametrize(("kind", "args", "prepare", "patch", "status", "says", "check"),
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_fault(kind, args, prepare, patch, status, says, check, finished, tmp_path, capsys, monkeypatch):
    _yaml_files(tmp_path)
    out = _folder(kind, finished, tmp_path)
    if prepare is not None:
        prepare(out)
    if patch is not None:
        patch(monkeypatch)
    argv = [*TINY, "--out", str(out), *(a.replace("{tmp}", str(tmp_path)) for a in args)]
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == status, err[-2000:]
    if status:
        assert len(lines) == 1 and "Traceback" not in err, err[-2000:]  # one clear line, no traceback
        assert re.search(says, lines[0]), lines[0]
    elif says:
        assert re.search(says, err), err[-2000:]
    if check is not None:
        monkeypatch.undo()
        check(out)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="optim.lr: expected a number"):
        main([*TINY, "--out", str(tmp_path / "x"), "--set", "optim.lr=abc", "--debug"])


def test_ctrl_c_names_the_checkpoint_and_the_resume_command(finished, tmp_path, capsys, monkeypatch):
    """Ctrl-C during training: exit 130, one line with the last checkpoint and the exact command, which works."""
    out = tmp_path / "run"
    original = Trainer.views_for_step

    def interrupted(self, step):
        if step == 3:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(Trainer, "views_for_step", interrupted)
    argv = [*TINY, "--steps", "6", "--checkpoint-every", "2", "--out", str(out)]
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert f"the last good checkpoint is '{out / 'checkpoint.pt'}' (step 2)" in err[0]
    command = shlex.split(err[0].split("continue with: ", 1)[1])
    assert command[-1] == "--resume" and command[-3:-1] == ["--out", str(out)]
    monkeypatch.setattr(Trainer, "views_for_step", original)
    start = next(i for i, a in enumerate(command) if a.startswith("--"))
    assert main(command[start:]) == 0
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 6


def test_ctrl_c_before_the_first_checkpoint(tmp_path, capsys, monkeypatch):
    def interrupted(self, step):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "views_for_step", interrupted)
    assert main([*TINY, "--steps", "4", "--out", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err.strip()
    assert "this run has written no checkpoint yet; nothing to resume" in err and len(err.splitlines()) == 1


def test_ctrl_c_before_training_is_one_line_too(finished, tmp_path, capsys, monkeypatch):
    """Ctrl-C while loading (before the Trainer runs): exit 130; on --resume, the command that continues."""
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("causalcl.build.load_split", interrupted)
    assert main([*TINY, "--steps", "4", "--out", str(tmp_path / "new")]) == 130
    assert capsys.readouterr().err.strip() == ("interrupted (Ctrl-C) before training started; this run wrote no "
                                               "checkpoint — run the same command to start")
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    assert main([*TINY, "--out", str(run), "--resume"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"interrupted (Ctrl-C) before training; the last checkpoint is '{run / 'checkpoint.pt'}'")
    assert err.endswith(f"--out {run} --resume")
