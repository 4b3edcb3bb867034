"""HSIC estimators and SSL-HSIC against direct numpy formulas and loop-by-loop references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from causalcl.losses import NonFiniteEmbeddingError, hsic, kernel_matrix, ssl_hsic_loss, ssl_hsic_terms
from causalcl.losses.hsic import median_bandwidth


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _views(m: int, b: int, d: int, seed: int) -> list[torch.Tensor]:
    base = _rand(b, d, seed=seed)
    return [base + 0.5 * _rand(b, d, seed=seed + 1 + p) for p in range(m)]


def _gram(seed: int, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    x, y = _rand(n, 3, seed=seed).numpy(), _rand(n, 2, seed=seed + 1).numpy()
    y = y + x[:, :2]  # dependent
    k = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / 2)
    return k, y @ y.T


# ---------------------------------------------------------------- hsic(K, L)
def numpy_biased(k: np.ndarray, l: np.ndarray) -> float:
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(k @ h @ l @ h) / n**2)


def numpy_unbiased(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al. (2012), Eq. 5, as printed."""
    n = k.shape[0]
    kt, lt = k - np.diag(np.diag(k)), l - np.diag(np.diag(l))
    one = np.ones(n)
    return float((np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
                  - 2 / (n - 2) * (one @ kt @ lt @ one)) / (n * (n - 3)))


def loop_u_statistic(k: np.ndarray, l: np.ndarray) -> float:
    """The U-statistic: the mean over ordered distinct (i, j, q, r) of k_ij l_ij + k_ij l_qr − 2 k_ij l_iq."""
    n, total, count = k.shape[0], 0.0, 0
    for i, j, q, r in itertools.permutations(range(n), 4):
        total += k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q]
        count += 1
    return total / count


def loop_v_statistic(k: np.ndarray, l: np.ndarray) -> float:
    n = k.shape[0]
    a = sum(k[i, j] * l[i, j] for i in range(n) for j in range(n)) / n**2
    b = sum(k[i, j] for i in range(n) for j in range(n)) * sum(l[q, r] for q in range(n) for r in range(n)) / n**4
    c = sum(k[i, j] * l[i, q] for i in range(n) for j in range(n) for q in range(n)) / n**3
    return a + b - 2 * c


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hsic_matches_numpy_formulas(seed: int) -> None:
    k, l = _gram(seed)
    got_b = hsic(torch.from_numpy(k), torch.from_numpy(l), "biased").item()
    got_u = hsic(torch.from_numpy(k), torch.from_numpy(l), "unbiased").item()
    assert got_b == pytest.approx(numpy_biased(k, l), abs=1e-12)
    assert got_b == pytest.approx(loop_v_statistic(k, l), abs=1e-12)
    assert got_u == pytest.approx(numpy_unbiased(k, l), abs=1e-12)
    assert got_u == pytest.approx(loop_u_statistic(k, l), abs=1e-12)


def test_unbiased_hsic_of_independent_data_averages_near_zero() -> None:
    values = []
    for seed in range(40):
        x, y = _rand(30, 2, seed=seed), _rand(30, 2, seed=1000 + seed)
        values.append(hsic(kernel_matrix(x, "gaussian", 1.0), kernel_matrix(y, "gaussian", 1.0), "unbiased").item())
    biased = hsic(kernel_matrix(x, "gaussian", 1.0), kernel_matrix(y, "gaussian", 1.0), "biased").item()
    assert abs(np.mean(values)) < 3 * np.std(values) / math.sqrt(len(values)) and biased > 0


