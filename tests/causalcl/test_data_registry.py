"""get_dataset / DATASETS, the tensor dataset's validation, and the cache helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causalcl.data import DATASETS, TensorImageDataset, get_dataset
from causalcl.data.cache import cache_dir, cached_arrays, load_cached


def test_registry_names_and_errors():
    assert set(DATASETS) == {"shapes", "moving_shapes", "scm_graph", "digits", "cifar10", "cifar100", "imagefolder"}
    with pytest.raises(ValueError, match="valid names: .*shapes"):
        get_dataset("mnist")
    with pytest.raises(ValueError, match="valid splits"):
        get_dataset("shapes", split="validation")


def _imgs(n=4, h=5):
    return torch.zeros(n, 3, h, h, dtype=torch.uint8)


def test_tensor_dataset_validation():
    ds = TensorImageDataset(_imgs(), torch.tensor([0, 1, 1, 0]), ["a", "b"])
    assert len(ds) == 4 and ds.num_classes == 2 and ds[-1]["label"] == 0
    with pytest.raises(IndexError):
        ds[4]
    with pytest.raises(ValueError, match="empty dataset"):
        TensorImageDataset(_imgs(0), torch.zeros(0), ["a"])
    with pytest.raises(ValueError, match="3 channels"):
        TensorImageDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2), ["a"])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        TensorImageDataset(_imgs(), torch.tensor([0, 1, 2, 0]), ["a", "b"])
    with pytest.raises(ValueError, match="masks must have shape"):
        TensorImageDataset(_imgs(), torch.zeros(4), ["a"], masks=torch.zeros(4, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="uint8"):
        TensorImageDataset(torch.zeros(4, 3, 2, 2), torch.zeros(4), ["a"])
    with pytest.raises(ValueError, match="1-D integer"):
        ds.get_batch(torch.tensor([0.5]))


def test_cache_helpers(tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSALCL_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    calls = []

    def build():
        calls.append(1)
        return {"a": np.arange(3)}

    out1 = cached_arrays("unit", {"k": 1}, build)
    out2 = cached_arrays("unit", {"k": 1}, build)
    out3 = cached_arrays("unit", {"k": 2}, build)
    assert len(calls) == 2 and np.array_equal(out1["a"], out2["a"]) and np.array_equal(out3["a"], out1["a"])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and all(f.startswith("unit-v") and f.endswith(".npz") for f in files)
    assert load_cached(tmp_path / "missing.npz") is None


def test_get_dataset_names_an_argument_it_does_not_take():
    with pytest.raises(ValueError, match=r"bogus: dataset 'shapes' takes no argument 'bogus' \(it takes: n, "):
        get_dataset("shapes", bogus=1)
    with pytest.raises(ValueError, match=r"imagesize: .* did you mean 'image_size'\?"):
        get_dataset("shapes", imagesize=16)
