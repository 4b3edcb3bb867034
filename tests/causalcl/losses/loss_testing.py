"""Helpers shared by the loss tests: random float64 view pairs, unit vectors, value-and-gradient checks."""

from __future__ import annotations

import torch


def views(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, d, generator=g, dtype=torch.float64)
    return z1, z1 + 0.7 * torch.randn(n, d, generator=g, dtype=torch.float64)



def unit(v: torch.Tensor) -> torch.Tensor:
    return v / torch.sqrt((v * v).sum())



def check_value_and_grad(fn, ref, z1: torch.Tensor, z2: torch.Tensor) -> None:
    a1, a2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    b1, b2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    got, want = fn(a1, a2), ref(b1, b2)
    torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
    got.backward()
    want.backward()
    torch.testing.assert_close(a1.grad, b1.grad, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(a2.grad, b2.grad, atol=1e-9, rtol=1e-7)
