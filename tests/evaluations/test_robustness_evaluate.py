"""corruption_errors() on tiny models: table layout, labels, mCE gating, batch-size independence, plot."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from evaluations.robustness import BENCHMARK_CORRUPTIONS, CORRUPTIONS, RENDITIONS, corruption_errors, top1_error


class Memoriser(nn.Module):
    """Logits = -squared distance to each stored clean image: perfect on the clean set."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("bank", images.flatten(1).clone())
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.scale * torch.cdist(x.flatten(1), self.bank) ** 2


def _data(n: int = 4, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    base = torch.rand(n, 3, 4, 4, generator=g)
    images = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
    return images.clamp(0, 1), torch.arange(n)


def test_table_layout_label_and_clean_error():
    images, labels = _data()
    model = Memoriser(images)
    model.train()
    res = corruption_errors(model, (images, labels), batch_size=3, progress=False)
    assert isinstance(res.table, pd.DataFrame) and res.table.shape == (19, 5)
    assert list(res.table.index) == list(CORRUPTIONS) and list(res.table.columns) == [1, 2, 3, 4, 5]
    assert res.table.notna().all().all()
    assert ((res.table >= 0) & (res.table <= 1)).all().all()
    assert res.clean_error == 0.0
    assert res.label == "synthetic corruptions" and "ImageNet-C" not in res.label
    assert res.preset == "cifar" and res.mce is None and res.relative_mce is None
    assert math.isclose(res.mean_error, float(res.table.loc[list(BENCHMARK_CORRUPTIONS)].to_numpy().mean()))
    assert model.training  # train/eval flags restored
    assert res.table.loc["gaussian_noise", 5] >= res.table.loc["gaussian_noise", 1]
    d = res.to_dict()
    assert d["label"] == "synthetic corruptions" and set(d["table"]) == set(CORRUPTIONS)


def test_results_do_not_depend_on_batch_size_and_dataset_form():
    images, labels = _data()
    model = Memoriser(images)
    names = ["gaussian_noise", "glass_blur", "frost"]
    a = corruption_errors(model, (images, labels), corruptions=names, batch_size=1, progress=False)
    b = corruption_errors(model, (images, labels), corruptions=names, batch_size=4, progress=False)
    dataset = [{"image": images[i], "label": int(labels[i])} for i in range(4)]
    c = corruption_errors(model, dataset, corruptions=names, batch_size=3, progress=False)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.table, c.table)


def test_a_model_that_cannot_cope_gets_high_error():
    images, labels = _data(n=4)
    blind = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 4))
    with torch.no_grad():
        blind[1].weight.zero_()
        blind[1].bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))  # always predicts class 0
    res = corruption_errors(blind, (images, labels), corruptions=["contrast"], severities=(1, 5), progress=False)
    assert res.clean_error == 0.75 and (res.table == 0.75).all().all()
    assert list(res.table.columns) == [1, 5]


def test_mce_only_for_imagenet_preset_with_all_15():
    images, labels = _data(n=2)
    model = Memoriser(images)
    res = corruption_errors(model, (images, labels), corruptions=BENCHMARK_CORRUPTIONS, preset="imagenet",
                            progress=False)
    assert res.preset == "imagenet" and res.mce is not None and res.relative_mce is not None
    assert res.mce >= 0
    partial = corruption_errors(model, (images, labels), corruptions=BENCHMARK_CORRUPTIONS[:3], preset="imagenet",
                                progress=False)
    assert partial.mce is None and partial.mean_error >= 0


def test_renditions_and_plot():
    images, labels = _data(n=2)
    res = corruption_errors(Memoriser(images), (images, labels), corruptions=["fog", "saturate", "pixelate"],
                            renditions=True, progress=False)
    assert set(res.renditions) == set(RENDITIONS)
    assert all(0 <= v <= 1 for v in res.renditions.values())
    fig = res.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 4  # weather, digital, extra, renditions
    assert any(line.get_linestyle() == "--" for line in fig.axes[0].get_lines())


def test_uint8_data_and_top1_error():
    images, labels = _data(n=3)
    u8 = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    model = Memoriser(torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255)
    res = corruption_errors(model, (u8, labels), corruptions=["brightness"], progress=False)
    assert res.clean_error == 0.0
    assert top1_error(model, (images, labels)) == 0.0
    mask = torch.tensor([False, True, True])
    assert top1_error(model, (images[1:], torch.tensor([0, 1])), logit_mask=mask) == 0.0


def test_bad_arguments():
    images, labels = _data(n=2)
    model = Memoriser(images)
    with pytest.raises(ValueError, match="unknown corruption"):
        corruption_errors(model, (images, labels), corruptions=["rain"], progress=False)
    with pytest.raises(ValueError, match="severity"):
        corruption_errors(model, (images, labels), severities=(0, 1), progress=False)
    with pytest.raises(ValueError, match="labels"):
        corruption_errors(model, (images, torch.tensor([0, 1, 2])), progress=False)
    with pytest.raises(ValueError, match="model"):
        corruption_errors(lambda x: x, (images, labels), progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        corruption_errors(model, [], progress=False)
    with pytest.raises(ValueError, match="logits"):
        corruption_errors(nn.Identity(), (images, labels), corruptions=["fog"], progress=False)


class _DictSet(torch.utils.data.Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": int(self.labels[i])}


@pytest.mark.parametrize("form", ["tuple", "dataset"])
@pytest.mark.parametrize("fn", ["top1_error", "corruption_errors"])
def test_every_image_is_checked_not_only_the_first(fn, form):
    images, labels = _data(8, 16)
    images[5, 1, 2, 3] = float("nan")
    data = (images, labels) if form == "tuple" else _DictSet(images, labels)
    call = {"top1_error": lambda: top1_error(Memoriser(images.nan_to_num()), data, batch_size=3),
            "corruption_errors": lambda: corruption_errors(Memoriser(images.nan_to_num()), data,
                                                           corruptions=["contrast"], severities=[1],
                                                           batch_size=3, progress=False)}[fn]
    with pytest.raises(ValueError, match=r"data images: expected finite values.*\(first at image 5\)"):
        call()
    images[5, 1, 2, 3] = 1.5
    with pytest.raises(ValueError, match=r"data images: float images must lie in \[0, 1\].*\(first at image 5\)"):
        call()


@pytest.mark.parametrize("fn", ["top1_error", "corruption_errors"])
def test_labels_are_checked_against_the_logits(fn):
    images, _ = _data(4, 16)
    labels = torch.tensor([0, 1, 2, 7])  # the model has 4 classes
    call = {"top1_error": lambda: top1_error(Memoriser(images), (images, labels)),
            "corruption_errors": lambda: corruption_errors(Memoriser(images), (images, labels),
                                                           corruptions=["contrast"], progress=False)}[fn]
    with pytest.raises(ValueError, match=r"data labels: class labels must lie in \[0, 4\) .*found 7"):
        call()


def test_a_float64_model_is_fed_float64_images():
    images, labels = _data(4, 16)
    model = Memoriser(images).double()
    result = corruption_errors(model, (images, labels), corruptions=["contrast"], severities=[1], progress=False)
    assert result.clean_error == 0.0
    assert top1_error(model, (images, labels)) == 0.0
