"""Spectrum, RankMe and alpha-ReQ against numpy references and synthetic spectra with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.fft import dct

from evaluations.spectrum import alpha_req, plot_spectrum, rankme, singular_spectrum


def _z(n, d, seed, rank=None):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d)) * rng.uniform(0.1, 3.0, size=d) + rng.normal(size=d)
    if rank is not None:
        z = z[:, :rank] @ rng.normal(size=(rank, d))
    return z


def _with_spectrum(lam, n, seed):
    """(n, d) data whose centred covariance has exactly the eigenvalues ``lam`` (in a rotated basis).

    Orthonormal DCT-II basis vectors 1..d (each sums to zero, so the columns are centred) scaled by sqrt(lam),
    rotated by the orthonormal d x d DCT matrix, plus a random offset.
    """
    d = len(lam)
    q = dct(np.eye(n), norm="ortho", axis=0)[1 : d + 1].T  # (n, d), orthonormal centred columns
    rot = dct(np.eye(d), norm="ortho", axis=0)
    offset = np.random.default_rng(seed).normal(size=d)
    return (q * np.sqrt(np.asarray(lam) * (n - 1))) @ rot.T + offset


@pytest.mark.parametrize("normalize", [True, False])
def test_singular_spectrum_matches_numpy(normalize):
    z = _z(300, 24, seed=0)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True) if normalize else z
    ref = np.linalg.svd(np.cov(zn.T), compute_uv=False)
    out = singular_spectrum(torch.from_numpy(z).float() if not normalize else z, normalize=normalize)
    assert out.shape == (24,)
    assert bool((out[:-1] >= out[1:]).all())
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-9 * ref.max())


def test_singular_spectrum_shows_collapse():
    z = _z(400, 32, seed=1, rank=5)
    s = singular_spectrum(z)
    assert s[4] > 1e-6 * s[0]
    assert s[6] < 1e-10 * s[0]


@pytest.mark.parametrize("shape", [(500, 20), (15, 40)])
def test_rankme_matches_numpy(shape):
    z = _z(*shape, seed=2)
    s = np.linalg.svd(z, compute_uv=False)
    p = s / s.sum() + 1e-7
    ref = float(np.exp(-(p * np.log(p)).sum()))
    assert rankme(torch.from_numpy(z)) == pytest.approx(ref, rel=1e-6)
    assert rankme(z.astype(np.float32)) == pytest.approx(ref, rel=1e-4)


def test_rankme_of_equal_singular_values_is_the_rank():
    rng = np.random.default_rng(3)
    u, _ = np.linalg.qr(rng.normal(size=(200, 6)))
    v, _ = np.linalg.qr(rng.normal(size=(30, 6)))
    z = 4.0 * u @ v.T  # six equal singular values, the rest zero
    assert rankme(z) == pytest.approx(6.0, rel=1e-4)
    # uncentred: a constant offset adds one direction
    assert rankme(np.ones((50, 10))) == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("alpha", [0.7, 1.0, 1.8])
def test_alpha_req_recovers_power_law(alpha):
    lam = np.arange(1, 129, dtype=float) ** -alpha
    z = _with_spectrum(lam, n=600, seed=4)
    a, r2 = alpha_req(z)
    assert a == pytest.approx(alpha, abs=1e-6)
    assert r2 == pytest.approx(1.0, abs=1e-9)


def _numpy_alpha(z, lo, hi):
    zc = z - z.mean(0)
    ev = np.sort(np.linalg.eigvalsh(np.cov(zc.T)))[::-1]
    ev = ev / ev.sum()
    hi = min(hi, len(ev), z.shape[0] - 1)
    i = np.arange(lo, hi + 1, dtype=float)
    y = np.log(ev[lo - 1 : hi])
    w = 1.0 / i
    a_mat = np.stack([np.ones_like(i), np.log(i)], axis=1) * np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(a_mat, y * np.sqrt(w), rcond=None)
    yhat = coef[0] + coef[1] * np.log(i)
    ybar = (w * y).sum() / w.sum()
    r2 = 1 - (w * (y - yhat) ** 2).sum() / (w * (y - ybar) ** 2).sum()
    return -coef[1], r2


@pytest.mark.parametrize("fit_range", [(11, 100), (4, 100), (6, 50), (1, 300)])
def test_alpha_req_matches_weighted_lstsq(fit_range):
    z = _z(800, 128, seed=5) @ np.diag(np.arange(1, 129) ** -0.6)
    a, r2 = alpha_req(z, fit_range=fit_range)
    ra, rr2 = _numpy_alpha(z, *fit_range)
    assert a == pytest.approx(ra, rel=1e-6)
    assert r2 == pytest.approx(rr2, rel=1e-6)
    assert 0.0 < r2 <= 1.0


def test_alpha_req_clips_range_and_rejects_too_few_points():
    z = _z(300, 40, seed=6)
    assert alpha_req(z) == pytest.approx(alpha_req(z, fit_range=(11, 40)))
    with pytest.raises(ValueError, match="fit_range"):
        alpha_req(_z(300, 12, seed=7))  # ranks 11..12: two points
    with pytest.raises(ValueError, match="fit_range"):
        alpha_req(_z(300, 50, seed=7, rank=12))  # only 12 positive eigenvalues


def test_plot_spectrum_draws_one_line_per_name():
    z = _z(200, 16, seed=8)
    fig = plot_spectrum({"backbone": singular_spectrum(z), "projector": singular_spectrum(z[:, :8])})
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["backbone", "projector"]


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: singular_spectrum(np.full((10, 3), np.nan)), "z"),
        (lambda: singular_spectrum(np.ones((1, 3))), "z"),
        (lambda: singular_spectrum(np.ones(5)), "z"),
        (lambda: rankme(np.zeros((10, 3))), "z"),
        (lambda: rankme(np.zeros((0, 3))), "z"),
        (lambda: rankme(np.ones((10, 3)), eps=-1.0), "eps"),
        (lambda: alpha_req(np.random.default_rng(0).normal(size=(50, 30)), fit_range=(5,)), "fit_range"),
        (lambda: alpha_req(np.random.default_rng(0).normal(size=(50, 30)), fit_range=(0, 10)), "fit_range"),
        (lambda: alpha_req(np.random.default_rng(0).normal(size=(50, 30)), fit_range=(10, 5)), "fit_range"),
        (lambda: alpha_req(np.ones((10, 4))), "z"),
        (lambda: plot_spectrum({}), "spectra"),
        (lambda: plot_spectrum({"a": np.array([1.0, -1.0])}), "spectra"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_rankme_of_one_row_is_one():
    assert rankme(torch.randn(1, 8)) == pytest.approx(1.0, abs=1e-6)
    assert rankme(np.ones((1, 1))) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("scale", [1e200, 1e-200])
def test_huge_and_tiny_float64_features(scale):
    z = torch.randn(60, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert rankme(z * scale) == pytest.approx(rankme(z), rel=1e-9)
    assert torch.allclose(singular_spectrum(z * scale), singular_spectrum(z), rtol=1e-9, atol=0)
    assert alpha_req(z * scale, fit_range=(1, 6)) == pytest.approx(alpha_req(z, fit_range=(1, 6)), rel=1e-6)


def test_an_overflowing_covariance_names_z():
    z = torch.randn(60, 8, dtype=torch.float64) * 1e200
    with pytest.raises(ValueError, match="z: the covariance of features as large as .* overflows float64"):
        singular_spectrum(z, normalize=False)
