"""make_pretrain_fn: the 2×2 protocol's short pre-training, and its resumable folder."""

from __future__ import annotations

import pytest
import torch

from causalcl.build import build_augment
from causalcl.pretrain import images_digest, make_pretrain_fn
from causalcl.train import Config, Trainer


def _config() -> Config:
    config = Config()
    for key, value in {"method.name": "simclr", "data.image_size": 16, "model.backbone": "convnet_small",
                       "optim.warmup_steps": 1, "train.log_every": 1}.items():
        config.set(key, value)
    return config


def _images() -> torch.Tensor:
    return torch.rand(24, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def _weights(encoder: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in encoder.state_dict().values()]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_interrupted_pretraining_continues_from_its_checkpoint_bit_identically(tmp_path, monkeypatch):
    config = _config()
    augment = build_augment(config, 16)
    whole = make_pretrain_fn(config, augment, 4, 8)(_images())  # a temporary folder, no checkpoints

    original = Trainer.train_step
    seen = []

    def dies_at_step_3(self, views):
        if self.step == 3:
            raise RuntimeError("killed")
        seen.append(self.step)
        return original(self, views)

    monkeypatch.setattr(Trainer, "train_step", dies_at_step_3)
    with pytest.raises(RuntimeError, match="killed"):
        make_pretrain_fn(config, augment, 4, 8, out_dir=tmp_path, checkpoint_every=2)(_images())
    assert (tmp_path / "encoder1" / "checkpoint.pt").is_file() and seen == [0, 1, 2]
    monkeypatch.setattr(Trainer, "train_step", lambda self, views: (seen.append(self.step), original(self, views))[1])
    resumed = make_pretrain_fn(config, augment, 4, 8, out_dir=tmp_path, checkpoint_every=2)(_images())
    assert seen == [0, 1, 2, 2, 3]  # continued from the step-2 checkpoint
    for a, b in zip(_weights(whole), _weights(resumed), strict=True):
        assert torch.equal(a, b)
    # a finished one is loaded, not retrained
    again = make_pretrain_fn(config, augment, 4, 8, out_dir=tmp_path, checkpoint_every=2)(_images(), label="twin")
    assert seen == [0, 1, 2, 2, 3]
    for a, b in zip(_weights(whole), _weights(again), strict=True):
        assert torch.equal(a, b)


def test_calls_train_in_their_own_folders(tmp_path):
    config = _config()
    fn = make_pretrain_fn(config, build_augment(config, 16), 2, 8, out_dir=tmp_path, checkpoint_every=1)
    fn(_images()), fn(_images() * 0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder1", "encoder2"]


def test_a_folder_of_other_images_is_refused(tmp_path):
    config = _config()
    augment = build_augment(config, 16)
    make_pretrain_fn(config, augment, 2, 8, out_dir=tmp_path, checkpoint_every=1)(_images())
    assert (tmp_path / "encoder1" / "images.sha256").is_file()
    with pytest.raises(ValueError, match="out_dir: .*other images"):
        make_pretrain_fn(config, augment, 2, 8, out_dir=tmp_path, checkpoint_every=1)(_images() * 0.5)
    make_pretrain_fn(config, augment, 2, 8, out_dir=tmp_path, checkpoint_every=1)(_images().clone())  # same bytes


def test_images_digest_sees_one_changed_pixel_shape_and_dtype():
    images = _images()
    changed = images.clone()
    changed[5, 1, 3, 7] += 1e-6
    digests = {images_digest(x) for x in (images, changed, images.reshape(12, 2, 3, 16, 16), images.double())}
    assert len(digests) == 4 and images_digest(images.clone()) == images_digest(images)
