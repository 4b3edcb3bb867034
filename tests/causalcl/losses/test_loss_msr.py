import math

import pytest
import torch
from loss_testing import views

from causalcl.causal import BackdoorAdjustment
from causalcl.losses import NonFiniteEmbeddingError, info_nce, msr_log_conditionals, msr_loss, uniformity_of_strata


def _cos(a, b):
    return float((a * b).sum() / torch.sqrt((a * a).sum() * (b * b).sum()))


def ref_log_conditionals(z1, z2, strata, tau, negatives="both_views"):
    """log P(Y | X, a_t) written from the formula with explicit loops (anchor order cat([z1, z2]))."""
    n, z = z1.shape[0], [z1, z2]
    rows = []
    for j in range(2):
        for i in range(n):
            anchor, positive = z[j][i], z[1 - j][i]
            views_l = range(2) if negatives == "both_views" else [1 - j]
            neg = sum(math.exp(_cos(anchor, z[lv][k]) / tau) for k in range(n) if k != i for lv in views_l)
            row = []
            for a in strata:
                s = math.exp(_cos(anchor, a * positive) / tau)
                row.append(math.log(s / (s + neg)))
            rows.append(row)
    return torch.tensor(rows, dtype=torch.float64)


def ref_msr(z1, z2, strata, tau, negatives="both_views", prior=None):
    log_c = ref_log_conditionals(z1, z2, strata, tau, negatives)
    t = strata.shape[0]
    w = [1.0 / t] * t if prior is None else prior
    total = 0.0
    for row in log_c.tolist():
        total += -math.log(sum(math.exp(lc) * wt for lc, wt in zip(row, w, strict=True)))
    return total / log_c.shape[0]


def ref_uniformity(strata, t, include_diagonal=True):
    a = [s / torch.sqrt((s * s).sum()) for s in strata]
    total = 0.0
    for i in range(len(a)):
        for j in range(len(a)):
            if i != j or include_diagonal:
                total += math.exp(2 * t * float((a[i] * a[j]).sum()) - 2 * t)
    return math.log(total)


def _strata(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g, dtype=torch.float64) * 2


@pytest.mark.parametrize("negatives", ["both_views", "other_view"])
@pytest.mark.parametrize(("n", "d", "t", "tau"), [(4, 5, 3, 0.5), (3, 2, 6, 0.2), (5, 4, 1, 1.0)])
def test_log_conditionals_and_loss_match_loops(negatives, n, d, t, tau):
    z1, z2 = views(n, d, seed=n * 10 + t)
    a = _strata(t, d, seed=t)
    got = msr_log_conditionals(z1, z2, a, tau, negatives)
    torch.testing.assert_close(got, ref_log_conditionals(z1, z2, a, tau, negatives), atol=1e-10, rtol=1e-10)
    loss = msr_loss(z1, z2, a, tau, negatives)
    torch.testing.assert_close(loss, torch.tensor(ref_msr(z1, z2, a, tau, negatives), dtype=torch.float64),
                               atol=1e-10, rtol=1e-10)


def test_non_uniform_prior_through_backdoor_adjustment():
    z1, z2 = views(4, 3, seed=7)
    a = _strata(3, 3, seed=2)
    prior = [0.2, 0.5, 0.3]
    got = msr_loss(z1, z2, a, 0.5, adjustment=BackdoorAdjustment(prior))
    torch.testing.assert_close(got, torch.tensor(ref_msr(z1, z2, a, 0.5, prior=prior), dtype=torch.float64))


def test_all_ones_strata_reduce_to_info_nce():
    z1, z2 = views(6, 4, seed=3)
    ones = torch.ones(5, 4, dtype=torch.float64)
    torch.testing.assert_close(msr_loss(z1, z2, ones, 0.3), info_nce(z1, z2, temperature=0.3))


def test_strata_scale_invariance_and_jensen():
    z1, z2 = views(5, 4, seed=4)
    a = _strata(4, 4, seed=5)
    torch.testing.assert_close(msr_loss(z1, z2, a, 0.5), msr_loss(z1, z2, 3.7 * a, 0.5))
    # -log of the average over strata <= average over strata of -log (Jensen), strictly here
    per_stratum = -msr_log_conditionals(z1, z2, a, 0.5).mean()
    assert float(msr_loss(z1, z2, a, 0.5)) < float(per_stratum)


