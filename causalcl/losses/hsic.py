"""Kernel dependence: HSIC estimators and the SSL-HSIC loss.

Li, Pogodin, Sutherland, Gretton; NeurIPS 2021, "Self-Supervised Learning with Kernel Dependence
Maximization", arXiv 2106.08320 (official JAX code: github.com/deepmind/ssl_hsic, ``ssl_hsic/kernels.py``).
HSIC: Gretton, Bousquet, Smola, Schölkopf, ALT 2005 (biased estimator); Song, Smola, Gretton, Bedo,
Borgwardt, JMLR 2012 (unbiased estimator).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._common import check_embeddings, check_real, normalize

#: kernels on the embeddings Z (``kernel_matrix``)
KERNELS = ("gaussian", "imq", "linear")
#: estimators of HSIC(K, L) (``hsic``)
HSIC_ESTIMATORS = ("biased", "unbiased")
#: HSIC(Z, Z) is clamped at this value before the square root (its gradient is infinite at 0)
SQRT_EPS = 1e-12


def squared_distances(z: Tensor) -> Tensor:
    """(n, n) squared Euclidean distances ``‖z_a − z_b‖²`` by one matmul, clamped at 0 (rounding)."""
    sq = (z * z).sum(1)
    return (sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)).clamp_min(0.0)


def median_bandwidth(z: Tensor) -> Tensor:
    """The median heuristic: the median of the n(n−1)/2 distances ``‖z_a − z_b‖``, a < b (detached).

    For an even count it is the mean of the two middle values (``numpy.median``). A scalar tensor.
    """
    n = z.shape[0]
    d2 = squared_distances(z.detach())
    rows, cols = torch.triu_indices(n, n, offset=1, device=z.device)
    dist = d2[rows, cols].sqrt().sort().values
    m = dist.numel()
    return 0.5 * (dist[(m - 1) // 2] + dist[m // 2])


def kernel_matrix(z: Tensor, kernel: str = "gaussian", bandwidth: float | str = "median") -> Tensor:
    r"""(n, n) Gram matrix of the rows of ``z`` (n, D).

    * ``"gaussian"``: k(z, z') = exp(−‖z − z'‖² / (2σ²));
    * ``"imq"`` (inverse multiquadric, the official SSL-HSIC code's kernel): k(z, z') = c / sqrt(‖z − z'‖² + c²);
    * ``"linear"``: k(z, z') = zᵀz' (``bandwidth`` unused).

    ``bandwidth`` is σ (Gaussian) or c (IMQ): a positive float, or ``"median"`` for the median heuristic
    (``median_bandwidth``, recomputed on each call, no gradient through it).
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel: expected one of {KERNELS}, got {kernel!r}")
    if kernel == "linear":
        return z @ z.T
    if isinstance(bandwidth, str):
        if bandwidth != "median":
            raise ValueError(f"bandwidth: expected a positive float or 'median', got {bandwidth!r}")
        scale = median_bandwidth(z).clamp_min(1e-12)
    else:
        scale = check_real(bandwidth, "bandwidth", low=0.0, low_open=True)
    d2 = squared_distances(z)
    if kernel == "gaussian":
        return torch.exp(-d2 / (2.0 * scale**2))
    return scale / torch.sqrt(d2 + scale**2)


def _check_gram(k: object, name: str) -> Tensor:
    if not isinstance(k, Tensor) or k.dim() != 2 or k.shape[0] != k.shape[1] or not k.is_floating_point():
        shape = tuple(k.shape) if isinstance(k, Tensor) else type(k).__name__
        raise ValueError(f"{name}: expected a square floating-point (n, n) Gram matrix, got {shape}")
    return k


def hsic(k: Tensor, l: Tensor, estimator: str = "biased") -> Tensor:
    r"""HSIC estimate from two (n, n) Gram matrices K (of X) and L (of Y) of the same n samples.

    * ``"biased"`` (the V-statistic; SSL-HSIC's HSIC(Z, Z), as in the official code's
      ``rff_approximate_hsic_xx``): HSIC_b = tr(K H L H) / n², H = I − 11ᵀ/n. Gretton et al. (2005) divide
      by (n − 1)² instead: multiply by n²/(n − 1)² to get theirs.
    * ``"unbiased"`` (Song et al. 2012, n ≥ 4), with K̃, L̃ = K, L with zero diagonals::

          HSIC_u = 1/(n(n−3)) [ tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1)/((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1 ]

      It can be slightly negative for independent samples.

    Returns:
        Scalar tensor.
    """
    k, l = _check_gram(k, "k"), _check_gram(l, "l")
    if l.shape != k.shape:
        raise ValueError(f"l: expected the shape of k {tuple(k.shape)}, got {tuple(l.shape)}")
    if estimator not in HSIC_ESTIMATORS:
        raise ValueError(f"estimator: expected one of {HSIC_ESTIMATORS}, got {estimator!r}")
    n = k.shape[0]
    if estimator == "biased":
        kc = k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()  # H K H
        return (kc * l.T).sum() / n**2  # tr(HKH L)
    if n < 4:
        raise ValueError(f"k: the unbiased estimator needs n >= 4 samples, got n = {n}")
    eye = torch.eye(n, dtype=torch.bool, device=k.device)
    kt, lt = k.masked_fill(eye, 0.0), l.masked_fill(eye, 0.0)
    trace = (kt * lt.T).sum()
    sums = kt.sum() * lt.sum() / ((n - 1) * (n - 2))
    cross = 2.0 / (n - 2) * (kt.sum(0) * lt.sum(1)).sum()
    return (trace + sums - cross) / (n * (n - 3))


def _check_views(views: object) -> list[Tensor]:
    if not isinstance(views, Sequence) or isinstance(views, Tensor) or len(views) < 2:
        raise ValueError(f"views: expected a sequence of at least 2 (B, D) tensors (one per view), "
                         f"got {type(views).__name__}")
    for i, z in enumerate(views):
        check_embeddings(z, f"views[{i}]")
        if z.shape != views[0].shape or z.dtype != views[0].dtype or z.device != views[0].device:
            raise ValueError(f"views[{i}]: expected the shape, dtype and device of views[0] "
                             f"({tuple(views[0].shape)}, {views[0].dtype}, {views[0].device}), got "
                             f"({tuple(z.shape)}, {z.dtype}, {z.device})")
    return list(views)


def ssl_hsic_terms(views: Sequence[Tensor], gamma: float = 3.0, *, kernel: str = "gaussian",
                   bandwidth: float | str = "median", zz_estimator: str = "biased",
                   l2_normalize: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    r"""SSL-HSIC (Li, Pogodin, Sutherland, Gretton, NeurIPS 2021, arXiv 2106.08320): the loss and its terms.

    ``views[p]`` (B, D) holds view p of the B images (M = len(views) ≥ 2 views; row i of every view is
    image i). Y is the identity of the image, so the views of one image share Y. With the n = BM
    embeddings z_i^p (L2-normalised when ``l2_normalize``, as in the official code) and their Gram
    matrix K (``kernel_matrix``)::

        HSIC(Z, Y) = 1/(BM(M−1)) Σ_i Σ_{p≠l} k(z_i^p, z_i^l) − 1/(BM)² Σ_{a,b} k(z_a, z_b)
        HSIC(Z, Z) = tr(K H K H) / n²                      (zz_estimator="biased"; or ``hsic``'s unbiased)
        L          = −HSIC(Z, Y) + γ · sqrt(HSIC(Z, Z))

    HSIC(Z, Y) is the paper's estimator of Δl/N · (E_pos[k(z, z')] − E_{z,z'}[k(z, z')]) for the one-hot
    identity kernel on Y, with the scale Δl/N set to 1 as in the official code (``get_label_weights``
    gives Δl = w_pos − w_neg = 1; the 1/N is absorbed into γ): an unbiased mean over the pairs of distinct
    views of one image minus the mean over all (BM)² pairs. The official code's positive sum also holds
    the p = l terms k(z, z), i.e. it is this value + 1/(M−1) for the Gaussian and IMQ kernels (k(z, z) = 1):
    a constant, the same gradient. HSIC(Z, Z) is the biased V-statistic by default, as the official code's
    ``rff_approximate_hsic_xx`` (which approximates K by random Fourier features; here K is exact);
    its square root is taken of max(HSIC(Z, Z), 1e-12).

    Args:
        views: M ≥ 2 tensors (B, D), B ≥ 2, of one shape/dtype/device.
        gamma: γ ≥ 0, the weight of sqrt(HSIC(Z, Z)) (default 3, the official ImageNet config's ``regul_weight``).
        kernel: one of ``KERNELS``.
        bandwidth: σ / c of the kernel, a positive float or ``"median"`` (median heuristic on the batch).
        zz_estimator: ``"biased"`` or ``"unbiased"`` estimator of HSIC(Z, Z) (``hsic``).
        l2_normalize: L2-normalise the embeddings first.

    Returns:
        (loss, hsic_zy, hsic_zz), scalar tensors; half-precision views are evaluated in float32 with autocast off.

    Raises:
        ValueError: bad views (``NonFiniteEmbeddingError`` for NaN/inf) or options.
    """
    views = _check_views(views)
    gamma = check_real(gamma, "gamma", low=0.0)
    if zz_estimator not in HSIC_ESTIMATORS:
        raise ValueError(f"zz_estimator: expected one of {HSIC_ESTIMATORS}, got {zz_estimator!r}")
    m, b = len(views), views[0].shape[0]
    z = torch.cat(views)  # row p·B + i is z_i^p
    if z.dtype in (torch.float16, torch.bfloat16):  # HSIC is a difference of kernel means: float32 (bf16 drifted 12 %)
        z = z.float()
    with torch.autocast(z.device.type, enabled=False):
        if l2_normalize:
            z = normalize(z)
        k = kernel_matrix(z, kernel, bandwidth)
        same_image = torch.diagonal(k.view(m, b, m, b), dim1=1, dim2=3).sum()  # Σ_i Σ_{p,l} k(z_i^p, z_i^l)
        positives = (same_image - torch.diagonal(k).sum()) / (b * m * (m - 1))  # p ≠ l
        hsic_zy = positives - k.mean()
        hsic_zz = hsic(k, k, zz_estimator)
        loss = -hsic_zy + gamma * torch.sqrt(hsic_zz.clamp_min(SQRT_EPS))
    return loss, hsic_zy, hsic_zz


def ssl_hsic_loss(views: Sequence[Tensor], gamma: float = 3.0, *, kernel: str = "gaussian",
                  bandwidth: float | str = "median", zz_estimator: str = "biased",
                  l2_normalize: bool = True) -> Tensor:
    r"""The SSL-HSIC loss −HSIC(Z, Y) + γ · sqrt(HSIC(Z, Z)) (Li et al., NeurIPS 2021, arXiv 2106.08320).

    Y is the image identity shared by the M ≥ 2 views of each image; Gaussian kernel on the L2-normalised
    embeddings with the median-heuristic bandwidth by default, γ = 3. See :func:`ssl_hsic_terms` for the
    estimators and every option; this returns its first element (a scalar tensor).
    """
    return ssl_hsic_terms(views, gamma, kernel=kernel, bandwidth=bandwidth, zz_estimator=zz_estimator,
                          l2_normalize=l2_normalize)[0]
