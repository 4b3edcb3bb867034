"""The tangent pass on stage 1's recorded activations equals forward mode (float64), and refuses non-chains."""

import pytest
import torch
from torch import nn
from torch.func import functional_call

from causalcl.methods.bilevel import directional_derivative, recorded_tangents
from causalcl.methods.tangent_tape import TangentTape, layer_chain
from causalcl.models import build_backbone
from causalcl.models.backbones import ConvNetSmall
from causalcl.models.heads import MLPHead


def _forward_mode(net: nn.Module, x: torch.Tensor, v: dict[str, torch.Tensor]) -> torch.Tensor:
    bufs = {k: b.clone() for k, b in net.named_buffers()}
    params = dict(net.named_parameters())
    return directional_derivative(lambda ps: [functional_call(net, {**bufs, **ps}, (x,), tie_weights=False)],
                                  params, v, "jvp")[0]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("last_bn", [False, True])
def test_tape_equals_forward_mode(channels_last, last_bn):
    torch.manual_seed(0)
    backbone, head = ConvNetSmall(widths=(4, 8, 8)), MLPHead([8, 16, 5], last_bn=last_bn)
    net = nn.Sequential(backbone, head).double().train()
    x = torch.randn(10, 3, 12, 12, dtype=torch.float64)
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    v = {k: torch.randn_like(p) for k, p in net.named_parameters()}
    expected = _forward_mode(net, x, v)
    tape = TangentTape.of(backbone, head)
    with tape.record():
        z = net(x)
    assert tape.valid and torch.equal(torch.cat(tape.outputs()), z.detach())
    got = tape.jvp({id(p): v[k] for k, p in net.named_parameters()})
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    # a direction on some parameters only (the others' tangents are 0)
    part = {k: (t if k.startswith("1.") else torch.zeros_like(t)) for k, t in v.items()}
    got = tape.jvp({id(p): v[k] for k, p in net.named_parameters() if k.startswith("1.")})
    torch.testing.assert_close(got, _forward_mode(net, x, part), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("grad", [True, False])
def test_batch_norm_statistics_from_stage_1_or_recomputed(grad):
    """With autograd on, BatchNorm's tangent uses the batch statistics its autograd node saved; under no_grad
    (no node) they are recomputed. Both equal forward mode, with and without BN affine parameters."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 5, 3),
                        nn.BatchNorm2d(5, affine=False), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 4 * 4, 6),
                        nn.BatchNorm1d(6)).double().train()
    x = torch.randn(7, 3, 8, 8, dtype=torch.float64)
    v = {k: torch.randn_like(p) for k, p in net.named_parameters()}
    expected = _forward_mode(net, x, v)
    tape = TangentTape.of(net)
    with tape.record(), torch.set_grad_enabled(grad):
        net(x)
    saved = [stats for module, _, _, stats in tape._calls if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    assert len(saved) == 3 and all((s is not None) == grad for s in saved)
    if grad:
        mean, invstd = saved[0]
        h = net[0](x).detach()
        torch.testing.assert_close(mean, h.mean((0, 2, 3)))
        torch.testing.assert_close(invstd, (h.var((0, 2, 3), unbiased=False) + 1e-5).rsqrt())
    got = tape.jvp({id(p): v[k] for k, p in net.named_parameters()})
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_two_passes_are_concatenated():
    torch.manual_seed(0)
    net = nn.Sequential(ConvNetSmall(widths=(4, 8)), MLPHead([8, 6, 3])).double().train()
    x1, x2 = torch.randn(2, 6, 3, 8, 8, dtype=torch.float64)
    tape = TangentTape.of(*net)
    with tape.record():
        z1, z2 = net(x1), net(x2)
    v = {k: torch.randn_like(p) for k, p in net.named_parameters()}
    direction = {id(p): v[k] for k, p in net.named_parameters()}
    expected = torch.cat([_forward_mode(net, x1, v), _forward_mode(net, x2, v)])
    torch.testing.assert_close(tape.jvp(direction), expected, rtol=1e-10, atol=1e-12)
    # recorded_tangents: split like the embeddings, and the recording is released
    params = list(net.parameters())
    u1, u2 = recorded_tangents(tape, (z1, z2), params, [v[k] for k, _ in net.named_parameters()])
    torch.testing.assert_close(torch.cat([u1, u2]), expected, rtol=1e-10, atol=1e-12)
    assert not tape.valid and recorded_tangents(tape, (z1, z2), params, list(v.values())) is None


def test_recorded_tangents_refuses_other_embeddings():
    torch.manual_seed(0)
    net = nn.Sequential(ConvNetSmall(widths=(4,)), MLPHead([4, 3])).train()
    tape = TangentTape.of(*net)
    with tape.record():
        z = net(torch.randn(4, 3, 8, 8))
    v = [torch.randn_like(p) for p in net.parameters()]
    assert recorded_tangents(tape, (z[:2] + 1, z[2:]), list(net.parameters()), v) is None


def test_non_chains_are_refused():
    assert layer_chain(build_backbone("resnet18")) is None  # residual adds
    assert TangentTape.of(nn.Sequential(nn.Linear(3, 3), nn.Tanh())) is None  # an unsupported layer
    assert layer_chain(nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")) is None

    class Shifted(nn.Module):  # runs its layers with an op between them: recorded, then found invalid
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 3)

        def forward(self, x):
            return self.b(self.a(x) + 1)

    m = Shifted()
    tape = TangentTape([m.a, m.b])
    with tape.record():
        m(torch.randn(2, 3))
    assert not tape.valid
    with pytest.raises(RuntimeError, match="no valid recording"):
        tape.jvp({})
    bn = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)).eval()  # running statistics: not recorded as valid
    tape = TangentTape.of(bn)
    with tape.record():
        bn(torch.randn(4, 3))
    assert not tape.valid
