"""SIMCLR_LOSSES / get_simclr_loss and the package's public names."""

from __future__ import annotations

import pytest
import torch

import causalcl.losses as losses
from causalcl.losses import SIMCLR_LOSSES, get_simclr_loss

NAMES = ["infonce", "debiased", "hard", "dcl", "dclw", "hard_threshold", "align_uniform", "triplet"]


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(6, 5, generator=g)
    return z1, z1 + 0.5 * torch.randn(6, 5, generator=g)


def test_registry_names_and_targets() -> None:
    assert isinstance(SIMCLR_LOSSES, dict)
    assert sorted(SIMCLR_LOSSES) == sorted(NAMES)
    assert SIMCLR_LOSSES["infonce"] is losses.info_nce
    assert SIMCLR_LOSSES["debiased"] is losses.debiased_info_nce
    assert SIMCLR_LOSSES["hard"] is losses.hard_info_nce
    assert SIMCLR_LOSSES["dcl"] is losses.decoupled_info_nce
    assert SIMCLR_LOSSES["hard_threshold"] is losses.hard_threshold_info_nce
    assert SIMCLR_LOSSES["align_uniform"] is losses.align_uniform
    assert SIMCLR_LOSSES["triplet"] is losses.triplet


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_is_a_differentiable_scalar(name: str) -> None:
    z1, z2 = _pair()
    z1.requires_grad_()
    loss = get_simclr_loss(name)(z1, z2)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    assert z1.grad is not None and torch.isfinite(z1.grad).all() and z1.grad.abs().sum() > 0


def test_dclw_defaults_to_sigma_half_and_accepts_options() -> None:
    z1, z2 = _pair()
    dclw = get_simclr_loss("dclw")
    torch.testing.assert_close(
        dclw(z1, z2), losses.decoupled_info_nce(z1, z2, weight_sigma=0.5), atol=0, rtol=0
    )
    torch.testing.assert_close(
        dclw(z1, z2, temperature=0.2, weight_sigma=1.0),
        losses.decoupled_info_nce(z1, z2, temperature=0.2, weight_sigma=1.0),
        atol=0,
        rtol=0,
    )
    assert not torch.allclose(dclw(z1, z2), get_simclr_loss("dcl")(z1, z2))


def test_options_are_forwarded() -> None:
    z1, z2 = _pair()
    torch.testing.assert_close(
        get_simclr_loss("hard")(z1, z2, temperature=0.3, tau_plus=0.05, beta=2.0),
        losses.hard_info_nce(z1, z2, temperature=0.3, tau_plus=0.05, beta=2.0),
        atol=0,
        rtol=0,
    )


@pytest.mark.parametrize("bad", ["nt_xent", "", "InfoNCE", None])
def test_unknown_name_lists_the_valid_ones(bad: object) -> None:
    with pytest.raises(ValueError, match="name") as info:
        get_simclr_loss(bad)  # type: ignore[arg-type]
    for name in NAMES:
        assert name in str(info.value)


def test_public_names() -> None:
    assert set(losses.__all__) == {
        "SIMCLR_LOSSES",
        "NonFiniteEmbeddingError",
        "get_simclr_loss",
        "info_nce",
        "info_nce_queue",
        "byol_loss",
        "negative_cosine",
        "cross_view_info_nce",
        "ressl_loss",
        "debiased_info_nce",
        "hard_info_nce",
        "decoupled_info_nce",
        "decoupled_weighted_info_nce",
        "hard_threshold_info_nce",
        "alignment",
        "uniformity",
        "align_uniform",
        "triplet",
        "oucl",
        "oucl_from_scores",
        "pair_scores",
        "margin_injection",
        "barlow_twins_loss",
        "barlow_twins_terms",
        "cross_correlation",
        "sinkhorn_knopp",
        "swav_loss",
        "whiten",
        "wmse_loss",
        "WhiteningError",
        "relic_kl",
        "relic_logits",
        "relic_loss",
        "relic_terms",
        "looc_loss",
        "looc_space_loss",
        "msr_loss",
        "msr_log_conditionals",
        "uniformity_of_strata",
        "VARIANT_LOSSES",
        "queue_variant_loss",
        "cross_view_variant_loss",
        "variant_options",
        "prototype_log_probs",
        "taco_loss",
        "taco_terms",
        "dgi_loss",
        "dgi_readout",
        "dgi_scores",
        "nnclr_loss",
        "nearest_neighbours",
        "distance_polarization",
        "lmcl_loss",
        "rotation_loss",
        "cpc_loss",
        "dim_loss",
        "dim_scores",
        "hsic",
        "kernel_matrix",
        "ssl_hsic_loss",
        "ssl_hsic_terms",
        "instance_nce",
        "instance_nce_normalizer",
        "instance_softmax",
        "clsa_ddm_loss",
        "deferred_value_checks",
        "value_checks_deferred",
    }
    for name in losses.__all__:
        assert hasattr(losses, name)
        obj = getattr(losses, name)
        if callable(obj):
            assert obj.__doc__ and len(obj.__doc__) > 100, name
