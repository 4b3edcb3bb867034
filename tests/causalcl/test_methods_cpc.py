import pytest
import torch
from torch import nn

from causalcl.data.augment import SimCLRAugment
from causalcl.losses import cpc_loss
from causalcl.methods import CPC, METHODS
from causalcl.methods.cpc import CausalContext, orient
from causalcl.models import build_backbone


def _method(**kw):
    torch.manual_seed(0)
    kw.setdefault("context_dim", 32)
    return METHODS["cpc"](build_backbone("convnet_small", channels_last=False), **kw)


def _views(n=4, size=16):
    return [torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1))]


def test_registered():
    assert METHODS["cpc"] is CPC and CPC.name == "cpc" and CPC.num_views == 1


@pytest.mark.parametrize("size,grid,patch,stride", [(32, 7, 8, 4), (16, 7, 4, 2), (96, 7, 24, 12), (32, 3, 16, 8)])
def test_grid_geometry(size, grid, patch, stride):
    method = _method(grid=grid, max_offset=2)
    assert method.geometry(size, size) == (patch, stride, stride)
    x = torch.rand(2, 3, size, size)
    tiles = method.patches(x).view(2, grid, grid, 3, patch, patch)
    for r, c in ((0, 0), (grid - 1, 1), (2, grid - 1)):
        rows, cols = slice(r * stride, r * stride + patch), slice(c * stride, c * stride + patch)
        torch.testing.assert_close(tiles[1, r, c], x[1, :, rows, cols])


def test_explicit_patch_size_and_too_small_images():
    method = _method(grid=4, patch_size=10, max_offset=2)
    assert method.geometry(32, 32) == (10, 7, 7)
    with pytest.raises(ValueError, match="grid"):
        _method(grid=7, patch_size=14).geometry(16, 16)


def test_forward_is_cpc_loss_on_the_grid_latents_in_one_backbone_call():
    method = _method()
    method.eval()
    calls = []
    method.backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape))
    views = _views()
    out = method(views)
    assert calls == [(4 * 49, 3, 4, 4)]
    z = method.latents(views[0])
    c = method.contexts[0](z)
    preds = [method.predictors[0][k - 1](c[:, :7 - k]) for k in (1, 2, 3)]
    torch.testing.assert_close(out["loss"], cpc_loss(z, preds))


@pytest.mark.parametrize("kind", ["conv", "gru"])
def test_context_is_causal_along_the_sequence(kind):
    torch.manual_seed(0)
    ctx = CausalContext(5, 6, kind=kind, layers=2).double()
    x = torch.randn(2, 6, 3, 5, dtype=torch.float64)
    y = x.clone()
    y[:, 3] += 1.0  # change step 3 only
    a, b = ctx(x), ctx(y)
    assert a.shape == (2, 6, 3, 6)
    torch.testing.assert_close(a[:, :3], b[:, :3], atol=0, rtol=0)
    assert (a[:, 3] - b[:, 3]).abs().max() > 1e-6
    if kind == "gru":  # one sequence per position: other columns are untouched
        z = x.clone()
        z[:, :, 1] += 1.0
        torch.testing.assert_close(ctx(z)[:, :, [0, 2]], a[:, :, [0, 2]], atol=0, rtol=0)


def test_directions_read_the_grid_in_four_orders():
    z = torch.arange(9.0).view(1, 3, 3, 1)
    assert orient(z, "down")[0, :, 0, 0].tolist() == [0, 3, 6]
    assert orient(z, "up")[0, :, 0, 0].tolist() == [6, 3, 0]
    assert orient(z, "right")[0, :, 0, 0].tolist() == [0, 1, 2]
    assert orient(z, "left")[0, :, 0, 0].tolist() == [2, 1, 0]
    method = _method(directions=["down", "up", "right", "left"], max_offset=2)
    out = method(_views())
    assert set(out) == {"loss", "loss_down", "loss_up", "loss_right", "loss_left"}
    torch.testing.assert_close(out["loss"].detach(), torch.stack([out[f"loss_{d}"] for d in
                                                                  ("down", "up", "right", "left")]).mean())


