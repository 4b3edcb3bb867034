import pytest
import torch
from method_checks import assert_loss_drops

from causalcl.losses import info_nce
from causalcl.methods import DACL, METHODS
from causalcl.methods.dacl import mixup_positive
from causalcl.models import build_backbone


def _method(seed=0, **kw):
    torch.manual_seed(seed)
    return METHODS["dacl"](build_backbone("convnet_small", channels_last=False), projector=(32, 16), **kw)


def _images(seed=1, n=8):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def _never(*_args):
    raise AssertionError("the pixel augmentation must not be called")


def test_registered():
    assert METHODS["dacl"] is DACL and DACL.name == "dacl"


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.9, 1.0])
def test_mixup_matches_the_loop_formula(alpha):
    x = _images(n=6).double()
    view, lam, partner = mixup_positive(x, alpha, torch.Generator().manual_seed(3))
    for i in range(6):
        assert alpha <= float(lam[i]) <= 1.0
        assert int(partner[i]) != i
        want = float(lam[i]) * x[i] + (1.0 - float(lam[i])) * x[int(partner[i])]
        torch.testing.assert_close(view[i], want, atol=1e-12, rtol=0)


def test_mixup_is_seeded_and_scales_uint8():
    x = (_images() * 255).to(torch.uint8)
    a = mixup_positive(x, 0.9, torch.Generator().manual_seed(0))
    b = mixup_positive(x.float() / 255, 0.9, torch.Generator().manual_seed(0))
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v)


def test_default_views_are_two_independent_mixups_of_the_raw_images():
    method = _method()
    x = _images()
    v1, v2 = method.make_views(_never, x, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    torch.testing.assert_close(v1, mixup_positive(x, 0.9, g)[0])
    torch.testing.assert_close(v2, mixup_positive(x, 0.9, g)[0])
    assert not torch.equal(v1, v2)
    assert (v1 - x).abs().max() <= 0.1 + 1e-6  # λ ≥ 0.9 of the image itself, pixels in [0, 1]


def test_pixel_augment_mixes_the_augmented_views():
    method = _method(pixel_augment=True)
    calls = []

    def augment(images, generator):
        calls.append(1)
        return images.flip(3)

    x = _images()
    v1, _ = method.make_views(augment, x, torch.Generator().manual_seed(0))
    assert len(calls) == 2
    torch.testing.assert_close(v1, mixup_positive(x.flip(3), 0.9, torch.Generator().manual_seed(0))[0])


def test_alpha_one_gives_the_images_themselves():
    method = _method(alpha=1.0)
    x = _images()
    for v in method.make_views(_never, x, torch.Generator().manual_seed(0)):
        torch.testing.assert_close(v, x)


def test_interventional_views_are_mixed():
    method = _method()
    x = _images()

    def counterfactuals(images, indices, generator, num_views):
        return [images.flip(2) for _ in range(num_views)]

    v1, v2 = method.make_interventional_views(counterfactuals, x, torch.arange(8), torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    torch.testing.assert_close(v1, mixup_positive(x.flip(2), 0.9, g)[0])
    torch.testing.assert_close(v2, mixup_positive(x.flip(2), 0.9, g)[0])


def test_forward_equals_info_nce_on_projections():
    method = _method(temperature=0.3)
    method.eval()
    views = method.make_views(_never, _images(), torch.Generator().manual_seed(0))
    out = method(views)
    z1, z2 = method.projector(method.backbone(torch.cat(views))).chunk(2)
    torch.testing.assert_close(out["loss"], info_nce(z1, z2, 0.3))
    torch.testing.assert_close(out["embeddings"][1], z2)


def test_a_few_steps_lower_the_loss():
    method = _method()
    views = method.make_views(_never, _images(), torch.Generator().manual_seed(0))
    assert_loss_drops(method, views, steps=8, lr=1e-3)


def test_checkpoint_round_trip(tmp_path):
    method = _method()
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method(seed=3)
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    views = method.make_views(_never, _images(), torch.Generator().manual_seed(0))
    method.eval(), other.eval()
    torch.testing.assert_close(method(views)["loss"], other(views)["loss"])


@pytest.mark.parametrize("kwargs,name", [
    ({"alpha": -0.1}, "alpha"), ({"alpha": 1.5}, "alpha"), ({"alpha": float("nan")}, "alpha"),
    ({"pixel_augment": "yes"}, "pixel_augment"), ({"temperature": 0.0}, "temperature"),
    ({"projector": ()}, "projector"),
])
def test_bad_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DACL(build_backbone("convnet_small", channels_last=False), **kwargs)


def test_bad_images_and_views():
    with pytest.raises(ValueError, match="images"):
        mixup_positive(_images(n=1))
    with pytest.raises(ValueError, match="images"):
        mixup_positive(torch.ones(4, 3, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(4, 3, 16, 16)])
