"""Plain progress lines (``causalcl.train.progress``), the Trainer's lines when stdout is not a terminal, the
linear probe's fit lines and the numbered diagnostic lines. No test depends on the wall clock: the interval is set
to 0 or the clock is replaced."""

import torch
from test_train_trainer import make

import evaluations
from causalcl.train import progress
from causalcl.train.progress import PlainProgress, duration


def test_duration_reads_as_words():
    assert duration(7.2) == "7s"
    assert duration(65) == "1m05s"
    assert duration(3725) == "1h02m"


def test_plain_progress_line_has_step_loss_lr_rate_and_eta():
    lines = []
    bar = PlainProgress("train simclr", total=100, initial=0, batch_size=32, every_s=0, write=lines.append)
    assert bar.due()
    bar.line(10, 5.1234, 1e-3)
    bar.close(100, 4.0, 0.0, stopped_early=False)
    assert lines[0].startswith("train simclr: 100 step(s) to go")
    assert lines[1].startswith("train simclr: step 10/100 (10%) loss 5.1234 lr 1.0e-03")
    assert "img/s" in lines[1] and "ETA" in lines[1]
    assert lines[-1].startswith("train simclr: done at step 100/100 in")


def test_plain_progress_waits_its_interval_and_never_less_than_a_second(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock[0])
    bar = PlainProgress("t", total=10, initial=0, batch_size=1, every_s=10, write=lambda _line: None)
    clock[0] = 9.9
    assert not bar.due()
    clock[0] = 10.0
    assert bar.due()
    bar.line(5, None, 0.1)
    clock[0] = 15.0
    assert not bar.due()
    fast = PlainProgress("t", total=10, initial=0, batch_size=1, every_s=0.2, write=lambda _line: None)
    assert fast.every_s == 1.0  # at most one line per second


def test_trainer_prints_plain_lines_when_stdout_is_not_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)  # a line per step
    make(tmp_path, steps=5, every=0).fit()  # pytest's captured stdout is not a terminal
    out = capsys.readouterr().out.splitlines()
    steps = [line for line in out if line.startswith("train simclr: step ")]
    assert [line.split()[3] for line in steps] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    assert all(" loss " in line and " lr " in line and "img/s" in line and "ETA" in line for line in steps)
    assert out[-1].startswith("train simclr: done at step 5/5")


def test_trainer_desc_labels_its_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 3600.0)  # only the first and the closing lines
    trainer = make(tmp_path, steps=3, every=0)
    trainer.desc = "2×2 protocol pre-training simclr (encoder 1 of 2: full images)"
    trainer.fit()
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all(line.startswith("2×2 protocol pre-training simclr") for line in out)


def test_trainer_is_silent_on_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "plain_wanted", lambda: False)
    monkeypatch.setattr("causalcl.train.trainer.plain_wanted", lambda: False)
    make(tmp_path, steps=2, every=0).fit()
    assert capsys.readouterr().out == ""


def test_linear_probe_reports_its_search_in_two_lines():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 4, generator=g), torch.arange(60) % 3
    lines = []
    result = evaluations.linear_probe(x, y, x, y, progress=lines.append)
    assert lines[0] == "choosing weight decay from 6 values on a 20% hold-out of 60 samples"
    assert lines[1].startswith(f"weight decay {result.weight_decay:.0e} chosen (hold-out accuracy: 1e-01 ")
    assert lines[1].count("%") == len(evaluations.linear.WD_GRID) and lines[1].endswith("refit on all 60 samples")
    assert len(lines) == 2
    fixed = evaluations.linear_probe(x, y, x, y, weight_decay=1e-2, progress=lines.append)
    assert 0 <= fixed.accuracy <= 1 and lines[2:] == ["fitting with weight decay 1e-02 on 60 samples"]
