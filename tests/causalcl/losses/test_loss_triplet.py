"""Triplet margin loss on cosine distance against a loop reference."""

from __future__ import annotations

import pytest
import torch
from loss_testing import unit, views

from causalcl.losses import triplet

CASES = [(2, 3, 0.5), (3, 4, 0.2), (5, 8, 1.0), (8, 4, 0.5)]


def naive_triplet(z1: torch.Tensor, z2: torch.Tensor, margin: float, negatives: str) -> torch.Tensor:
    n = z1.shape[0]
    views = ([unit(v) for v in z1], [unit(v) for v in z2])
    total = torch.zeros((), dtype=torch.float64)
    for a_view in (0, 1):  # both directions
        for i in range(n):
            anchor, positive = views[a_view][i], views[1 - a_view][i]
            d_ap = 1 - (anchor * positive).sum()
            d_an = [1 - (anchor * views[v][j]).sum() for v in (0, 1) for j in range(n) if j != i]
            if negatives == "hardest":
                hardest = min(d_an, key=lambda d: d.item())
                total = total + torch.clamp(d_ap - hardest + margin, min=0)
            else:
                total = total + sum(torch.clamp(d_ap - d + margin, min=0) for d in d_an) / len(d_an)
    return total / (2 * n)


@pytest.mark.parametrize("n,d,margin", CASES)
@pytest.mark.parametrize("negatives", ["hardest", "all"])
def test_matches_naive(n: int, d: int, margin: float, negatives: str) -> None:
    z1, z2 = views(n, d, seed=n * 7 + d)
    a1, a2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    b1, b2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    got, want = triplet(a1, a2, margin=margin, negatives=negatives), naive_triplet(b1, b2, margin, negatives)
    torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
    got.backward()
    want.backward()
    torch.testing.assert_close(a1.grad, b1.grad, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(a2.grad, b2.grad, atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("negatives", ["hardest", "all"])
def test_closed_forms(negatives: str) -> None:
    collapsed = torch.ones(4, 3, dtype=torch.float64)
    assert triplet(collapsed, collapsed, margin=0.3, negatives=negatives).item() == pytest.approx(
        0.3, abs=1e-12
    )
    z = torch.eye(4, 5, dtype=torch.float64)  # d_ap = 0, every d_an = 1
    assert triplet(z, z, margin=1.5, negatives=negatives).item() == pytest.approx(0.5, abs=1e-12)
    assert triplet(z, z, margin=0.5, negatives=negatives).item() == pytest.approx(0.0, abs=1e-12)


def test_hardest_is_at_least_all() -> None:
    z1, z2 = views(6, 4, seed=1)
    assert triplet(z1, z2, negatives="hardest").item() >= triplet(z1, z2, negatives="all").item()


def test_symmetric_and_scale_invariant() -> None:
    z1, z2 = views(6, 5, seed=2)
    for negatives in ("hardest", "all"):
        base = triplet(z1, z2, negatives=negatives)
        torch.testing.assert_close(triplet(z2, z1, negatives=negatives), base, atol=1e-12, rtol=0)
        torch.testing.assert_close(triplet(2 * z1, z2 / 5, negatives=negatives), base, atol=1e-12, rtol=0)


@pytest.mark.parametrize("negatives", ["hardest", "all"])
def test_gradcheck(negatives: str) -> None:
    z1, z2 = views(3, 4, seed=3)
    assert torch.autograd.gradcheck(
        lambda a, b: triplet(a, b, margin=0.8, negatives=negatives),
        (z1.requires_grad_(), z2.requires_grad_()),
    )
