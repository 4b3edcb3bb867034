import torch

from causalcl.data import get_dataset
from causalcl.diagnostics.context import Context, Splits, confounded_subset
from causalcl.diagnostics.variant_images import variant_images as _variant_images
from evaluations.report import Report


def _splits(tmp_path, n_train):
    sets = [get_dataset("shapes", split=s, n=n, root=tmp_path) for s, n in (("train", n_train), ("probe", 16),
                                                                              ("test", 16))]
    return Splits(*sets, has_environments=True)


def test_variants_come_from_the_confounded_environment_without_probe_items(tmp_path):
    splits = _splits(tmp_path, 96)
    ctx = Context(torch.nn.Identity(), torch.nn.Identity(), splits, None, Report(tmp_path / "r"))
    images, masks, labels, source = _variant_images(ctx)
    assert source.startswith("train") and len(images) == 16
    used = set(confounded_subset(96, 16, 0).tolist())
    train_images, _ = splits.train.get_batch(torch.arange(96))
    picked = [int((train_images == img).flatten(1).all(1).nonzero()[0]) for img in images]
    assert not used & set(picked)  # no item the confounded probe was fit on
    assert torch.equal(masks, splits.train.masks[picked]) and torch.equal(labels, splits.train.labels[picked])


def test_small_training_split_falls_back_to_test(tmp_path):
    splits = _splits(tmp_path, 20)
    ctx = Context(torch.nn.Identity(), torch.nn.Identity(), splits, None, Report(tmp_path / "r"))
    assert _variant_images(ctx)[3] == "test"
