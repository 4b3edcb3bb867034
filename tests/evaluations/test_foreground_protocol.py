"""BG-Gap, accuracy per background variant, and the ICL-MSR 2x2 full-vs-foreground protocol."""

from __future__ import annotations

import math

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from evaluations.foreground import (
    FullVsForegroundResult,
    background_variant_accuracies,
    bg_gap,
    full_vs_foreground,
    plot_variant_bars,
    variants,
)


# ------------------------------------------------------------------------------------------------ BG-Gap
def test_bg_gap_arithmetic():
    assert math.isclose(bg_gap(0.862, 0.789), 0.073, abs_tol=1e-12)
    assert bg_gap(0.5, 0.75) == -0.25
    assert bg_gap(1, 0) == 1.0


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), "0.5", None, True])
def test_bg_gap_refuses_non_fractions(bad):
    with pytest.raises(ValueError, match="acc_mixed_same"):
        bg_gap(bad, 0.5)
    with pytest.raises(ValueError, match="acc_mixed_rand"):
        bg_gap(0.5, bad)


# ------------------------------------------------------------------------------------ variant accuracies
def _class_scenes(n_per_class: int = 6, c: int = 3, seed: int = 0):
    """Foreground (centre 4x4) red = class / c; background green = class / c: both cues encode the class."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(c).repeat_interleave(n_per_class)
    n = y.numel()
    x = torch.zeros(n, 3, 12, 12)
    x[:, 1] = (y.float() / c)[:, None, None]
    x[:, 2] = torch.rand(n, 12, 12, generator=g) * 0.2
    m = torch.zeros(n, 12, 12, dtype=torch.bool)
    m[:, 4:8, 4:8] = True
    fg = torch.zeros(n, 3, 12, 12)
    fg[:, 0] = (y.float() / c)[:, None, None] + 0.1
    x = torch.where(m[:, None], fg, x)
    return x, m, y


class _PixelReader(nn.Module):
    """Logits -|value - k / C| read from one pixel and channel: a classifier that looks at one place only."""

    def __init__(self, row: int, col: int, channel: int, offset: float, c: int = 3):
        super().__init__()
        self.row, self.col, self.channel, self.offset, self.c = row, col, channel, offset, c

    def forward(self, x):
        v = x[:, self.channel, self.row, self.col] - self.offset
        return -(v[:, None] - torch.arange(self.c, dtype=x.dtype) / self.c).abs()


def test_background_variant_accuracies_match_the_chosen_backgrounds():
    x, m, y = _class_scenes()
    out, idx = variants(x, m, y, seed=0, return_indices=True)
    fg_reader = _PixelReader(5, 5, channel=0, offset=0.1)  # looks at the foreground
    bg_reader = _PixelReader(0, 0, channel=1, offset=0.0)  # looks at the background corner
    fg_acc = background_variant_accuracies(fg_reader, out, y, batch_size=5)
    bg_acc = background_variant_accuracies(bg_reader, out, y)
    assert fg_acc["original"] == 1.0
    for name in ("only_fg", "mixed_same", "mixed_rand", "mixed_next"):
        assert fg_acc[name] == 1.0
    assert bg_acc["original"] == 1.0 and bg_acc["mixed_same"] == 1.0 and bg_acc["only_bg"] == 1.0
    assert bg_acc["mixed_next"] == 0.0
    expected_rand = float((y[idx["mixed_rand"]] == y).double().mean())
    assert bg_acc["mixed_rand"] == pytest.approx(expected_rand)
    assert bg_gap(bg_acc["mixed_same"], bg_acc["mixed_rand"]) == pytest.approx(1 - expected_rand)
    assert bg_gap(fg_acc["mixed_same"], fg_acc["mixed_rand"]) == 0.0


def test_background_variant_accuracies_class_map_and_bad_input():
    x, m, y = _class_scenes()
    out = variants(x, m, y)
    reader = _PixelReader(5, 5, channel=0, offset=0.1)
    shifted = background_variant_accuracies(reader, {"original": out["original"]}, (y + 1) % 3, class_map=[1, 2, 0])
    assert shifted["original"] == 1.0
    with pytest.raises(ValueError, match="labels"):
        background_variant_accuracies(reader, out, y[:-1])
    with pytest.raises(ValueError, match="variants_dict"):
        background_variant_accuracies(reader, {}, y)


def test_plot_variant_bars_annotates_the_gap():
    fig = plot_variant_bars({"original": 0.9, "mixed_same": 0.8, "mixed_rand": 0.6, "mixed_next": 0.4})
    assert isinstance(fig, Figure)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("BG-Gap = +20.0 pp" in t for t in texts)
    with pytest.raises(ValueError, match="accs"):
        plot_variant_bars({"original": 2.0})


# -------------------------------------------------------------------------------------- full vs foreground
def _confounded(n: int, seed: int):
    """2 classes. Foreground (4x4 of 16x16): red = class. Background: green = 0.2 + 0.6 * class (spurious,
    large variance), red = uniform noise in [0, 0.3] (drowns the red class signal in full images)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.zeros(n, 3, 16, 16)
    x[:, 0] = torch.rand(n, 1, 1, generator=g) * 0.3
    x[:, 1] = (0.2 + 0.6 * y.float() + 0.02 * torch.rand(n, generator=g))[:, None, None]
    m = torch.zeros(n, 16, 16, dtype=torch.bool)
    m[:, 6:10, 6:10] = True
    fg = torch.zeros(n, 3, 16, 16)
    fg[:, 0] = y.float()[:, None, None]
    fg[:, 1:] = 0.5
    return torch.where(m[:, None], fg, x), m, y


