import pytest
import torch
import torch.nn.functional as F
from method_checks import assert_loss_drops, assert_state_round_trip

from causalcl.losses import distance_polarization, lmcl_loss
from causalcl.methods import ICLMSR, LMCL, METHODS
from causalcl.models import build_backbone


def _method(seed=0, **kw):
    torch.manual_seed(seed)
    return METHODS["lmcl"](build_backbone("convnet_small", channels_last=False), projector=(32, 16), **kw)


def _views():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 16, 16, generator=g)
    return [x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)]


def test_registered():
    assert METHODS["lmcl"] is LMCL and LMCL.name == "lmcl"


@pytest.mark.parametrize("tau_plus", [0.0, 0.1])
def test_forward_equals_lmcl_loss_on_projections(tau_plus):
    method = _method(temperature=0.3, tau_plus=tau_plus, delta_plus=0.1, delta_minus=0.6, lam=4.0)
    method.eval()
    views = _views()
    out = method(views)
    z1, z2 = method.projector(method.backbone(torch.cat(views))).chunk(2)
    want = lmcl_loss(z1, z2, temperature=0.3, tau_plus=tau_plus, delta_plus=0.1, delta_minus=0.6, weight=4.0)
    torch.testing.assert_close(out["loss"], want)
    torch.testing.assert_close(out["polarization"], distance_polarization(z1, z2, 0.1, 0.6))
    torch.testing.assert_close(out["loss"], out["contrastive"] + 4.0 * out["polarization"])
    # gap_fraction: the share of the 2N(2N − 1) ordered pairs whose distance lies in (δ⁺, δ⁻), by a loop
    z = F.normalize(torch.cat([z1, z2]).detach(), dim=1)
    inside = sum(0.1 < float((1 - z[i] @ z[k]) / 2) < 0.6 for i in range(16) for k in range(16) if i != k)
    assert float(out["gap_fraction"]) == pytest.approx(inside / (16 * 15))


def test_a_few_steps_lower_the_loss():
    method = _method()
    views = _views()
    assert_loss_drops(method, views, steps=8, lr=1e-3)


def test_checkpoint_round_trip(tmp_path):
    method = _method()
    assert_state_round_trip(method, _method(seed=3), _views(), tmp_path)


def test_icl_msr_takes_lmcl_as_its_base():
    torch.manual_seed(0)
    wrapper = ICLMSR(build_backbone("convnet_small", channels_last=False), base="lmcl",
                     base_options={"projector": (32, 16)}, msr_hidden=16)
    assert isinstance(wrapper.base, LMCL) and wrapper.temperature == 0.5  # L_msr's τ: LMCL's default
    views = _views()
    out = wrapper(views)
    assert torch.isfinite(out["loss"]) and {"msr_loss"} <= set(out)
    out["loss"].backward()
    terms = wrapper.meta_step(views, lr=0.01)
    assert terms["meta_lookahead_grad_norm"] > 0 and all(torch.isfinite(torch.tensor(v)) for v in terms.values())


@pytest.mark.parametrize("kwargs,name", [
    ({"temperature": 0.0}, "temperature"), ({"tau_plus": 1.0}, "tau_plus"), ({"tau_plus": -0.1}, "tau_plus"),
    ({"delta_plus": -0.1}, "delta_plus"), ({"delta_minus": 1.1}, "delta_minus"),
    ({"delta_plus": 0.6, "delta_minus": 0.5}, "delta_minus"), ({"lam": -1.0}, "lam"), ({"projector": ()}, "projector"),
])
def test_bad_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LMCL(build_backbone("convnet_small", channels_last=False), **kwargs)


def test_bad_views():
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(4, 3, 16, 16)])
