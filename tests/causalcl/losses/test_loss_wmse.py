"""W-MSE: Cholesky whitening (covariance ≈ identity, numpy reference) and the loss by loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from loss_testing import views

from causalcl.losses import NonFiniteEmbeddingError, WhiteningError, whiten, wmse_loss


def naive_whiten(x: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    n, d = x.shape
    mean = [sum(x[b, i] for b in range(n)) / n for i in range(d)]
    xc = torch.stack([torch.stack([x[b, i] - mean[i] for i in range(d)]) for b in range(n)])
    cov = torch.stack([torch.stack([sum(xc[b, i] * xc[b, j] for b in range(n)) / (n - 1) for j in range(d)])
                       for i in range(d)])
    cov = (1 - eps) * cov + eps * torch.eye(d, dtype=x.dtype)
    w = torch.linalg.inv(torch.linalg.cholesky(cov))  # W = L^{-1}
    return torch.stack([torch.stack([sum(w[i, j] * xc[b, j] for j in range(d)) for i in range(d)])
                        for b in range(n)])


def naive_wmse(zs, w_size, w_iter, eps, normalize, seed):
    n = zs[0].shape[0]
    gen = torch.Generator().manual_seed(seed)
    chunks = max(1, n // w_size)
    total, count = 0.0, 0
    for _ in range(w_iter):
        perm = torch.randperm(n, generator=gen)
        parts = torch.tensor_split(perm, chunks)
        white = [torch.cat([naive_whiten(z[idx], eps) for idx in parts]) for z in zs]
        for u in range(len(zs)):
            for v in range(u + 1, len(zs)):
                pair = 0.0
                for i in range(n):
                    a, b = white[u][i], white[v][i]
                    if normalize:
                        a, b = a / torch.sqrt((a * a).sum()), b / torch.sqrt((b * b).sum())
                    pair = pair + ((a - b) ** 2).sum()
                total, count = total + pair / n, count + 1
    return total / count


@pytest.mark.parametrize("n,d", [(6, 2), (12, 4), (9, 8)])
def test_whitened_covariance_is_identity(n: int, d: int) -> None:
    x, _ = views(n, d, seed=n + d)
    x = x @ torch.randn(d, d, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 3.0
    w = whiten(x)
    torch.testing.assert_close(w.mean(0), torch.zeros(d, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(w.T @ w / (n - 1), torch.eye(d, dtype=torch.float64), atol=1e-9, rtol=0)


def test_whiten_matches_numpy_and_loop_reference() -> None:
    x, _ = views(10, 3, seed=2)
    xn = x.numpy()
    xc = xn - xn.mean(0)
    chol = np.linalg.cholesky(np.cov(xn, rowvar=False))
    torch.testing.assert_close(whiten(x), torch.from_numpy(xc @ np.linalg.inv(chol).T), atol=1e-10, rtol=1e-9)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    weight = torch.randn(10, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    got, want = whiten(a, 0.1), naive_whiten(b, 0.1)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-9)
    (got * weight).sum().backward()
    (want * weight).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("n,d,w_size,w_iter,normalize,k", [(8, 2, 4, 1, True, 2), (10, 3, 5, 2, False, 2),
                                                           (9, 2, 4, 1, True, 3), (7, 2, 16, 1, True, 2)])
def test_loss_matches_naive_value_and_gradient(n, d, w_size, w_iter, normalize, k) -> None:
    g = torch.Generator().manual_seed(n * d)
    base = torch.randn(n, d, generator=g, dtype=torch.float64)
    zs = [base + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(k)]
    a = [z.clone().requires_grad_() for z in zs]
    b = [z.clone().requires_grad_() for z in zs]
    got = wmse_loss(*a, w_size=w_size, w_iter=w_iter, normalize=normalize,
                    generator=torch.Generator().manual_seed(5))
    want = naive_wmse(b, w_size, w_iter, 0.0, normalize, seed=5)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-9)
    got.backward()
    want.backward()
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.grad, y.grad, atol=1e-9, rtol=1e-7)


def test_normalized_loss_is_two_minus_two_cos_and_zero_for_equal_views() -> None:
    z1, z2 = views(12, 3, seed=4)
    w1, w2 = whiten(z1), whiten(z2)
    cos = torch.nn.functional.cosine_similarity(w1, w2, dim=1).mean()
    torch.testing.assert_close(wmse_loss(z1, z2, w_size=64), 2 - 2 * cos, atol=1e-12, rtol=0)
    assert wmse_loss(z1, 2 * z1 + 1, w_size=64).item() == pytest.approx(0.0, abs=1e-12)


def test_gradcheck() -> None:
    z1, z2 = views(6, 2, seed=6)
    z1.requires_grad_(), z2.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: wmse_loss(a, b, w_size=3, generator=torch.Generator().manual_seed(0)),
                                    (z1, z2), fast_mode=True)


def test_bad_inputs() -> None:
    z1, z2 = views(8, 4, seed=0)
    with pytest.raises(ValueError, match="w_size"):
        wmse_loss(z1, z2, w_size=4)  # sub-batches of 4 samples cannot whiten 4 dimensions
    wmse_loss(z1, z2, w_size=4, eps=0.1)  # shrinkage makes it possible
    with pytest.raises(ValueError, match="w_iter"):
        wmse_loss(z1, z2, w_iter=0)
    with pytest.raises(ValueError, match="eps"):
        whiten(z1, eps=2.0)
    with pytest.raises(ValueError, match="samples"):
        whiten(z1[:3])
    with pytest.raises(WhiteningError):
        whiten(torch.ones(8, 2, dtype=torch.float64) * torch.arange(8.0, dtype=torch.float64)[:, None])
    bad = z1.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(NonFiniteEmbeddingError):
        wmse_loss(bad, z2)
