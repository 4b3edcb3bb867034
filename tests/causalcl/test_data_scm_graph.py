"""scm_graph: layout, determinism, the block structure, the confounded style, true do() re-renders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causalcl.data import DATASETS, GraphBatch, SCMGraphDataset, get_dataset
from causalcl.data.interventional import InterventionalViews
from causalcl.data.scm_graph import adjacency_to_edge_index


def _ds(split: str = "train", n: int = 6, **kw) -> SCMGraphDataset:
    return SCMGraphDataset(split, n=n, nodes=kw.pop("nodes", 24), **kw)


@pytest.fixture(scope="module")
def graphs() -> SCMGraphDataset:
    return _ds(n=8)


def test_layout_and_registry(graphs):
    assert DATASETS["scm_graph"] is SCMGraphDataset
    assert len(graphs) == 8 and graphs.num_nodes == 8 * 24
    assert graphs.x.shape == (8, 24, 32) and graphs.x.dtype == torch.float32
    assert graphs.adj.shape == (8, 24, 24) and graphs.adj.dtype == torch.bool
    assert torch.equal(graphs.adj, graphs.adj.transpose(1, 2)) and not bool(graphs.adj.diagonal(0, 1, 2).any())
    assert graphs.labels.shape == (8, 24) and torch.equal(graphs.labels, graphs.latents["cls"])
    assert graphs.latent_roles == {"cls": "content", "style": "style"} and set(graphs.latents) == {"cls", "style"}
    item = graphs[-1]
    assert torch.equal(item["x"], graphs.x[7]) and item["edge_index"].shape == (2, int(graphs.adj[7].sum()))
    assert "graphs=8" in repr(graphs)
    assert len(get_dataset("scm_graph", "test", n=2, nodes=8)) == 2
    assert [len(SCMGraphDataset(s)) for s in ("train", "probe", "test")] == [256, 64, 64]


def test_batch_is_the_disjoint_union(graphs):
    batch, labels = graphs.get_batch(torch.tensor([5, 2]))
    assert isinstance(batch, GraphBatch) and batch.num_graphs == 2 and batch.num_nodes == 48
    assert torch.equal(batch.x, torch.cat([graphs.x[5], graphs.x[2]]))
    assert torch.equal(labels, torch.cat([graphs.labels[5], graphs.labels[2]]))
    assert torch.equal(batch.batch, torch.tensor([0] * 24 + [1] * 24))
    dense = torch.zeros(48, 48, dtype=torch.bool)
    dense[batch.edge_index[0], batch.edge_index[1]] = True
    assert torch.equal(dense[:24, :24], graphs.adj[5]) and torch.equal(dense[24:, 24:], graphs.adj[2])
    assert not bool(dense[:24, 24:].any())
    everything = graphs.all_graphs()
    assert torch.equal(everything.x, graphs.node_features()) and everything.num_graphs == 8
    assert torch.equal(graphs.node_labels(), graphs.labels.reshape(-1))
    assert torch.equal(graphs.node_latents()["style"], graphs.latents["style"].reshape(-1))
    moved = batch.to("cpu")
    assert torch.equal(moved.edge_index, batch.edge_index)
    with pytest.raises(ValueError, match="x"):
        batch.with_features(torch.zeros(3, 32))


def test_edge_index_helper():
    adj = torch.tensor([[[0, 1], [1, 0]], [[0, 0], [0, 0]], [[0, 1], [1, 0]]], dtype=torch.bool)
    assert adjacency_to_edge_index(adj).tolist() == [[0, 1, 4, 5], [1, 0, 5, 4]]


def test_deterministic_per_seed_and_graph():
    a, b = _ds(n=4), _ds(n=4)
    assert torch.equal(a.x, b.x) and torch.equal(a.adj, b.adj)
    longer = _ds(n=7)
    assert torch.equal(longer.x[:4], a.x) and torch.equal(longer.adj[:4], a.adj)  # graph g does not depend on n
    assert not torch.equal(_ds(n=4, seed=1).x, a.x) and not torch.equal(_ds("probe", n=4).adj, a.adj)
    # the content and style directions are shared by the splits (they come from the seed alone)
    assert np.array_equal(_ds("test", n=1).content_directions, a.content_directions)


def test_block_structure_sets_the_class():
    ds = _ds(n=40, nodes=40)
    same = ds.labels[:, :, None] == ds.labels[:, None, :]
    off_diag = ~torch.eye(40, dtype=torch.bool)
    p_in = float(ds.adj[same & off_diag].float().mean())
    p_out = float(ds.adj[~same].float().mean())
    assert abs(p_in - 0.25) < 0.02 and abs(p_out - 0.02) < 0.005


def test_style_is_confounded_in_train_only():
    tr, te = _ds("train", n=30, nodes=40), _ds("test", n=30, nodes=40)
    agree = lambda d: float((d.latents["style"] == d.latents["cls"]).float().mean())  # noqa: E731
    assert abs(agree(tr) - (0.9 + 0.1 / 4)) < 0.03 and abs(agree(te) - 0.25) < 0.04
    # the features carry the style direction of each node's style, at style_strength
    proj = lambda d: (d.x * torch.from_numpy(d.style_directions)[d.latents["cls"]]).sum(-1).mean()  # noqa: E731
    assert float(proj(tr)) > 1.6 and float(proj(te)) < 0.8


def test_do_style_changes_the_features_only(graphs):
    before, after = graphs[3], graphs.intervene(3, style=2)
    assert torch.equal(after["adj"], before["adj"]) and torch.equal(after["label"], before["label"])
    assert torch.equal(after["latents"]["cls"], before["latents"]["cls"])
    assert bool((after["latents"]["style"] == 2).all())
    sigma = torch.from_numpy(graphs.style_directions)
    expected = before["x"] + graphs.style_strength * (sigma[2] - sigma[before["latents"]["style"]])
    torch.testing.assert_close(after["x"], expected, atol=1e-5, rtol=0)


def test_do_cls_rewires_the_node():
    ds = _ds(n=2, nodes=40)
    after = ds.intervene(0, cls=1)
    assert bool((after["label"] == 1).all())
    assert bool((after["latents"]["style"] == 1).mean(dtype=torch.float) > 0.8)  # style follows cls in train
    density = float(after["adj"].float().sum() / (40 * 39))
    assert abs(density - 0.25) < 0.05  # one community: every pair at p_in
    kept = ds.intervene(0, cls=ds.latents["cls"][0])
    assert torch.equal(kept["adj"], ds.adj[0]) and torch.equal(kept["x"], ds.x[0])


def test_intervene_batch_forms(graphs):
    idx = torch.tensor([1, 6])
    plain = graphs.intervene_batch(idx)
    ref, _ = graphs.get_batch(idx)
    assert torch.equal(plain.x, ref.x) and torch.equal(plain.edge_index, ref.edge_index)
    per_node = torch.zeros(2, 24, dtype=torch.long)
    per_node[1] = 3
    out = graphs.intervene_batch(idx, style=per_node)
    assert torch.equal(out.x[24:], graphs.intervene(6, style=3)["x"])
    drawn = graphs.intervene_batch(idx, seed=4, style=lambda rng, n: rng.integers(0, 4, n))
    again = graphs.intervene_batch(idx, seed=4, style=lambda rng, n: rng.integers(0, 4, n))
    assert torch.equal(drawn.x, again.x) and not torch.equal(drawn.x, ref.x)


def test_interventional_views_on_graphs(graphs):
    views = InterventionalViews(graphs)
    assert views.variables == ["style"]
    idx = torch.tensor([0, 4])
    (cf,) = views(graphs.get_batch(idx)[0], idx, torch.Generator().manual_seed(0), num_views=1)
    ref, _ = graphs.get_batch(idx)
    assert isinstance(cf, GraphBatch) and torch.equal(cf.edge_index, ref.edge_index)
    assert not torch.equal(cf.x, ref.x)


@pytest.mark.parametrize("kw,name", [({"n": 0}, "n"), ({"nodes": 1}, "nodes"), ({"num_classes": 1}, "num_classes"),
                                     ({"num_features": 6}, "num_features"), ({"p_in": 1.5}, "p_in"),
                                     ({"p_out": 0.5}, "p_out"), ({"rho": -0.1}, "rho"),
                                     ({"style_strength": -1.0}, "style_strength"), ({"seed": -2}, "seed"),
                                     ({"content_strength": float("nan")}, "content_strength")])
def test_bad_arguments_name_themselves(kw, name):
    with pytest.raises(ValueError, match=name):
        SCMGraphDataset("train", **{"n": 2, "nodes": 8, **kw})


def test_bad_interventions_and_indices(graphs):
    with pytest.raises(ValueError, match="colour"):
        graphs.intervene(0, colour=1)
    with pytest.raises(ValueError, match="style"):
        graphs.intervene(0, style=9)
    with pytest.raises(ValueError, match="style"):
        graphs.intervene_batch(torch.tensor([0]), style=torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="indices"):
        graphs.get_batch(torch.tensor([0.5]))
    with pytest.raises(IndexError):
        graphs[8]
    with pytest.raises(ValueError, match="split"):
        SCMGraphDataset("validation", n=1)