@pytest.mark.parametrize("negatives", ["both_views", "other_view"])
def test_gradients_match_reference(negatives):
    z1, z2 = views(4, 3, seed=11)
    a = _strata(3, 3, seed=12)

    def torch_ref(x1, x2, s):  # the loop formula in differentiable torch ops
        n, z, total = x1.shape[0], [x1, x2], 0.0
        for j in range(2):
            for i in range(n):
                anc, pos = z[j][i], z[1 - j][i]
                cos = torch.nn.functional.cosine_similarity
                views_l = range(2) if negatives == "both_views" else [1 - j]
                neg = sum(torch.exp(cos(anc, z[lv][k], dim=0) / 0.5) for k in range(n) if k != i for lv in views_l)
                p = 0.0
                for st in s:
                    e = torch.exp(cos(anc, st * pos, dim=0) / 0.5)
                    p = p + e / (e + neg) / s.shape[0]
                total = total - torch.log(p)
        return total / (2 * n)

    inputs = [x.clone().requires_grad_() for x in (z1, z2, a)]
    refs = [x.clone().requires_grad_() for x in (z1, z2, a)]
    got, want = msr_loss(*inputs, 0.5, negatives), torch_ref(*refs)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    got.backward()
    want.backward()
    for x, y in zip(inputs, refs, strict=True):
        torch.testing.assert_close(x.grad, y.grad, atol=1e-10, rtol=1e-8)
    assert torch.autograd.gradcheck(lambda x1, x2, s: msr_loss(x1, x2, s, 0.5, negatives),
                                    [x.detach().requires_grad_() for x in (z1, z2, a)])


@pytest.mark.parametrize("include_diagonal", [True, False])
@pytest.mark.parametrize(("n", "t"), [(4, 2.0), (6, 0.5), (2, 3.0)])
def test_uniformity_of_strata_matches_loop(include_diagonal, n, t):
    a = _strata(n, 5, seed=n) - 1.0
    got = uniformity_of_strata(a, t, include_diagonal)
    torch.testing.assert_close(got, torch.tensor(ref_uniformity(a, t, include_diagonal), dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda s: uniformity_of_strata(s, t, include_diagonal), [a.requires_grad_()])


def test_uniformity_of_strata_edge_cases():
    one = torch.randn(1, 4, dtype=torch.float64)
    assert float(uniformity_of_strata(one)) == pytest.approx(0.0)  # log(exp(0))
    same = torch.ones(3, 4, dtype=torch.float64)
    assert float(uniformity_of_strata(same)) == pytest.approx(math.log(9))  # every pair at distance 0
    spread = torch.eye(3, 4, dtype=torch.float64)
    assert float(uniformity_of_strata(spread)) < float(uniformity_of_strata(same))


def test_validation():
    z1, z2 = views(4, 3, seed=1)
    a = _strata(2, 3, seed=1)
    with pytest.raises(ValueError, match="strata"):
        msr_loss(z1, z2, a[:, :2], 0.5)
    with pytest.raises(ValueError, match="strata"):
        msr_loss(z1, z2, a.float(), 0.5)
    with pytest.raises(ValueError, match="strata"):
        msr_loss(z1, z2, a[0], 0.5)
    with pytest.raises(NonFiniteEmbeddingError, match="strata"):
        msr_loss(z1, z2, a * float("nan"), 0.5)
    with pytest.raises(ValueError, match="temperature"):
        msr_loss(z1, z2, a, 0.0)
    with pytest.raises(ValueError, match="negatives"):
        msr_loss(z1, z2, a, 0.5, negatives="same_view")
    with pytest.raises(ValueError, match="z2"):
        msr_loss(z1, z2[:3], a, 0.5)
    with pytest.raises(ValueError, match="t must"):
        uniformity_of_strata(a, t=0)
    with pytest.raises(ValueError, match="strata"):
        uniformity_of_strata(a[:1], include_diagonal=False)
