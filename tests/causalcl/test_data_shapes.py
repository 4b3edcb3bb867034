"""SCM-Shapes: item format, determinism, cache, confounding share, interventions."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from causalcl.data import ShapesDataset, get_dataset
from causalcl.data.cache import cache_path
from causalcl.data.shapes import SHAPE_NAMES, SHAPE_SYMMETRY, shape_coverage


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSALCL_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def small() -> ShapesDataset:
    return ShapesDataset("train", n=300, cache=False)


def test_item_format(small):
    item = small[5]
    assert set(item) == {"image", "mask", "label", "latents"}
    img = item["image"]
    assert img.dtype == torch.float32 and img.shape == (3, 32, 32)
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert item["mask"].dtype == torch.bool and item["mask"].shape == (32, 32)
    assert isinstance(item["label"], int) and 0 <= item["label"] < 8
    lat = item["latents"]
    assert set(lat) == {
        "cls",
        "scale",
        "rotation",
        "pos_x",
        "pos_y",
        "fg_hue",
        "bg_hue",
        "brightness",
        "bg_texture",
    }
    assert (
        lat["cls"] == item["label"] and isinstance(lat["bg_texture"], int) and isinstance(lat["scale"], float)
    )
    assert small.images.dtype == torch.uint8 and small.images.shape == (300, 3, 32, 32)
    assert small.labels.dtype == torch.int64 and small.masks.shape == (300, 32, 32)
    assert small.num_classes == 8 and small.class_names[0] == "disc"
    x, y = small.get_batch(torch.tensor([0, 7, 3]))
    assert (
        x.shape == (3, 3, 32, 32)
        and x.dtype == torch.float32
        and y.tolist() == small.labels[[0, 7, 3]].tolist()
    )
    torch.testing.assert_close(x[1], small[7]["image"])


def test_shape_coverage_and_mask(small):
    frac = small.masks.float().mean(dim=(1, 2))
    assert 0.07 <= frac.min() and frac.max() <= 0.36  # the shape covers ~10-30% of the image
    scale = small.latents["scale"]
    assert torch.corrcoef(torch.stack([frac, scale]))[0, 1] > 0.95


def test_determinism_and_index_stability():
    a = ShapesDataset("probe", n=40, seed=3, cache=False)
    b = ShapesDataset("probe", n=40, seed=3, cache=False)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    c = ShapesDataset("probe", n=20, seed=3, cache=False)  # sample i does not depend on n
    assert torch.equal(a.images[:20], c.images)
    d = ShapesDataset("test", n=40, seed=3, cache=False)  # splits use different derived seeds
    assert not torch.equal(a.images, d.images)


def test_cache_hit(tmp_path, monkeypatch):
    a = ShapesDataset("test", n=256)
    path = cache_path("shapes", {**a.generation_params(), "split": "test", "n": 256, "seed": 0})
    assert path.is_file() and str(tmp_path) in str(path)
    assert not list(path.parent.glob("*.tmp"))  # atomic write leaves no temp file

    def no_render(*args, **kwargs):
        raise AssertionError("rendered although the cache holds this dataset")

    with monkeypatch.context() as m:
        m.setattr(ShapesDataset, "render", no_render)
        t0 = time.perf_counter()
        b = ShapesDataset("test", n=256)  # served from the cache
        assert time.perf_counter() - t0 < 5.0
        with pytest.raises(AssertionError, match="rendered"):
            ShapesDataset("test", n=256, rho=0.5)  # other parameters: a different entry
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    path.write_bytes(b"corrupt")  # a corrupt entry is regenerated, not trusted
    c = ShapesDataset("test", n=256)
    assert torch.equal(a.images, c.images)


def test_confounding_share():
    rho, n = 0.9, 4000
    tr = ShapesDataset("train", n=n, rho=rho, cache=False, image_size=16)
    te = ShapesDataset("test", n=n, cache=False, image_size=16)
    share_tr = (tr.latents["bg_texture"] == tr.labels % 8).float().mean().item()
    share_te = (te.latents["bg_texture"] == te.labels % 8).float().mean().item()
    assert abs(share_tr - (rho + (1 - rho) / 8)) < 0.02
    assert abs(share_te - 1 / 8) < 0.025
    assert "bg_texture" in te.scm.interventions and not tr.scm.interventions
    assert ("cls", "bg_texture") in tr.scm.graph() and ("cls", "bg_texture") not in te.scm.graph()


def test_intervene_changes_only_background(small):
    i = 11
    item = small[i]
    same = small.intervene(i)
    torch.testing.assert_close(same["image"], item["image"])
    new_tex = (item["latents"]["bg_texture"] + 3) % 8
    cf = small.intervene(i, bg_texture=new_tex)
    assert cf["label"] == item["label"]
    assert torch.equal(cf["mask"], item["mask"])
    assert cf["latents"]["bg_texture"] == new_tex
    for k, v in item["latents"].items():
        if k != "bg_texture":
            assert cf["latents"][k] == v, k
    diff = (cf["image"] - item["image"]).abs().sum(0)
    assert diff[~item["mask"]].mean() > 0.02  # background changed
    inner = -torch.nn.functional.max_pool2d(-item["mask"][None].float(), 3, 1, 1)[0] > 0  # eroded mask
    assert inner.sum() > 0 and diff[inner].max() < 1e-6  # the shape's interior is untouched


def test_intervene_content_variable(small):
    cf = small.intervene(2, cls=(small[2]["label"] + 1) % 8)
    assert cf["label"] == (small[2]["label"] + 1) % 8
    assert cf["latents"]["fg_hue"] == small[2]["latents"]["fg_hue"]


def test_intervene_batch(small):
    idx = torch.tensor([0, 4, 9, 4])
    imgs = small.intervene_batch(idx)
    torch.testing.assert_close(imgs, small.get_batch(idx)[0])
    tex = torch.tensor([1, 2, 3, 4])
    out, masks = small.intervene_batch(idx, bg_texture=tex, return_masks=True)
    assert out.shape == (4, 3, 32, 32) and torch.equal(masks, small.masks[idx])
    one = small.intervene(9, bg_texture=3)["image"]
    torch.testing.assert_close(out[2], one)
    rnd1 = small.intervene_batch(idx, seed=1, bg_texture=lambda rng, n: rng.integers(0, 8, n))
    rnd2 = small.intervene_batch(idx, seed=1, bg_texture=lambda rng, n: rng.integers(0, 8, n))
    assert torch.equal(rnd1, rnd2)


def test_other_sizes_and_bad_arguments():
    big = ShapesDataset("train", n=8, image_size=48, cache=False)
    assert big.images.shape == (8, 3, 48, 48) and big.masks.shape == (8, 48, 48)
    with pytest.raises(ValueError, match="image_size"):
        ShapesDataset(n=4, image_size=8)
    with pytest.raises(ValueError, match="empty dataset"):
        ShapesDataset(n=0)
    with pytest.raises(ValueError, match="split"):
        ShapesDataset("val", n=4)
    with pytest.raises(ValueError, match="rho"):
        ShapesDataset(n=4, rho=1.5)
    ds = get_dataset("shapes", "probe", n=16, cache=False)
    assert isinstance(ds, ShapesDataset) and len(ds) == 16
    assert np.isclose(ds.latents["brightness"].min().item(), 0.55, atol=0.1)


def test_shape_symmetry_orders_match_the_rendered_shapes():
    """Each shape looks the same turned by 2π/order and different turned by half that (order 1: by π); a shape
    of order 0 (disc, ring) looks the same at every angle — checked on the rendered coverage at 64 px."""
    assert sorted(SHAPE_SYMMETRY) == list(range(len(SHAPE_NAMES)))
    angles = np.array([0.3, 1.1])

    def coverage(k, turn):
        n = len(angles)
        return shape_coverage(np.full(n, k), np.full(n, 0.25), np.full(n, 0.5), np.full(n, 0.5), angles + turn, 64)

    for k, order in SHAPE_SYMMETRY.items():
        base = coverage(k, 0.0)
        same = 2 * np.pi / order if order else 0.7
        assert (coverage(k, same) - base).abs().max() < 0.15, SHAPE_NAMES[k]
        if order:
            assert (coverage(k, np.pi / order) - base).abs().mean() > 0.01, SHAPE_NAMES[k]
