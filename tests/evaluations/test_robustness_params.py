"""The severity tables against research/evaluations.md §1.2 (ImageNet) and §1.5 (CIFAR-10-C), transcribed here
independently of evaluations.robustness.params."""

from __future__ import annotations

import numpy as np
import pytest

from evaluations.robustness import BENCHMARK_CORRUPTIONS, CORRUPTIONS, GROUPS, corruption_params
from evaluations.robustness.params import CIFAR, IMAGENET

CIFAR_EXPECTED = {
    "gaussian_noise": [0.04, 0.06, 0.08, 0.09, 0.10],
    "shot_noise": [500, 250, 100, 75, 50],
    "impulse_noise": [0.01, 0.02, 0.03, 0.05, 0.07],
    "speckle_noise": [0.06, 0.1, 0.12, 0.16, 0.2],
    "gaussian_blur": [0.4, 0.6, 0.7, 0.8, 1],
    "glass_blur": [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],
    "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],
    "motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
    "fog": [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],
    "frost": [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],
    "snow": [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
             (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)],
    "spatter": [(0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
                (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)],
    "contrast": [0.75, 0.5, 0.4, 0.3, 0.15],
    "brightness": [0.05, 0.1, 0.15, 0.2, 0.3],
    "saturate": [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)],
    "jpeg_compression": [80, 65, 58, 50, 40],
    "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],
    "elastic_transform": [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)],
}

IMAGENET_SPOT = {
    "gaussian_noise": [0.08, 0.12, 0.18, 0.26, 0.38],
    "shot_noise": [60, 25, 12, 5, 3],
    "glass_blur": [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)],
    "defocus_blur": [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)],
    "motion_blur": [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
    "frost": [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)],
    "jpeg_compression": [25, 18, 15, 10, 7],
    "pixelate": [0.6, 0.5, 0.4, 0.3, 0.25],
    "contrast": [0.4, 0.3, 0.2, 0.1, 0.05],
    "elastic_transform": [(2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02)],
}


@pytest.mark.parametrize("name", sorted(CIFAR_EXPECTED))
def test_cifar_table(name):
    for sev in range(1, 6):
        np.testing.assert_allclose(np.asarray(corruption_params(name, sev, "cifar"), dtype=float),
                                   np.asarray(CIFAR_EXPECTED[name][sev - 1], dtype=float), err_msg=name)


def test_cifar_zoom_factors():
    stops = [1.06, 1.11, 1.16, 1.21, 1.26]
    for sev, stop in enumerate(stops, start=1):
        got = np.arange(1, *corruption_params("zoom_blur", sev, "cifar"))
        np.testing.assert_allclose(got, np.arange(1, stop, 0.01))


@pytest.mark.parametrize("name", sorted(IMAGENET_SPOT))
def test_imagenet_spot_checks(name):
    for sev in range(1, 6):
        np.testing.assert_allclose(np.asarray(corruption_params(name, sev, "imagenet"), dtype=float),
                                   np.asarray(IMAGENET_SPOT[name][sev - 1], dtype=float), err_msg=name)


def test_tables_cover_every_corruption_and_groups_partition_the_benchmark():
    assert set(IMAGENET) == set(CIFAR) == set(CORRUPTIONS)
    assert all(len(v) == 5 for v in IMAGENET.values()) and all(len(v) == 5 for v in CIFAR.values())
    grouped = [c for g, names in GROUPS.items() if g != "extra" for c in names]
    assert sorted(grouped) == sorted(BENCHMARK_CORRUPTIONS)
