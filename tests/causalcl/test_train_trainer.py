import math
import pickle

import pytest
import torch

from causalcl.methods import SimCLR
from causalcl.models import build_backbone
from causalcl.train import Config, NonFiniteLossError, Trainer, load_checkpoint, save_checkpoint
from causalcl.train.log import read_log


class TinyData:
    def __init__(self, n=64, size=16):
        g = torch.Generator().manual_seed(0)
        self.images = (torch.rand(n, 3, size, size, generator=g) * 255).to(torch.uint8)
        self.labels = torch.arange(n) % 4

    def __len__(self):
        return len(self.images)

    def get_batch(self, indices):
        return self.images[indices].float() / 255, self.labels[indices]


def noisy_views(images, _indices, gen):
    return [(images + 0.1 * torch.randn(images.shape, generator=gen)).clamp(0, 1) for _ in range(2)]


def make(tmp_path, steps=12, every=4, **opt):
    config = Config()
    config.set("train.steps", steps)
    config.set("train.batch_size", 16)
    config.set("train.checkpoint_every", every)
    config.set("train.log_every", 1)
    config.set("optim.warmup_steps", 2)
    for k, v in opt.items():
        config.set(k, v)
    torch.manual_seed(0)
    method = SimCLR(build_backbone("convnet_small"), projector=(32, 16))
    return Trainer(method, TinyData(), noisy_views, config, tmp_path)


def test_fit_writes_log_and_checkpoint(tmp_path):
    trainer = make(tmp_path)
    result = trainer.fit()
    assert result.steps == 12 and not result.stopped_early
    log = read_log(tmp_path / "train_log.csv")
    assert log["step"] == list(range(1, 13)) and set(log) == {"step", "loss", "lr"}
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 12 and "optimizer" in state and "scheduler" in state and "rng" in state


def test_resume_after_interruption_gives_identical_weights(tmp_path):
    full = make(tmp_path / "full")
    full.fit()
    broken = make(tmp_path / "broken")
    original = broken.views_for_step

    def dies_at_step_7(step):
        if step == 6:
            raise KeyboardInterrupt("simulated kill")
        return original(step)

    broken.views_for_step = dies_at_step_7
    with pytest.raises(KeyboardInterrupt):
        broken.fit()
    assert load_checkpoint(tmp_path / "broken" / "checkpoint.pt")["step"] == 4
    resumed = make(tmp_path / "broken")
    resumed.fit(resume=True)
    for (k, a), (_, b) in zip(full.method.state_dict().items(), resumed.method.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    log = read_log(tmp_path / "broken" / "train_log.csv")
    assert log["step"] == list(range(1, 13))  # rows after the checkpoint were replayed once, not twice


def test_non_finite_loss_stops_with_step_terms_and_checkpoint(tmp_path):
    trainer = make(tmp_path, steps=10, every=2)
    original = trainer.views_for_step

    def poisoned(step):
        views = original(step)
        if step == 4:  # the fifth step
            views[0] = views[0] * float("nan")
        return views

    trainer.views_for_step = poisoned
    with pytest.raises(NonFiniteLossError) as info:
        trainer.fit()
    err = info.value
    assert err.step == 5 and "loss" in err.terms
    assert err.checkpoint == tmp_path / "checkpoint.pt"
    assert "step 5" in str(err) and "checkpoint.pt" in str(err)
    assert load_checkpoint(err.checkpoint)["step"] == 4
    assert read_log(tmp_path / "train_log.csv")["step"] == [1, 2, 3, 4]


def test_resume_without_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        make(tmp_path).fit(resume=True)


def test_batch_size_larger_than_dataset(tmp_path):
    with pytest.raises(ValueError, match="batch_size"):
        make(tmp_path, **{"train.batch_size": 1000})


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_refuses_code_pickles(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path, pickle_module=pickle)
    with pytest.raises(ValueError, match="could not be loaded safely"):
        load_checkpoint(path)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"step": 1}, path)

    def fail(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OSError):
        save_checkpoint({"step": 2}, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp file left behind


def test_tensorboard_logging_or_clear_error(tmp_path):
    trainer = make(tmp_path, steps=2, every=0, **{"train.tensorboard": True})
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="tensorboard"):
            trainer.fit()
        return
    trainer.fit()
    assert any((tmp_path / "tensorboard").iterdir())


def test_out_dir_is_created_by_fit_not_by_the_constructor(tmp_path):
    trainer = make(tmp_path / "later", steps=2)
    assert not (tmp_path / "later").exists()
    trainer.fit()
    assert (tmp_path / "later" / "checkpoint.pt").is_file()


def test_extending_a_finished_run_replans_the_schedule(tmp_path, capsys):
    make(tmp_path, steps=12).fit()
    longer = make(tmp_path, steps=16)
    longer.restore()
    assert "the run planned for 12 steps now runs to 16" in capsys.readouterr().err
    # from step 12 on, the lr is the one of the warm-up + cosine curve planned for 16 steps (warm-up 2)
    expected = 2e-3 * 0.5 * (1 + math.cos(math.pi * (12 - 2) / (16 - 2)))
    assert longer.scheduler.get_last_lr()[0] == pytest.approx(expected) and expected > 0
    longer.fit(resume=True)
    log = read_log(tmp_path / "train_log.csv")
    assert log["step"] == list(range(1, 17)) and all(lr > 0 for lr in log["lr"][12:15])
    assert load_checkpoint(tmp_path / "checkpoint.pt")["total_steps"] == 16
    with pytest.raises(ValueError, match="already trained 16 steps; it cannot be shortened to 8"):
        make(tmp_path, steps=8).restore()


