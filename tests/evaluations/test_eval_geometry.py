"""Alignment and uniformity against loop references written from Wang & Isola's formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import evaluations.geometry as geometry_mod
from evaluations.geometry import alignment, uniformity


def _unit(v):
    n = math.sqrt(sum(a * a for a in v))
    return [a / n for a in v]


def _alignment_loop(z1, z2, alpha):
    total = 0.0
    for a, b in zip(z1.tolist(), z2.tolist(), strict=True):
        x, y = _unit(a), _unit(b)
        total += math.sqrt(sum((p - q) ** 2 for p, q in zip(x, y, strict=True))) ** alpha
    return total / len(z1)


def _uniformity_loop(z, t):
    rows = [_unit(r) for r in z.tolist()]
    acc, count = 0.0, 0
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            sq = sum((p - q) ** 2 for p, q in zip(rows[i], rows[j], strict=True))
            acc += math.exp(-t * sq)
            count += 1
    return math.log(acc / count)


@pytest.mark.parametrize("alpha", [2, 1, 0.5])
def test_alignment_matches_loop(alpha):
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(40, 7, generator=g)
    z2 = z1 + 0.3 * torch.randn(40, 7, generator=g)
    assert alignment(z1, z2, alpha=alpha) == pytest.approx(_alignment_loop(z1, z2, alpha), rel=1e-6)


@pytest.mark.parametrize("t", [2, 0.5])
def test_uniformity_matches_loop(t):
    z = torch.randn(50, 6, generator=torch.Generator().manual_seed(1))
    assert uniformity(z, t=t) == pytest.approx(_uniformity_loop(z, t), rel=1e-6)


def test_uniformity_matches_pdist_formula_across_blocks(monkeypatch):
    z = torch.randn(300, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    zn = torch.nn.functional.normalize(z, dim=1)
    ref = float(torch.pdist(zn).pow(2).mul(-2).exp().mean().log())
    monkeypatch.setattr(geometry_mod, "_BLOCK_ELEMENTS", 300 * 7)  # 7 rows per block
    assert uniformity(z) == pytest.approx(ref, rel=1e-9)


def test_known_values():
    z = torch.randn(20, 5, generator=torch.Generator().manual_seed(3))
    assert alignment(z, 3.0 * z) == pytest.approx(0.0, abs=1e-12)
    assert alignment(z, -z) == pytest.approx(4.0)  # antipodal: ||x - (-x)||^2 = 4
    assert uniformity(np.tile([[1.0, 2.0]], (10, 1))) == pytest.approx(0.0, abs=1e-12)
    # Two antipodal points: the only pair is at squared distance 4 -> log exp(-2 * 4) = -8.
    assert uniformity(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-8.0)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: alignment(torch.randn(5, 3), torch.randn(4, 3)), "z2"),
        (lambda: alignment(torch.randn(5, 3), torch.randn(5, 2)), "z2"),
        (lambda: alignment(torch.full((5, 3), float("nan")), torch.randn(5, 3)), "z1"),
        (lambda: alignment(torch.zeros(5, 3), torch.randn(5, 3)), "z1"),
        (lambda: alignment(torch.randn(5, 3), torch.randn(5, 3), alpha=0), "alpha"),
        (lambda: alignment(torch.randn(0, 3), torch.randn(0, 3)), "z1"),
        (lambda: uniformity(torch.randn(1, 3)), "z"),
        (lambda: uniformity(torch.randn(3)), "z"),
        (lambda: uniformity(torch.randn(4, 3), t=-1), "t"),
        (lambda: uniformity(np.array([[1.0, np.inf], [0.0, 1.0]])), "z"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
