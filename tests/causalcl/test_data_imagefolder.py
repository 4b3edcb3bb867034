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


# ----------------------------------------------------------------------------- foreground masks
def _masked_folder(root, n_per_class=2, size=(20, 12)):
    """PNG images (left half white, right half black) each with a ``<stem>.mask.npy`` marking the left half."""
    w, h = size
    for c in ("cat", "dog"):
        for i in range(n_per_class):
            path = root / c / f"img{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            arr = np.zeros((h, w, 3), np.uint8)
            arr[:, : w // 2] = 255
            Image.fromarray(arr).save(path)
            mask = np.zeros((h, w), np.uint8)
            mask[:, : w // 2] = 3  # any nonzero value is foreground
            np.save(root / c / f"img{i}.mask.npy", mask)
    return root


def test_masks_are_resized_and_cropped_like_the_images(tmp_path):
    _masked_folder(tmp_path)
    ds = ImageFolderDataset("train", root=tmp_path, image_size=8, progress=False)
    assert ds.masks is not None and ds.masks.shape == (4, 8, 8) and ds.masks.dtype == torch.bool
    assert ds.mask_paths == [p.with_name(p.stem + ".mask.npy") for p in ds.paths]
    # 20x12 -> shorter side 8: 13x8 (nearest: source x < 10 <=> resized column < 6), centre crop columns 2..9
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[:, :4] = True
    for i in range(len(ds)):
        assert torch.equal(ds.masks[i], expected)
        bright = ds.images[i].float().mean(0)
        assert (bright[:, :4] > 200).all() and (bright[:, 5:] < 50).all()  # the image's left half is the mask's
    item = ds[0]
    assert torch.equal(item["mask"], expected) and item["image"].shape == (3, 8, 8)
    # a stripe x in [8, 16) of a 40x24 image: 13x8, crop columns 2..9 -> columns 1, 2, where the image is
    # bright too (squashing the mask straight to 8x8 would give column 2 only)
    stripe = tmp_path / "stripe"
    arr = np.zeros((24, 40, 3), np.uint8)
    arr[:, 8:16] = 255
    _masked_folder(stripe, n_per_class=1)
    Image.fromarray(arr).save(stripe / "cat" / "img0.png")
    np.save(stripe / "cat" / "img0.mask.npy", arr[..., 0] > 0)
    ds = ImageFolderDataset("train", root=stripe, image_size=8, progress=False)
    i = ds.paths.index(stripe / "cat" / "img0.png")
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[:, 1:3] = True
    assert torch.equal(ds.masks[i], expected)
    bright = ds.images[i].float().mean(0)
    assert (bright[:, 1:3] > 200).all() and (bright[:, 3:] < 100).all() and (bright[:, 4:] == 0).all()
    # a tall image keeps its vertical centre crop; a (H, W, 1) array is accepted
    _png(tmp_path / "cat" / "tall.png", size=(12, 20))
    top = np.zeros((20, 12, 1), bool)
    top[:10] = True
    np.save(tmp_path / "cat" / "tall.mask.npy", top)
    ds = ImageFolderDataset("train", root=tmp_path, image_size=8, progress=False)
    m = ds.masks[ds.paths.index(tmp_path / "cat" / "tall.png")]
    assert m[:4].all() and not m[4:].any()


def test_mask_files_are_not_images_and_masks_option(tmp_path):
    _masked_folder(tmp_path)
    ds = ImageFolderDataset("train", root=tmp_path, image_size=8, progress=False, masks=True)
    assert len(ds) == 4 and all(p.suffix == ".png" for p in ds.paths) and ds.masks is not None
    off = ImageFolderDataset("train", root=tmp_path, image_size=8, progress=False, masks=False)
    assert len(off) == 4 and off.masks is None and off.mask_paths is None
    with pytest.raises(ValueError, match="masks must be"):
        ImageFolderDataset(root=tmp_path, masks="yes")
    # only masks, no images: nothing to load
    for p in tmp_path.rglob("*.png"):
        p.unlink()
    with pytest.raises(FileNotFoundError, match="no image files"):
        ImageFolderDataset(root=tmp_path, progress=False)


def test_missing_masks_for_each_option(tmp_path, recwarn):
    _masked_folder(tmp_path)
    (tmp_path / "dog" / "img1.mask.npy").unlink()
    missing = str(tmp_path / "dog" / "img1.mask.npy")
    with pytest.raises(FileNotFoundError, match=r"1 of 4 image files") as err:
        ImageFolderDataset(root=tmp_path, image_size=8, progress=False, masks=True)
    assert missing in str(err.value)
    with pytest.warns(UserWarning, match="masks not attached: 1 of 4") as warned:
        ds = ImageFolderDataset(root=tmp_path, image_size=8, progress=False)
    assert ds.masks is None and len(ds) == 4 and missing in str(warned[0].message)
    recwarn.clear()
    assert ImageFolderDataset(root=tmp_path, image_size=8, progress=False, masks=False).masks is None
    for p in tmp_path.rglob("*.mask.npy"):
        p.unlink()
    assert ImageFolderDataset(root=tmp_path, image_size=8, progress=False).masks is None
    assert not recwarn.list  # masks=False, or no mask at all: silent


def test_skipped_images_keep_masks_aligned(tmp_path):
    _masked_folder(tmp_path)
    (tmp_path / "cat" / "broken.png").write_bytes(b"junk")
    np.save(tmp_path / "cat" / "broken.mask.npy", np.ones((3, 3), bool))  # never read: its image is skipped
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        ds = ImageFolderDataset(root=tmp_path, image_size=8, progress=False, masks=True)
    assert len(ds) == 4 and ds.masks.shape == (4, 8, 8) and len(ds.mask_paths) == 4


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.ones(12 * 20, bool), "2-D"),
        (np.ones((12, 20, 5), bool), "2-D"),
        (np.ones((13, 20), bool), "does not match its image"),
        (np.ones((20, 12), bool), "does not match its image"),
        (np.array([["a"] * 20] * 12), "numeric or bool"),
        (b"not a numpy file", "unreadable mask file"),
        (np.array([{"x": 1}], dtype=object), "unreadable mask file"),
    ],
)
def test_bad_mask_file_names_the_file(tmp_path, bad, match):
    _masked_folder(tmp_path, n_per_class=1)
    path = tmp_path / "dog" / "img0.mask.npy"
    if isinstance(bad, bytes):
        path.write_bytes(bad)
    else:
        np.save(path, bad, allow_pickle=True)
    with pytest.raises(ValueError, match=match) as err:
        ImageFolderDataset(root=tmp_path, image_size=8, progress=False)
    assert str(path) in str(err.value)


