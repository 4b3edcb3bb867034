"""ImageNet-9 and Waterbirds readers on fake layouts written in tmp_path; worst-group accuracy by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from evaluations.foreground import (
    IN9_CLASSES,
    WATERBIRDS_TRAIN_GROUP_COUNTS,
    ImageNet9,
    Waterbirds,
    full_vs_foreground,
    in9_bg_gap,
    worst_group_accuracy,
)


def _solid(path, red: float, size=(10, 12)):
    arr = np.zeros((*size, 3), dtype=np.uint8)
    arr[..., 0] = round(red * 255)
    arr[..., 1] = 40
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="JPEG", quality=95)


def _fake_in9(root, variant="original", per_class=2, wrong=0, masks=True):
    """Solid images with red = class / 9; the first ``wrong`` images of each class get the next class's red."""
    for k, cls in enumerate(IN9_CLASSES):
        for i in range(per_class):
            shown = (k + 1) % 9 if i < wrong else k
            _solid(root / variant / "val" / cls / f"img_{k}_{i}.JPEG", shown / 9)
            if masks:
                m = np.zeros((10, 12), dtype=np.uint8)
                m[2:6, 3:9] = 1
                p = root / "fg_mask" / "val" / cls / f"img_{k}_{i}.npy"
                p.parent.mkdir(parents=True, exist_ok=True)
                np.save(p, m)


def _red_classifier(x):
    red = x[:, 0].mean(dim=(1, 2))
    return -(red[:, None] - torch.arange(9) / 9).abs()


def test_imagenet9_reads_the_layout_with_masks_and_resizes(tmp_path):
    _fake_in9(tmp_path)
    ds = ImageNet9(tmp_path, "original", "val", size=8)
    assert len(ds) == 18
    assert ds.targets == [k for k in range(9) for _ in range(2)]
    item = ds[5]
    assert item["image"].shape == (3, 8, 8) and item["image"].dtype == torch.float32
    assert item["label"] == 2
    assert item["mask"].shape == (8, 8) and item["mask"].dtype == torch.bool
    assert 0 < int(item["mask"].sum()) < 64
    assert abs(float(item["image"][0].mean()) - 2 / 9) < 0.02
    full = ImageNet9(tmp_path, size=None)
    assert full[0]["image"].shape == (3, 10, 12) and full[0]["mask"].shape == (10, 12)
    assert "mask" not in ImageNet9(tmp_path, size=8, masks=False)[0]


def test_imagenet9_items_feed_the_full_vs_foreground_protocol(tmp_path):
    _fake_in9(tmp_path, per_class=3)
    ds = ImageNet9(tmp_path, size=8)
    res = full_vs_foreground(
        None, {"train": ds, "test": ds}, encoders={"full": _feat, "foreground": _feat}, weight_decay=1e-3
    )
    assert res.table.loc["train: full", "test: full"] == 1.0


def _feat(x):
    return x.mean(dim=(2, 3))


def test_imagenet9_missing_layout_errors_show_the_expected_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="00_dog"):
        ImageNet9(tmp_path / "nowhere")
    _fake_in9(tmp_path, masks=False)
    with pytest.raises(FileNotFoundError, match="<root>/<variant>/<split>/<class>"):
        ImageNet9(tmp_path, "mixed_rand")
    with pytest.raises(FileNotFoundError, match="fg_mask"):
        ImageNet9(tmp_path, masks=True)
    assert "mask" not in ImageNet9(tmp_path, size=8)[0]  # auto: no masks on disk -> none attached
    (tmp_path / "original" / "val" / "05_insect").rename(tmp_path / "original" / "val" / "05_bugs")
    with pytest.raises(FileNotFoundError, match="05_insect"):
        ImageNet9(tmp_path)
    with pytest.raises(ValueError, match="variant"):
        ImageNet9(tmp_path, "mixed_random")


