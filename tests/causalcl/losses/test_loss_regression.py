"""BYOL's `byol_loss` and SimSiam's `negative_cosine` against loop references of their formulas."""

from __future__ import annotations

import pytest
import torch
from loss_testing import unit, views

from causalcl.losses import NonFiniteEmbeddingError, byol_loss, negative_cosine

CASES = [(2, 3), (3, 4), (5, 8), (8, 2)]


def naive_byol(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    total = torch.zeros((), dtype=torch.float64)
    for i in range(p.shape[0]):
        diff = unit(p[i]) - unit(z[i].detach())
        total = total + (diff * diff).sum()  # ||p_hat - z_hat||^2
    return total / p.shape[0]


def naive_negative_cosine(p: torch.Tensor, z: torch.Tensor, detach: bool = True) -> torch.Tensor:
    total = torch.zeros((), dtype=torch.float64)
    for i in range(p.shape[0]):
        zi = z[i].detach() if detach else z[i]
        total = total - (p[i] * zi).sum() / (torch.sqrt((p[i] * p[i]).sum()) * torch.sqrt((zi * zi).sum()))
    return total / p.shape[0]


@pytest.mark.parametrize("fn,ref", [(byol_loss, naive_byol), (negative_cosine, naive_negative_cosine)])
@pytest.mark.parametrize("n,d", CASES)
def test_matches_naive_value_and_gradient(fn, ref, n: int, d: int) -> None:
    p, z = views(n, d, seed=n * 10 + d)
    a, b = p.clone().requires_grad_(), p.clone().requires_grad_()
    za, zb = z.clone().requires_grad_(), z.clone().requires_grad_()
    got, want = fn(a, za), ref(b, zb)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)
    got.backward()
    want.backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-12, rtol=1e-9)
    assert za.grad is None  # stop-gradient on the target


def test_without_stop_gradient_the_target_gets_the_reference_gradient() -> None:
    p, z = views(4, 3, seed=1)
    za, zb = z.clone().requires_grad_(), z.clone().requires_grad_()
    negative_cosine(p, za, stop_gradient=False).backward()
    naive_negative_cosine(p, zb, detach=False).backward()
    torch.testing.assert_close(za.grad, zb.grad, atol=1e-12, rtol=1e-9)


def test_byol_is_affine_in_negative_cosine_and_in_range() -> None:
    p, z = views(6, 5, seed=2)
    torch.testing.assert_close(byol_loss(p, z), 2 + 2 * negative_cosine(p, z), atol=1e-12, rtol=0)
    assert byol_loss(p, 3 * p).item() == pytest.approx(0.0, abs=1e-12)
    assert byol_loss(p, -p).item() == pytest.approx(4.0, abs=1e-12)
    assert negative_cosine(p, 0.5 * p).item() == pytest.approx(-1.0, abs=1e-12)


def test_gradcheck() -> None:
    p, z = views(3, 4, seed=3)
    p = p.requires_grad_()
    assert torch.autograd.gradcheck(lambda a: byol_loss(a, z), (p,))
    assert torch.autograd.gradcheck(lambda a, b: negative_cosine(a, b, stop_gradient=False),
                                    (p, z.clone().requires_grad_()))


@pytest.mark.parametrize("fn", [byol_loss, negative_cosine])
def test_bad_inputs(fn) -> None:
    p, z = views(4, 3, seed=4)
    with pytest.raises(ValueError, match="p"):
        fn(p[0], z)
    with pytest.raises(ValueError, match="z must have the same shape"):
        fn(p, z[:, :2])
    with pytest.raises(ValueError, match="z must have the same dtype"):
        fn(p, z.float())
    with pytest.raises(ValueError, match="stop_gradient"):
        fn(p, z, stop_gradient=1)
    bad = z.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(NonFiniteEmbeddingError, match="z"):
        fn(p, bad)
