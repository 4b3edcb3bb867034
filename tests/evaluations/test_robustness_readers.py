"""Readers for CIFAR-10-C, ImageNet-C and ImageNet-R on tiny fake layouts in tmp_path (never real data)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from evaluations.robustness import (
    imagenet_r_logit_mask,
    read_cifar10_c,
    read_imagenet_c,
    read_imagenet_r,
    top1_error,
)


def _write_jpeg(path, value: int, size: int = 20) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size + 4, 3), value, dtype=np.uint8)).save(path, "JPEG", quality=95)


def test_cifar10_c_rows_per_severity(tmp_path):
    arr = np.zeros((10, 32, 32, 3), dtype=np.uint8)
    for r in range(10):
        arr[r] = r * 10
    np.save(tmp_path / "fog.npy", arr)
    np.save(tmp_path / "labels.npy", np.arange(10) % 3)
    images, labels = read_cifar10_c(tmp_path, "fog", 3)  # rows 4, 5
    assert images.shape == (2, 3, 32, 32) and images.dtype == torch.float32
    assert torch.allclose(images[:, 0, 0, 0], torch.tensor([40.0, 50.0]) / 255)
    assert labels.tolist() == [1, 2] and labels.dtype == torch.long


def test_cifar10_c_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"<root>/<corruption>\.npy"):
        read_cifar10_c(tmp_path / "nope", "fog", 1)
    with pytest.raises(FileNotFoundError, match="labels.npy"):
        np.save(tmp_path / "fog.npy", np.zeros((5, 32, 32, 3), dtype=np.uint8))
        read_cifar10_c(tmp_path, "fog", 1)
    np.save(tmp_path / "labels.npy", np.zeros(5, dtype=np.int64))
    np.save(tmp_path / "snow.npy", np.zeros((6, 32, 32, 3), dtype=np.uint8))  # not 5 * n rows
    with pytest.raises(FileNotFoundError, match="expected uint8"):
        read_cifar10_c(tmp_path, "snow", 1)
    np.save(tmp_path / "frost.npy", np.zeros((10, 32, 32, 3), dtype=np.uint8))  # labels have 5 rows
    with pytest.raises(FileNotFoundError, match="labels"):
        read_cifar10_c(tmp_path, "frost", 1)
    (tmp_path / "fog.npy").write_bytes(b"not an npy file")
    with pytest.raises(FileNotFoundError, match="cannot read"):
        read_cifar10_c(tmp_path, "fog", 1)
    with pytest.raises(ValueError, match="unknown corruption"):
        read_cifar10_c(tmp_path, "rain", 1)
    with pytest.raises(ValueError, match="severity"):
        read_cifar10_c(tmp_path, "fog", 6)


def test_imagenet_c_layout(tmp_path):
    for wnid, value in (("n01440764", 10), ("n01443537", 200)):
        for k in range(2):
            _write_jpeg(tmp_path / "snow" / "2" / wnid / f"ILSVRC2012_val_{k}.JPEG", value)
    (tmp_path / "snow" / "2" / "n01440764" / "notes.txt").write_text("ignored")
    ds = read_imagenet_c(tmp_path, "snow", 2)
    assert len(ds) == 4 and ds.classes == ["n01440764", "n01443537"] and ds.label == "ImageNet-C"
    item = ds[3]
    assert item["label"] == 1 and item["image"].shape == (3, 20, 24) and item["image"].dtype == torch.float32
    assert abs(float(item["image"].mean()) - 200 / 255) < 0.02
    full = read_imagenet_c(tmp_path, "snow", 2, wnids=["n01000000", "n01440764", "n01443537"])
    assert [full[i]["label"] for i in range(4)] == [1, 1, 2, 2]
    custom = read_imagenet_c(tmp_path, "snow", 2, transform=lambda im: torch.zeros(3, 2, 2))
    assert custom[0]["image"].shape == (3, 2, 2)


def test_imagenet_c_missing_pieces(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"<root>/<corruption>/<severity 1-5>/<wnid>/\*\.JPEG"):
        read_imagenet_c(tmp_path / "absent", "fog", 1)
    with pytest.raises(FileNotFoundError, match="fog severity 1"):
        read_imagenet_c(tmp_path, "fog", 1)
    (tmp_path / "fog" / "1").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no class folders"):
        read_imagenet_c(tmp_path, "fog", 1)
    (tmp_path / "fog" / "1" / "n01440764").mkdir()
    with pytest.raises(FileNotFoundError, match="no image files"):
        read_imagenet_c(tmp_path, "fog", 1)
    _write_jpeg(tmp_path / "fog" / "1" / "n01440764" / "a.JPEG", 5)
    with pytest.raises(ValueError, match="not in the given wnid list"):
        read_imagenet_c(tmp_path, "fog", 1, wnids=["n09999999"])
    (tmp_path / "fog" / "1" / "n01440764" / "broken.JPEG").write_bytes(b"\xff\xd8 truncated")
    ds = read_imagenet_c(tmp_path, "fog", 1)
    with pytest.raises(ValueError, match="cannot read image file"):
        ds[1]


def test_imagenet_r_and_logit_mask(tmp_path):
    _write_jpeg(tmp_path / "n01443537" / "art_0.jpg", 30)
    _write_jpeg(tmp_path / "n01443537" / "cartoon_1.jpg", 30)
    _write_jpeg(tmp_path / "n01484850" / "sketch_0.jpg", 220)
    ds = read_imagenet_r(tmp_path)
    assert ds.classes == ["n01443537", "n01484850"] and ds.types == ["art", "cartoon", "sketch"]
    assert [ds[i]["label"] for i in range(3)] == [0, 0, 1] and ds.label == "ImageNet-R"
    all_wnids = ["n01440764", "n01443537", "n01484850", "n01491361"]
    mask = imagenet_r_logit_mask(all_wnids, ds.classes)
    assert mask.tolist() == [False, True, True, False]

    class Brightness(torch.nn.Module):  # logit 1 likes dark, logit 2 likes bright, others never win
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            m = x.mean(dim=(1, 2, 3))
            return torch.stack([m * 0 + 9, 1 - m, m, m * 0 + 9], dim=1)

    assert top1_error(Brightness(), ds, batch_size=2) == pytest.approx(1 / 3)  # unmasked: logit 0 always wins
    assert top1_error(Brightness(), ds, batch_size=2, logit_mask=mask) == 0.0
    with pytest.raises(FileNotFoundError, match="200 wnid folders"):
        read_imagenet_r(tmp_path / "missing")


def test_logit_mask_bad_inputs():
    with pytest.raises(ValueError, match="sorted"):
        imagenet_r_logit_mask(["n2", "n1"], ["n1"])
    with pytest.raises(ValueError, match="not among"):
        imagenet_r_logit_mask(["n1", "n2"], ["n3"])
    with pytest.raises(ValueError, match="empty"):
        imagenet_r_logit_mask([], ["n1"])


@pytest.mark.parametrize(("labels", "shown"), [(np.array([0, 1, 2, -5, 3]), "-5"),
                                               (np.array([0, 1, 10**9, 2, 3]), "1000000000"),
                                               (np.array([0.0, 1.5, 2, 3, 4]), "1.5")])
def test_cifar10_c_labels_must_be_classes_0_to_9(tmp_path, labels, shown):
    np.save(tmp_path / "fog.npy", np.zeros((5, 32, 32, 3), dtype=np.uint8))
    np.save(tmp_path / "labels.npy", labels)
    with pytest.raises(ValueError, match=rf"labels\.npy holds the label {shown}.* expected integer class labels "
                                         r"in \[0, 10\)"):
        read_cifar10_c(tmp_path, "fog", 1)


def test_an_empty_class_folder_is_not_a_class(tmp_path):
    _write_jpeg(tmp_path / "n01443537" / "art_0.jpg", 30)
    (tmp_path / "n01484850").mkdir()
    with pytest.raises(FileNotFoundError, match=r"class folder .*n01484850 holds no image files"):
        read_imagenet_r(tmp_path)
