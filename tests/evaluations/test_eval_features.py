"""extract_features on a tiny encoder with dict, tuple, tensor and DataLoader data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from evaluations import Features, extract_features


class _DictData(Dataset):
    def __init__(self, images, labels, with_extras=True):
        self.images, self.labels, self.with_extras = images, labels, with_extras

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        item = {"image": self.images[i], "label": int(self.labels[i]), "name": f"img{i}"}
        if self.with_extras:
            item["mask"] = (self.images[i][0] > 0).to(torch.uint8)
            item["latents"] = {"size": float(i) / 10, "hue": i % 3}
        return item


class _TupleData(Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])


def _encoder():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5), nn.ReLU(), nn.Dropout(0.5))


def _data(n=13):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)


def _reference(enc, images):
    enc.eval()
    with torch.no_grad():
        out = enc(images).mean(dim=(2, 3))
    return out


def test_tensor_input_pools_and_matches_direct_forward():
    enc, (images, _) = _encoder(), _data()
    feats = extract_features(enc, images, batch_size=4)
    assert isinstance(feats, Features)
    assert feats.x.shape == (13, 5) and feats.x.dtype == torch.float32 and feats.x.device.type == "cpu"
    assert feats.y is None and feats.extras == {}
    assert not feats.x.requires_grad
    torch.testing.assert_close(feats.x, _reference(_encoder(), images))
    np_feats = extract_features(enc, images.numpy(), batch_size=5)
    torch.testing.assert_close(np_feats.x, feats.x)


def test_dict_dataset_collects_labels_masks_latents():
    images, labels = _data()
    feats = extract_features(_encoder(), _DictData(images, labels), batch_size=5)
    torch.testing.assert_close(feats.x, _reference(_encoder(), images))
    assert torch.equal(feats.y, labels) and feats.y.dtype == torch.long
    assert torch.equal(feats.extras["mask"], (images[:, 0] > 0).to(torch.uint8))
    latents = feats.extras["latents"]
    assert set(latents) == {"size", "hue"}
    torch.testing.assert_close(latents["size"].double(), torch.arange(13, dtype=torch.float64) / 10)
    assert torch.equal(latents["hue"], torch.arange(13) % 3)
    assert "name" not in feats.extras


def test_tuple_dataset_and_dataloader():
    images, labels = _data()
    a = extract_features(_encoder(), _TupleData(images, labels), batch_size=6)
    b = extract_features(_encoder(), DataLoader(_TupleData(images, labels), batch_size=3))
    assert torch.equal(a.y, labels) and torch.equal(b.y, labels)
    torch.testing.assert_close(a.x, b.x)
    torch.testing.assert_close(a.x, _reference(_encoder(), images))


def test_two_dimensional_output_is_kept():
    enc = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 7))
    images, _ = _data(4)
    feats = extract_features(enc, images)
    with torch.no_grad():
        torch.testing.assert_close(feats.x, enc(images))


def test_train_eval_modes_are_restored():
    enc = _encoder()
    enc.train()
    enc[3].eval()  # a mixed state must come back exactly
    before = [m.training for m in enc.modules()]
    extract_features(enc, _data()[0])
    assert [m.training for m in enc.modules()] == before
    enc.eval()
    extract_features(enc, _data()[0])
    assert not any(m.training for m in enc.modules())


def test_restores_mode_when_encoder_fails():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    enc = Boom().train()
    with pytest.raises(ValueError, match="boom"):
        extract_features(enc, _data()[0])
    assert enc.training


class _TupleOut(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3)), x


@pytest.mark.parametrize(
    "encoder,data,kwargs,match",
    [
        (_encoder(), torch.rand(0, 3, 8, 8), {}, "data"),
        (_encoder(), torch.rand(3, 8, 8), {}, "data"),
        (_encoder(), (torch.rand(2, 3, 8, 8) * 255).to(torch.uint8), {}, "data"),
        (_encoder(), torch.rand(2, 1, 8, 8), {}, "data"),  # wrong channel count
        (_encoder(), _TupleData(torch.rand(0, 3, 8, 8), torch.zeros(0)), {}, "data"),
        (_encoder(), torch.rand(2, 3, 8, 8), {"batch_size": 0}, "batch_size"),
        (_TupleOut(), torch.rand(2, 3, 8, 8), {}, "encoder"),
        (nn.Identity(), torch.rand(2, 3, 8, 8)[:, :, :, 0], {}, "data"),
        ("not a model", torch.rand(2, 3, 8, 8), {}, "encoder"),
        (_encoder(), [1, 2, 3], {}, "data"),
    ],
)
def test_bad_inputs_raise(encoder, data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        extract_features(encoder, data, **kwargs)


def test_non_finite_features_warn():
    class NaNEncoder(nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 2), float("nan"))

    with pytest.warns(RuntimeWarning, match="NaN"):
        feats = extract_features(NaNEncoder(), torch.rand(3, 3, 4, 4))
    assert bool(torch.isnan(feats.x).all())


def test_numpy_labels_in_dict_items():
    images, labels = _data(6)
    ds = [{"image": images[i], "label": np.int64(labels[i])} for i in range(6)]
    feats = extract_features(_encoder(), ds, batch_size=4)
    assert torch.equal(feats.y, labels)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_images_of_another_float_dtype_meet_the_model_in_its_dtype(dtype):
    encoder = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    images = torch.rand(6, 3, 8, 8)
    expected = extract_features(encoder, images).x
    got = extract_features(encoder, images.to(dtype)).x
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert torch.allclose(got, expected, atol=0.05)


def test_a_dtype_mismatch_in_a_callable_says_dtype():
    weight = torch.randn(4, 3, 3, 3)

    def encoder(x):
        return torch.nn.functional.conv2d(x, weight).mean(dim=(2, 3))

    with pytest.raises(ValueError, match=r"dtype torch.float64 \(check the channel count, image size and dtype"):
        extract_features(encoder, torch.rand(2, 3, 8, 8, dtype=torch.float64))
