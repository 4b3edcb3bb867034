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
