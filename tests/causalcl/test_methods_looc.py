"""looc / looc_pp: leave-one-out views (which parameters are shared), atomic augmentations, loss,
queues and key encoder, training, checkpoints and LooC++'s concatenated encoder."""

from __future__ import annotations

import pytest
import torch

from causalcl.data import SimCLRAugment
from causalcl.data.atomic import apply_color_jitter, apply_rotation, color_jitter_intervention, rotation_intervention
from causalcl.losses import looc_space_loss
from causalcl.methods import METHODS
from causalcl.models import build_backbone

B = 8


def _method(name: str = "looc", **kw):
    torch.manual_seed(0)
    kw.setdefault("projector", (32, 16))
    kw.setdefault("queue_size", 64)
    return METHODS[name](build_backbone("convnet_small", channels_last=False), **kw)


def _images(seed: int = 1) -> torch.Tensor:
    return torch.rand(B, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def _identity(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return images


# ---------------------------------------------------------------- atomic augmentations
def test_rotation_applies_the_recorded_quarter_turns() -> None:
    x = _images()
    a = rotation_intervention().sample(B, torch.Generator().manual_seed(0))
    assert a.shape == (B, 1) and set(a[:, 0].tolist()) <= {0.0, 1.0, 2.0, 3.0} and len(set(a[:, 0].tolist())) > 1
    y = apply_rotation(x, a)
    for i in range(B):
        torch.testing.assert_close(y[i], torch.rot90(x[i], int(a[i, 0]), dims=(1, 2)), atol=0, rtol=0)
    only = rotation_intervention(angles=(90,)).sample(4, torch.Generator().manual_seed(0))
    assert (only == 1).all()
    with pytest.raises(ValueError, match="square"):
        apply_rotation(torch.rand(2, 3, 8, 6), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="angles"):
        rotation_intervention(angles=(45,))


def test_color_jitter_applies_the_recorded_parameters() -> None:
    x = _images()
    a = color_jitter_intervention().sample(B, torch.Generator().manual_seed(0))
    assert a.shape == (B, 6)
    off = torch.tensor([[0.0, 2.0, 2.0, 2.0, 0.3, 0.0]]).repeat(B, 1)  # 'on' = 0: untouched
    torch.testing.assert_close(apply_color_jitter(x, off), x, atol=0, rtol=0)
    bright = torch.tensor([[1.0, 0.5, 1.0, 1.0, 0.0, 0.0]]).repeat(B, 1)  # brightness ×0.5 only
    torch.testing.assert_close(apply_color_jitter(x, bright), x * 0.5, atol=1e-5, rtol=0)
    gray = torch.tensor([[0.0, 1.0, 1.0, 1.0, 0.0, 1.0]]).repeat(B, 1)
    g = apply_color_jitter(x, gray)
    torch.testing.assert_close(g[:, 0], g[:, 1])
    torch.testing.assert_close(g[:, 1], g[:, 2])
    y = apply_color_jitter(x, a)  # per-sample: each image follows its own row
    for i in range(B):
        torch.testing.assert_close(y[i:i + 1], apply_color_jitter(x[i:i + 1], a[i:i + 1]))
    with pytest.raises(ValueError, match="strength"):
        color_jitter_intervention(strength=(0.4, 0.4, 0.4, 0.9))


# ---------------------------------------------------------------- leave-one-out views
def test_view_parameters_share_exactly_the_left_out_augmentation() -> None:
    method = _method()
    assert method.num_views == 4 and method.spaces == ["invariant", "color", "rotation"]
    assert "style_variables" in method.interventional_refusal  # pixel spaces: interventional views need them
    params = method.view_parameters(B, torch.Generator().manual_seed(0))
    q, k0, k_color, k_rot = params
    assert len(params) == 4 and all(len(p) == 2 for p in params)
    assert torch.equal(k_color[0], q[0]) and torch.equal(k_rot[1], q[1])  # shared with q
    assert not torch.equal(k_color[1], q[1]) and not torch.equal(k_rot[0], q[0])  # redrawn
    assert not torch.equal(k0[0], q[0]) and not torch.equal(k0[1], q[1])  # k_0: all independent
    assert not torch.equal(k_color[1], k0[1]) and not torch.equal(k_rot[0], k0[0])


def test_views_follow_their_recorded_parameters() -> None:
    method = _method(base="none")
    x = _images()
    views, params = method.leave_one_out_views(_identity, x, torch.Generator().manual_seed(3))
    assert len(views) == 4
    for view, (color, rot) in zip(views, params, strict=True):
        torch.testing.assert_close(view, apply_rotation(apply_color_jitter(x, color), rot), atol=0, rtol=0)
    again = method.make_views(_identity, x, torch.Generator().manual_seed(3))
    for a, b in zip(views, again, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_the_key_sharing_rotation_is_the_query_when_colour_is_neutral() -> None:
    method = _method(base="none", color_jitter=(0, 0, 0, 0), grayscale_p=0.0)
    x = _images()
    (q, k0, k_color, k_rot), params = method.leave_one_out_views(_identity, x, torch.Generator().manual_seed(4))
    torch.testing.assert_close(k_rot, q, atol=1e-6, rtol=0)  # same rotation, colour is the identity
    same = params[2][1][:, 0] == params[0][1][:, 0]  # samples where k_color's fresh rotation matches q's
    assert (~same).any()
    for i in range(B):
        assert torch.allclose(k_color[i], q[i], atol=1e-6) == bool(same[i])


def test_crop_base_is_the_run_augmentation_without_colour() -> None:
    method = _method()
    aug = SimCLRAugment(16, scale=(0.3, 0.9), blur_p=0.0)
    base = method.base_augment(aug)
    assert isinstance(base, SimCLRAugment) and base.jitter_p == 0 and base.grayscale_p == 0
    assert base.scale == aug.scale and base.flip_p == aug.flip_p and method.base_augment(aug) is base
    views = method.make_views(aug, _images(), torch.Generator().manual_seed(0))
    assert len(views) == 4 and all(v.shape == (B, 3, 16, 16) for v in views)
    assert not torch.equal(views[0], views[3])  # independent crops even where the rotation is shared
    with pytest.raises(ValueError, match="base"):
        method.base_augment(_identity)


def test_one_augmentation_gives_three_views_and_two_spaces() -> None:
    method = _method(augmentations=("rotation",))
    assert method.num_views == 3 and len(method.heads) == 2 and len(method.queues) == 2
    out = method(method.make_views(SimCLRAugment(16), _images(), torch.Generator().manual_seed(0)))
    assert set(out) >= {"loss", "loss_invariant", "loss_rotation"}


# ---------------------------------------------------------------- loss, queues, key encoder
def _views(method) -> list[torch.Tensor]:
    return method.make_views(SimCLRAugment(16), _images(), torch.Generator().manual_seed(7))


def test_forward_equals_the_per_space_losses() -> None:
    method = _method(temperature=0.3)
    method.eval()
    views = _views(method)
    out = method(views)
    h = method.backbone(views[0])
    hk = method.key_backbone(torch.cat(views[1:]))
    terms = []
    for s, (head, key_head, queue) in enumerate(zip(method.heads, method.key_heads, method.queues, strict=True)):
        keys = key_head(hk).view(3, B, -1)
        terms.append(looc_space_loss(head(h), keys, queue(), None if s == 0 else s, 0.3))
    torch.testing.assert_close(out["loss"], torch.stack(terms).mean())
    torch.testing.assert_close(out["loss_rotation"], terms[2])


def test_forward_changes_no_state_and_on_step_end_enqueues_k0_and_updates_the_keys() -> None:
    method = _method(momentum=0.5)
    method.train()
    views = _views(method)
    queues = [q.queue.clone() for q in method.queues]
    key_params = [p.clone() for p in method.key_heads.parameters()]
    expected = [torch.nn.functional.normalize(k[0], dim=1) for k in method.keys(torch.cat(views[1:]))]
    out = method(views)
    for before, q in zip(queues, method.queues, strict=True):
        torch.testing.assert_close(before, q.queue)
    out["loss"].backward()
    assert all(p.grad is None for p in method.key_backbone.parameters())
    method.on_step_end(1, 10)
    for s, q in enumerate(method.queues):
        assert int(q.ptr) == B
        torch.testing.assert_close(q.queue[B:], queues[s][B:])
        torch.testing.assert_close(q.queue[:B], expected[s])  # the k_0 keys of the space
    for a, o, t in zip(key_params, method.heads.parameters(), method.key_heads.parameters(), strict=True):
        torch.testing.assert_close(t, 0.5 * a + 0.5 * o)


@pytest.mark.parametrize("name", ["looc", "looc_pp"])
def test_training_lowers_the_loss(name: str) -> None:
    method = _method(name, queue_size=1024)
    views = _views(method)
    opt = torch.optim.Adam(method.optim_parameters(), lr=2e-3)
    method.train()
    first = float(method(views)["loss"].detach())
    for step in range(5):
        out = method(views)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        method.on_step_end(step + 1, 5)
    assert float(method(views)["loss"].detach()) < first


def test_checkpoint_round_trip(tmp_path) -> None:
    method = _method("looc_pp")
    method.train()
    method(_views(method))
    method.on_step_end(1, 4)
    torch.save(method.state_dict(), tmp_path / "m.pt")
    torch.manual_seed(9)
    other = METHODS["looc_pp"](build_backbone("convnet_small", channels_last=False), projector=(32, 16), queue_size=64)
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    for a, b in zip(method.queues, other.queues, strict=True):
        torch.testing.assert_close(a.queue, b.queue)
        assert int(a.ptr) == int(b.ptr) == B
    method.eval(), other.eval()
    views = _views(method)
    torch.testing.assert_close(method(views)["loss"], other(views)["loss"])
    torch.testing.assert_close(method.encoder(views[0]), other.encoder(views[0]))


# ---------------------------------------------------------------- LooC++ encoder
@pytest.mark.parametrize("concat,width", [("hidden", 32), ("output", 16)])
def test_looc_pp_encoder_concatenates_the_spaces(concat: str, width: int) -> None:
    method = _method("looc_pp", concat=concat)
    method.eval()
    enc = method.encoder
    x = _images()
    feats = enc(x)
    assert enc.feature_dim == method.feature_dim + 3 * width and feats.shape == (B, enc.feature_dim)
    v = method.backbone(x)
    torch.testing.assert_close(feats[:, : method.feature_dim], v)
    head = method.heads[2]
    last = head[2](head[1](head[0](v))) if concat == "hidden" else head(v)  # Linear → BN → ReLU
    torch.testing.assert_close(feats[:, -width:], last)
    assert enc.last_conv is method.backbone.last_conv
    assert not any(k.startswith("encoder") for k in method.state_dict())
    assert _method("looc").encoder is not None and _method("looc").encoder.feature_dim == method.feature_dim


def test_bad_options() -> None:
    for kw, match in [({"augmentations": ("texture",)}, "augmentations"), ({"augmentations": ()}, "augmentations"),
                      ({"augmentations": ("color", "color")}, "augmentations"), ({"temperature": 0}, "temperature"),
                      ({"momentum": 2.0}, "momentum"), ({"queue_size": 0}, "queue_size"), ({"base": "x"}, "base"),
                      ({"concat": "x"}, "concat"), ({"projector": (16,)}, "projector"),
                      ({"rotation_angles": (30,)}, "angles")]:
        with pytest.raises(ValueError, match=match):
            _method(**kw)
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(4, 3, 16, 16)] * 3)
