import pytest
import torch
from method_checks import assert_state_round_trip

from causalcl.losses import rotation_loss
from causalcl.methods import METHODS, Rotation
from causalcl.methods.rotation import rotate_all, rotate_by
from causalcl.models import build_backbone


def _method(seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("head", (16,))
    return METHODS["rotation"](build_backbone("convnet_small", channels_last=False), **kw)


def _images(n=8, size=16, seed=1):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def naive_rotate(image: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` quarter turns counter-clockwise, pixel by pixel: out[:, i, j] = in[:, j, S−1−i] per turn."""
    out = image
    for _ in range(k):
        s = out.shape[-1]
        turned = torch.empty_like(out)
        for i in range(s):
            for j in range(s):
                turned[:, i, j] = out[:, j, s - 1 - i]
        out = turned
    return out


def test_registered_with_one_view():
    assert METHODS["rotation"] is Rotation and Rotation.name == "rotation" and Rotation.num_views == 1
    views = _method().make_views(lambda x, g: x, _images(), None)
    assert len(views) == 1


def test_rotations_match_the_pixel_loop():
    x = _images(n=3, size=5)
    batched = rotate_all(x)
    for k in range(4):
        for j in range(3):
            torch.testing.assert_close(batched[k * 3 + j], naive_rotate(x[j], k), atol=0, rtol=0)
    ks = torch.tensor([2, 0, 3])
    one = rotate_by(x, ks)
    for j in range(3):
        torch.testing.assert_close(one[j], naive_rotate(x[j], int(ks[j])), atol=0, rtol=0)


def test_forward_all_rotations_equals_the_loss_on_the_rotated_batch():
    method = _method()
    method.eval()
    x = _images()
    out = method([x])
    logits = method.head(method.backbone(rotate_all(x)))
    labels = torch.arange(4).repeat_interleave(8)
    torch.testing.assert_close(out["loss"], rotation_loss(logits, labels))
    assert float(out["rotation_accuracy"]) == pytest.approx(float((logits.argmax(1) == labels).float().mean()))


def test_forward_one_rotation_per_image():
    method = _method(rotations="one")
    method.eval()
    x = _images()
    out = method([x])
    labels = torch.arange(8) % 4
    logits = method.head(method.backbone(rotate_by(x, labels)))
    torch.testing.assert_close(out["loss"], rotation_loss(logits, labels))


def test_linear_head():
    method = _method(head=())
    assert [type(m).__name__ for m in method.head] == ["Linear"] and method.head[0].out_features == 4


def test_a_few_steps_lower_the_loss():
    method = _method()
    x = _images()
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    method.train()
    first = float(method([x])["loss"].detach())
    for _ in range(8):
        out = method([x])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert float(method([x])["loss"].detach()) < first


def test_checkpoint_round_trip(tmp_path):
    method = _method()
    assert_state_round_trip(method, _method(seed=3), [_images()], tmp_path)


@pytest.mark.parametrize("kwargs,name", [({"head": (0,)}, "head"), ({"head": (True,)}, "head"),
                                         ({"rotations": "two"}, "rotations")])
def test_bad_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Rotation(build_backbone("convnet_small", channels_last=False), **kwargs)


def test_bad_views():
    with pytest.raises(ValueError, match="square"):
        _method()([torch.rand(4, 3, 16, 20)])
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(4, 16, 16)])
