"""Every loss traces into one graph under torch.compile (no graph breaks, no host syncs)."""

from __future__ import annotations

import pytest
import torch

from causalcl.losses import SIMCLR_LOSSES

VARIANTS = [(name, {}) for name in SIMCLR_LOSSES] + [
    ("hard", {"detach_weights": True}),
    ("hard_threshold", {"threshold": 0.1}),
    ("triplet", {"negatives": "all"}),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,options", VARIANTS, ids=lambda v: str(v))
def test_fullgraph_compile_matches_eager(name: str, options: dict) -> None:
    torch._dynamo.reset()
    fn = SIMCLR_LOSSES[name]
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(12, 8, generator=g), torch.randn(12, 8, generator=g)
    a, b = z1.clone().requires_grad_(), z1.clone().requires_grad_()
    compiled = torch.compile(lambda x, y: fn(x, y, **options), fullgraph=True, backend="aot_eager")
    got, want = compiled(a, z2), fn(b, z2, **options)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    got.backward()
    want.backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-5)
