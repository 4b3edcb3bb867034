"""ImageNet-9 background variants: exact pixel semantics on hand-built images, classes of the mixed backgrounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluations.foreground import VARIANT_NAMES, variants

H = W = 8
FG_RED = 0.9  # every foreground pixel has red 0.9; no background pixel has red above 0.5


def _scene(labels: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images with a plus-shaped foreground at varying places and a unique, position-coded background each."""
    n = len(labels)
    rr, cc = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    images = torch.empty(n, 3, H, W)
    masks = torch.zeros(n, H, W, dtype=torch.bool)
    for i in range(n):
        images[i, 0] = 0.05 + 0.4 * (rr * W + cc) / (H * W)  # texture: differs at every pixel
        images[i, 1] = 0.01 * (i + 1)  # identifies the source image of a background
        images[i, 2] = 0.3
        r, c = 2 + i % 3, 2 + (i // 3) % 3
        plus = ((rr == r) & (cc >= c - 1) & (cc <= c + 1)) | ((cc == c) & (rr >= r - 1) & (rr <= r + 1))
        masks[i] = plus
        images[i, 0][plus] = FG_RED
        images[i, 1][plus] = 0.5 + 0.01 * i
        images[i, 2][plus] = 0.7
    return images, masks, torch.tensor(labels)


LABELS = [0, 0, 1, 1, 1, 2, 2, 0, 2]


def _box(mask: torch.Tensor) -> torch.Tensor:
    rows = torch.nonzero(mask.any(1)).flatten()
    cols = torch.nonzero(mask.any(0)).flatten()
    box = torch.zeros_like(mask)
    box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
    return box


def test_returns_every_variant_with_the_input_shape():
    x, m, y = _scene(LABELS)
    out = variants(x, m, y)
    assert list(out) == list(VARIANT_NAMES)
    for t in out.values():
        assert t.shape == x.shape and t.dtype == x.dtype
    assert torch.equal(out["original"], x)


def test_only_fg_and_no_fg_are_exact_complements():
    x, m, y = _scene(LABELS)
    out = variants(x, m, y)
    mm = m[:, None].expand_as(x)
    assert torch.equal(out["only_fg"][mm], x[mm])
    assert bool((out["only_fg"][~mm] == 0).all())
    assert bool((out["no_fg"][mm] == 0).all())
    assert torch.equal(out["no_fg"][~mm], x[~mm])


def test_only_bg_removes_the_foreground_box_and_uses_the_own_background():
    x, m, y = _scene(LABELS)
    bg = variants(x, m, y)["only_bg"]
    for i in range(x.shape[0]):
        box = _box(m[i])
        # outside the box: unchanged
        assert torch.equal(bg[i][:, ~box], x[i][:, ~box])
        # inside: no foreground colour, and every pixel is a pixel of the same image outside the box
        inside = bg[i][:, box].T  # (n_box, 3)
        assert bool((inside[:, 0] < 0.5).all())
        outside = x[i][:, ~box].T
        match = (inside[:, None, :] == outside[None, :, :]).all(-1).any(1)
        assert bool(match.all())


def test_only_bg_tiling_rule_by_hand():
    # 6x6 image, box rows 3..4, cols 1..4: the top strip (3 rows x 6) is the largest -> rows 3, 4 copy rows 0, 1.
    x = torch.arange(36, dtype=torch.float32).view(1, 1, 6, 6).repeat(1, 3, 1, 1) / 100
    m = torch.zeros(1, 6, 6, dtype=torch.bool)
    m[0, 3, 1] = m[0, 4, 4] = True
    bg = variants(x, m, torch.tensor([0]))["only_bg"][0, 0]
    expected = x[0, 0].clone()
    expected[3, 1:5] = x[0, 0, 0, 1:5]
    expected[4, 1:5] = x[0, 0, 1, 1:5]
    assert torch.equal(bg, expected)
    # box rows 0..4, cols 0..1: only the right strip (cols 2..5, width 4) is nonempty -> periodic along columns
    m = torch.zeros(1, 6, 6, dtype=torch.bool)
    m[0, 0, 0] = m[0, 4, 1] = m[0, 5, 0] = True  # rows 0..5 -> no top/bottom strip
    bg = variants(x, m, torch.tensor([0]))["only_bg"][0, 0]
    expected = x[0, 0].clone()
    expected[:, 0] = x[0, 0, :, 2]
    expected[:, 1] = x[0, 0, :, 3]
    assert torch.equal(bg, expected)


def test_only_bg_falls_back_to_black_box_and_keeps_empty_masks():
    x, _, _ = _scene([0, 1])
    m = torch.zeros(2, H, W, dtype=torch.bool)
    m[0, 0, 0] = m[0, H - 1, W - 1] = True  # box = the whole image: nothing to tile -> Only-BG-B
    bg = variants(x, m, torch.tensor([0, 1]))["only_bg"]
    assert bool((bg[0] == 0).all())
    assert torch.equal(bg[1], x[1])  # empty mask: nothing to remove


def _source_of_background(composite: torch.Tensor, mask: torch.Tensor, only_bg: torch.Tensor) -> int:
    """The unique image whose only_bg background equals the composite outside ``mask``."""
    outside = ~mask
    hits = [j for j in range(only_bg.shape[0]) if torch.equal(composite[:, outside], only_bg[j][:, outside])]
    assert len(hits) == 1, hits
    return hits[0]


def test_mixed_variants_keep_foreground_exactly_and_take_backgrounds_from_the_right_class():
    x, m, y = _scene(LABELS)
    out, idx = variants(x, m, y, seed=3, return_indices=True)
    c = int(y.max()) + 1
    mm = m[:, None].expand_as(x)
    for name in ("mixed_same", "mixed_rand", "mixed_next"):
        assert torch.equal(out[name][mm], x[mm]), name
        for i in range(x.shape[0]):
            j = _source_of_background(out[name][i], m[i], out["only_bg"])
            assert j == int(idx[name][i])
            if name == "mixed_same":
                assert int(y[j]) == int(y[i]) and j != i
            elif name == "mixed_next":
                assert int(y[j]) == (int(y[i]) + 1) % c
            else:
                assert j != i


def test_mixed_rand_is_seeded():
    x, m, y = _scene(LABELS * 4)
    a = variants(x, m, y, seed=1, return_indices=True)[1]
    b = variants(x, m, y, seed=1, return_indices=True)[1]
    c = variants(x, m, y, seed=2, return_indices=True)[1]
    for name in ("mixed_same", "mixed_rand", "mixed_next"):
        assert torch.equal(a[name], b[name])
    assert not torch.equal(a["mixed_rand"], c["mixed_rand"])
    # uniform over images: every image is used as a background at least once over 20 seeds
    used = torch.cat([variants(x, m, y, seed=s, return_indices=True)[1]["mixed_rand"] for s in range(20)])
    assert set(used.tolist()) == set(range(x.shape[0]))


def test_mixed_next_skips_absent_classes_and_wraps_around():
    x, m, _ = _scene([0, 0, 2, 2])
    y = torch.tensor([0, 0, 2, 2])
    _, idx = variants(x, m, y, num_classes=4, return_indices=True)
    nxt = y[idx["mixed_next"]]
    assert nxt.tolist() == [2, 2, 0, 0]  # 0 -> 1 absent -> 2; 2 -> 3 absent -> 0


def test_singleton_class_uses_its_own_background_for_mixed_same():
    x, m, _ = _scene([0, 1, 1])
    _, idx = variants(x, m, torch.tensor([0, 1, 1]), return_indices=True)
    assert idx["mixed_same"].tolist() == [0, 2, 1]


def test_numpy_input_and_float_masks():
    x, m, y = _scene(LABELS)
    a = variants(x, m, y)
    b = variants(x.numpy(), m.numpy().astype(np.float32), y.numpy())
    for k in a:
        assert torch.equal(a[k], b[k])


def test_bad_inputs_raise_value_errors_naming_the_argument():
    x, m, y = _scene(LABELS)
    with pytest.raises(ValueError, match="masks"):
        variants(x, m[:, :-1], y)
    with pytest.raises(ValueError, match="masks"):
        variants(x, m[:-1], y)
    with pytest.raises(ValueError, match="masks"):
        variants(x, m.float() * 2, y)
    with pytest.raises(ValueError, match="labels"):
        variants(x, m, y[:-1])
    with pytest.raises(ValueError, match="labels"):
        variants(x, m, y - 1)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="images"):
        variants(bad, m, y)
    with pytest.raises(ValueError, match="images"):
        variants(x * 2, m, y)
    with pytest.raises(ValueError, match="images"):
        variants(x[:, :2], m, y)
    with pytest.raises(ValueError, match="images"):
        variants((x * 255).to(torch.uint8), m, y)
    with pytest.raises(ValueError, match="num_classes"):
        variants(x, m, y, num_classes=2)