# ---------------------------------------------------------------- kernels
def test_kernels_match_loops_and_median_matches_numpy() -> None:
    z = _rand(7, 3, seed=3)
    n = z.shape[0]
    dist = [[math.sqrt(sum((z[a, c] - z[b, c]).item() ** 2 for c in range(3))) for b in range(n)] for a in range(n)]
    pairs = [dist[a][b] for a in range(n) for b in range(a + 1, n)]
    assert median_bandwidth(z).item() == pytest.approx(float(np.median(pairs)), abs=1e-12)
    assert median_bandwidth(z[:6]).item() == pytest.approx(float(np.median([dist[a][b] for a in range(6)
                                                                            for b in range(a + 1, 6)])), abs=1e-12)
    for kernel, bw, f in (("gaussian", 0.7, lambda d: math.exp(-d * d / (2 * 0.7**2))),
                          ("imq", 1.3, lambda d: 1.3 / math.sqrt(d * d + 1.3**2))):
        want = torch.tensor([[f(dist[a][b]) for b in range(n)] for a in range(n)], dtype=torch.float64)
        torch.testing.assert_close(kernel_matrix(z, kernel, bw), want, atol=1e-12, rtol=0)
    sigma = float(np.median(pairs))
    want = torch.tensor([[math.exp(-dist[a][b] ** 2 / (2 * sigma**2)) for b in range(n)] for a in range(n)],
                        dtype=torch.float64)
    torch.testing.assert_close(kernel_matrix(z, "gaussian", "median"), want, atol=1e-12, rtol=0)
    torch.testing.assert_close(kernel_matrix(z, "linear"), z @ z.T)


# ---------------------------------------------------------------- SSL-HSIC
def naive_ssl_hsic(views, gamma, kernel, bandwidth, zz_estimator, normalize=True):
    m, b = len(views), views[0].shape[0]
    z = [v[i] / torch.sqrt((v[i] * v[i]).sum()) if normalize else v[i] for v in views for i in range(b)]
    ident = [i for _ in range(m) for i in range(b)]  # the image of each point
    n = len(z)
    if bandwidth == "median":
        pts = torch.stack(z).detach().numpy()
        bandwidth = float(np.median([np.linalg.norm(pts[a] - pts[c]) for a in range(n) for c in range(a + 1, n)]))

    def k(x, y):
        d2 = ((x - y) ** 2).sum()
        if kernel == "gaussian":
            return torch.exp(-d2 / (2 * bandwidth**2))
        if kernel == "imq":
            return bandwidth / torch.sqrt(d2 + bandwidth**2)
        return (x * y).sum()

    gram = [[k(z[a], z[c]) for c in range(n)] for a in range(n)]
    positives = sum(gram[a][c] for a in range(n) for c in range(n) if a != c and ident[a] == ident[c])
    hsic_zy = positives / (b * m * (m - 1)) - sum(gram[a][c] for a in range(n) for c in range(n)) / n**2
    if zz_estimator == "biased":  # (1/n²) Σ_ij k_ij k_ij + (1/n⁴) (Σ k)² − (2/n³) Σ_ijq k_ij k_iq
        total = sum(gram[a][c] for a in range(n) for c in range(n))
        row = [sum(gram[a][c] for c in range(n)) for a in range(n)]
        hsic_zz = (sum(gram[a][c] ** 2 for a in range(n) for c in range(n)) / n**2 + total**2 / n**4
                   - 2 * sum(r * r for r in row) / n**3)
    else:
        g = torch.stack([torch.stack(r) for r in gram])
        hsic_zz = hsic(g, g, "unbiased")
    return -hsic_zy + gamma * torch.sqrt(hsic_zz), hsic_zy, hsic_zz


CASES = [(2, 3, 4, "gaussian", "median", "biased", 3.0), (2, 4, 3, "gaussian", 0.8, "unbiased", 1.0),
         (3, 3, 2, "imq", 1.5, "biased", 0.5), (2, 5, 3, "imq", "median", "biased", 3.0),
         (2, 3, 3, "linear", "median", "biased", 2.0), (4, 2, 5, "gaussian", "median", "unbiased", 0.0)]


@pytest.mark.parametrize("m,b,d,kernel,bandwidth,zz,gamma", CASES)
def test_ssl_hsic_matches_naive_value_and_gradient(m, b, d, kernel, bandwidth, zz, gamma) -> None:
    views = _views(m, b, d, seed=m * 100 + b * 10 + d)
    got_in = [v.clone().requires_grad_() for v in views]
    want_in = [v.clone().requires_grad_() for v in views]
    got = ssl_hsic_terms(got_in, gamma, kernel=kernel, bandwidth=bandwidth, zz_estimator=zz)
    want = naive_ssl_hsic(want_in, gamma, kernel, bandwidth, zz)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-10)
    got[0].backward()
    want[0].backward()
    for a, c in zip(got_in, want_in, strict=True):
        torch.testing.assert_close(a.grad, c.grad, atol=1e-10, rtol=1e-8)


