"""Shared pieces of the contrastive losses: input checks, L2 normalisation, the (2N x 2N) cosine
similarity matrix of the two views and the index maps that pick each anchor's positive and negatives.

Layout used throughout: the 2N embeddings are ``cat([z1, z2])``; anchor ``i`` (row of z1 for
``i < N``, row ``i - N`` of z2 otherwise) has its positive at ``p(i) = (i + N) mod 2N`` and its
2N - 2 negatives at every other index except itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from numbers import Real

import torch
import torch.nn.functional as F
from torch import Tensor

try:  # torch >= 2.3
    from torch.compiler import is_compiling as _is_compiling
except ImportError:  # pragma: no cover - older torch

    def _is_compiling() -> bool:
        return False


_DEFERRED: contextvars.ContextVar[bool] = contextvars.ContextVar("causalcl_value_checks_deferred", default=False)


@contextlib.contextmanager
def deferred_value_checks() -> Iterator[None]:
    """Inside this context the losses skip their checks of tensor *values* (finite inputs, index ranges), each of
    which needs a host synchronisation (a GPU→CPU read); shape, dtype and device checks stay.

    ``causalcl.train.Trainer`` runs its steps inside it: a NaN/inf input then gives a non-finite loss, which the
    Trainer records on the device and reports at its next logging or checkpoint step as ``NonFiniteLossError``
    (naming the first non-finite step), so a GPU step needs no host synchronisation. Outside it (direct calls),
    bad values raise at once (``NonFiniteEmbeddingError``, ``ValueError``)."""
    token = _DEFERRED.set(True)
    try:
        yield
    finally:
        _DEFERRED.reset(token)


def value_checks_deferred() -> bool:
    """True while ``torch.compile`` traces or inside :func:`deferred_value_checks`: skip host-synchronising value
    checks."""
    return _DEFERRED.get() or _is_compiling()


class NonFiniteEmbeddingError(ValueError):
    """Embeddings given to a loss hold NaN or inf, as after a diverged step.

    A subclass of ``ValueError``; ``causalcl.train.Trainer`` catches it and stops training with the
    step, the loss terms and the path of the last good checkpoint.
    """


def check_embeddings(z: object, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``z`` is a finite floating (N, D) tensor, N >= 2.

    The finiteness check needs a host synchronisation; it is skipped while ``torch.compile`` traces and inside
    :func:`deferred_value_checks` (the Trainer's steps).
    """
    if not isinstance(z, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (N, D), got {type(z).__name__}")
    if z.dim() != 2:
        raise ValueError(f"{name} must have shape (N, D), got shape {tuple(z.shape)}")
    if z.shape[0] < 2:
        raise ValueError(f"{name} needs at least N = 2 rows (samples), got N = {z.shape[0]}")
    if z.shape[1] < 1:
        raise ValueError(f"{name} needs at least D = 1 column, got shape {tuple(z.shape)}")
    if not z.is_floating_point():
        raise ValueError(f"{name} must have a floating-point dtype, got {z.dtype}")
    if not value_checks_deferred() and not bool(torch.isfinite(z).all()):
        raise NonFiniteEmbeddingError(f"{name} contains NaN or infinite values")


def check_pair(z1: Tensor, z2: Tensor) -> None:
    """Check both views and that they match in shape, dtype and device (errors name ``z2``)."""
    check_embeddings(z1, "z1")
    check_embeddings(z2, "z2")
    if z1.shape != z2.shape:
        raise ValueError(f"z2 must have the same shape as z1, got {tuple(z2.shape)} vs {tuple(z1.shape)}")
    if z1.dtype != z2.dtype:
        raise ValueError(f"z2 must have the same dtype as z1, got {z2.dtype} vs {z1.dtype}")
    if z1.device != z2.device:
        raise ValueError(f"z2 must be on the same device as z1, got {z2.device} vs {z1.device}")


def check_real(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float; ``ValueError`` naming ``name`` unless finite and inside the bounds."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    v = float(value)
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {v}")
    return v


def check_temperature(value: object, name: str = "temperature") -> float:
    return check_real(value, name, low=0.0, low_open=True)


def check_tau_plus(value: object) -> float:
    return check_real(value, "tau_plus", low=0.0, high=1.0, high_open=True)


def normalize(z: Tensor) -> Tensor:
    """Rows scaled to unit L2 norm (``F.normalize``, eps 1e-12: an all-zero row stays zero)."""
    return F.normalize(z, p=2.0, dim=1)


def similarity_matrix(z1: Tensor, z2: Tensor) -> Tensor:
    """(2N, 2N) cosine similarities of ``cat([z1, z2])`` after L2 normalisation (one matmul)."""
    z = torch.cat([normalize(z1), normalize(z2)], dim=0)
    return z @ z.T


def positive_index(n: int, device: torch.device | None = None) -> Tensor:
    """(2N,) long tensor: the column of each anchor's positive, ``(i + N) mod 2N``."""
    return torch.cat([torch.arange(n, 2 * n, device=device), torch.arange(0, n, device=device)])


def self_mask(n: int, device: torch.device | None = None) -> Tensor:
    """(2N, 2N) bool mask of the diagonal (each anchor paired with itself)."""
    return torch.eye(2 * n, dtype=torch.bool, device=device)


def negative_index(n: int, device: torch.device | None = None) -> Tensor:
    """(2N, 2N - 2) long tensor: for each anchor, the columns of its negatives in increasing order.

    Anchor ``i`` skips columns ``a = i mod N`` and ``b = a + N`` (itself and its positive), so the
    j-th negative sits at column ``j + [j >= a] + [j >= b - 1]``; no boolean indexing, static shapes.
    """
    a = (torch.arange(2 * n, device=device) % n).unsqueeze(1)
    j = torch.arange(2 * n - 2, device=device).unsqueeze(0)
    return j + (j >= a).long() + (j >= a + n - 1).long()


def positives_and_negatives(z1: Tensor, z2: Tensor) -> tuple[Tensor, Tensor]:
    """Cosine similarities of each of the 2N anchors with its positive, (2N,), and negatives, (2N, 2N-2)."""
    n = z1.shape[0]
    sim = similarity_matrix(z1, z2)
    pos = sim.gather(1, positive_index(n, sim.device).unsqueeze(1)).squeeze(1)
    neg = sim.gather(1, negative_index(n, sim.device))
    return pos, neg
