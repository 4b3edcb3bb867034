"""mCE and relative mCE against hand computations; the AlexNet table against research §1.4."""

from __future__ import annotations

import math

import pytest

from evaluations.robustness import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    BENCHMARK_CORRUPTIONS,
    PROVENANCE,
    mce,
    relative_mce,
)


def test_alexnet_table_matches_research_means():
    means = {  # research/evaluations.md §1.4, "AlexNet mean err"
        "gaussian_noise": 0.886428, "shot_noise": 0.894468, "impulse_noise": 0.922640, "defocus_blur": 0.819880,
        "glass_blur": 0.826268, "motion_blur": 0.785948, "zoom_blur": 0.798360, "snow": 0.866816,
        "frost": 0.826572, "fog": 0.819324, "brightness": 0.564592, "contrast": 0.853204,
        "elastic_transform": 0.646056, "pixelate": 0.717840, "jpeg_compression": 0.606500,
    }  # fmt: skip
    assert set(ALEXNET_ERRORS) == set(BENCHMARK_CORRUPTIONS)
    for name, m in means.items():
        assert len(ALEXNET_ERRORS[name]) == 5
        assert math.isclose(sum(ALEXNET_ERRORS[name]) / 5, m, abs_tol=1e-6), name
    assert math.isclose(sum(means.values()) / 15, 0.7890, abs_tol=5e-5)
    assert ALEXNET_CLEAN_ERROR == 0.4345
    assert "AugMix" in PROVENANCE and "timm" in PROVENANCE


def test_mce_hand_computation():
    errors = {"gaussian_noise": [0.5, 0.6, 0.7, 0.8, 0.9], "contrast": [0.2, 0.2, 0.3, 0.4, 0.5]}
    # sums: 3.5 / 4.43214 and 1.6 / 4.26602
    expected = 100 * (3.5 / 4.43214 + 1.6 / 4.26602) / 2
    assert mce(errors) == pytest.approx(expected, rel=1e-9)


def test_alexnet_itself_scores_100():
    errs = {k: list(v) for k, v in ALEXNET_ERRORS.items()}
    assert mce(errs) == pytest.approx(100.0)
    assert relative_mce(errs, ALEXNET_CLEAN_ERROR) == pytest.approx(100.0)


def test_relative_mce_hand_computation():
    errors = {"brightness": [0.3, 0.3, 0.35, 0.4, 0.5]}
    clean = 0.25
    # sum(E - clean) = 1.85 - 1.25 = 0.6; AlexNet: 2.82296 - 5 * 0.4345 = 0.65046
    assert relative_mce(errors, clean) == pytest.approx(100 * 0.6 / 0.65046, rel=1e-9)


def test_custom_baseline():
    base = {"a": [0.5] * 5, "b": [0.25] * 5}
    assert mce({"a": [0.25] * 5, "b": [0.25] * 5}, baseline=base) == pytest.approx(75.0)
    assert relative_mce({"a": [0.3] * 5}, 0.1, baseline=base, baseline_clean=0.1) == pytest.approx(50.0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="no baseline.*speckle_noise"):
        mce({"speckle_noise": [0.5] * 5})
    with pytest.raises(ValueError, match="5 per-severity"):
        mce({"snow": [0.5] * 4})
    with pytest.raises(ValueError, match="fraction"):
        mce({"snow": [50, 60, 70, 80, 90]})
    with pytest.raises(ValueError, match="fraction"):
        mce({"snow": [0.5, float("nan"), 0.5, 0.5, 0.5]})
    with pytest.raises(ValueError, match="non-empty"):
        mce({})
    with pytest.raises(ValueError, match="clean_error"):
        relative_mce({"snow": [0.5] * 5}, 1.5)
    with pytest.raises(ValueError, match="sequence"):
        mce({"snow": "0.5"})