def test_background_swap_on_an_imagefolder_with_masks(tmp_path):
    from causalcl.build import build_augment, build_method, build_view_fn, load_split
    from causalcl.data.augment import SimCLRAugment
    from causalcl.train.config import Config

    rng = np.random.default_rng(0)
    for i in range(16):
        folder = tmp_path / "data" / ("a", "b")[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        mask = np.zeros((10, 12), bool)
        mask[2:8, 3:9] = True
        np.save(folder / f"{i}.mask.npy", mask)
    config = Config()
    config.set("data.name", "imagefolder")
    config.set("data.root", str(tmp_path / "data"))
    config.set("data.image_size", 8)
    config.set("data.options.progress", False)
    config.set("method.projector", [32, 16])
    config.set("augment.background_swap_p", 0.5)
    ds = load_split(config, "train")
    assert len(ds) == 16 and ds.masks.shape == (16, 8, 8) and ds.masks.any() and not ds.masks.all()
    idx = torch.arange(16)
    images, _ = ds.get_batch(idx)
    g = torch.Generator().manual_seed(0)
    views = build_view_fn(build_method(config), build_augment(config, 8), config, ds)(images, idx, g)
    assert len(views) == 2 and all(v.shape == (16, 3, 8, 8) and torch.isfinite(v).all() for v in views)
    # p = 1 with an identity augmentation: the object stays where its mask says, the background changes
    config.set("augment.background_swap_p", 1.0)
    identity = SimCLRAugment(8, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, grayscale_p=0.0)
    v1, _ = build_view_fn(build_method(config), identity, config, ds)(images, idx, g)
    fg = ds.masks[:, None].expand_as(images)
    torch.testing.assert_close(v1[fg], images[fg], rtol=0, atol=1e-5)
    assert (v1[~fg] - images[~fg]).abs().max() > 0.1
