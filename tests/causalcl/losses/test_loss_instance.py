"""NPID's NCE, its normalising constant and the non-parametric softmax against loop-by-loop references."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import unit

from causalcl.losses import NonFiniteEmbeddingError, instance_nce, instance_nce_normalizer, instance_softmax


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def naive_nce(z, positive, negatives, n, big_z, t):
    """-1/N sum_i [log h(i) + sum_k log(1 - h(k))], h = P / (P + m/n), P = exp(v.f/t) / Z."""
    total = torch.zeros((), dtype=torch.float64)
    shared = negatives.dim() == 2
    m = negatives.shape[-2]
    for i in range(z.shape[0]):
        f = unit(z[i])
        p = torch.exp((f * unit(positive[i].detach())).sum() / t) / big_z
        total = total + torch.log(p / (p + m / n))
        for k in range(m):
            v = negatives[k] if shared else negatives[i, k]
            pk = torch.exp((f * unit(v.detach())).sum() / t) / big_z
            total = total + torch.log(1 - pk / (pk + m / n))
    return -total / z.shape[0]


def naive_normalizer(z, positive, negatives, n, t):
    values = []
    shared = negatives.dim() == 2
    for i in range(z.shape[0]):
        f = unit(z[i])
        values.append(math.exp(float((f * unit(positive[i])).sum()) / t))
        for k in range(negatives.shape[-2]):
            v = negatives[k] if shared else negatives[i, k]
            values.append(math.exp(float((f * unit(v)).sum()) / t))
    return n * sum(values) / len(values)


def naive_softmax(z, bank, targets, t):
    total = torch.zeros((), dtype=torch.float64)
    for i in range(z.shape[0]):
        f = unit(z[i])
        scores = [torch.exp((f * unit(bank[j].detach())).sum() / t) for j in range(bank.shape[0])]
        total = total - torch.log(scores[int(targets[i])] / sum(scores))
    return total / z.shape[0]


CASES = [(2, 3, 1, 10, 0.07), (4, 5, 6, 50, 0.1), (5, 4, 9, 9, 0.5), (3, 8, 16, 1000, 1.0)]


@pytest.mark.parametrize("shared", [True, False], ids=["shared-noise", "per-anchor-noise"])
@pytest.mark.parametrize("n_anchor,d,m,n,t", CASES)
def test_nce_matches_naive_value_and_gradient(n_anchor, d, m, n, t, shared) -> None:
    z, positive = _randn(n_anchor, d, seed=1), _randn(n_anchor, d, seed=2)
    negatives = _randn(m, d, seed=3) if shared else _randn(n_anchor, m, d, seed=3)
    big_z = naive_normalizer(z, positive, negatives, n, t) * 1.7  # any positive constant
    a, b = z.clone().requires_grad_(), z.clone().requires_grad_()
    got = instance_nce(a, positive, negatives, num_items=n, normalizer=big_z, temperature=t)
    want = naive_nce(b, positive, negatives, n, big_z, t)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    got.backward()
    want.backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("n_anchor,d,m,n,t", CASES)
def test_normalizer_matches_naive(n_anchor, d, m, n, t, shared) -> None:
    z, positive = _randn(n_anchor, d, seed=4), _randn(n_anchor, d, seed=5)
    negatives = _randn(m, d, seed=6) if shared else _randn(n_anchor, m, d, seed=6)
    got = instance_nce_normalizer(z, positive, negatives, num_items=n, temperature=t)
    assert float(got) == pytest.approx(naive_normalizer(z, positive, negatives, n, t), rel=1e-12)
    assert not got.requires_grad


def test_shared_noise_equals_the_same_noise_given_per_anchor() -> None:
    z, positive, noise = _randn(4, 5, seed=7), _randn(4, 5, seed=8), _randn(6, 5, seed=9)
    options = {"num_items": 100, "normalizer": 80.0, "temperature": 0.2}
    torch.testing.assert_close(instance_nce(z, positive, noise, **options),
                               instance_nce(z, positive, noise.expand(4, -1, -1), **options), atol=1e-14, rtol=0)


@pytest.mark.parametrize("m,n,t", [(1, 10, 0.07), (4096, 50000, 0.07), (7, 7, 1.0)])
def test_closed_form_when_every_score_is_equal(m, n, t) -> None:
    """Orthogonal anchors: every score is 0, the estimated Z is n, P = 1/n, h = 1/(1 + m)."""
    z = torch.eye(2, 8, dtype=torch.float64)
    positive = torch.eye(8, dtype=torch.float64)[2:4]
    negatives = torch.eye(8, dtype=torch.float64)[4:5].expand(m, -1)
    big_z = instance_nce_normalizer(z, positive, negatives, num_items=n, temperature=t)
    assert float(big_z) == pytest.approx(n, rel=1e-12)
    loss = instance_nce(z, positive, negatives, num_items=n, normalizer=float(big_z), temperature=t)
    assert float(loss) == pytest.approx(math.log(1 + m) + m * math.log((1 + m) / m), rel=1e-12)


def test_softmax_matches_naive_value_and_gradient() -> None:
    z, bank = _randn(5, 4, seed=10), _randn(9, 4, seed=11)
    targets = torch.tensor([0, 3, 8, 3, 5])
    a, b = z.clone().requires_grad_(), z.clone().requires_grad_()
    got, want = instance_softmax(a, bank, targets, temperature=0.07), naive_softmax(b, bank, targets, 0.07)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    got.backward()
    want.backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-10, rtol=1e-8)


def test_bank_entries_receive_no_gradient() -> None:
    z = _randn(3, 4, seed=12).requires_grad_()
    positive, negatives, bank = (_randn(3, 4, seed=13).requires_grad_(), _randn(5, 4, seed=14).requires_grad_(),
                                 _randn(6, 4, seed=15).requires_grad_())
    (instance_nce(z, positive, negatives, num_items=6, normalizer=6.0)
     + instance_softmax(z, bank, torch.tensor([0, 1, 2]))).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert positive.grad is None and negatives.grad is None and bank.grad is None


def test_closer_noise_raises_the_nce_loss() -> None:
    z, positive = _randn(4, 3, seed=16), _randn(4, 3, seed=17)
    options = {"num_items": 50, "normalizer": 50.0}
    assert instance_nce(z, positive, z[:2] + 0.01, **options) > instance_nce(z, positive, -z[:2], **options)


def test_float32_inputs_under_bf16_autocast_stay_float32() -> None:
    z, positive, noise = _randn(4, 5, seed=18).float(), _randn(4, 5, seed=19).float(), _randn(6, 5, seed=20).float()
    plain = instance_nce(z, positive, noise, num_items=20, normalizer=20.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = instance_nce(z, positive, noise, num_items=20, normalizer=20.0)
    assert auto.dtype == torch.float32
    torch.testing.assert_close(auto, plain)


@pytest.mark.parametrize("kwargs,name", [
    ({"positive": torch.zeros(3, 4)}, "positive"),
    ({"negatives": torch.zeros(5, 3)}, "negatives"),
    ({"negatives": torch.zeros(2, 5, 4)}, "negatives"),
    ({"negatives": torch.zeros(0, 4)}, "negatives"),
    ({"negatives": torch.zeros(5, 4, dtype=torch.long)}, "negatives"),
    ({"num_items": 0}, "num_items"),
    ({"num_items": 2.5}, "num_items"),
    ({"normalizer": 0.0}, "normalizer"),
    ({"normalizer": float("nan")}, "normalizer"),
    ({"temperature": 0.0}, "temperature"),
])
def test_bad_nce_arguments_name_the_argument(kwargs, name) -> None:
    args = {"z": torch.randn(4, 4), "positive": torch.randn(4, 4), "negatives": torch.randn(5, 4), "num_items": 10,
            "normalizer": 10.0, "temperature": 0.07, **kwargs}
    z, positive, negatives = args.pop("z"), args.pop("positive"), args.pop("negatives")
    with pytest.raises(ValueError, match=name):
        instance_nce(z, positive, negatives, **args)


def test_non_finite_bank_is_refused() -> None:
    bad = torch.randn(5, 4)
    bad[1, 2] = float("nan")
    with pytest.raises(NonFiniteEmbeddingError, match="negatives"):
        instance_nce(torch.randn(4, 4), torch.randn(4, 4), bad, num_items=10, normalizer=10.0)


@pytest.mark.parametrize("bank,targets,name", [
    (torch.randn(1, 4), torch.tensor([0, 0, 0]), "bank"),
    (torch.randn(6, 3), torch.tensor([0, 1, 2]), "bank"),
    (torch.randn(6, 4), torch.tensor([0, 1]), "targets"),
    (torch.randn(6, 4), torch.tensor([0.0, 1.0, 2.0]), "targets"),
    (torch.randn(6, 4), torch.tensor([0, 1, 6]), "targets"),
    (torch.randn(6, 4), torch.tensor([0, -1, 2]), "targets"),
])
def test_bad_softmax_arguments_name_the_argument(bank, targets, name) -> None:
    with pytest.raises(ValueError, match=name):
        instance_softmax(torch.randn(3, 4), bank, targets)
