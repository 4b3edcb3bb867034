"""RotNet's rotation cross-entropy against a loop-by-loop reference."""

from __future__ import annotations

import math

import pytest
import torch

from causalcl.losses import NonFiniteEmbeddingError, rotation_loss


def naive_rotation(logits: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    total = torch.zeros((), dtype=torch.float64)
    for j in range(logits.shape[0]):
        denominator = sum(torch.exp(logits[j, c]) for c in range(logits.shape[1]))
        total = total - torch.log(torch.exp(logits[j, int(rotations[j])]) / denominator)
    return total / logits.shape[0]


@pytest.mark.parametrize("m,c", [(1, 4), (4, 4), (12, 4), (7, 3)])
def test_matches_naive_value_and_gradient(m: int, c: int) -> None:
    g = torch.Generator().manual_seed(m)
    logits = 3 * torch.randn(m, c, generator=g, dtype=torch.float64)
    rotations = torch.randint(0, c, (m,), generator=g)
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    got, want = rotation_loss(a, rotations), naive_rotation(b, rotations)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    got.backward()
    want.backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-10, rtol=1e-8)


def test_uniform_logits_cost_log_four() -> None:
    assert rotation_loss(torch.zeros(8, 4), torch.arange(8) % 4).item() == pytest.approx(math.log(4))


def test_bad_inputs() -> None:
    logits = torch.zeros(4, 4)
    with pytest.raises(ValueError, match="logits"):
        rotation_loss(torch.zeros(4), torch.arange(4))
    with pytest.raises(ValueError, match="logits"):
        rotation_loss(torch.zeros(4, 4, dtype=torch.long), torch.arange(4))
    with pytest.raises(ValueError, match="rotations"):
        rotation_loss(logits, torch.arange(3))
    with pytest.raises(ValueError, match="rotations"):
        rotation_loss(logits, torch.zeros(4))
    with pytest.raises(ValueError, match="rotations"):
        rotation_loss(logits, torch.tensor([0, 1, 2, 4]))
    with pytest.raises(NonFiniteEmbeddingError, match="logits"):
        rotation_loss(torch.full((2, 4), float("nan")), torch.zeros(2, dtype=torch.long))
