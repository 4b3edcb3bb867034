"""NPID: the loss on the projections, Z estimated once, the bank update, the Trainer's item indices, checkpoints,
bad options. The memory bank helper is tested here too."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from causalcl.losses import instance_nce, instance_nce_normalizer, instance_softmax
from causalcl.methods import METHODS
from causalcl.methods.memory_bank import MemoryBank
from causalcl.models import build_backbone
from causalcl.train import Config, Trainer

N_ITEMS = 40


def _method(n: int | None = N_ITEMS, **kw):
    torch.manual_seed(0)
    method = METHODS["npid"](build_backbone("convnet_small", channels_last=False), embedding_dim=16, **kw)
    if n is not None:
        method.bind_dataset(n)
    return method


def _views(b: int = 8) -> list[torch.Tensor]:
    return [torch.rand(b, 3, 16, 16, generator=torch.Generator().manual_seed(1))]


def _indices(b: int = 8) -> torch.Tensor:
    return torch.arange(3, 3 + 4 * b, 4)


def test_nce_forward_is_the_loss_on_the_projections_and_z_is_estimated_once() -> None:
    method = _method(loss="nce", num_negatives=32, temperature=0.1)
    method.eval()
    idx, views = _indices(), _views()
    method.set_batch_indices(idx)
    bank = method.memory.bank.clone()
    noise = method.memory.noise(32)
    z = method.projector(method.backbone(views[0]))
    big_z = instance_nce_normalizer(z, bank[idx], bank[noise], num_items=N_ITEMS, temperature=0.1)
    want = instance_nce(z, bank[idx], bank[noise], num_items=N_ITEMS, normalizer=float(big_z), temperature=0.1)
    out = method(views)
    torch.testing.assert_close(out["loss"], want)
    assert float(method.memory.normalizer) < 0  # forward changes no state
    method.on_step_end(1, 10)
    assert float(method.memory.normalizer) == pytest.approx(float(big_z))
    assert int(method.memory.step) == 1
    # the second step uses the kept Z and a new noise draw
    noise2 = method.memory.noise(32)
    assert not torch.equal(noise2, noise)
    bank = method.memory.bank.clone()
    z = method.projector(method.backbone(views[0]))
    want = instance_nce(z, bank[idx], bank[noise2], num_items=N_ITEMS, normalizer=float(big_z), temperature=0.1)
    torch.testing.assert_close(method(views)["loss"], want)


def test_moving_average_normalizer() -> None:
    method = _method(loss="nce", num_negatives=32, normalizer_momentum=0.9)
    method.eval()
    idx, views = _indices(), _views()
    method.set_batch_indices(idx)
    method(views)
    method.on_step_end(1, 10)
    first = float(method.memory.normalizer)
    bank, noise = method.memory.bank.clone(), method.memory.noise(32)
    z = method.projector(method.backbone(views[0]))
    estimate = float(instance_nce_normalizer(z, bank[idx], bank[noise], num_items=N_ITEMS))
    want = 0.9 * first + 0.1 * estimate
    expected = instance_nce(z, bank[idx], bank[noise], num_items=N_ITEMS, normalizer=want)
    torch.testing.assert_close(method(views)["loss"], expected)
    method.on_step_end(2, 10)
    assert float(method.memory.normalizer) == pytest.approx(want)


def test_softmax_is_the_default_and_the_full_softmax_over_the_bank() -> None:
    assert METHODS["npid"](build_backbone("convnet_small", channels_last=False)).loss_name == "softmax"
    method = _method(loss="softmax")
    method.eval()
    method.set_batch_indices(_indices())
    z = method.projector(method.backbone(_views()[0]))
    want = instance_softmax(z, method.memory.bank, _indices(), temperature=0.07)
    torch.testing.assert_close(method(_views())["loss"], want)


def test_bank_update_moves_only_the_batch_rows_with_momentum() -> None:
    method = _method(momentum=0.5)
    idx = _indices()
    method.set_batch_indices(idx)
    before = method.memory.bank.clone()
    method(_views())
    features = F.normalize(method._pending[1], dim=1)
    method.on_step_end(1, 10)
    after = method.memory.bank
    torch.testing.assert_close(after[idx], F.normalize(0.5 * before[idx] + 0.5 * features, dim=1))
    rest = torch.ones(N_ITEMS, dtype=torch.bool)
    rest[idx] = False
    assert torch.equal(after[rest], before[rest])
    torch.testing.assert_close(after.norm(dim=1), torch.ones(N_ITEMS))


@pytest.mark.parametrize("loss", ["nce", "softmax"])
def test_a_few_steps_lower_the_loss(loss) -> None:
    method = _method(loss=loss, num_negatives=64)
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    method.set_batch_indices(_indices())
    method.train()
    losses = []
    for step in range(6):
        out = method(_views())
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        method.on_step_end(step + 1, 6)
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < losses[0]


def test_checkpoint_round_trip_resizes_an_unbound_bank(tmp_path) -> None:
    method = _method(loss="nce")
    method.set_batch_indices(_indices())
    method(_views())
    method.on_step_end(1, 10)
    torch.save(method.state_dict(), tmp_path / "m.pt")
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert {"memory.bank", "memory.normalizer", "memory.step", "memory.seed"} <= set(state)
    other = _method(n=None, loss="nce")  # not bound: the checkpoint sizes its bank
    other.load_state_dict(state)
    for key, value in method.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key
    other.set_batch_indices(_indices())
    method.eval(), other.eval()
    torch.testing.assert_close(method(_views())["loss"], other(_views())["loss"])


def test_the_same_seed_builds_the_same_bank_and_noise() -> None:
    a, b = _method(), _method()
    assert torch.equal(a.memory.bank, b.memory.bank) and torch.equal(a.memory.noise(50), b.memory.noise(50))
    torch.manual_seed(1)
    c = MemoryBank(16)
    c.allocate(N_ITEMS)
    assert not torch.equal(c.bank, a.memory.bank)


def test_trainer_hands_the_batch_indices_and_the_dataset_size(tmp_path) -> None:
    class Tiny:
        images = torch.rand(24, 3, 16, 16, generator=torch.Generator().manual_seed(0))

        def __len__(self) -> int:
            return 24

        def get_batch(self, indices):
            return self.images[indices], torch.zeros(len(indices), dtype=torch.long)

    config = Config()
    for key, value in {"train.steps": 2, "train.batch_size": 8, "train.checkpoint_every": 0,
                       "model.channels_last": False, "optim.warmup_steps": 0}.items():
        config.set(key, value)
    method = _method(n=None, loss="nce")
    trainer = Trainer(method, Tiny(), lambda images, indices, gen: [images], config, tmp_path, distributed=False)
    assert method.memory.bank.shape == (24, 16)
    before = method.memory.bank.clone()
    seen = torch.cat([trainer.batch_indices(0), trainer.batch_indices(1)])
    trainer.fit()
    moved = (method.memory.bank - before).abs().sum(dim=1) > 0
    assert torch.equal(moved.nonzero().flatten(), seen.sort().values)
    assert int(method.memory.step) == 2 and float(method.memory.normalizer) > 0


def test_forward_without_indices_or_bank_is_refused() -> None:
    with pytest.raises(ValueError, match="bind_dataset"):
        _method(n=None)(_views())
    with pytest.raises(ValueError, match="set_batch_indices"):
        _method()(_views())
    method = _method()
    method.set_batch_indices(torch.arange(5))
    with pytest.raises(ValueError, match="indices"):
        method(_views())
    method.set_batch_indices(torch.arange(8) + N_ITEMS - 4)
    with pytest.raises(ValueError, match="indices"):
        method(_views())


@pytest.mark.parametrize("kwargs,name", [
    ({"temperature": 0}, "temperature"), ({"loss": "infonce"}, "loss"), ({"num_negatives": 0}, "num_negatives"),
    ({"momentum": 1.0}, "momentum"), ({"momentum": -0.1}, "momentum"), ({"embedding_dim": 0}, "embedding_dim"),
    ({"normalizer_momentum": 1.0}, "normalizer_momentum"), ({"normalizer_momentum": "0.9"}, "normalizer_momentum"),
])
def test_bad_options_name_the_argument(kwargs, name) -> None:
    with pytest.raises(ValueError, match=name):
        METHODS["npid"](build_backbone("convnet_small", channels_last=False), **kwargs)
    with pytest.raises(ValueError, match="num_items"):
        _method(n=1)
