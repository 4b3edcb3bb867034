"""Deep InfoMax's global–local loss (JSD and InfoNCE) against loop-by-loop references of its formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from causalcl.losses import NonFiniteEmbeddingError, dim_loss, dim_scores


def _inputs(n: int, n_loc: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    glob = torch.randn(n, d, generator=g, dtype=torch.float64)
    local = 0.5 * glob[:, None, :] + torch.randn(n, n_loc, d, generator=g, dtype=torch.float64)
    return local, glob


def naive_dim(local: torch.Tensor, glob: torch.Tensor, estimator: str) -> torch.Tensor:
    n, n_loc, d = local.shape

    def u(i, j, l):
        return sum(glob[i, c] * local[j, l, c] for c in range(d))

    log2 = math.log(2.0)
    if estimator == "jsd":
        e_pos = sum(log2 - F.softplus(-u(i, i, l)) for i in range(n) for l in range(n_loc)) / (n * n_loc)
        e_neg = sum(F.softplus(u(i, j, l)) - log2 for i in range(n) for j in range(n) if j != i
                    for l in range(n_loc)) / (n * (n - 1) * n_loc)
        return e_neg - e_pos
    total = 0.0
    for i in range(n):
        for l in range(n_loc):
            denominator = torch.exp(u(i, i, l))
            for j in range(n):
                if j != i:
                    for l2 in range(n_loc):
                        denominator = denominator + torch.exp(u(i, j, l2))
            total = total - torch.log(torch.exp(u(i, i, l)) / denominator)
    return total / (n * n_loc)


CASES = [(2, 1, 3), (3, 4, 2), (5, 2, 4), (4, 3, 1)]


@pytest.mark.parametrize("estimator", ["jsd", "infonce"])
@pytest.mark.parametrize("n,n_loc,d", CASES)
def test_matches_naive_value_and_gradient(estimator: str, n: int, n_loc: int, d: int) -> None:
    local, glob = _inputs(n, n_loc, d, seed=n * 100 + n_loc * 10 + d)
    a = (local.clone().requires_grad_(), glob.clone().requires_grad_())
    b = (local.clone().requires_grad_(), glob.clone().requires_grad_())
    got, want = dim_loss(*a, estimator=estimator), naive_dim(*b, estimator)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    got.backward()
    want.backward()
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.grad, y.grad, atol=1e-10, rtol=1e-8)


def test_scores_are_global_dot_local() -> None:
    local, glob = _inputs(3, 2, 4, seed=1)
    u = dim_scores(local, glob)
    assert u.shape == (3, 3, 2)
    assert u[2, 0, 1].item() == pytest.approx(float(glob[2] @ local[0, 1]), abs=1e-12)


@pytest.mark.parametrize("n,n_loc", [(2, 1), (4, 3), (6, 5)])
def test_chance_level_closed_forms(n: int, n_loc: int) -> None:
    local, _ = _inputs(n, n_loc, 3, seed=2)
    zero = torch.zeros(n, 3, dtype=torch.float64)  # every score 0
    assert dim_loss(local, zero, "jsd").item() == pytest.approx(0.0, abs=1e-15)
    assert dim_loss(local, zero, "infonce").item() == pytest.approx(math.log(1 + (n - 1) * n_loc), abs=1e-12)


def test_matching_pairs_lower_the_loss_and_images_can_be_permuted() -> None:
    local, glob = _inputs(6, 4, 5, seed=3)
    shuffled = local[torch.tensor([1, 2, 3, 4, 5, 0])]
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    for estimator in ("jsd", "infonce"):
        base = dim_loss(local, glob, estimator)
        assert base < dim_loss(shuffled, glob, estimator)
        torch.testing.assert_close(dim_loss(local[perm], glob[perm], estimator), base, atol=1e-12, rtol=0)


def test_gradcheck() -> None:
    local, glob = _inputs(3, 2, 2, seed=4)
    for estimator in ("jsd", "infonce"):
        assert torch.autograd.gradcheck(lambda a, b, e=estimator: dim_loss(a, b, e),
                                        (local.clone().requires_grad_(), glob.clone().requires_grad_()))


def test_bad_inputs() -> None:
    local, glob = _inputs(4, 3, 2, seed=5)
    for args, name in (((local[0], glob), "local"), ((local[:1], glob[:1]), "local"), ((local, glob[:3]), "global_"),
                       ((local, glob[:, :1]), "global_"), ((local, glob.float()), "global_"),
                       ((local.long(), glob), "local"), ((local, glob[0]), "global_")):
        with pytest.raises(ValueError, match=name):
            dim_loss(*args)
    with pytest.raises(ValueError, match="estimator"):
        dim_loss(local, glob, "dv")
    bad = local.clone()
    bad[0, 0, 0] = math.inf
    with pytest.raises(NonFiniteEmbeddingError, match="local"):
        dim_loss(bad, glob)


@pytest.mark.parametrize("estimator", ["jsd", "infonce"])
def test_gradients_reaching_the_inputs_are_contiguous(estimator: str) -> None:
    """The gloo all-gather backward (``causalcl.distributed.gather``) mis-sums non-contiguous gradients."""
    local, glob = _inputs(5, 3, 4, seed=6)
    seen = []
    a, b = local.clone().requires_grad_() * 1, glob.clone().requires_grad_() * 1
    a.register_hook(lambda g: seen.append(g.is_contiguous()))
    b.register_hook(lambda g: seen.append(g.is_contiguous()))
    dim_loss(a, b, estimator).backward()
    assert seen == [True, True]
