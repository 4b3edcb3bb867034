import pytest
import torch
from method_checks import assert_state_round_trip

from causalcl.losses import ssl_hsic_terms
from causalcl.methods import METHODS, SSLHSIC
from causalcl.models import build_backbone


def _method(**kw):
    torch.manual_seed(0)
    kw.setdefault("projector", (32, 16))
    return METHODS["ssl_hsic"](build_backbone("convnet_small", channels_last=False), **kw)


def _views(m=2, n=8):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 3, 16, 16, generator=g)
    return [(x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1) for _ in range(m)]


def test_registered():
    assert METHODS["ssl_hsic"] is SSLHSIC and SSLHSIC.name == "ssl_hsic"


@pytest.mark.parametrize("options", [{}, {"kernel": "imq", "bandwidth": 0.5, "zz_estimator": "unbiased", "gamma": 1.0},
                                     {"num_views": 3}])
def test_forward_is_ssl_hsic_on_the_projections(options):
    method = _method(**options)
    method.eval()
    views = _views(m=method.num_views)
    out = method(views)
    z = method.projector(method.backbone(torch.cat(views))).chunk(method.num_views)
    loss, zy, zz = ssl_hsic_terms(list(z), method.gamma, kernel=method.kernel, bandwidth=method.bandwidth,
                                  zz_estimator=method.zz_estimator)
    torch.testing.assert_close(out["loss"], loss)
    torch.testing.assert_close(out["hsic_zy"], zy)
    torch.testing.assert_close(out["hsic_zz"], zz)
    assert len(out["embeddings"]) == method.num_views


@pytest.mark.parametrize("options", [{}, {"kernel": "linear"}])
def test_a_few_steps_lower_the_loss(options):
    method = _method(**options)
    views = _views()
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    first = float(method(views)["loss"].detach())
    for _ in range(8):
        opt.zero_grad()
        method(views)["loss"].backward()
        opt.step()
    assert float(method(views)["loss"].detach()) < first


def test_defaults_are_the_papers():
    method = _method()
    assert (method.gamma, method.kernel, method.bandwidth, method.zz_estimator, method.num_views) == (
        3.0, "gaussian", "median", "biased", 2)


def test_checkpoint_round_trip(tmp_path):
    method = _method()
    assert_state_round_trip(method, _method(), _views(), tmp_path)


@pytest.mark.parametrize("kwargs,name", [({"gamma": -1.0}, "gamma"), ({"gamma": float("nan")}, "gamma"),
                                         ({"kernel": "rbf"}, "kernel"), ({"bandwidth": "mean"}, "bandwidth"),
                                         ({"bandwidth": 0.0}, "bandwidth"), ({"zz_estimator": "exact"}, "zz_estimator"),
                                         ({"num_views": 1}, "num_views"), ({"num_views": 2.0}, "num_views"),
                                         ({"projector": ()}, "projector")])
def test_bad_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _method(**kwargs)


def test_bad_views():
    with pytest.raises(ValueError, match="views"):
        _method()(_views(m=1))
