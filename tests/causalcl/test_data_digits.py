"""Digits-on-Textures: item format, glyph split, confounding share, interventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causalcl.data import DigitsDataset
from causalcl.data.digits import BACKGROUND_SOURCES, glyph_split


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSALCL_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def small() -> DigitsDataset:
    return DigitsDataset("train", n=200, cache=False)


def test_item_format(small):
    item = small[3]
    assert set(item) == {"image", "mask", "label", "latents"}
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["mask"].dtype == torch.bool and item["mask"].shape == (32, 32) and item["mask"].any()
    assert 0 <= item["label"] < 10 and item["latents"]["cls"] == item["label"]
    assert set(item["latents"]) == {
        "cls",
        "glyph",
        "pos_x",
        "pos_y",
        "fg_hue",
        "bg_hue",
        "brightness",
        "bg_source",
        "crop_x",
        "crop_y",
    }
    assert small.num_classes == 10 and small.class_names[4] == "4"
    assert len(BACKGROUND_SOURCES) == 10
    frac = small.masks.float().mean(dim=(1, 2))
    assert 0.03 < frac.mean() < 0.4


def test_glyph_split_disjoint_and_labels_match():
    from sklearn.datasets import load_digits

    target = load_digits().target
    pools = {s: np.concatenate(glyph_split(s)) for s in ("train", "probe", "test")}
    assert sum(len(p) for p in pools.values()) == 1797
    assert not set(pools["train"]) & set(pools["probe"]) and not set(pools["probe"]) & set(pools["test"])
    ds = DigitsDataset("probe", n=150, cache=False)
    glyphs = ds.latents["glyph"].numpy()
    assert set(glyphs) <= set(pools["probe"])
    np.testing.assert_array_equal(target[glyphs], ds.labels.numpy())


def test_determinism():
    a = DigitsDataset("test", n=30, seed=1, cache=False)
    b = DigitsDataset("test", n=30, seed=1, cache=False)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)


def test_confounding_share():
    n = 3000
    tr = DigitsDataset("train", n=n, image_size=16, cache=False)
    te = DigitsDataset("test", n=n, image_size=16, cache=False)
    share_tr = (tr.latents["bg_source"] == tr.labels).float().mean().item()
    share_te = (te.latents["bg_source"] == te.labels).float().mean().item()
    assert abs(share_tr - (0.9 + 0.1 / 10)) < 0.025
    assert abs(share_te - 0.1) < 0.025


def test_intervene_changes_only_background(small):
    i = 7
    item = small[i]
    torch.testing.assert_close(small.intervene(i)["image"], item["image"])
    src = (item["latents"]["bg_source"] + 4) % 10
    cf = small.intervene(i, bg_source=src)
    assert cf["label"] == item["label"] and torch.equal(cf["mask"], item["mask"])
    assert cf["latents"]["bg_source"] == src
    assert all(cf["latents"][k] == v for k, v in item["latents"].items() if k != "bg_source")
    diff = (cf["image"] - item["image"]).abs().sum(0)
    assert diff[~item["mask"]].mean() > 0.02
    out = small.intervene_batch(torch.tensor([i, 1]), bg_source=np.array([src, 2]))
    torch.testing.assert_close(out[0], cf["image"])


def test_cache_roundtrip():
    a = DigitsDataset("probe", n=64)
    b = DigitsDataset("probe", n=64)
    assert torch.equal(a.images, b.images)
