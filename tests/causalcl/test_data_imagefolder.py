"""imagefolder adapter on tiny PNGs written to tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from causalcl.data import ImageFolderDataset, get_dataset


def _png(path, size=(20, 12), mode="RGB", value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0], 3), value, np.uint8)
    arr[:, : size[0] // 2] = 255 - value
    Image.fromarray(arr).convert(mode).save(path)


@pytest.fixture
def flat(tmp_path):
    for c in ("cat", "dog"):
        for i in range(3):
            _png(tmp_path / c / f"{i}.png", value=40 * i)
    _png(tmp_path / "dog" / "grey.png", mode="L")
    _png(tmp_path / "cat" / "alpha.png", mode="RGBA")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    return tmp_path


def test_flat_layout(flat):
    ds = ImageFolderDataset("train", root=flat, image_size=8, progress=False)
    assert len(ds) == 8 and ds.class_names == ["cat", "dog"]
    assert ds.images.shape == (8, 3, 8, 8) and ds.images.dtype == torch.uint8
    assert ds.labels.tolist().count(0) == 4 and ds.masks is None
    item = ds[0]
    assert item["image"].shape == (3, 8, 8) and 0 <= item["image"].min() and item["image"].max() <= 1
    # shorter side resized then centre-cropped: the two halves of the 20x12 image stay visible
    img = ds.images[ds.paths.index(flat / "cat" / "0.png")].float()
    assert img[:, :, 0].mean() > 200 and img[:, :, -1].mean() < 50
    assert len(get_dataset("imagefolder", "test", root=flat, image_size=8, progress=False)) == 8


def test_split_folders(tmp_path):
    for split, classes in (("train", ("a", "b")), ("val", ("a", "c"))):
        for c in classes:
            _png(tmp_path / split / c / "x.png")
    tr = ImageFolderDataset("train", root=tmp_path, image_size=4, progress=False)
    te = ImageFolderDataset("test", root=tmp_path, image_size=4, progress=False)
    assert tr.class_names == te.class_names == ["a", "b", "c"]
    assert sorted(tr.labels.tolist()) == [0, 1] and sorted(te.labels.tolist()) == [0, 2]


def test_truncated_file_skip_and_raise(flat):
    good = (flat / "dog" / "0.png").read_bytes()
    (flat / "dog" / "broken.png").write_bytes(good[: len(good) // 2])
    (flat / "dog" / "garbage.jpg").write_bytes(b"\x00" * 50)
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        ds = ImageFolderDataset(root=flat, image_size=8, progress=False)
    assert len(ds) == 8 and len(ds.skipped) == 2
    with pytest.raises(ValueError, match="unreadable image file"):
        ImageFolderDataset(root=flat, image_size=8, on_error="raise", progress=False)


def test_missing_or_empty_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="Expected layout"):
        ImageFolderDataset(root=tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="<root>/<class>/<image files>"):
        ImageFolderDataset(root=tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(FileNotFoundError, match="no image files"):
        ImageFolderDataset(root=tmp_path)
    with pytest.raises(FileNotFoundError):
        get_dataset("imagefolder")
    with pytest.raises(ValueError, match="on_error"):
        ImageFolderDataset(root=tmp_path, on_error="ignore")


def test_all_unreadable_is_empty(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"junk")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="empty dataset"):
        ImageFolderDataset(root=tmp_path, progress=False)
