"""video_small ((2+1)D) and gcn backbones: shapes, the temporal conv and the GCN against loop references,
the registry, bad arguments."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from causalcl.data.scm_graph import SCMGraphDataset
from causalcl.models import BACKBONE_INPUTS, BACKBONES, GCN, VideoSmall, build_backbone, normalized_adjacency
from causalcl.models.gcn import GCNLayer
from causalcl.models.video import TemporalConv


def test_registry():
    assert {"video_small", "gcn"} <= set(BACKBONES) and set(BACKBONE_INPUTS) == set(BACKBONES)
    assert BACKBONE_INPUTS["video_small"] == "video" and BACKBONE_INPUTS["gcn"] == "graph"
    assert isinstance(build_backbone("video_small"), VideoSmall)
    assert build_backbone("gcn", in_features=12, widths=[8]).feature_dim == 8
    with pytest.raises(ValueError, match="in_feature"):
        build_backbone("video_small", in_feature=3)
    with pytest.raises(ValueError, match="depth"):
        build_backbone("gcn", depth=3)


@pytest.mark.parametrize("channels_last", [True, False])
def test_video_small_features(channels_last):
    torch.manual_seed(0)
    net = build_backbone("video_small", channels_last=channels_last).eval()
    clips = torch.rand(3, 4, 3, 16, 16)
    out = net(clips)
    assert out.shape == (3, net.feature_dim) == (3, 128)
    maps = []
    handle = net.last_conv.register_forward_hook(lambda m, i, o: maps.append(o))
    net(clips)
    handle.remove()
    assert maps[0].shape == (12, 128, 2, 2)  # one map per frame, rows b*T + t
    other = build_backbone("video_small", channels_last=not channels_last).eval()
    other.load_state_dict(net.state_dict())
    torch.testing.assert_close(other(clips), out, atol=1e-5, rtol=1e-5)


def test_video_small_mixes_time():
    torch.manual_seed(0)
    net = VideoSmall(widths=(8, 8), strides=(1, 1), stem=0).eval()
    # a frame's map depends on its neighbours in time (and not, through one temporal conv, on frames 3 apart)
    block = net.blocks[0]
    x = torch.rand(5, 3, 8, 8)
    base = block(x, 5)
    x2 = x.clone()
    x2[2] += 1.0
    changed = (block(x2, 5) - base).abs().flatten(1).amax(1) > 0
    assert changed.tolist() == [False, True, True, True, False]


def test_temporal_conv_matches_conv3d_and_a_loop():
    torch.manual_seed(0)
    b, t, c_in, c_out, h = 2, 5, 3, 4, 3
    tc = TemporalConv(c_in, c_out, 3).double()
    x = torch.randn(b * t, c_in, h, h, dtype=torch.float64)
    got = tc(x, t)
    ref3d = nn.Conv3d(c_in, c_out, (3, 1, 1), padding=(1, 0, 0), bias=False).double()
    ref3d.weight.data.copy_(tc.weight.data.unsqueeze(-1))
    want = ref3d(x.view(b, t, c_in, h, h).permute(0, 2, 1, 3, 4)).permute(0, 2, 1, 3, 4).reshape(b * t, c_out, h, h)
    torch.testing.assert_close(got, want)
    frames = x.view(b, t, c_in, h, h)
    loop = torch.zeros(b, t, c_out, h, h, dtype=torch.float64)
    for bi in range(b):
        for ti in range(t):
            for k in range(3):
                src = ti + k - 1
                if 0 <= src < t:
                    for o in range(c_out):
                        for ci in range(c_in):
                            loop[bi, ti, o] += tc.weight[o, ci, k, 0] * frames[bi, src, ci]
    torch.testing.assert_close(got, loop.view(b * t, c_out, h, h))


@pytest.mark.parametrize("kw,name", [({"widths": []}, "widths"), ({"strides": (1,)}, "strides"),
                                     ({"temporal_kernel": 2}, "temporal_kernel"), ({"stem": -1}, "stem")])
def test_video_small_bad_arguments(kw, name):
    with pytest.raises(ValueError, match=name):
        VideoSmall(**kw)


def test_video_small_bad_input():
    with pytest.raises(ValueError, match="x"):
        VideoSmall()(torch.rand(2, 3, 16, 16))


def _dense_norm(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    a = torch.zeros(n, n, dtype=torch.float64)
    for i, j in edge_index.t().tolist():
        a[i, j] += 1
    a += torch.eye(n, dtype=torch.float64)
    d = a.sum(1)
    out = torch.zeros_like(a)
    for i in range(n):
        for j in range(n):
            out[i, j] = a[i, j] / (d[i] * d[j]).sqrt()
    return out


EDGES = torch.tensor([[0, 1, 1, 2, 2, 3, 0, 4], [1, 0, 2, 1, 3, 2, 4, 0]])


def test_normalized_adjacency_is_the_renormalisation_trick():
    got = normalized_adjacency(EDGES, 6, dtype=torch.float64)
    assert got.is_sparse
    torch.testing.assert_close(got.to_dense(), _dense_norm(EDGES, 6))
    assert float(got.to_dense()[5, 5]) == 1.0  # an isolated node keeps its own features


def test_gcn_layer_matches_a_loop():
    torch.manual_seed(0)
    layer = GCNLayer(3, 2).double()
    nn.init.normal_(layer.bias)
    x = torch.randn(6, 3, dtype=torch.float64)
    got = layer(x, normalized_adjacency(EDGES, 6, dtype=torch.float64))
    a = _dense_norm(EDGES, 6)
    w = layer.linear.weight
    for i in range(6):
        want = layer.bias.clone()
        for j in range(6):
            for o in range(2):
                want[o] = want[o] + a[i, j] * sum(x[j, k] * w[o, k] for k in range(3))
        torch.testing.assert_close(got[i], want)


def test_gcn_on_a_batch_equals_each_graph_alone():
    torch.manual_seed(0)
    ds = SCMGraphDataset("test", n=3, nodes=10, num_features=8, num_classes=2)
    net = GCN(in_features=8, widths=(6, 5))
    batch, _ = ds.get_batch(torch.arange(3))
    out = net(batch)
    assert out.shape == (30, 5) and net.feature_dim == 5
    for g in range(3):
        alone, _ = ds.get_batch(torch.tensor([g]))
        torch.testing.assert_close(out[g * 10:(g + 1) * 10], net(alone.x, alone.edge_index), atol=1e-6, rtol=1e-5)
    adjacency = normalized_adjacency(batch.edge_index, 30)
    torch.testing.assert_close(net(batch.x, adjacency=adjacency), out)


def test_gcn_gradcheck():
    torch.manual_seed(0)
    net = GCN(in_features=3, widths=(4, 2)).double()
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: net(v, EDGES), (x,))


@pytest.mark.parametrize("kw,name", [({"in_features": 0}, "in_features"), ({"widths": ()}, "widths"),
                                     ({"activation": "tanh"}, "activation")])
def test_gcn_bad_arguments(kw, name):
    with pytest.raises(ValueError, match=name):
        GCN(**kw)


def test_gcn_bad_inputs():
    net = GCN(in_features=3)
    with pytest.raises(ValueError, match="x"):
        net(torch.rand(6, 4), EDGES)
    with pytest.raises(ValueError, match="edge_index"):
        net(torch.rand(6, 3))
    with pytest.raises(ValueError, match="edge_index"):
        net(torch.rand(6, 3), EDGES.float())
    with pytest.raises(ValueError, match="edge_index"):
        net(torch.rand(4, 3), EDGES)  # node 4 does not exist
    with pytest.raises(ValueError, match="adjacency"):
        net(torch.rand(6, 3), adjacency=normalized_adjacency(EDGES, 7))


@pytest.mark.skipif(importlib.util.find_spec("torch_geometric") is None, reason="torch_geometric is not installed")
def test_gcn_layer_equals_torch_geometric_gcnconv():
    from torch_geometric.nn import GCNConv

    torch.manual_seed(0)
    ours = GCNLayer(3, 4)
    nn.init.normal_(ours.bias)
    theirs = GCNConv(3, 4)
    theirs.lin.weight.data.copy_(ours.linear.weight.data)
    theirs.bias.data.copy_(ours.bias.data)
    x = torch.randn(6, 3)
    torch.testing.assert_close(ours(x, normalized_adjacency(EDGES, 6)), theirs(x, EDGES), atol=1e-6, rtol=1e-5)
