"""Grounding metrics on hand-built maps, with values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluations.grounding import (
    energy_in_mask,
    grounding_metrics,
    iou_at,
    mask_area_baseline,
    pointing_game,
)


def _box(h: int, w: int, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
    m = torch.zeros(h, w, dtype=torch.bool)
    m[r0:r1, c0:c1] = True
    return m


def test_pointing_game_hits_and_misses():
    masks = torch.stack([_box(8, 8, 0, 4, 0, 4)] * 2)
    cams = torch.zeros(2, 8, 8)
    cams[0, 1, 2] = 5.0  # peak inside
    cams[1, 6, 6] = 5.0  # peak outside
    assert pointing_game(cams[:1], masks[:1]) == 1.0
    assert pointing_game(cams[1:], masks[1:]) == 0.0
    assert pointing_game(cams, masks) == 0.5


def test_pointing_game_tolerance_is_euclidean():
    mask = _box(9, 9, 4, 5, 4, 5)[None]  # single pixel at (4, 4)
    cam = torch.zeros(1, 9, 9)
    cam[0, 4, 6] = 1.0  # 2 px to the right
    assert pointing_game(cam, mask, tolerance=1) == 0.0
    assert pointing_game(cam, mask, tolerance=2) == 1.0
    diag = torch.zeros(1, 9, 9)
    diag[0, 6, 6] = 1.0  # distance sqrt(8) ~ 2.83
    assert pointing_game(diag, mask, tolerance=2) == 0.0
    assert pointing_game(diag, mask, tolerance=3) == 1.0
    # a uniform pointer hits the disk of radius 1 (5 px) with probability 5/81
    out = grounding_metrics(torch.ones(1, 9, 9), mask, tolerance=1)
    assert out["pointing_game_baseline"] == pytest.approx(5 / 81)
    assert out["pointing_game"] == pytest.approx(5 / 81)


def test_uniform_and_zero_maps_score_the_mask_area():
    masks = torch.stack([_box(8, 8, 0, 4, 0, 4), _box(8, 8, 0, 8, 0, 4)])  # areas 1/4 and 1/2
    for cams in (torch.ones(2, 8, 8), torch.zeros(2, 8, 8)):
        assert energy_in_mask(cams, masks) == pytest.approx(0.375)
        assert pointing_game(cams, masks) == pytest.approx(0.375)
        assert iou_at(cams, masks) == pytest.approx(0.375)
    assert mask_area_baseline(masks) == pytest.approx(0.375)


def test_energy_by_hand():
    mask = _box(4, 4, 0, 1, 0, 1)[None]  # one pixel of 16
    cam = torch.ones(1, 4, 4)
    cam[0, 0, 0] = 5.0  # 5 inside, 15 outside
    assert energy_in_mask(cam, mask) == pytest.approx(5 / 20)
    assert energy_in_mask(mask.float() * 3, mask) == pytest.approx(1.0)


def test_iou_exact_values():
    mask = _box(8, 8, 0, 4, 0, 8)[None]  # rows 0-3
    assert iou_at(mask.float(), mask) == 1.0
    cam = _box(8, 8, 2, 6, 0, 8)[None].float() * 0.9 + 0.1  # rows 2-5 high: intersection 16, union 48
    assert iou_at(cam, mask) == pytest.approx(1 / 3)
    assert iou_at(cam, mask, threshold=0.0) == pytest.approx(0.5)  # full map: IoU = area
    ramp = torch.arange(8.0)[None, :, None].expand(1, 8, 8)  # rows 0..7; normalised k/7
    low = torch.tensor(7.0).sub(ramp)  # rows 0-3 normalised >= 4/7
    assert iou_at(low, mask, threshold=0.5) == pytest.approx(1.0)
    assert iou_at(low, mask, threshold=0.8) == pytest.approx(16 / 32)  # rows 0-1 (7/7, 6/7)


def test_grounding_metrics_dict_and_empty_masks():
    masks = torch.stack([_box(8, 8, 0, 4, 0, 4), _box(8, 8, 0, 8, 0, 4), torch.zeros(8, 8, dtype=torch.bool)])
    cams = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = grounding_metrics(cams, masks, threshold=0.4)
    assert out["pointing_game"] == pytest.approx(pointing_game(cams, masks))
    assert out["energy_in_mask"] == pytest.approx(energy_in_mask(cams, masks))
    assert out["iou"] == pytest.approx(iou_at(cams, masks, threshold=0.4))
    for key in ("pointing_game_baseline", "energy_baseline", "iou_baseline", "mask_area"):
        assert out[key] == pytest.approx(0.375)  # the empty mask is left out
    assert out["n_images"] == 2 and out["n_empty_masks"] == 1
    # the empty-mask image changes nothing
    assert energy_in_mask(cams, masks) == pytest.approx(energy_in_mask(cams[:2], masks[:2]))


def test_numpy_and_channel_dim_inputs():
    masks = torch.stack([_box(8, 8, 0, 4, 0, 4)] * 2)
    cams = masks.float() + 0.01
    assert iou_at(cams.numpy(), masks.numpy().astype(np.uint8)) == 1.0
    assert energy_in_mask(cams[:, None], masks[:, None]) == pytest.approx(energy_in_mask(cams, masks))


def test_bad_inputs():
    masks = torch.stack([_box(8, 8, 0, 4, 0, 4)] * 2)
    cams = torch.rand(2, 8, 8)
    with pytest.raises(ValueError, match="masks"):
        pointing_game(cams, masks[:, :7])
    with pytest.raises(ValueError, match="masks"):
        energy_in_mask(cams, masks[:1])
    nan = cams.clone()
    nan[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="cams"):
        iou_at(nan, masks)
    with pytest.raises(ValueError, match="cams"):
        energy_in_mask(cams - 0.5, masks)
    with pytest.raises(ValueError, match="masks"):
        grounding_metrics(cams, masks.float() * 0.5)
    with pytest.raises(ValueError, match="masks"):
        grounding_metrics(cams, torch.zeros_like(masks))
    with pytest.raises(ValueError, match="threshold"):
        iou_at(cams, masks, threshold=1.5)
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(cams, masks, tolerance=-1)
    with pytest.raises(ValueError, match="cams"):
        energy_in_mask(cams[0], masks[0])
