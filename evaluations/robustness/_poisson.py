"""Fast exact Poisson sampling for shot noise: ``Poisson(x · lam)`` with x in [0, 1] and a fixed ``lam``.

numpy's ``Generator.poisson`` costs about 80 ns per draw at the rates of shot noise (Knuth's product method
below rate 10), which made shot_noise the slowest corruption. Here every rate is split on the 8-bit grid,

    x · lam = r_j + d,   r_j = j · lam / 255,  j = floor(x · 255),  0 <= d < lam / 255,

and ``Poisson(x · lam) = Poisson(r_j) + Poisson(d)`` with the two parts independent (a sum of independent
Poisson variables is Poisson with the summed rate):

* ``Poisson(r_j)`` by inversion, ``min{k : u < F_j(k)}`` with one float64 uniform ``u``, through a guide table
  (Devroye, *Non-Uniform Random Variate Generation*, 1986, §III.2.4): bucket ``b = floor(B u)`` of row j
  (B = 256, or 1024 above rate 64) holds ``start = min{k : F_j(k) > b/B}`` and ``F_j(start)``; a ``u`` below that
  value has the answer ``start``, and the others (a bucket that a CDF step cuts, a few percent of the draws)
  bisect the cached CDF row between ``start`` and the next bucket's start;
* ``Poisson(d)``, only off the grid (``d > 0``), by sequential inversion with a second uniform (``d < lam / 255``).

Deviations, all at float resolution: values within 2^-14 of an 8-bit level (``x · 255`` computed in float32;
8-bit images converted to float land there by rounding) take that level's rate exactly; the CDF table stops
at ``k_max = lam + 12·sqrt(lam) + 20`` and gives the tail mass beyond it (below 1e-20) to ``k_max``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = ["PoissonTables", "poisson_tables", "sample_unit_rates"]

GRID = 255  # rate steps of the table: the 8-bit grid
SNAP = np.float32(2.0**-14)  # x·255 within this of an integer takes that grid rate


class PoissonTables:
    """The cached tables of one ``lam``: full CDF rows and the guide (start count and its CDF value)."""

    def __init__(self, lam: float) -> None:
        from scipy.stats import poisson

        self.width = int(math.ceil(lam + 12.0 * math.sqrt(lam) + 20.0)) + 1
        rates = np.arange(GRID + 1, dtype=np.float64) * (lam / GRID)
        cdf = poisson.cdf(np.arange(self.width)[None, :], rates[:, None])
        cdf[:, -1] = 2.0  # every uniform stops at k_max
        # wider rows (rates above 64) get finer buckets, so that few buckets are cut by a CDF step
        self.buckets = 256 if lam <= 64 else 1024
        levels = np.arange(self.buckets, dtype=np.float64) / self.buckets
        start = np.stack([np.searchsorted(row, levels, side="right") for row in cdf])  # first k with F > level
        end = np.concatenate([start[:, 1:], np.full((GRID + 1, 1), self.width - 1)], axis=1)  # F(end) > u
        self.cdf = np.ascontiguousarray(cdf.ravel())
        self.start = np.ascontiguousarray(start.ravel().astype(np.int32))
        self.end = np.ascontiguousarray(end.ravel().astype(np.int32))
        self.start_cdf = np.ascontiguousarray(np.take_along_axis(cdf, start, axis=1).ravel())
        self.search_steps = int(np.ceil(np.log2((end - start).max() + 1)))  # bisection steps of the widest bucket
        self.residual_step = lam / GRID


@lru_cache(maxsize=16)
def poisson_tables(lam: float) -> PoissonTables:
    return PoissonTables(float(lam))


def _small_rate(u: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """``Poisson(rate)`` by sequential inversion with the uniforms ``u`` (quick for rates below about 2)."""
    pmf = np.exp(-rate)
    out = np.zeros(rate.shape, dtype=np.int32)
    active = np.flatnonzero(u >= pmf)
    u, rate, pmf = u[active], rate[active], pmf[active]
    cdf = pmf.copy()
    k = 0
    while active.size and k < 400:  # 400: far past any float64 CDF gap at these rates
        k += 1
        pmf *= rate / k
        cdf += pmf
        out[active] = k
        keep = u >= cdf
        active, u, rate, pmf, cdf = active[keep], u[keep], rate[keep], pmf[keep], cdf[keep]
    return out


def sample_unit_rates(x: np.ndarray, tables: PoissonTables, rngs: list[np.random.Generator]) -> np.ndarray:
    """Exact ``Poisson(x · lam)`` counts (int32, ``x``'s shape) for a float32 batch ``x`` (n, ...) in [0, 1].

    Image ``i`` draws from ``rngs[i]`` alone: one uniform per value, then one per value off the 8-bit grid (see
    the module docstring), so its counts do not depend on the rest of the batch."""
    n, size = len(rngs), x[0].size
    flat = x.reshape(-1)
    s = flat * np.float32(GRID)
    s += SNAP
    level = np.floor(s)
    j = level.astype(np.int32)
    u = np.empty(flat.size, dtype=np.float64)
    for i, rng in enumerate(rngs):
        rng.random(out=u[i * size: (i + 1) * size])
    key = (u * tables.buckets).astype(np.int32)
    key += j * tables.buckets
    counts = np.take(tables.start, key)
    cut = np.flatnonzero(u >= np.take(tables.start_cdf, key))
    if cut.size:  # a CDF step cuts the bucket: bisect F_j over (start, end], where start < answer <= end
        uc, kc = u[cut], key[cut]
        base = j[cut] * tables.width
        lo, hi = np.take(tables.start, kc) + 1, np.take(tables.end, kc)
        for _ in range(tables.search_steps):
            mid = (lo + hi) >> 1
            above = uc >= np.take(tables.cdf, base + mid)
            lo = np.where(above, mid + 1, lo)
            hi = np.where(above, hi, mid)
        counts[cut] = lo
    s -= level
    off_grid = np.flatnonzero(s > 2 * SNAP)
    if off_grid.size:
        rate = (s[off_grid] - SNAP).astype(np.float64) * tables.residual_step
        ends = np.searchsorted(off_grid, np.arange(1, n + 1) * size)  # off_grid is sorted: split it per image
        residual_u = np.concatenate([rngs[i].random(int(ends[i] - (ends[i - 1] if i else 0))) for i in range(n)])
        counts[off_grid] += _small_rate(residual_u, rate)
    return counts.reshape(x.shape)
