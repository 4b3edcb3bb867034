"""TaCo's summed pairwise NT-Xent plus pretext cross-entropies against a loop-by-loop reference."""

from __future__ import annotations

import math

import pytest
import torch
from loss_testing import unit

from causalcl.losses import info_nce, taco_loss, taco_terms


def naive_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> torch.Tensor:
    n = z1.shape[0]
    e = [unit(z1[i]) for i in range(n)] + [unit(z2[i]) for i in range(n)]
    total = torch.zeros((), dtype=torch.float64)
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        den = sum(torch.exp((e[i] * e[k]).sum() / t) for k in range(2 * n) if k != i)
        total = total - torch.log(torch.exp((e[i] * e[p]).sum() / t) / den)
    return total / (2 * n)


def naive_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    total = torch.zeros((), dtype=torch.float64)
    for i in range(logits.shape[0]):
        den = sum(torch.exp(logits[i, c]) for c in range(logits.shape[1]))
        total = total - torch.log(torch.exp(logits[i, int(targets[i])]) / den)
    return total / logits.shape[0]


def naive_taco(anchors, positives, logits, targets, t, lam):
    contrast = sum(naive_nt_xent(a, p, t) for a, p in zip(anchors, positives, strict=True))
    pretext = sum((naive_cross_entropy(lg, tg) for lg, tg in zip(logits, targets, strict=True)),
                  torch.zeros((), dtype=torch.float64))
    return contrast + lam * pretext


def _inputs(n: int, dims: list[int], classes: list[int], seed: int):
    g = torch.Generator().manual_seed(seed)
    anchors = [torch.randn(n, d, generator=g, dtype=torch.float64) for d in dims]
    positives = [a + 0.6 * torch.randn(a.shape, generator=g, dtype=torch.float64) for a in anchors]
    logits = [torch.randn(n, c, generator=g, dtype=torch.float64) for c in classes]
    targets = [torch.randint(c, (n,), generator=g) for c in classes]
    return anchors, positives, logits, targets


CASES = [(3, [4, 4, 4], [2, 3, 4], 0.5, 1.0), (5, [3, 6], [2, 2], 0.1, 0.3), (2, [5], [3], 1.0, 2.0),
         (4, [2, 3, 4, 5, 6], [2, 3, 4, 2, 2], 0.2, 0.0)]


@pytest.mark.parametrize("n,dims,classes,t,lam", CASES)
def test_matches_naive_value_and_gradient(n, dims, classes, t, lam):
    anchors, positives, logits, targets = _inputs(n, dims, classes, seed=n + len(dims))
    leaves = [x.clone().requires_grad_() for x in anchors + positives + logits]
    ref = [x.clone().requires_grad_() for x in anchors + positives + logits]
    m, k = len(dims), len(classes)

    def split(xs):
        return xs[:m], xs[m:2 * m], xs[2 * m:2 * m + k]

    a, p, lg = split(leaves)
    got = taco_loss(a, p, lg, targets, temperature=t, pretext_weight=lam)
    a, p, lg = split(ref)
    want = naive_taco(a, p, lg, targets, t, lam)
    torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
    got.backward()
    want.backward()
    for x, y in zip(leaves, ref, strict=True):
        torch.testing.assert_close(x.grad, y.grad, atol=1e-9, rtol=1e-7)


def test_terms_add_up_and_the_pair_sum_is_a_sum_of_info_nce():
    anchors, positives, logits, targets = _inputs(4, [3, 3], [2, 5], seed=1)
    contrast, pretext = taco_terms(anchors, positives, logits, targets, temperature=0.3)
    pairs = info_nce(anchors[0], positives[0], 0.3) + info_nce(anchors[1], positives[1], 0.3)
    torch.testing.assert_close(contrast, pairs)
    torch.testing.assert_close(taco_loss(anchors, positives, logits, targets, 0.3, 0.5), contrast + 0.5 * pretext)
    no_task = taco_terms(anchors, positives, temperature=0.3)
    torch.testing.assert_close(no_task[0], contrast)
    assert float(no_task[1]) == 0.0


def test_closed_form_uniform_logits():
    anchors, positives, _, _ = _inputs(3, [4], [3], seed=2)
    logits = [torch.zeros(3, 3, dtype=torch.float64), torch.zeros(3, 2, dtype=torch.float64)]
    targets = [torch.tensor([0, 1, 2]), torch.tensor([1, 0, 1])]
    _, pretext = taco_terms(anchors, positives, logits, targets)
    assert float(pretext) == pytest.approx(math.log(3) + math.log(2), abs=1e-12)


def test_gradcheck():
    anchors, positives, logits, targets = _inputs(3, [3, 3], [2, 3], seed=3)
    args = [x.requires_grad_() for x in anchors + positives + logits]
    assert torch.autograd.gradcheck(
        lambda a0, a1, p0, p1, l0, l1: taco_loss([a0, a1], [p0, p1], [l0, l1], targets, temperature=0.4), tuple(args))


def test_bad_inputs_name_the_argument():
    anchors, positives, logits, targets = _inputs(4, [3, 3], [2, 3], seed=4)
    with pytest.raises(ValueError, match="anchors"):
        taco_loss([], [])
    with pytest.raises(ValueError, match="anchors and positives"):
        taco_loss(anchors, positives[:1])
    with pytest.raises(ValueError, match=r"positives\[1\]"):
        taco_loss(anchors, [positives[0], positives[1][:3]])
    with pytest.raises(ValueError, match="pretext_logits"):
        taco_loss(anchors, positives, logits, targets[:1])
    with pytest.raises(ValueError, match=r"pretext_targets\[1\]"):
        taco_loss(anchors, positives, logits, [targets[0], torch.tensor([0, 1, 2, 3])])
    with pytest.raises(ValueError, match=r"pretext_targets\[0\]"):
        taco_loss(anchors, positives, logits, [targets[0].float(), targets[1]])
    with pytest.raises(ValueError, match=r"pretext_logits\[0\]"):
        taco_loss(anchors, positives, [logits[0][:3], logits[1]], targets)
    with pytest.raises(ValueError, match="temperature"):
        taco_loss(anchors, positives, temperature=0.0)
    with pytest.raises(ValueError, match="pretext_weight"):
        taco_loss(anchors, positives, pretext_weight=-1.0)
    with pytest.raises(ValueError, match=r"anchors\[0\]"):
        taco_loss([anchors[0] * float("nan"), anchors[1]], positives)
