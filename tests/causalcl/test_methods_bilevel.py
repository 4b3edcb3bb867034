"""The shared bilevel pieces: BatchNorm's fused forward-mode tangent, directional derivatives, stage-1 reuse."""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch import nn
from torch.func import functional_call, jvp

from causalcl.methods.bilevel import (
    Stage1Record,
    batch_norm_tangents,
    check_meta_grad,
    directional_derivative,
    stage1_gradients,
)


@pytest.mark.parametrize("shape", [(6, 4), (5, 3, 4, 4)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_tangent_equals_the_generic_forward_mode_rule(shape, affine):
    torch.manual_seed(0)
    bn = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(shape[1], affine=affine).double().train()
    if affine:
        nn.init.normal_(bn.weight), nn.init.normal_(bn.bias)
    x, dx = torch.randn(shape, dtype=torch.float64) * 3 + 1, torch.randn(shape, dtype=torch.float64)
    params = {n: p.detach() for n, p in bn.named_parameters()}
    tangents = {n: torch.randn_like(p) for n, p in params.items()}

    def run(values):
        buffers = {n: b.clone() for n, b in bn.named_buffers()}
        return functional_call(bn, {**values[1], **buffers}, (values[0],))

    _, reference = jvp(run, ((x, params),), ((dx, tangents),))
    with fwAD.dual_level(), batch_norm_tangents():
        out = run((fwAD.make_dual(x, dx), {n: fwAD.make_dual(p, tangents[n]) for n, p in params.items()}))
        primal, tangent = fwAD.unpack_dual(out)
    torch.testing.assert_close(tangent, reference, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(primal, run((x, params)))
    assert torch.nn.functional.batch_norm.__name__ == "batch_norm"  # restored on exit


def test_directional_derivative_jvp_and_finite_difference():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    params = {n: p.detach() for n, p in net.named_parameters()}
    direction = {n: torch.randn_like(p) for n, p in params.items()}

    def fn(values):
        return [functional_call(net, values, (x,))]

    _, reference = jvp(lambda *v: functional_call(net, dict(zip(params, v, strict=True)), (x,)),
                       tuple(params.values()), tuple(direction.values()))
    exact = directional_derivative(fn, params, direction, "jvp")[0]
    torch.testing.assert_close(exact, reference)
    approx = directional_derivative(fn, params, direction, "finite_difference", fd_radius=1e-4)[0]
    torch.testing.assert_close(approx, reference, rtol=1e-6, atol=1e-8)  # smooth net, float64: O(r²)
    zero = directional_derivative(fn, params, {n: torch.zeros_like(p) for n, p in params.items()}, "finite_difference")
    assert float(zero[0].abs().max()) == 0.0
    with pytest.raises(ValueError, match="mode"):
        directional_derivative(fn, params, direction, "reverse")


def test_stage1_gradients_and_record():
    layer = nn.Linear(3, 2)
    params = list(layer.parameters())
    assert stage1_gradients(params) is None  # no backward yet
    views = [torch.randn(4, 3)]
    loss = layer(views[0]).sum()
    record = Stage1Record(views, params, loss)
    assert not record.usable(views, params)  # the backward has not run
    loss.backward()
    assert record.usable(views, params) and not record.usable([views[0].clone()], params)
    grads = stage1_gradients(params)
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, params, strict=True))
    layer.bias.grad = None
    assert torch.equal(stage1_gradients(params)[1], torch.zeros(2))  # an unused parameter: zeros
    layer.weight.grad[0, 0] = float("inf")
    assert stage1_gradients(params) is None  # an fp16 overflow step: not reused
    with torch.no_grad():
        layer.weight.add_(1.0)
    assert not record.usable(views, params)  # the optimiser moved θ after the forward


def test_check_meta_grad():
    assert check_meta_grad("jvp") == "jvp"
    with pytest.raises(ValueError, match="meta_grad"):
        check_meta_grad("forward")
