import pytest
import torch
from method_checks import assert_state_round_trip

from causalcl.losses import negative_cosine
from causalcl.methods import METHODS, SimSiam
from causalcl.models import build_backbone


def _method(seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("projector", (32, 32, 16))
    return METHODS["simsiam"](build_backbone("convnet_small", channels_last=False), **kw)


def _views():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 16, 16, generator=g)
    return [x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)]


def _grads(method):
    return [p.grad.clone() for p in method.parameters()]


def test_registered_and_bottleneck_predictor():
    assert METHODS["simsiam"] is SimSiam and SimSiam.name == "simsiam"
    method = _method()
    assert method.predictor.widths == [16, 4, 16]
    assert _method(predictor_hidden=8).predictor.widths == [16, 8, 16]
    assert isinstance(method.projector[-1], torch.nn.BatchNorm1d)  # BN on the projector output


def test_forward_and_gradients_equal_the_stop_gradient_loss():
    method = _method()
    views = _views()
    out = method(views)
    out["loss"].backward()
    got = _grads(method)
    method.zero_grad()
    z = method.projector(method.backbone(torch.cat(views)))
    p1, p2 = method.predictor(z).chunk(2)
    z1, z2 = z.chunk(2)
    want = 0.5 * negative_cosine(p1, z2.detach()) + 0.5 * negative_cosine(p2, z1.detach())
    torch.testing.assert_close(out["loss"], want)
    torch.testing.assert_close(torch.cat(out["embeddings"]), z)
    want.backward(retain_graph=True)
    for a, b in zip(got, _grads(method), strict=True):
        torch.testing.assert_close(a, b)
    method.zero_grad()  # without the stop-gradient the gradients differ: the test can fail
    (0.5 * negative_cosine(p1, z2, stop_gradient=False) + 0.5 * negative_cosine(p2, z1, stop_gradient=False)).backward()
    assert not all(torch.allclose(a, b) for a, b in zip(got, _grads(method), strict=True))


def test_adam_steps_lower_the_loss():
    method = _method()
    method.train()
    views = _views()
    opt = torch.optim.Adam(method.optim_parameters(), lr=1e-3)
    first = float(method(views)["loss"].detach())
    for step in range(1, 9):
        out = method(views)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        method.on_step_end(step, 8)
    assert float(method(views)["loss"].detach()) < first


def test_checkpoint_round_trip(tmp_path):
    method = _method()
    method(_views())  # move the BN running statistics
    assert_state_round_trip(method, _method(seed=5), _views(), tmp_path)


def test_bad_options():
    with pytest.raises(ValueError, match="predictor_hidden"):
        _method(predictor_hidden=0)
    with pytest.raises(ValueError, match="projector"):
        _method(projector=())
    with pytest.raises(ValueError, match="views"):
        _method()([torch.rand(4, 3, 16, 16)])


# --- BatchNorm in the projector as explicit options; the 3-layer CIFAR recipe (issue 15) -----------------
def test_projector_batch_norm_options():
    def bns(method):
        return [m for m in method.projector.modules() if isinstance(m, torch.nn.BatchNorm1d)]

    assert len(bns(_method())) == 3  # hidden, hidden, output (as the paper)
    assert not bns(_method())[-1].affine
    no_hidden = _method(projector_bn=False)
    assert len(bns(no_hidden)) == 1 and isinstance(no_hidden.projector[-1], torch.nn.BatchNorm1d)
    no_out = _method(projector_output_bn=False)
    assert len(bns(no_out)) == 2 and isinstance(no_out.projector[-1], torch.nn.Linear)
    out = no_out(_views())
    assert torch.isfinite(out["loss"])


def test_cifar_recipe_has_the_three_layer_projector():
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[2] / "assets/configs/simsiam_cifar10.yaml"
    method = yaml.safe_load(path.read_text())["method"]
    assert method["projector"] == [2048, 2048, 2048] and method["predictor_hidden"] == 512
    assert method["projector_bn"] and method["projector_output_bn"]