@pytest.mark.parametrize("options", [{}, {"context": "gru"}, {"norm": "layer", "directions": ["down", "up"]}])
def test_a_few_steps_lower_the_loss_and_reach_every_part(options):
    method = _method(**options)
    views = _views()
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    first = float(method(views)["loss"].detach())
    for step in range(8):
        opt.zero_grad()
        method(views)["loss"].backward()
        if step == 0:
            for name, p in method.named_parameters():
                assert p.grad is not None and torch.isfinite(p.grad).all(), name
        opt.step()
    assert float(method(views)["loss"].detach()) < first


def test_layer_norm_replaces_batch_norm():
    method = _method(norm="layer")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in method.backbone.modules())
    assert sum(isinstance(m, nn.GroupNorm) and m.num_groups == 1 for m in method.backbone.modules()) == 6


def test_checkpoint_round_trip(tmp_path):
    method = _method()
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method(grid=7)
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    method.eval(), other.eval()
    torch.testing.assert_close(method(_views())["loss"], other(_views())["loss"])


BAD = [({"grid": 1}, "grid"), ({"grid": 7.0}, "grid"), ({"max_offset": 0}, "max_offset"),
       ({"max_offset": 7}, "max_offset"), ({"context": "lstm"}, "context"), ({"context_dim": 0}, "context_dim"),
       ({"context_layers": 0}, "context_layers"), ({"directions": ["down", "down"]}, "directions"),
       ({"directions": ["diagonal"]}, "directions"), ({"directions": []}, "directions"), ({"norm": "instance"}, "norm"),
       ({"patch_size": 0}, "patch_size"), ({"patch_size": True}, "patch_size")]


@pytest.mark.parametrize("kwargs,name", BAD)
def test_bad_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _method(**kwargs)


def test_bad_views():
    with pytest.raises(ValueError, match="views"):
        _method()([])
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(2, 3, 6, 6)])  # 6 px cannot hold 7 rows of patches with stride >= 1


# ---------------------------------------------------------------- clips: the context runs over the frames
def _clips(n=3, frames=5, size=16):
    return torch.rand(n, frames, 3, size, size, generator=torch.Generator().manual_seed(2))


def test_cpc_takes_images_and_clips_with_a_frame_encoder():
    assert CPC.input_kinds == ("image", "video") and CPC.clip_backbone_kind == "image"


@pytest.mark.parametrize("direction", ["down", "up"])
def test_on_clips_the_loss_is_cpc_loss_over_the_frame_latents_in_one_backbone_call(direction):
    method = _method(max_offset=2, directions=[direction])
    method.eval()
    calls = []
    method.backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape))
    clips = _clips()
    out = method([clips])
    assert calls == [(3 * 5, 3, 16, 16)]  # every frame alone, whole frames (no patch grid)
    z = torch.stack([method.backbone(clips[:, t]) for t in range(5)], dim=1)[:, :, None]  # (B, T, 1, D)
    seq = z if direction == "down" else z.flip(1)
    c = method.contexts[0](seq)
    preds = [method.predictors[0][k - 1](c[:, :5 - k]) for k in (1, 2)]
    torch.testing.assert_close(out["loss"], cpc_loss(seq, preds))


def test_clip_views_augment_every_frame_alike():
    method = _method()
    still = _clips(n=4, frames=1).expand(4, 3, 3, 16, 16).contiguous()  # three identical frames per clip
    (view,) = method.make_views(SimCLRAugment(16), still, torch.Generator().manual_seed(0))
    assert view.shape == still.shape
    torch.testing.assert_close(view[:, 0], view[:, 2], atol=0, rtol=0)
    assert not torch.equal(view[0, 0], still[0, 0])


def test_a_few_steps_on_clips_lower_the_loss():
    method = _method(max_offset=2)
    views = [_clips()]
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    first = float(method(views)["loss"].detach())
    for _ in range(8):
        opt.zero_grad()
        method(views)["loss"].backward()
        opt.step()
    assert float(method(views)["loss"].detach()) < first


def test_bad_clip_views_and_grid_directions():
    with pytest.raises(ValueError, match="views: expected clips .* T > max_offset"):
        _method(max_offset=3)([_clips(frames=3)])
    with pytest.raises(ValueError, match=r"directions: \['right'\] read grid columns"):
        _method(max_offset=2, directions=["down", "right"])([_clips()])