def _channel_picker(images: torch.Tensor):
    """'Training': keep the channel whose per-image mean varies most over the training images."""
    ch = int(images.mean(dim=(2, 3)).var(0).argmax())

    def encoder(x: torch.Tensor) -> torch.Tensor:
        return x[:, ch].mean(dim=(1, 2))[:, None]

    encoder.channel = ch  # type: ignore[attr-defined]
    return encoder


def test_full_vs_foreground_reproduces_the_known_answer():
    train, test = _confounded(200, 0), _confounded(200, 1)
    calls = []

    def train_fn(images):
        calls.append(images)
        return _channel_picker(images)

    res = full_vs_foreground(train_fn, {"train": train, "test": test}, weight_decay=1e-2)
    assert isinstance(res, FullVsForegroundResult)
    t = res.table
    assert list(t.index) == ["train: full", "train: foreground"]
    assert list(t.columns) == ["test: full", "test: foreground"]
    # train_fn saw the full images, then mask * image
    assert len(calls) == 2
    assert torch.equal(calls[0], train[0])
    assert torch.equal(calls[1], train[0] * train[1][:, None])
    assert res.encoders["full"].channel == 1 and res.encoders["foreground"].channel == 0
    # full-trained encoder reads the spurious background: high on full, chance on foreground-only
    assert t.loc["train: full", "test: full"] > 0.95
    assert t.loc["train: full", "test: foreground"] < 0.7
    # foreground-trained encoder reads the object: high on foreground-only, worse on full images (noise)
    assert t.loc["train: foreground", "test: foreground"] > 0.95
    assert t.loc["train: foreground", "test: full"] < 0.85
    d = res.as_dict()
    assert d["train: full"]["test: full"] == t.loc["train: full", "test: full"]
    fig = res.plot()
    assert isinstance(fig, Figure)
    assert any(txt.get_text().endswith("%") for txt in fig.axes[0].texts)


def test_full_vs_foreground_with_precomputed_encoders_dict_splits_and_knn():
    tr, te = _confounded(120, 0), _confounded(120, 1)
    data = {
        "train": {"images": tr[0], "masks": tr[1], "labels": tr[2]},
        "test": [{"image": te[0][i], "mask": te[1][i], "label": int(te[2][i])} for i in range(len(te[2]))],
    }

    # kNN uses cosine similarity: give the features a direction that moves with the channel mean
    def green(x):
        v = x[:, 1].mean(dim=(1, 2))
        return torch.stack([v, 1 - v], 1)

    def red(x):
        v = x[:, 0].mean(dim=(1, 2)) * 16  # the foreground covers 1/16 of the image
        return torch.stack([v, 1 - v], 1)

    res = full_vs_foreground(None, data, encoders={"full": green, "foreground": red}, probe="knn", knn_k=5)
    assert res.probe == "knn"
    assert res.table.loc["train: full", "test: full"] > 0.95
    assert res.table.loc["train: foreground", "test: foreground"] > 0.95


def test_full_vs_foreground_bad_input():
    tr, te = _confounded(40, 0), _confounded(40, 1)
    with pytest.raises(ValueError, match="train_fn"):
        full_vs_foreground(None, {"train": tr, "test": te})
    with pytest.raises(ValueError, match="data"):
        full_vs_foreground(_channel_picker, {"train": tr})
    with pytest.raises(ValueError, match="masks"):
        full_vs_foreground(_channel_picker, {"train": (tr[0], tr[1][:, :8], tr[2]), "test": te})
    with pytest.raises(ValueError, match="probe"):
        full_vs_foreground(_channel_picker, {"train": tr, "test": te}, probe="svm")
    with pytest.raises(ValueError, match="encoders"):
        full_vs_foreground(_channel_picker, {"train": tr, "test": te}, encoders={"bg": _channel_picker})