def test_in9_bg_gap_on_fake_variant_folders(tmp_path):
    _fake_in9(tmp_path, "original", per_class=4, masks=False)
    _fake_in9(tmp_path, "mixed_same", per_class=4, masks=False)
    _fake_in9(tmp_path, "mixed_rand", per_class=4, wrong=1, masks=False)  # 1 of 4 per class wrong
    out = in9_bg_gap(_red_classifier, tmp_path, size=8, variants=("original", "mixed_same", "mixed_rand"))
    assert out["original"] == 1.0 and out["mixed_same"] == 1.0
    assert out["mixed_rand"] == pytest.approx(0.75)
    assert out["bg_gap"] == pytest.approx(0.25)
    # 1000-way style: 18 logits mapped to 9 classes, the upper half mapped to -1 (never right)
    cmap = list(range(9)) + [-1] * 9

    def wide(x):
        return torch.cat([_red_classifier(x), torch.full((x.shape[0], 9), -10.0)], 1)

    assert in9_bg_gap(wide, tmp_path, size=8, variants=("original",), class_map=cmap)["original"] == 1.0


def _fake_waterbirds(root):
    rows = ["img_id,img_filename,y,split,place,place_filename"]
    spec = [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 1), (0, 0, 2), (0, 1, 2), (1, 0, 2), (1, 1, 2), (1, 1, 2)]
    for i, (y, place, split) in enumerate(spec):
        name = f"{i:03d}.Bird/img_{i}.jpg"
        _solid(root / name, 0.5)
        rows.append(f"{i},{name},{y},{split},{place},x.jpg")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")


def test_waterbirds_reads_metadata_and_groups(tmp_path):
    _fake_waterbirds(tmp_path)
    test = Waterbirds(tmp_path, "test", size=6)
    assert len(test) == 5
    item = test[3]
    assert item["image"].shape == (3, 6, 6)
    assert (item["label"], item["place"], item["group"]) == (1, 1, 3)
    assert test.group.tolist() == [0, 1, 2, 3, 3]
    assert test.group_counts() == {
        "landbird_on_land": 1,
        "landbird_on_water": 1,
        "waterbird_on_land": 1,
        "waterbird_on_water": 2,
    }
    assert len(Waterbirds(tmp_path, "train")) == 3 and len(Waterbirds(tmp_path, "val")) == 1
    with pytest.raises(FileNotFoundError, match="metadata.csv"):
        Waterbirds(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="split"):
        Waterbirds(tmp_path, "testing")


def test_worst_group_accuracy_by_hand():
    #        group:   0  0  0  0 | 1  1 | 2  2 | 3  3  3
    y = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    place = torch.tensor([0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1])
    preds = torch.tensor([0, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1])  # acc: 3/4, 1/2, 0/2, 3/3
    worst, per_group, adjusted = worst_group_accuracy(preds, y, place)
    assert per_group == {
        "landbird_on_land": 0.75,
        "landbird_on_water": 0.5,
        "waterbird_on_land": 0.0,
        "waterbird_on_water": 1.0,
    }
    assert worst == 0.0
    c = WATERBIRDS_TRAIN_GROUP_COUNTS
    expected = (c["landbird_on_land"] * 0.75 + c["landbird_on_water"] * 0.5 + c["waterbird_on_water"] * 1.0) / 4795
    assert adjusted == pytest.approx(expected)
    assert sum(c.values()) == 4795
    # custom counts and a missing group (weights renormalised over the groups present)
    res = worst_group_accuracy(preds[:6], y[:6], place[:6], train_counts=dict.fromkeys(c, 1))
    assert res.worst == 0.5 and res.adjusted_average == pytest.approx(0.625)
    with pytest.raises(ValueError, match="place"):
        worst_group_accuracy(preds, y, place[:-1])
    with pytest.raises(ValueError, match="y"):
        worst_group_accuracy(preds, y + 1, place)


def test_imagenet9_mask_errors_name_the_file(tmp_path):
    _fake_in9(tmp_path)
    mask = tmp_path / "fg_mask" / "val" / IN9_CLASSES[0] / "img_0_0.npy"
    mask.write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match=rf"mask file {mask} could not be read"):
        ImageNet9(tmp_path, size=None)[0]
    np.save(mask, np.zeros((5, 5), dtype=np.uint8))  # not its image's 10 x 12
    with pytest.raises(ValueError, match=rf"mask file {mask}: shape \(5, 5\) does not match its image's"):
        ImageNet9(tmp_path, size=8)[0]
    np.save(mask, np.zeros((2, 10, 12), dtype=np.uint8))
    with pytest.raises(ValueError, match=rf"mask file {mask}: expected a 2-D"):
        ImageNet9(tmp_path, size=8)[0]
    image = tmp_path / "original" / "val" / IN9_CLASSES[0] / "img_0_0.JPEG"
    image.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=rf"image file {image} could not be read"):
        ImageNet9(tmp_path, size=8)[0]
