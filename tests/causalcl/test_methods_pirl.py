"""PIRL: the jigsaw transform, the loss lambda L_NCE(jigsaw) + (1 - lambda) L_NCE(image) on the heads' outputs,
the bank update with the image representation, checkpoints, bad options."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from causalcl.data.augment import SimCLRAugment
from causalcl.losses import info_nce_queue, instance_nce, instance_nce_normalizer
from causalcl.methods import METHODS
from causalcl.methods.pirl import jigsaw
from causalcl.models import build_backbone

N_ITEMS = 30


def _method(n: int | None = N_ITEMS, **kw):
    torch.manual_seed(0)
    method = METHODS["pirl"](build_backbone("convnet_small", channels_last=False), embedding_dim=16, **kw)
    if n is not None:
        method.bind_dataset(n)
    return method


def _images(b: int = 6, size: int = 18) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(1))


def _views(method, b: int = 6) -> list[torch.Tensor]:
    return method.make_views(SimCLRAugment(18), _images(b), torch.Generator().manual_seed(2))


def _cells(x: torch.Tensor, grid: int = 3) -> torch.Tensor:
    b, c, h, w = x.shape
    ch, cw = h // grid, w // grid
    return x[:, :, :grid * ch, :grid * cw].reshape(b, c, grid, ch, grid, cw).permute(0, 2, 4, 1, 3, 5) \
        .reshape(b, grid * grid, c, ch, cw)


def test_jigsaw_without_jitter_permutes_the_cells_of_each_image() -> None:
    x = _images(5, 20)  # 20 px: cells of 6, a 2-px rim
    y = jigsaw(x, torch.Generator().manual_seed(0), grid=3, patch_fraction=1.0)
    assert y.shape == x.shape and torch.equal(y[:, :, 18:], torch.zeros_like(y[:, :, 18:]))
    src, out = _cells(x), _cells(y)
    orders = []
    for i in range(5):
        order = [next(j for j in range(9) if torch.allclose(out[i, t], src[i, j], atol=1e-5)) for t in range(9)]
        assert sorted(order) == list(range(9))
        orders.append(order)
    assert len({tuple(o) for o in orders}) > 1  # a permutation per image


def test_jigsaw_patches_are_crops_inside_their_cell() -> None:
    """patch_fraction 2/3 on 9-px cells: every tile is a 6-px crop of some cell, upsampled; integer offsets keep
    it inside the cell, so the patches of two cells never overlap."""
    x = torch.arange(27 * 27, dtype=torch.float64).view(1, 1, 27, 27).expand(4, 3, 27, 27).contiguous()
    y = jigsaw(x, torch.Generator().manual_seed(3), grid=3, patch_fraction=2 / 3)
    tiles, cells = _cells(y), _cells(x)
    for i in range(4):
        for t in range(9):
            lo, hi = tiles[i, t].min(), tiles[i, t].max()
            assert any(cells[i, j].min() <= lo and hi <= cells[i, j].max() for j in range(9))
    a = jigsaw(x, torch.Generator().manual_seed(3), grid=3, patch_fraction=2 / 3)
    assert torch.equal(a, y)


def test_patches_cut_the_puzzle_back_into_tiles() -> None:
    method = _method()
    puzzle = _images(2, 20)
    patches = method.patches(puzzle)
    assert patches.shape == (18, 3, 6, 6)
    torch.testing.assert_close(patches.view(2, 9, 3, 6, 6), _cells(puzzle))


@pytest.mark.parametrize("loss", ["nce", "infonce"])
def test_forward_is_the_weighted_loss_on_the_heads(loss) -> None:
    method = _method(num_negatives=20, loss_lambda=0.3, loss=loss)
    method.eval()
    idx = torch.tensor([0, 5, 9, 11, 20, 29])
    views = _views(method)
    method.set_batch_indices(idx)
    bank, noise = method.memory.bank.clone(), method.memory.noise(20)
    f = method.image_head(method.backbone(views[0]))
    patch = method.patch_head(method.backbone(method.patches(views[1])))
    g = method.jigsaw_head(patch.reshape(6, -1))
    if loss == "nce":
        big_z = float(instance_nce_normalizer(f, bank[idx], bank[noise], num_items=N_ITEMS))
        jig = instance_nce(g, bank[idx], bank[noise], num_items=N_ITEMS, normalizer=big_z)
        img = instance_nce(f, bank[idx], bank[noise], num_items=N_ITEMS, normalizer=big_z)
    else:
        jig, img = info_nce_queue(g, bank[idx], bank[noise], 0.07), info_nce_queue(f, bank[idx], bank[noise], 0.07)
    out = method(views)
    torch.testing.assert_close(out["loss"], 0.3 * jig + 0.7 * img)
    torch.testing.assert_close(out["jigsaw_loss"], jig.detach())
    method.on_step_end(1, 10)  # the bank moves towards the image representation, not the jigsaw one
    torch.testing.assert_close(method.memory.bank[idx],
                               F.normalize(0.5 * bank[idx] + 0.5 * F.normalize(f.detach(), dim=1), dim=1))
    assert (float(method.memory.normalizer) > 0) == (loss == "nce")


def test_a_few_steps_lower_the_loss() -> None:
    method = _method(num_negatives=32)
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    views = _views(method)
    method.set_batch_indices(torch.arange(6))
    method.train()
    losses = []
    for step in range(6):
        out = method(views)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        method.on_step_end(step + 1, 6)
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < losses[0]
    assert all(p.grad is not None for p in method.parameters() if p.requires_grad)


def test_checkpoint_round_trip(tmp_path) -> None:
    method = _method(loss="nce")
    method.set_batch_indices(torch.arange(6))
    views = _views(method)
    method(views)
    method.on_step_end(1, 10)
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method(n=None, loss="nce")
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert torch.equal(other.memory.bank, method.memory.bank)
    assert float(other.memory.normalizer) == float(method.memory.normalizer) > 0
    other.set_batch_indices(torch.arange(6))
    method.eval(), other.eval()
    torch.testing.assert_close(method(views)["loss"], other(views)["loss"])


@pytest.mark.parametrize("kwargs,name", [
    ({"temperature": -1}, "temperature"), ({"loss": "softmax"}, "loss"), ({"loss_lambda": 1.5}, "loss_lambda"),
    ({"num_negatives": 0}, "num_negatives"), ({"momentum": 1.0}, "momentum"), ({"embedding_dim": 0}, "embedding_dim"),
    ({"grid": 1}, "grid"), ({"patch_fraction": 0.0}, "patch_fraction"), ({"patch_fraction": 1.2}, "patch_fraction"),
    ({"normalizer_momentum": -0.5}, "normalizer_momentum"),
])
def test_bad_options_name_the_argument(kwargs, name) -> None:
    with pytest.raises(ValueError, match=name):
        METHODS["pirl"](build_backbone("convnet_small", channels_last=False), **kwargs)


def test_views_too_small_for_the_grid_are_refused() -> None:
    with pytest.raises(ValueError, match="images"):
        jigsaw(torch.rand(2, 3, 2, 2), grid=3)


@pytest.mark.parametrize("loss", ["infonce", "nce"])
def test_trains_under_bf16_autocast(loss) -> None:
    """The heads run in bf16 under AMP while the bank stays float32; the loss is computed in float32."""
    method = _method(loss=loss, num_negatives=16)
    method.set_batch_indices(torch.arange(6))
    views = _views(method)  # the Trainer makes the views outside autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = method(views)
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])
    out["loss"].backward()
    method.on_step_end(1, 10)
    assert method.memory.bank.dtype == torch.float32
