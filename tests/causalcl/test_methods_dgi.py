"""DGI: the corruption, the loss against its definition, training on tiny graphs, interventional views."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from causalcl.data import SCMGraphDataset
from causalcl.data.interventional import InterventionalViews
from causalcl.losses import dgi_loss
from causalcl.methods import DGI, METHODS
from causalcl.methods.dgi import corruption_permutation
from causalcl.models import build_backbone


@pytest.fixture(scope="module")
def graphs() -> SCMGraphDataset:
    return SCMGraphDataset("train", n=6, nodes=16, num_features=12, num_classes=3)


def _method(in_features: int = 12) -> DGI:
    torch.manual_seed(0)
    return METHODS["dgi"](build_backbone("gcn", in_features=in_features, widths=(16, 8)))


def _views(method, graphs, seed: int = 1):
    batch, _ = graphs.get_batch(torch.arange(4))
    return method.make_views(None, batch, torch.Generator().manual_seed(seed))


def test_registered_with_graph_input():
    assert METHODS["dgi"] is DGI and DGI.input_kind == "graph"


def test_corruption_shuffles_rows_within_each_graph():
    batch = torch.tensor([0] * 5 + [1] * 7 + [2] * 4)
    perm = corruption_permutation(batch, torch.Generator().manual_seed(0))
    assert sorted(perm.tolist()) == list(range(16))
    assert torch.equal(batch[perm], batch)
    assert not torch.equal(perm, torch.arange(16))
    again = corruption_permutation(batch, torch.Generator().manual_seed(0))
    assert torch.equal(perm, again)


def test_forward_is_the_jsd_objective(graphs):
    method = _method()
    graph, perm = _views(method, graphs)
    out = method([graph, perm])
    h = method.backbone(graph)
    h_c = method.backbone(graph.x[perm], graph.edge_index)
    s = torch.stack([torch.sigmoid(h[graph.batch == g].mean(0)) for g in range(4)])
    want = dgi_loss(h, h_c, s, method.discriminator.weight[0], method.discriminator.bias, graph.batch)
    torch.testing.assert_close(out["loss"], want)
    assert abs(float(out["loss"].detach()) - math.log(2)) < 0.3  # about log 2 at initialisation


def test_training_lowers_the_loss_and_reaches_every_parameter(graphs):
    method = _method()
    views = _views(method, graphs)
    opt = torch.optim.Adam(method.parameters(), lr=1e-2)
    first = float(method(views)["loss"].detach())
    for step in range(15):
        out = method(views)
        opt.zero_grad()
        out["loss"].backward()
        if step == 0:
            missing = [k for k, p in method.named_parameters() if p.grad is None]
            assert not missing, missing
        opt.step()
    last = method(views)
    assert float(last["loss"].detach()) < first and float(last["discriminator_accuracy"]) > 0.6


def test_any_graph_backbone(graphs):
    class Wrapped(nn.Module):  # not a GCN: DGI passes it the graph batch, features swapped for the corruption
        def __init__(self, inner):
            super().__init__()
            self.inner, self.feature_dim = inner, inner.feature_dim

        def forward(self, graph):
            return self.inner(graph)

    method = _method()
    wrapped = DGI(Wrapped(method.backbone))
    wrapped.discriminator.load_state_dict(method.discriminator.state_dict())
    views = _views(method, graphs)
    torch.testing.assert_close(wrapped(views)["loss"], method(views)["loss"])


def test_interventional_views(graphs):
    method = _method()
    idx = torch.arange(3)
    graph, perm = method.make_interventional_views(InterventionalViews(graphs), graphs.get_batch(idx)[0], idx,
                                                   torch.Generator().manual_seed(0))
    assert graph.num_nodes == 48 and perm.shape == (48,)
    assert not torch.equal(graph.x, graphs.get_batch(idx)[0].x)
    assert torch.isfinite(method([graph, perm])["loss"])


def test_checkpoint_round_trip(graphs, tmp_path):
    method = _method()
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method()
    nn.init.zeros_(other.discriminator.weight)
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    views = _views(method, graphs)
    torch.testing.assert_close(method(views)["loss"], other(views)["loss"])


def test_bad_views_and_backbones(graphs):
    method = _method()
    graph, perm = _views(method, graphs)
    with pytest.raises(ValueError, match="views"):
        method([graph.x, perm])
    with pytest.raises(ValueError, match="views"):
        method([graph, perm[:5]])
    with pytest.raises(ValueError, match="backbone"):
        DGI(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="x"):
        _method(in_features=5)([graph, perm])  # the GCN's width does not match the dataset's features
