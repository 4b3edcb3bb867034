"""TaCo: views, the loss against its definition, training on tiny clips, interventional views, bad arguments."""

from __future__ import annotations

import pytest
import torch

from causalcl.data import SimCLRAugment
from causalcl.data.interventional import InterventionalViews
from causalcl.data.moving_shapes import MovingShapesDataset
from causalcl.losses import info_nce
from causalcl.methods import METHODS, TaCo
from causalcl.models import build_backbone


def _method(**kw) -> TaCo:
    torch.manual_seed(0)
    backbone = build_backbone("video_small", channels_last=False, widths=(8, 16), strides=(2, 2), stem=8)
    return METHODS["taco"](backbone, **{"projector": (16, 8), "pretext_hidden": 8, **kw})


def _clips(b: int = 6) -> torch.Tensor:
    return torch.rand(b, 4, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def _views(method: TaCo, augment=None, seed: int = 2) -> list[torch.Tensor]:
    return method.make_views(augment, _clips(), torch.Generator().manual_seed(seed))


def test_registered_with_video_input():
    assert METHODS["taco"] is TaCo and TaCo.input_kind == "video"


def test_views_layout_and_determinism():
    method = _method()
    views = _views(method, SimCLRAugment(16))
    assert len(views) == method.num_views + 1 == 7
    assert all(v.shape == (6, 4, 3, 16, 16) for v in views[:-1])
    classes = views[-1]
    assert classes.shape == (6, 5) and classes.dtype == torch.long
    assert all(int(classes[:, m].max()) < a.num_classes for m, a in enumerate(method.augmentations))
    again = _views(method, SimCLRAugment(16))
    assert all(torch.equal(a, b) for a, b in zip(views, again, strict=True))
    plain = _views(method)  # no image augmentation: x is the clip itself
    assert torch.equal(plain[0], _clips())
    rev = method.augmentations[3]
    assert rev.name == "reverse"
    flipped = plain[-1][:, 3].bool()
    assert torch.equal(plain[4][flipped], _clips()[flipped].flip(1)) and torch.equal(plain[4][~flipped],
                                                                                      _clips()[~flipped])


def test_forward_is_the_sum_over_pairs_plus_pretext():
    method = _method(temperature=0.3, pretext_weight=0.7).eval()
    views = _views(method)
    out = method(views)
    h = method.backbone(torch.cat(views[:-1])).split(6)
    contrast = sum(info_nce(*proj(torch.cat([h[0], h[m + 1]])).chunk(2), temperature=0.3)
                   for m, proj in enumerate(method.projectors))
    pretext = sum(torch.nn.functional.cross_entropy(task(h[m + 1]), views[-1][:, m])
                  for m, task in enumerate(method.task_heads))
    torch.testing.assert_close(out["contrastive"], contrast)
    torch.testing.assert_close(out["pretext"], pretext)
    torch.testing.assert_close(out["loss"], contrast + 0.7 * pretext)
    assert 0.0 <= float(out["pretext_accuracy"]) <= 1.0


def test_training_lowers_the_loss_and_reaches_every_parameter():
    method = _method(augmentations=("reverse", "shift"))
    views = _views(method)
    opt = torch.optim.Adam(method.parameters(), lr=3e-3)
    method.train()
    first = float(method(views)["loss"].detach())
    for step in range(10):
        out = method(views)
        opt.zero_grad()
        out["loss"].backward()
        if step == 0:
            missing = [k for k, p in method.named_parameters() if p.grad is None]
            assert not missing, missing
        opt.step()
    assert float(method(views)["loss"].detach()) < first


def test_checkpoint_round_trip(tmp_path):
    method = _method()
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method(warp_strength=0.05)
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    views = _views(method)
    method.eval(), other.eval()
    torch.testing.assert_close(method(views)["loss"], other(views)["loss"])


def test_interventional_views():
    ds = MovingShapesDataset("train", n=6, image_size=16, frames=4, cache=False)
    method = _method()
    idx = torch.arange(4)
    views = method.make_interventional_views(InterventionalViews(ds), ds.get_batch(idx)[0], idx,
                                             torch.Generator().manual_seed(0))
    assert len(views) == 7 and views[0].shape == (4, 4, 3, 16, 16)
    assert not torch.equal(views[0], ds.get_batch(idx)[0])  # a counterfactual, not the stored clip
    assert torch.isfinite(method(views)["loss"])


BAD = [({"temperature": 0.0}, "temperature"), ({"pretext_weight": -1.0}, "pretext_weight"),
       ({"augmentations": ("zoom",)}, "augmentations"), ({"speeds": (2.0,)}, "speeds"),
       ({"pretext_hidden": 0}, "pretext_hidden"), ({"shifts": 0}, "shifts")]


@pytest.mark.parametrize("kw,name", BAD)
def test_bad_arguments(kw, name):
    with pytest.raises(ValueError, match=name):
        _method(**kw)


def test_bad_views():
    method = _method()
    views = _views(method)
    with pytest.raises(ValueError, match="views"):
        method(views[:-1])
    with pytest.raises(ValueError, match="views"):
        method([v[:, 0] if i < 6 else v for i, v in enumerate(views)])  # images instead of clips
    with pytest.raises(ValueError, match="views"):
        method([*views[:-1], views[-1].float()])
