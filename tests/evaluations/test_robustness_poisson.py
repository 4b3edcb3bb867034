"""The table-inversion Poisson sampler of shot noise against a loop reference and the Poisson law."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evaluations.robustness._poisson import poisson_tables, sample_unit_rates


def inversion_by_loop(u: float, rate: float) -> int:
    """min{k : u < F(k)} for Poisson(rate), walking k = 0, 1, 2, ... (the definition of inversion)."""
    k = 0
    while u >= stats.poisson.cdf(k, rate):
        k += 1
    return k


@pytest.mark.parametrize("lam", [60.0, 12.0, 3.0, 100.0, 500.0])
def test_on_grid_counts_equal_loop_inversion_of_the_same_uniforms(lam):
    levels = np.array([0, 1, 2, 37, 128, 200, 254, 255])
    x = (np.tile(levels, 25).astype(np.float32) * np.float32(1 / 255)).reshape(1, 1, -1)  # as to_planes converts
    counts = sample_unit_rates(x, poisson_tables(lam), [np.random.default_rng(5)])
    u = np.random.default_rng(5).random(x.size)  # 8-bit values are on the grid: no residual draws
    rates = np.tile(levels, 25) * (lam / 255)
    expected = [inversion_by_loop(float(ui), float(r)) for ui, r in zip(u, rates, strict=True)]
    assert counts.ravel().tolist() == expected


def test_cut_buckets_and_extreme_uniforms_resolve_exactly():
    """Uniforms at bucket edges, next to CDF values and in the far tails (where a guide start is far from the
    answer) give the loop's answer."""
    lam = 500.0
    tables = poisson_tables(lam)
    rate = 255 * lam / 255
    cdf = stats.poisson.cdf(np.arange(700), rate)
    u = np.concatenate([[0.0, 1e-300, 1e-20, 1 - 2**-53, 0.5], np.nextafter(cdf[400:600:7], 0), cdf[400:600:7],
                        np.arange(0, 1024, 97) / 1024])
    x = np.ones((1, 1, u.size), dtype=np.float32)

    class Fixed:
        def random(self, size=None, out=None):
            out[...] = u
            return out

    counts = sample_unit_rates(x, tables, [Fixed()]).ravel()
    assert counts.tolist() == [min(inversion_by_loop(float(v), rate), tables.width - 1) for v in u]


@pytest.mark.parametrize("lam, x_value", [(12.0, 0.5), (12.0, 0.3337), (60.0, 0.9991), (3.0, 0.0021),
                                          (500.0, 0.123), (100.0, 1.0), (12.0, 0.0)])
def test_counts_follow_the_poisson_law_on_and_off_the_grid(lam, x_value):
    n = 60_000
    x = np.full((3, 1, n // 3), x_value, dtype=np.float32)
    counts = sample_unit_rates(x, poisson_tables(lam), [np.random.default_rng(s) for s in range(3)]).ravel()
    rate = float(np.float32(x_value)) * lam
    if rate == 0:
        assert not counts.any()
        return
    assert abs(counts.mean() - rate) < 5 * np.sqrt(rate / n)
    lo, hi = int(stats.poisson.ppf(1e-3, rate)), int(stats.poisson.ppf(1 - 1e-3, rate))
    ks = np.arange(lo, hi)  # bins: k < lo (if lo > 0), each k in lo..hi-1, k >= hi
    observed = [(counts == k).sum() for k in ks] + [(counts >= hi).sum()]
    probs = [*stats.poisson.pmf(ks, rate), stats.poisson.sf(hi - 1, rate)]
    if lo > 0:
        observed, probs = [(counts < lo).sum(), *observed], [stats.poisson.cdf(lo - 1, rate), *probs]
    probs = np.array(probs)
    assert stats.chisquare(np.array(observed), probs / probs.sum() * n).pvalue > 1e-4


def test_each_image_draws_from_its_own_generator():
    x = np.random.default_rng(0).random((3, 3, 20, 20), dtype=np.float32)  # off the grid: residual draws too
    tables = poisson_tables(25.0)
    whole = sample_unit_rates(x, tables, [np.random.default_rng(s) for s in (4, 5, 6)])
    alone = sample_unit_rates(x[1:2], tables, [np.random.default_rng(5)])
    np.testing.assert_array_equal(whole[1:2], alone)
