"""moving_shapes: layout, determinism, masks and trajectories, the confounder, true do() re-renders, frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from causalcl.data import DATASETS, get_dataset
from causalcl.data.interventional import InterventionalViews
from causalcl.data.moving_shapes import MOTION_NAMES, MovingShapesDataset, trajectories
from causalcl.data.shapes import SHAPE_EXTENT, shape_radius

STYLE = ["fg_hue", "bg_hue", "brightness", "speed", "bg_texture"]


def _ds(split: str = "train", n: int = 6, size: int = 16, frames: int = 4, **kw) -> MovingShapesDataset:
    return MovingShapesDataset(split, n=n, image_size=size, frames=frames, cache=False, **kw)


@pytest.fixture(scope="module")
def clips() -> MovingShapesDataset:
    return _ds(n=8, size=32, frames=5)


def test_layout_and_registry(clips):
    assert DATASETS["moving_shapes"] is MovingShapesDataset
    assert clips.images.shape == (8, 5, 3, 32, 32) and clips.images.dtype == torch.uint8
    assert clips.masks.shape == (8, 5, 32, 32) and clips.masks.dtype == torch.bool
    item = clips[3]
    assert item["image"].shape == (5, 3, 32, 32) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (5, 32, 32) and item["label"] == item["latents"]["cls"]
    images, labels = clips.get_batch(torch.tensor([0, 2]))
    assert images.shape == (2, 5, 3, 32, 32) and float(images.max()) <= 1.0 and labels.shape == (2,)
    assert set(clips.latents) == set(clips.latent_roles)
    assert {v for v, r in clips.latent_roles.items() if r == "style"} == set(STYLE)
    assert "frames=5" in repr(clips)
    small = get_dataset("moving_shapes", "test", n=2, image_size=16, frames=2, cache=False)
    assert small.images.shape == (2, 2, 3, 16, 16)


def test_deterministic_per_seed_and_index():
    a, b = _ds(n=5), _ds(n=5)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    longer = _ds(n=9)
    assert torch.equal(longer.images[:5], a.images)  # clip i does not depend on n
    assert not torch.equal(_ds(n=5, seed=1).images, a.images)
    assert not torch.equal(_ds("test", n=5).images, a.images)


def test_cache_round_trip(tmp_path):
    a = MovingShapesDataset("probe", root=tmp_path, n=3, image_size=16, frames=2)
    assert list(tmp_path.glob("moving_shapes-*.npz"))
    b = MovingShapesDataset("probe", root=tmp_path, n=3, image_size=16, frames=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)


def test_masks_follow_the_trajectory(clips):
    m = clips.masks
    assert bool(m.flatten(2).any(-1).all()), "every frame shows the object"
    border = m[..., 0, :].any(-1) | m[..., -1, :].any(-1) | m[..., :, 0].any(-1) | m[..., :, -1].any(-1)
    assert not bool(border.any()), "the object stays inside the frame"
    values = {k: v.numpy() for k, v in clips.latents.items()}
    px, py = trajectories(values, clips.frames)
    ys, xs = torch.meshgrid(torch.arange(32.0) + 0.5, torch.arange(32.0) + 0.5, indexing="ij")
    w = m.float()
    cx = (w * xs).sum((-1, -2)) / w.sum((-1, -2)) / 32
    cy = (w * ys).sum((-1, -2)) / w.sum((-1, -2)) / 32
    # the mask's centroid follows the object's centre (up to the shape's own asymmetry: crescent, triangle)
    assert float((cx - torch.from_numpy(px)).abs().max()) < 0.12
    assert float((cy - torch.from_numpy(py)).abs().max()) < 0.12
    moved = (cx[:, -1] - cx[:, 0]).abs() + (cy[:, -1] - cy[:, 0]).abs()
    assert bool((moved > 0.02).all()), "every clip moves"


def test_trajectories_stay_inside_for_extreme_latents():
    n = 3 * 8 * 4
    grid = np.array(np.meshgrid(np.arange(3), np.arange(8), [0.0, 1.0], [0.0, 1.0], indexing="ij")).reshape(4, -1)
    motion, cls, pos = grid[0].astype(int), grid[1].astype(int), grid[2]
    for speed in (0.15, 0.35):
        for phi in np.linspace(0, 2 * np.pi, 7):
            values = {"motion": motion, "cls": cls, "scale": np.full(n, 0.08), "direction": np.full(n, phi),
                      "speed": np.full(n, speed), "pos_x": pos, "pos_y": grid[3]}
            px, py = trajectories(values, 8)
            e = (SHAPE_EXTENT[cls] * shape_radius(cls, values["scale"]))[:, None]
            assert (px - e >= -1e-9).all() and (px + e <= 1 + 1e-9).all()
            assert (py - e >= -1e-9).all() and (py + e <= 1 + 1e-9).all()


def test_motion_types_differ():
    base = {"cls": np.zeros(3, int), "scale": np.full(3, 0.05), "direction": np.zeros(3), "speed": np.full(3, 0.3),
            "pos_x": np.full(3, 0.5), "pos_y": np.full(3, 0.5), "motion": np.arange(3)}
    px, py = trajectories(base, 8)
    assert np.allclose(np.diff(py[0]), 0) and np.allclose(np.diff(px[0]), 0.3 / 7)  # linear, heading 0
    r = np.hypot(px[1] - px[1].mean(), py[1] - py[1].mean())
    assert np.ptp(np.hypot(np.diff(px[1]), np.diff(py[1]))) < 1e-9  # circular: constant speed along the arc
    assert r.std() < 0.05
    assert np.allclose(np.diff(px[2]), 0.3 / 7) and np.ptp(py[2]) > 0.1  # bouncing: drift plus hops
    assert MOTION_NAMES == ("linear", "circular", "bouncing")


def test_confounder_in_train_cut_in_test():
    tr, te = _ds("train", n=400, size=16, frames=2), _ds("test", n=400, size=16, frames=2)
    own = lambda d: float((d.latents["bg_texture"] == d.latents["cls"] % 8).float().mean())  # noqa: E731
    assert own(tr) > 0.85 and own(te) < 0.25
    assert str(tr.scm).count("do(") == 0 and "bg_texture" in str(te.scm) and "do(" in str(te.scm)


def _dilated(mask: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(mask.float().flatten(0, -3)[:, None], 5, 1, 2)[:, 0].view_as(mask).bool()


#: the value each variable is set to: a new one (a discrete variable moves to the next level)
NEW = {"bg_texture": lambda v: (v + 1) % 8, "motion": lambda v: (v + 1) % 3, "cls": lambda v: (v + 1) % 8,
       "fg_hue": lambda v: v + 0.5, "bg_hue": lambda v: v + 0.5, "brightness": lambda v: 1.55 - v,
       "speed": lambda v: 0.5 - v, "pos_x": lambda v: 1.0 - v}


@pytest.mark.parametrize("var", sorted(NEW))
def test_do_changes_only_its_variable(clips, var):
    i = 2
    before = clips[i]
    value = NEW[var](before["latents"][var])
    after = clips.intervene(i, **{var: value})
    descendants = clips.scm.descendants(var)  # in train bg_texture follows cls
    assert descendants == ({"bg_texture"} if var == "cls" else set())
    for k, v in before["latents"].items():
        if k != var and k not in descendants:
            assert after["latents"][k] == pytest.approx(v), k
    assert after["latents"][var] == pytest.approx(value)
    assert after["label"] == (value if var == "cls" else before["label"])
    assert not torch.equal(after["image"], before["image"])
    if var in ("bg_texture", "fg_hue", "bg_hue", "brightness"):  # the object does not move
        assert torch.equal(after["mask"], before["mask"])
    if var in ("fg_hue", "speed", "motion", "pos_x"):  # the background does not change
        away = ~(_dilated(before["mask"]) | _dilated(after["mask"]))
        diff = (after["image"] - before["image"]).abs().amax(1)
        assert float(diff[away].max()) == 0.0


def test_intervene_without_assignment_and_batch_agree(clips):
    item = clips.intervene(4)
    assert torch.equal(item["image"], clips[4]["image"]) and torch.equal(item["mask"], clips[4]["mask"])
    batch, masks = clips.intervene_batch(torch.tensor([1, 4]), return_masks=True, speed=0.2)
    assert batch.shape == (2, 5, 3, 32, 32) and masks.shape == (2, 5, 32, 32)
    assert torch.equal(batch[1], clips.intervene(4, speed=0.2)["image"])
    assert torch.equal(clips.intervene_batch(torch.tensor([0, 3])), clips.get_batch(torch.tensor([0, 3]))[0])


def test_interventional_views_on_clips(clips):
    views = InterventionalViews(clips)
    assert set(views.variables) == set(STYLE)
    idx = torch.tensor([0, 1, 2])
    out = views(clips.get_batch(idx)[0], idx, torch.Generator().manual_seed(0), num_views=2)
    assert len(out) == 2 and all(v.shape == (3, 5, 3, 32, 32) for v in out)
    assert not torch.equal(out[0], out[1])


def test_frames_dataset(clips):
    every = clips.frames_dataset()
    assert len(every) == 40 and every.images.shape == (40, 3, 32, 32)
    assert torch.equal(every.images[7], clips.images[1, 2]) and int(every.labels[7]) == int(clips.labels[1])
    assert torch.equal(every.latents["speed"][5:10], clips.latents["speed"][1].repeat(5))
    last = clips.frames_dataset(-1)
    assert torch.equal(last.images, clips.images[:, -1]) and torch.equal(last.masks, clips.masks[:, -1])
    with pytest.raises(ValueError, match="frame"):
        clips.frames_dataset(5)


def test_label_motion():
    ds = _ds(n=30, label="motion")
    assert ds.class_names == list(MOTION_NAMES) and torch.equal(ds.labels, ds.latents["motion"])


@pytest.mark.parametrize("kw,name", [({"image_size": 8}, "image_size"), ({"frames": 1}, "frames"),
                                     ({"rho": 1.5}, "rho"), ({"supersample": 0}, "supersample"),
                                     ({"label": "colour"}, "label"), ({"n": 0}, "n"), ({"seed": -1}, "seed")])
def test_bad_arguments_name_themselves(kw, name):
    args = {"n": 2, "image_size": 16, "frames": 2, "cache": False, **kw}
    with pytest.raises(ValueError, match=name):
        MovingShapesDataset("train", **args)
    with pytest.raises(ValueError, match="split"):
        MovingShapesDataset("validation", n=2, image_size=16, frames=2, cache=False)
