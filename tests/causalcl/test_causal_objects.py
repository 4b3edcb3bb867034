"""causalcl.causal: BackdoorAdjustment by hand, MetaSemanticRegularizer, StyleIntervention."""

from __future__ import annotations

import math

import pytest
import torch

from causalcl.causal import BackdoorAdjustment, MetaSemanticRegularizer, StyleIntervention


def _by_hand(conditionals: torch.Tensor, prior: list[float]) -> torch.Tensor:
    flat = conditionals.reshape(-1, conditionals.shape[-1])
    out = torch.zeros(flat.shape[0], dtype=torch.float64)
    for r in range(flat.shape[0]):
        for t in range(flat.shape[1]):
            out[r] += float(flat[r, t]) * prior[t]
    return out.reshape(conditionals.shape[:-1])


# ---------------------------------------------------------------- BackdoorAdjustment
def test_uniform_prior_is_the_mean_over_strata() -> None:
    c = torch.rand(4, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    got = BackdoorAdjustment()(c)
    assert got.shape == (4, 3)
    torch.testing.assert_close(got, _by_hand(c, [0.2] * 5), atol=1e-12, rtol=0)


def test_non_uniform_prior_by_hand() -> None:
    prior = [0.1, 0.6, 0.0, 0.3]
    c = torch.tensor([[0.9, 0.2, 0.5, 0.4], [0.1, 1.0, 0.7, 0.0]], dtype=torch.float64)
    got = BackdoorAdjustment(prior)(c)
    torch.testing.assert_close(got, torch.tensor([0.09 + 0.12 + 0.12, 0.01 + 0.6], dtype=torch.float64))
    torch.testing.assert_close(got, _by_hand(c, prior), atol=1e-12, rtol=0)
    # the adjustment differs from the observational average under another weighting
    assert not torch.allclose(got, BackdoorAdjustment()(c))


def test_log_prob_matches_the_log_of_the_adjustment_and_is_stable() -> None:
    prior = [0.25, 0.25, 0.5]
    c = torch.rand(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.98 + 0.01
    adj = BackdoorAdjustment(prior)
    torch.testing.assert_close(adj.log_prob(c.log()), adj(c).log(), atol=1e-12, rtol=0)
    torch.testing.assert_close(adj.log_call(c.log()), adj(c).log(), atol=1e-12, rtol=0)
    torch.testing.assert_close(BackdoorAdjustment().log_prob(c.log()), c.mean(-1).log(), atol=1e-12, rtol=0)
    # log-probabilities far below exp's float range: exp() would give 0, log 0 = -inf
    tiny = torch.tensor([[-2000.0, -2001.0, -1e9]], dtype=torch.float64)
    want = -2000.0 + math.log(0.25 + 0.25 * math.exp(-1.0))
    assert adj.log_prob(tiny).item() == pytest.approx(want, abs=1e-9)
    # strata with zero prior drop out
    z = BackdoorAdjustment([0.5, 0.0, 0.5]).log_prob(torch.tensor([-1.0, 0.0, -1.0], dtype=torch.float64))
    assert z.item() == pytest.approx(-1.0, abs=1e-12)


def test_log_prob_gradient() -> None:
    x = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    adj = BackdoorAdjustment([0.1, 0.2, 0.3, 0.4])
    assert torch.autograd.gradcheck(lambda v: adj.log_prob(torch.nn.functional.logsigmoid(v)), (x.requires_grad_(),))


@pytest.mark.parametrize(
    "prior,match",
    [([0.5, 0.6], "sum to 1"), ([1.2, -0.2], "non-negative"), ([], "non-empty"), ([[0.5, 0.5]], "1-D"),
     ([float("nan"), 1.0], "finite"), ([0.3, 0.3], "sum to 1")],
)
def test_bad_priors_raise(prior: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BackdoorAdjustment(prior)


def test_bad_conditionals_raise() -> None:
    adj = BackdoorAdjustment([0.5, 0.5])
    with pytest.raises(ValueError, match="T = 2"):
        adj(torch.rand(3, 4))
    with pytest.raises(ValueError, match="T = 2"):
        adj.log_prob(-torch.rand(3, 3))
    with pytest.raises(ValueError, match="probabilities"):
        adj(torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="log-probabilities"):
        adj.log_prob(torch.tensor([0.5, -1.0]))
    with pytest.raises(ValueError, match="NaN"):
        adj(torch.tensor([float("nan"), 0.5]))
    with pytest.raises(ValueError, match="floating"):
        adj(torch.tensor([1, 0]))
    assert "uniform" in repr(BackdoorAdjustment()) and BackdoorAdjustment([1.0]).num_strata == 1


# ---------------------------------------------------------------- MetaSemanticRegularizer
def test_msr_batch_strata_shape_norm_and_detached_input() -> None:
    torch.manual_seed(0)
    msr = MetaSemanticRegularizer(12, 7, hidden=16)
    h = torch.randn(5, 12, requires_grad=True)
    a = msr(h)
    assert a.shape == (5, 7)
    torch.testing.assert_close(a.norm(dim=1), torch.full((5,), math.sqrt(7)))
    assert (a > 0).all()  # sigmoid before the normalisation
    a.sum().backward()
    assert h.grad is None  # the representation is detached
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in msr.parameters())
    # one stratum per sample: its own representation decides it
    torch.testing.assert_close(msr(h[2:3])[0], a[2].detach())


def test_msr_learned_strata() -> None:
    torch.manual_seed(0)
    msr = MetaSemanticRegularizer(12, 6, strata="learned", n_strata=4)
    a = msr(torch.randn(9, 12))
    assert a.shape == (4, 6) and msr.n_strata == 4
    torch.testing.assert_close(a.norm(dim=1), torch.full((4,), math.sqrt(6)))
    torch.testing.assert_close(msr(), a)  # input ignored
    a[:, 0].sum().backward()
    assert msr.bank.grad is not None and msr.bank.grad.abs().sum() > 0
    assert "learned" in repr(msr)


def test_msr_bad_arguments() -> None:
    with pytest.raises(ValueError, match="strata"):
        MetaSemanticRegularizer(4, 4, strata="global")
    with pytest.raises(ValueError, match="n_strata"):
        MetaSemanticRegularizer(4, 4, strata="learned")
    with pytest.raises(ValueError, match="n_strata"):
        MetaSemanticRegularizer(4, 4, n_strata=3)
    with pytest.raises(ValueError, match="out_dim"):
        MetaSemanticRegularizer(4, 0)
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        MetaSemanticRegularizer(4, 4)(torch.randn(3, 5))


# ---------------------------------------------------------------- StyleIntervention
def test_pairs_are_ordered_and_exclude_self_by_default() -> None:
    assert StyleIntervention.pairs([0, 1, 2]) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    assert StyleIntervention.pairs("ab", include_self=True) == [("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")]
    a, b = StyleIntervention("a", lambda x, g: x), StyleIntervention("b", lambda x, g: x)
    assert StyleIntervention.pairs([a, b]) == [(a, b), (b, a)]


def _flip() -> StyleIntervention:
    def sample(n: int, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
        return (torch.rand(n, 1, generator=gen) < 0.5).float().to(device)

    def apply(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return torch.where(a.view(-1, 1, 1, 1) > 0, x.flip(-1), x)

    return StyleIntervention("hflip", sample=sample, apply=apply, parameters={"p": 0.5})


def test_parametric_intervention_draws_and_applies_explicit_values() -> None:
    flip = _flip()
    x = torch.rand(8, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    a = flip.sample(8, torch.Generator().manual_seed(4))
    assert flip.is_parametric and a.shape == (8, 1)
    y = flip.apply(x, a)
    for i in range(8):
        torch.testing.assert_close(y[i], x[i].flip(-1) if a[i, 0] > 0 else x[i])
    # __call__ = apply(sample) with the same generator stream
    torch.testing.assert_close(flip(x, torch.Generator().manual_seed(4)), y)
    assert "do(S=hflip)" in repr(flip) and "p=0.5" in repr(flip)


def test_opaque_intervention_and_bad_arguments() -> None:
    noise = StyleIntervention("noise", lambda x, g: x + torch.rand(x.shape, generator=g))
    x = torch.zeros(2, 3, 4, 4)
    torch.testing.assert_close(noise(x, torch.Generator().manual_seed(0)), noise(x, torch.Generator().manual_seed(0)))
    assert not noise.is_parametric
    with pytest.raises(ValueError, match="opaque"):
        noise.sample(2)
    with pytest.raises(ValueError, match="sample"):
        StyleIntervention("x", sample=lambda n, g, d: torch.zeros(n, 1))
    with pytest.raises(ValueError, match="not both"):
        StyleIntervention("x", lambda x, g: x, apply=lambda x, a: x)
    with pytest.raises(ValueError, match="name"):
        StyleIntervention("", lambda x, g: x)
    with pytest.raises(ValueError, match="one style value per image"):
        _flip().apply(x, torch.zeros(3, 1))
