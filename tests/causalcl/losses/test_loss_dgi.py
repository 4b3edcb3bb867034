"""Deep Graph Infomax's JSD objective (Eq. 1), readout and bilinear scores against loop references."""

from __future__ import annotations

import math

import pytest
import torch

from causalcl.losses import dgi_loss, dgi_readout, dgi_scores


def sigmoid(v: torch.Tensor) -> torch.Tensor:
    return 1.0 / (1.0 + torch.exp(-v))


def naive_readout(h: torch.Tensor, batch: list[int], g: int) -> torch.Tensor:
    out = []
    for k in range(g):
        rows = [h[i] for i in range(h.shape[0]) if batch[i] == k]
        out.append(sigmoid(sum(rows) / len(rows)))
    return torch.stack(out)


def naive_bilinear(h_i: torch.Tensor, w: torch.Tensor, s: torch.Tensor, b: float) -> torch.Tensor:
    d = h_i.shape[0]
    return sum(h_i[p] * w[p, q] * s[q] for p in range(d) for q in range(d)) + b


def naive_dgi(h, h_c, s, w, b, batch, batch_c):
    total = torch.zeros((), dtype=torch.float64)
    for i in range(h.shape[0]):
        total = total + torch.log(sigmoid(naive_bilinear(h[i], w, s[batch[i]], b)))
    for j in range(h_c.shape[0]):
        total = total + torch.log(1 - sigmoid(naive_bilinear(h_c[j], w, s[batch_c[j]], b)))
    return -total / (h.shape[0] + h_c.shape[0])


@pytest.mark.parametrize("n,m,d,graphs,seed", [(4, 4, 3, 1, 0), (6, 3, 2, 2, 1), (7, 7, 4, 3, 2), (3, 5, 5, 1, 3)])
def test_matches_naive_value_and_gradient(n, m, d, graphs, seed):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, d, generator=g, dtype=torch.float64)
    h_c = torch.randn(m, d, generator=g, dtype=torch.float64)
    w = torch.randn(d, d, generator=g, dtype=torch.float64)
    bias = torch.randn(1, generator=g, dtype=torch.float64)
    batch = sorted(torch.randint(graphs, (n,), generator=g).tolist())
    batch[:graphs] = list(range(graphs))
    batch = sorted(batch)
    batch_c = torch.randint(graphs, (m,), generator=g).tolist()
    ours = [x.clone().requires_grad_() for x in (h, h_c, w, bias)]
    ref = [x.clone().requires_grad_() for x in (h, h_c, w, bias)]
    s = dgi_readout(ours[0], torch.tensor(batch), graphs)
    torch.testing.assert_close(s, naive_readout(ref[0], batch, graphs))
    got = dgi_loss(ours[0], ours[1], s, ours[2], ours[3], torch.tensor(batch), torch.tensor(batch_c))
    want = naive_dgi(ref[0], ref[1], naive_readout(ref[0], batch, graphs), ref[2], ref[3][0], batch, batch_c)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
    got.backward()
    want.backward()
    for x, y in zip(ours, ref, strict=True):
        torch.testing.assert_close(x.grad, y.grad, atol=1e-10, rtol=1e-8)


def test_single_graph_defaults_and_scores():
    g = torch.Generator().manual_seed(5)
    h, h_c = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    w = torch.randn(3, 3, generator=g, dtype=torch.float64)
    s = dgi_readout(h)
    assert s.shape == (1, 3)
    torch.testing.assert_close(s[0], torch.sigmoid(h.mean(0)))
    scores = dgi_scores(h, s[0], w)
    torch.testing.assert_close(scores, torch.stack([naive_bilinear(h[i], w, s[0], 0.0) for i in range(5)]))
    zeros = torch.zeros(5, dtype=torch.long)
    torch.testing.assert_close(dgi_loss(h, h_c, s, w), dgi_loss(h, h_c, s, w, None, zeros, zeros))


def test_zero_discriminator_gives_log_2():
    h = torch.randn(6, 4, dtype=torch.float64)
    assert dgi_loss(h, h.flip(0), dgi_readout(h), torch.zeros(4, 4, dtype=torch.float64)).item() == pytest.approx(
        math.log(2), abs=1e-12)


def test_large_scores_stay_finite():
    h = torch.full((3, 2), 30.0)
    w = torch.eye(2) * 50
    loss = dgi_loss(h, -h, dgi_readout(h), w)
    assert torch.isfinite(loss) and loss.item() < 1e-6


def test_gradcheck():
    g = torch.Generator().manual_seed(6)
    args = [torch.randn(*s, generator=g, dtype=torch.float64, requires_grad=True) for s in ((4, 3), (4, 3), (3, 3))]
    batch = torch.tensor([0, 0, 1, 1])
    assert torch.autograd.gradcheck(
        lambda h, hc, w: dgi_loss(h, hc, dgi_readout(h, batch, 2), w, None, batch), tuple(args))


def test_bad_inputs_name_the_argument():
    h, w = torch.randn(4, 3), torch.randn(3, 3)
    s = dgi_readout(h)
    with pytest.raises(ValueError, match="h_corrupt"):
        dgi_loss(h, torch.randn(4, 2), s, w)
    with pytest.raises(ValueError, match="weight"):
        dgi_loss(h, h, s, torch.randn(2, 2))
    with pytest.raises(ValueError, match="summary"):
        dgi_loss(h, h, torch.randn(1, 2), w)
    with pytest.raises(ValueError, match="batch"):
        dgi_loss(h, h, torch.randn(2, 3), w)  # two summaries, no batch
    with pytest.raises(ValueError, match="batch"):
        dgi_loss(h, h, s, w, None, torch.tensor([0, 0, 1, 1]))  # graph 1 has no summary
    with pytest.raises(ValueError, match="batch"):
        dgi_readout(h, torch.tensor([0.0, 0, 1, 1]))
    with pytest.raises(ValueError, match="batch"):
        dgi_readout(h, torch.tensor([0, 0, 2, 2]))  # graph 1 is empty
    with pytest.raises(ValueError, match="bias"):
        dgi_loss(h, h, s, w, torch.zeros(2))
    with pytest.raises(ValueError, match="h"):
        dgi_loss(h * float("nan"), h, s, w)