def test_resume_refuses_other_settings_listing_them(tmp_path):
    make(tmp_path, steps=4).fit()
    with pytest.raises(ValueError, match=r"optim\.lr: 0\.002 → 0\.05; train\.seed: 0 → 3"):
        make(tmp_path, steps=4, **{"optim.lr": 0.05, "train.seed": 3}).fit(resume=True)
    make(tmp_path, steps=6, **{"train.log_every": 2, "train.checkpoint_every": 3}).fit(resume=True)  # free keys


def test_resume_refuses_a_checkpoint_of_another_method(tmp_path):
    make(tmp_path, steps=2).fit()
    config = Config()
    config.set("train.steps", 2)
    config.set("train.batch_size", 16)
    config.set("optim.warmup_steps", 2)
    config.set("method.name", "byol")
    from causalcl.methods import BYOL

    trainer = Trainer(BYOL(build_backbone("convnet_small")), TinyData(), noisy_views, config, tmp_path)
    with pytest.raises(ValueError, match="holds a 'simclr' model on backbone 'convnet_small', not the requested "
                                         "'byol'"):
        trainer.fit(resume=True)


def test_checkpoints_never_hold_non_finite_weights(tmp_path):
    trainer = make(tmp_path, steps=6, every=2)
    original = trainer.method.on_step_end

    def poison(step, total):
        original(step, total)
        if step == 4:  # after the step, before its checkpoint
            with torch.no_grad():
                next(trainer.method.parameters()).fill_(float("nan"))

    trainer.method.on_step_end = poison
    with pytest.raises(NonFiniteLossError, match=r"non-finite weights at step 4 .*checkpoint.pt' \(step 2\)") as info:
        trainer.fit()
    assert info.value.checkpoint_step == 2
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 2  # the last good one was not replaced
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    next(iter(state["model"].values())).fill_(float("inf"))
    save_checkpoint(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="holds non-finite weights"):
        make(tmp_path, steps=6, every=2).fit(resume=True)


def test_last_good_checkpoint_is_this_runs(tmp_path):
    make(tmp_path, steps=4, every=2).fit()  # an earlier run leaves checkpoint.pt (step 4)
    trainer = make(tmp_path, steps=4, every=10)
    original = trainer.views_for_step
    trainer.views_for_step = lambda step: [v * float("nan") for v in original(step)] if step == 1 else original(step)
    with pytest.raises(NonFiniteLossError, match="this run has written no checkpoint yet") as info:
        trainer.fit()
    assert info.value.checkpoint is None and not (tmp_path / "checkpoint.pt").exists()


def test_resume_sums_train_seconds_and_clears_stale_temp_files(tmp_path):
    make(tmp_path, steps=4).fit()
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    state["train_seconds"] = 500.0
    save_checkpoint(state, tmp_path / "checkpoint.pt")
    (tmp_path / ".checkpoint.pt.x1.tmp").write_bytes(b"partial")
    result = make(tmp_path, steps=6).fit(resume=True)
    assert 500.0 < result.seconds < 600.0
    assert 500.0 < load_checkpoint(tmp_path / "checkpoint.pt")["train_seconds"] < 600.0
    assert not list(tmp_path.glob("*.tmp"))


def test_checkpoint_that_does_not_fit_names_what(tmp_path):
    make(tmp_path, steps=2).fit()
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    keys = list(state["model"])
    state["model"]["extra.weight"] = state["model"].pop(keys[0])
    state["model"][keys[1]] = torch.zeros(7)
    save_checkpoint(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match=rf"missing weights: {keys[0]}; unexpected weights: extra.weight; "
                                         rf"wrong shapes \(checkpoint vs model\): {keys[1]} \(7,\)"):
        make(tmp_path, steps=2).fit(resume=True)
    del state["rng"]
    save_checkpoint(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"is missing the key\(s\) rng"):
        make(tmp_path, steps=2).fit(resume=True)


def test_checkpoint_write_failure_of_torch_names_the_file(tmp_path, monkeypatch):
    def fail(_obj, handle, *_args, **_kwargs):
        handle.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OSError, match=r"cannot write '.*checkpoint.pt'.*enforce fail"):
        save_checkpoint({"step": 1}, tmp_path / "checkpoint.pt")
    assert list(tmp_path.iterdir()) == []


def test_unknown_device_is_refused_before_any_set_up(tmp_path):
    with pytest.raises(ValueError, match="train.device: expected cpu, cuda"):
        make(tmp_path, **{"train.device": "gpu"})
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="train.device: 'cuda' was asked for, but CUDA is not available"):
            make(tmp_path, **{"train.device": "cuda"})


def test_schedule_replan():
    from causalcl.train import WarmupCosine

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = WarmupCosine(opt, total_steps=6, warmup_steps=0)
    for _ in range(6):
        sched.step()
    assert sched.get_last_lr()[0] == 0.0
    sched.replan(10, 0)
    assert sched.get_last_lr()[0] == pytest.approx(0.5 * (1 + math.cos(math.pi * 6 / 10)))
    with pytest.raises(ValueError, match="fewer than the 6 steps already taken"):
        sched.replan(5, 0)
