"""CIFAR adapters on tiny fake copies of the pickle layout (never real data)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from causalcl.data import CIFAR10, CIFAR100, get_dataset
from causalcl.data.cifar import restricted_load


def _dump(path, obj, protocol=2):
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)


def _batch(rng, n, key, classes, bytes_keys=True):
    d = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), key: rng.integers(0, classes, n).tolist()}
    return {k.encode(): v for k, v in d.items()} if bytes_keys else d


@pytest.fixture
def cifar10_root(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        _dump(base / f"data_batch_{i}", _batch(rng, 4, "labels", 10))
    _dump(base / "test_batch", _batch(rng, 3, "labels", 10, bytes_keys=False), protocol=4)
    _dump(base / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    return tmp_path


@pytest.fixture
def cifar100_root(tmp_path):
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    rng = np.random.default_rng(1)
    for name, n in (("train", 6), ("test", 2)):
        d = _batch(rng, n, "fine_labels", 100)
        d[b"coarse_labels"] = rng.integers(0, 20, n).tolist()
        _dump(base / name, d)
    meta = {
        b"fine_label_names": [f"f{i}".encode() for i in range(100)],
        b"coarse_label_names": [f"k{i}".encode() for i in range(20)],
    }
    _dump(base / "meta", meta)
    return tmp_path


def test_cifar10_layout(cifar10_root):
    tr = CIFAR10("train", root=cifar10_root)
    assert len(tr) == 20 and tr.images.shape == (20, 3, 32, 32) and tr.images.dtype == torch.uint8
    assert tr.num_classes == 10 and tr.class_names[3] == "c3"
    assert tr.masks is None and tr.latents is None
    raw = restricted_load(cifar10_root / "cifar-10-batches-py" / "data_batch_1")
    np.testing.assert_array_equal(tr.images[:4].reshape(4, -1).numpy(), raw[b"data"])
    assert tr.labels[:4].tolist() == raw[b"labels"]
    item = tr[0]
    assert set(item) == {"image", "label"} and item["image"].dtype == torch.float32
    te = get_dataset("cifar10", "test", root=cifar10_root / "cifar-10-batches-py")  # folder itself works
    assert len(te) == 3
    assert len(CIFAR10("probe", root=cifar10_root)) == 20  # probe = train


def test_cifar100_fine_and_coarse(cifar100_root):
    fine = CIFAR100("train", root=cifar100_root)
    assert len(fine) == 6 and fine.num_classes == 100
    coarse = CIFAR100("test", root=cifar100_root, label_type="coarse")
    assert len(coarse) == 2 and coarse.num_classes == 20 and coarse.class_names[0] == "k0"
    with pytest.raises(ValueError, match="label_type"):
        CIFAR100(root=cifar100_root, label_type="medium")


def test_missing_root_shows_layout(tmp_path, monkeypatch):
    monkeypatch.delenv("CAUSALCL_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="data_batch_1") as err:
        CIFAR10(root=tmp_path / "nowhere")
    assert "cifar-10-batches-py/" in str(err.value) and "test_batch" in str(err.value)
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        CIFAR100(root=None)
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        CIFAR100(root=tmp_path)


def test_malformed_and_malicious(cifar10_root):
    base = cifar10_root / "cifar-10-batches-py"

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    _dump(base / "data_batch_2", {b"data": Evil(), b"labels": []})
    with pytest.raises(ValueError, match="refusing to load global"):
        CIFAR10(root=cifar10_root)
    (base / "data_batch_2").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a readable"):
        CIFAR10(root=cifar10_root)
    _dump(base / "data_batch_2", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(ValueError, match="3072"):
        CIFAR10(root=cifar10_root)
    _dump(base / "data_batch_2", {b"pixels": np.zeros((2, 3072), np.uint8)})
    with pytest.raises(ValueError, match="Expected layout"):
        CIFAR10(root=cifar10_root)
    with pytest.raises(ValueError, match="split"):
        CIFAR10("val", root=cifar10_root)
