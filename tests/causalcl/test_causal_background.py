"""Background swap do(background = b′) (DESIGN §5.3a): the functional core against a per-pixel loop
reference, its StyleIntervention, the ``augment.background_swap_p`` view function and the CLI."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from causalcl.build import build_augment, build_method, build_view_fn
from causalcl.causal import (
    MASK_INTERVENTIONS,
    BackgroundSwap,
    StyleIntervention,
    background_swap,
    background_swap_intervention,
    procedural_backgrounds,
)
from causalcl.cli import main
from causalcl.data import ShapesDataset, TensorImageDataset
from causalcl.data.augment import SimCLRAugment
from causalcl.train.config import Config

SHIFTS = ((0.0, 0.5), (0.5, 0.0), (0.5, 0.5), (0.0, 0.25), (0.25, 0.0), (0.0, -0.25), (-0.25, 0.0),
          (0.25, 0.25), (-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25))


def _batch(b: int = 5, h: int = 8, w: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images and blob-like bool masks (a random rectangle per image, some pixels flipped)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(b, 3, h, w, generator=g, dtype=torch.float64)
    masks = torch.zeros(b, h, w, dtype=torch.bool)
    for i in range(b):
        y0, x0 = torch.randint(0, h // 2, (2,), generator=g).tolist()
        masks[i, y0:y0 + h // 2, x0:x0 + w // 3] = True
    return images, masks


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- naive per-pixel reference
def _naive_dilate(mask: torch.Tensor) -> torch.Tensor:
    h, w = mask.shape
    out = torch.zeros_like(mask)
    for y in range(h):
        for x in range(w):
            out[y, x] = bool(mask[max(0, y - 1):y + 2, max(0, x - 1):x + 2].any())
    return out


def _naive_mean_bg(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    pixels = [image[:, y, x] for y in range(mask.shape[0]) for x in range(mask.shape[1]) if not mask[y, x]]
    return torch.stack(pixels).mean(0) if pixels else torch.full((image.shape[0],), 0.5, dtype=image.dtype)


def _naive_background(images: torch.Tensor, masks: torch.Tensor, donor: int, fill: str) -> torch.Tensor:
    """The background b′ that donor ``donor`` gives, pixel by pixel (``fill`` = donor | mean | shift)."""
    image, hole = images[donor], _naive_dilate(masks[donor])
    if fill == "donor":
        return image.clone()
    h, w = hole.shape
    mean = _naive_mean_bg(image, hole)
    out = image.clone()
    for y in range(h):
        for x in range(w):
            if not hole[y, x]:
                continue
            out[:, y, x] = mean
            if fill == "shift":
                for fy, fx in SHIFTS:
                    sy, sx = (y - round(fy * h)) % h, (x - round(fx * w)) % w  # roll by +shift: source = y − shift
                    if not hole[sy, sx]:
                        out[:, y, x] = image[:, sy, sx]
                        break
    return out


def _naive_swap(images, masks, swapped, donors, fill):
    out = images.clone()
    for i in range(images.shape[0]):
        if not swapped[i]:
            continue
        bg = _naive_background(images, masks, int(donors[i]), fill)
        for y in range(images.shape[2]):
            for x in range(images.shape[3]):
                if not masks[i, y, x]:
                    out[i, :, y, x] = bg[:, y, x]
    return out


@pytest.mark.parametrize("fill", ["donor", "mean", "shift"])
def test_batch_source_matches_the_per_pixel_reference(fill: str) -> None:
    images, masks = _batch()
    out, swapped, donors = background_swap(images, masks, _gen(3), fill=fill, return_draw=True)
    assert swapped.all()  # p = 1
    assert sorted(donors.tolist()) == list(range(5)) and (donors != torch.arange(5)).all()  # a derangement
    torch.testing.assert_close(out, _naive_swap(images, masks, swapped, donors, fill), rtol=0, atol=1e-12)
    fg = masks[:, None].expand_as(images)
    assert torch.equal(out[fg], images[fg])  # the object is copied exactly


def test_background_pixels_come_from_the_donor_where_it_has_background() -> None:
    images, masks = _batch(b=6, h=12, w=10)
    out, _, donors = background_swap(images, masks, _gen(1), return_draw=True)
    for i, d in enumerate(donors.tolist()):
        keep = ~masks[i] & ~_naive_dilate(masks[d])
        assert torch.equal(out[i][:, keep], images[d][:, keep])


def test_texture_fill_and_texture_source() -> None:
    images, masks = _batch(b=4, h=8, w=12)  # not square: textures are rendered square and cropped
    fg = masks[:, None].expand_as(images)
    for kw in ({"fill": "texture"}, {"source": "texture"}):
        out = background_swap(images, masks, _gen(2), **kw)
        assert out.shape == images.shape and torch.equal(out[fg], images[fg])
        assert not torch.equal(out[~fg], images[~fg]) and 0 <= out.min() and out.max() <= 1
        torch.testing.assert_close(out, background_swap(images, masks, _gen(2), **kw))
    tex = procedural_backgrounds(3, 8, 12, _gen(0), dtype=torch.float64)
    assert tex.shape == (3, 3, 8, 12) and tex.dtype == torch.float64 and 0 <= tex.min() and tex.max() <= 1


def test_seeded_and_p() -> None:
    images, masks = _batch(b=64, h=6, w=6)
    a = background_swap(images, masks, _gen(7), p=0.5)
    torch.testing.assert_close(a, background_swap(images, masks, _gen(7), p=0.5), rtol=0, atol=0)
    assert not torch.equal(a, background_swap(images, masks, _gen(8), p=0.5))
    _, swapped, _ = background_swap(images, masks, _gen(7), p=0.5, return_draw=True)
    assert 16 < int(swapped.sum()) < 48
    changed = (a != images).flatten(1).any(1)
    assert not changed[~swapped].any()  # samples not chosen are returned unchanged
    zero = background_swap(images, masks, _gen(7), p=0.0)
    assert torch.equal(zero, images) and zero is not images


def test_alpha_masks_composite() -> None:
    images, masks = _batch(b=3)
    alpha = masks.double() * 0.75
    out, _, donors = background_swap(images, alpha, _gen(0), fill="donor", return_draw=True)
    a = alpha[:, None]
    torch.testing.assert_close(out, a * images + (1 - a) * images[donors])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtype_and_device_are_kept(dtype: torch.dtype) -> None:
    images, masks = _batch(b=4)
    for source in ("batch", "texture"):
        out = background_swap(images.to(dtype), masks, _gen(), source=source)
        assert out.dtype == dtype and out.device == images.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_the_gpu_with_a_gpu_generator() -> None:
    images, masks = _batch(b=8)
    gen = torch.Generator(device="cuda").manual_seed(0)
    for source in ("batch", "texture"):
        out = background_swap(images.cuda().float(), masks.cuda(), gen, source=source, fill="shift")
        assert out.is_cuda and out.dtype == torch.float32
        fg = masks.cuda()[:, None].expand_as(out)
        assert torch.equal(out[fg], images.cuda().float()[fg])


def test_bad_inputs_name_the_argument() -> None:
    images, masks = _batch(b=2)
    cases = [
        ((images[0], masks), {}, "images"),
        ((images.to(torch.uint8), masks), {}, "images"),
        ((images, masks[:, :4]), {}, "masks"),
        ((images, masks[:1]), {}, "masks"),
        ((images, masks.long()), {}, "masks"),
        ((images, masks.double() * 2), {}, "masks"),
        ((images, masks.numpy()), {}, "masks"),
        ((images, masks, 0), {}, "generator"),
        ((images, masks), {"source": "noise"}, "source"),
        ((images, masks), {"fill": "inpaint"}, "fill"),
        ((images, masks), {"p": 1.5}, "p"),
    ]
    for args, kw, name in cases:
        with pytest.raises(ValueError, match=name):
            background_swap(*args, **kw)


def test_style_intervention() -> None:
    images, masks = _batch(b=4)
    swap = BackgroundSwap("batch", p=1.0, fill="mean")
    bound = swap.bind(masks)
    assert isinstance(bound, StyleIntervention) and bound.name == "background_swap" and not bound.is_parametric
    torch.testing.assert_close(bound(images, _gen(4)), background_swap(images, masks, _gen(4), fill="mean"))
    assert background_swap_intervention(masks, source="texture").name == "texture_swap"
    assert {n: BackgroundSwap.from_name(n).source for n in MASK_INTERVENTIONS} == {"background_swap": "batch",
                                                                                  "texture_swap": "texture"}
    with pytest.raises(ValueError, match="name"):
        BackgroundSwap.from_name("augment")


# ----------------------------------------------------------------------------- the view function
@pytest.fixture(scope="module")
def shapes() -> ShapesDataset:
    return ShapesDataset("train", n=64, image_size=16, cache=False)


def _config(**augment) -> Config:
    config = Config()
    config.set("method.projector", [32, 16])
    for key, value in augment.items():
        config.set(f"augment.{key}", value)
    return config


def test_view_fn_swaps_before_the_augmentation_with_one_draw_per_view(shapes) -> None:
    config = _config(background_swap_p=1.0)
    method = build_method(config)
    identity = SimCLRAugment(16, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, grayscale_p=0.0)
    fn = build_view_fn(method, identity, config, shapes)
    idx = torch.arange(8, 24)
    images, _ = shapes.get_batch(idx)
    v1, v2 = fn(images, idx, _gen())
    fg = shapes.masks[idx][:, None].expand_as(images)
    for v in (v1, v2):  # the object stays where the mask says (the swap came before the (identity) crop)
        torch.testing.assert_close(v[fg], images[fg], rtol=0, atol=1e-5)
        assert (v[~fg] - images[~fg]).abs().max() > 0.1
    assert (v1[~fg] - v2[~fg]).abs().max() > 0.1  # each view has its own background draw
    # p = 0: the default view function, nothing swapped
    plain = build_view_fn(method, identity, _config(), shapes)(images, idx, _gen())
    torch.testing.assert_close(plain[0], images, rtol=0, atol=1e-5)


def test_view_fn_keeps_methods_that_copy_their_augmentation(shapes) -> None:
    for name in ("ressl", "cmc"):
        config = _config(background_swap_p=1.0)
        config.method = {"name": name}
        method = build_method(config)
        fn = build_view_fn(method, build_augment(config, 16), config, shapes)
        views = fn(*shapes.get_batch(torch.arange(16))[:1], torch.arange(16), _gen())
        assert len(views) == 2 and views[0].shape == (16, 3, 16, 16)


def test_a_method_that_never_calls_the_augmentation_is_refused(shapes, monkeypatch) -> None:
    config = _config(background_swap_p=1.0)
    method = build_method(config)
    monkeypatch.setattr(method, "make_views", lambda augment, images, generator=None: [images, images])
    fn = build_view_fn(method, build_augment(config, 16), config, shapes)
    with pytest.raises(ValueError, match="background_swap_p: method 'simclr' never called"):
        fn(shapes.get_batch(torch.arange(4))[0], torch.arange(4), _gen())


def test_intervene_then_augment_is_a_simclr_augment_copy() -> None:
    from causalcl.build import InterveneThenAugment
    from causalcl.methods.ressl import weak_augment

    base = SimCLRAugment(8, jitter_p=0.5)
    flag = StyleIntervention("zero", lambda x, g=None: torch.zeros_like(x))
    wrapped = InterveneThenAugment(flag, base)
    assert isinstance(wrapped, SimCLRAugment) and wrapped.jitter_p == 0.5 and base.jitter_p == 0.5
    weak = weak_augment(wrapped)  # a copy with colour ops off: still intervenes, shares the call count
    assert weak.jitter_p == 0.0 and wrapped.jitter_p == 0.5
    assert torch.equal(weak(torch.rand(2, 3, 8, 8), _gen()), torch.zeros(2, 3, 8, 8))
    wrapped(torch.rand(2, 3, 8, 8), _gen())
    assert wrapped.calls == weak.calls == 2


def test_dataset_without_masks_is_refused(shapes) -> None:
    no_masks = TensorImageDataset(shapes.images, shapes.labels, shapes.class_names)
    config = _config(background_swap_p=0.5)
    config.set("data.name", "imagefolder")
    with pytest.raises(ValueError, match=r"augment\.background_swap_p: dataset 'imagefolder' has no foreground masks"):
        build_view_fn(build_method(config), build_augment(config, 16), config, no_masks)
    config.set("augment.background_swap_p", 0.0)
    config.set("method", {"name": "relic", "interventions": ["background_swap"]})
    with pytest.raises(ValueError, match=r"method\.interventions: dataset 'imagefolder' has no foreground masks"):
        build_view_fn(build_method(config), build_augment(config, 16), config, no_masks)


@pytest.mark.parametrize("key,value,match", [("background_swap_p", 2.0, "background_swap_p"),
                                             ("background_swap_source", "noise", "background_swap_source"),
                                             ("background_swap_fill", "blur", "background_swap_fill")])
def test_bad_config_values(shapes, key: str, value, match: str) -> None:
    config = _config(**{"background_swap_p": 0.5, key: value})
    with pytest.raises(ValueError, match=match):
        build_view_fn(build_method(config), build_augment(config, 16), config, shapes)


def test_interventional_views_and_swaps_are_exclusive(shapes) -> None:
    config = _config(background_swap_p=0.5, views="interventional")
    with pytest.raises(ValueError, match="background_swap_p.*interventional"):
        build_view_fn(build_method(config), build_augment(config, 16), config, shapes)


# ----------------------------------------------------------------------------- the CLI
TINY = ["--dataset", "shapes", "--steps", "2", "--batch-size", "16", "--set", "data.options.n=64",
        "--set", "data.image_size=16", "--set", "method.projector=[32,16]", "--diagnostics", "none"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("extra", [["--method", "simclr", "--set", "augment.background_swap_p=0.5"],
                                   ["--method", "relic", "--set", "method.interventions=[background_swap]"]])
def test_cli_trains_with_background_swaps(tmp_path, monkeypatch, cache, extra) -> None:
    monkeypatch.setenv("CAUSALCL_CACHE", str(cache))
    out = tmp_path / "run"
    assert main([*TINY, *extra, "--out", str(out)]) == 0
    assert (out / "checkpoint.pt").is_file() and (out / "results.json").is_file()


def test_cli_refuses_a_dataset_without_masks(tmp_path, monkeypatch, cache, capsys) -> None:
    monkeypatch.setenv("CAUSALCL_CACHE", str(cache))
    for cls in ("a", "b"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (16, 16), (60 * i, 40, 200)).save(tmp_path / "data" / cls / f"{i}.png")
    argv = ["--dataset", "imagefolder", "--data-root", str(tmp_path / "data"), "--steps", "1", "--batch-size", "4",
            "--set", "data.image_size=16", "--diagnostics", "linear", "--out", str(tmp_path / "x")]
    assert main([*argv, "--set", "augment.background_swap_p=0.5"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]  # not tqdm's bar
    assert len(err) == 1 and "augment.background_swap_p" in err[0] and "'imagefolder'" in err[0]
