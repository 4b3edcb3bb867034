"""Temporal augmentations of clips (TaCo's set) and frame-consistent image augmentation."""

from __future__ import annotations

import pytest
import torch

from causalcl.data import SimCLRAugment
from causalcl.data.temporal import (
    TEMPORAL_AUGMENTATIONS,
    build_temporal_augmentations,
    clip_consistent,
    reverse,
    shift,
    shuffle,
    spatial_warp,
    speed,
)


def _clips(b: int = 4, t: int = 6, size: int = 8) -> torch.Tensor:
    """Frame t of clip b is constant t + 10 b (so frame orders can be read back)."""
    ids = torch.arange(t).view(1, t) + 10 * torch.arange(b).view(b, 1)
    return ids.view(b, t, 1, 1, 1).float().expand(b, t, 3, size, size).clone()


def _order(clips: torch.Tensor) -> torch.Tensor:
    return clips[:, :, 0, 0, 0]


def test_reverse_shuffle_shift():
    x = _clips()
    cls = torch.tensor([0, 1, 0, 1])
    assert torch.equal(_order(reverse(x, cls)), torch.stack([_order(x)[0], _order(x)[1].flip(0),
                                                            _order(x)[2], _order(x)[3].flip(0)]))
    g = torch.Generator().manual_seed(0)
    out = _order(shuffle(x, torch.tensor([1, 1, 1, 0]), g))
    for b in range(3):
        assert sorted(out[b].tolist()) == _order(x)[b].tolist() and not torch.equal(out[b], _order(x)[b])
    assert torch.equal(out[3], _order(x)[3])
    rolled = _order(shift(x, torch.tensor([0, 1, 2, 3]), shifts=3))  # tau = 0, 2, 4, (3*6/3 = 6 -> 0 mod 6)
    assert rolled[1].tolist() == [12, 13, 14, 15, 10, 11] and rolled[2].tolist() == [24, 25, 20, 21, 22, 23]
    assert torch.equal(rolled[0], _order(x)[0])
    with pytest.raises(ValueError, match="shifts"):
        shift(x, torch.zeros(4, dtype=torch.long), shifts=7)


def test_shuffle_never_returns_the_identity():
    x = _clips(b=64, t=2)
    out = _order(shuffle(x, torch.ones(64, dtype=torch.long), torch.Generator().manual_seed(1)))
    assert torch.equal(out, _order(x).flip(1))  # with two frames the only other order is the swap


def test_speed_resamples_time_about_the_middle():
    x = _clips(b=3, t=5)
    out = _order(speed(x, torch.tensor([0, 1, 2]), factors=(0.5, 1.0, 2.0)))
    assert torch.equal(out[1], _order(x)[1])
    torch.testing.assert_close(out[0], torch.tensor([1.0, 1.5, 2.0, 2.5, 3.0]))  # slow motion, blended frames
    torch.testing.assert_close(out[2], torch.tensor([20.0, 20.0, 22.0, 24.0, 24.0]))  # fast, held at the ends


def test_spatial_warp_is_smooth_consistent_and_identity_for_class_0():
    g = torch.Generator().manual_seed(2)
    img = torch.rand(2, 1, 3, 16, 16).expand(2, 4, 3, 16, 16).contiguous()
    out = spatial_warp(img, torch.tensor([0, 1]), g, strength=0.2)
    assert torch.equal(out[0], img[0])
    assert not torch.allclose(out[1], img[1])
    assert torch.allclose(out[1, 0], out[1, 3])  # the same field for every frame


def test_build_and_classes():
    augs = build_temporal_augmentations(TEMPORAL_AUGMENTATIONS)
    assert [a.name for a in augs] == list(TEMPORAL_AUGMENTATIONS) and [a.num_classes for a in augs] == [2, 3, 4, 2, 2]
    g = torch.Generator().manual_seed(3)
    c = augs[2].sample_classes(1000, g, torch.device("cpu"))
    assert c.min() == 0 and c.max() == 3 and abs(float((c == 0).float().mean()) - 0.25) < 0.05
    x = torch.rand(5, 4, 3, 8, 8)
    for a in augs:
        assert a(x, a.sample_classes(5, g, x.device), g).shape == x.shape
    assert "speed" in repr(augs[1])


@pytest.mark.parametrize("kw,name", [({"names": ["warp", "zoom"]}, "augmentations"),
                                     ({"names": ["warp", "warp"]}, "augmentations"), ({"names": []}, "augmentations"),
                                     ({"warp_strength": 0}, "warp_strength"), ({"speeds": (1.0,)}, "speeds"),
                                     ({"speeds": (1.0, -2.0)}, "speeds"), ({"shifts": 1}, "shifts")])
def test_bad_arguments(kw, name):
    kw = {"names": ["warp"], **kw}
    with pytest.raises(ValueError, match=name):
        build_temporal_augmentations(kw.pop("names"), **kw)


def test_bad_clips():
    with pytest.raises(ValueError, match="clips"):
        build_temporal_augmentations(["reverse"])[0](torch.rand(2, 3, 8, 8), torch.zeros(2, dtype=torch.long))


def test_clip_consistent_applies_one_draw_per_clip():
    aug = SimCLRAugment(8)
    still = torch.rand(4, 1, 3, 8, 8).expand(4, 5, 3, 8, 8).contiguous()
    g = torch.Generator().manual_seed(4)
    out = clip_consistent(aug, still, g)
    assert out.shape == (4, 5, 3, 8, 8)
    assert torch.equal(out[:, 0], out[:, 4])  # identical frames stay identical: the same crop and jitter
    assert not torch.equal(out[0, 0], out[1, 0])
    # the generator advanced as by one call
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    clip_consistent(aug, still, g1)
    aug(still[:, 0], g2)
    assert torch.equal(g1.get_state(), g2.get_state())
    assert clip_consistent(None, still, g) is still