def test_unnormalised_embeddings_and_loss_alias() -> None:
    views = _views(2, 4, 3, seed=9)
    got = ssl_hsic_terms(views, 2.0, kernel="gaussian", bandwidth=2.0, l2_normalize=False)
    want = naive_ssl_hsic(views, 2.0, "gaussian", 2.0, "biased", normalize=False)
    torch.testing.assert_close(got[0], want[0], atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(ssl_hsic_loss(views, 2.0, bandwidth=2.0, l2_normalize=False), got[0])


def test_hsic_zy_is_the_biased_hsic_with_the_identity_kernel_up_to_scale() -> None:
    """With L = 1[same image] (n = BM): B · tr(KHLH)/n² = (M−1)/M · mean_pos k + mean_diag k / M − mean_all k."""
    m, b = 3, 4
    views = _views(m, b, 5, seed=11)
    z = torch.nn.functional.normalize(torch.cat(views), dim=1)
    k = kernel_matrix(z, "gaussian", 0.9)
    ident = torch.arange(b).repeat(m)
    lab = (ident[:, None] == ident[None]).double()
    _, hsic_zy, _ = ssl_hsic_terms(views, kernel="gaussian", bandwidth=0.9)
    positives = hsic_zy + k.mean()
    expected = (m - 1) / m * positives + torch.diagonal(k).mean() / m - k.mean()
    torch.testing.assert_close(b * hsic(k, lab, "biased"), expected, atol=1e-12, rtol=0)


def test_invariant_to_image_order_and_view_order() -> None:
    views = _views(2, 6, 4, seed=12)
    base = ssl_hsic_loss(views)
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ssl_hsic_loss([v[perm] for v in views]), base, atol=1e-12, rtol=0)
    torch.testing.assert_close(ssl_hsic_loss(views[::-1]), base, atol=1e-12, rtol=0)


def test_aligned_views_score_higher_dependence() -> None:
    base = _rand(8, 6, seed=13)
    aligned = ssl_hsic_terms([base, base + 0.01 * _rand(8, 6, seed=14)], bandwidth=0.5)[1]
    random = ssl_hsic_terms([base, _rand(8, 6, seed=15)], bandwidth=0.5)[1]
    assert aligned > random


def test_gradcheck() -> None:
    views = [v.requires_grad_() for v in _views(2, 3, 3, seed=16)]
    assert torch.autograd.gradcheck(lambda a, c: ssl_hsic_loss([a, c], 1.0, bandwidth=1.2), tuple(views))


def test_bad_inputs() -> None:
    views = _views(2, 4, 3, seed=17)
    for bad, name in (([views[0]], "views"), (views[0], "views"), ([views[0], views[1][:3]], r"views\[1\]"),
                      ([views[0], views[1].float()], r"views\[1\]"), ([views[0][:1], views[1][:1]], r"views\[0\]")):
        with pytest.raises(ValueError, match=name):
            ssl_hsic_loss(bad)
    nan = views[1].clone()
    nan[0, 0] = math.nan
    with pytest.raises(NonFiniteEmbeddingError, match=r"views\[1\]"):
        ssl_hsic_loss([views[0], nan])
    for kwargs, name in (({"gamma": -1.0}, "gamma"), ({"gamma": math.nan}, "gamma"), ({"kernel": "rbf"}, "kernel"),
                         ({"bandwidth": "mean"}, "bandwidth"), ({"bandwidth": 0.0}, "bandwidth"),
                         ({"bandwidth": -1.0}, "bandwidth"), ({"zz_estimator": "exact"}, "zz_estimator")):
        with pytest.raises(ValueError, match=name):
            ssl_hsic_loss(views, **kwargs)
    k = torch.eye(3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"\bk\b"):
        hsic(k[:2], k)
    with pytest.raises(ValueError, match=r"\bl\b"):
        hsic(k, torch.eye(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="n >= 4"):
        hsic(k, k, "unbiased")
    with pytest.raises(ValueError, match="estimator"):
        hsic(k, k, "other")
