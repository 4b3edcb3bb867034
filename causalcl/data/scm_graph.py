"""SCM-Graph: node classification on stochastic-block graphs with a confounded style signal (issue 16).

Layout (decided here): a split is a set of ``G`` independent graphs of ``V`` nodes each (default 256 /
64 / 64 graphs of 64 nodes), not one big graph. The graphs are the items the Trainer batches (a batch of
``B`` graphs is their disjoint union, :class:`GraphBatch`, as DGI's multi-graph setting does on PPI);
the nodes are the samples that probes, kNN and identifiability score (``node_labels()``,
``node_latents()``, features ``(G·V, D)`` from an encoder run over ``all_graphs()``). Fixed ``V`` keeps
the storage dense and simple: features ``x`` float ``(G, V, F)``, adjacency ``adj`` bool ``(G, V, V)``
(symmetric, no self-loops), labels and latents ``(G, V)``.

The SCM is per node (its samples are the nodes; node ``j`` of graph ``g`` is node ``g·V + j``), all noise
uniform on [0, 1)::

    cls   := floor(K u)                                   content: the node's community, the label (K = 4)
    style := cls  if u1 < rho  else floor(K u2)           style, confounded by cls in ``train``

``probe`` and ``test`` use ``do(style ~ Uniform{0..K-1})``. The renderer draws, from each graph's own
exogenous noise (kept, so :meth:`SCMGraphDataset.intervene` re-renders the same graph under ``do()``):

* **structure** (what sets the class): a stochastic block model on the communities,
  edge ``{i, j}`` iff ``e_ij < p_in`` when ``cls_i = cls_j``, else iff ``e_ij < p_out``, with ``e_ij``
  uniform pair noise (regenerated from a stored per-graph seed);
* **features** ``x_i = content_strength · μ_{cls_i} + style_strength · σ_{style_i} + ε_i``, ``ε_i ~ N(0, I_F)``,
  with ``μ_k``, ``σ_k`` 2K orthonormal directions of R^F drawn once from ``seed`` (shared by the splits).

This is the contextual SBM (Deshpande et al., NeurIPS 2018) with a second, confounded signal: the content
signal in the features is weak (``content_strength`` 1 against unit noise) and becomes usable by averaging
over the community, i.e. through the structure; the style signal is strong (2) and, in ``train``, agrees
with the class for a fraction ``rho`` of the nodes. A read-out of raw features on ``train`` therefore
leans on style, which no longer predicts the class in ``probe``/``test``: the spurious gap, as for images.
Defaults ``p_in = 0.25``, ``p_out = 0.02``: about 4 edges inside the community and 1 outside per node.

``do(style = a)`` changes the features only (the adjacency is kept); ``do(cls = k)`` moves nodes to
community ``k``: their edges and content features are re-drawn from the same noise and, in ``train``,
``style`` (a descendant of ``cls``) follows unless it is intervened on as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..causal.scm import SCM, Seed, derive_rng, uniform_choice
from .base import check_split

__all__ = ["GraphBatch", "SCMGraphDataset", "DEFAULT_GRAPHS", "adjacency_to_edge_index"]

DEFAULT_GRAPHS = {"train": 256, "probe": 64, "test": 64}
_SPLIT_CODES = {"train": 0, "probe": 1, "test": 2}


@dataclass
class GraphBatch:
    """A batch of graphs as one disjoint union (the layout GCN layers take).

    Attributes:
        x: float ``(N, F)`` node features, graph after graph.
        edge_index: long ``(2, E)`` directed edges (both directions of each undirected edge), global node ids.
        batch: long ``(N,)`` the graph of each node, ``0..num_graphs-1``.
        num_graphs: ``B``.
    """

    x: Tensor
    edge_index: Tensor
    batch: Tensor
    num_graphs: int

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device: torch.device | str, non_blocking: bool = False) -> GraphBatch:
        """The batch on ``device`` (like ``Tensor.to``)."""
        return GraphBatch(self.x.to(device, non_blocking=non_blocking),
                          self.edge_index.to(device, non_blocking=non_blocking),
                          self.batch.to(device, non_blocking=non_blocking), self.num_graphs)

    def with_features(self, x: Tensor) -> GraphBatch:
        """The same graphs with node features ``x`` (same number of rows)."""
        if x.shape[0] != self.num_nodes:
            raise ValueError(f"x: expected {self.num_nodes} rows (one per node), got {tuple(x.shape)}")
        return GraphBatch(x, self.edge_index, self.batch, self.num_graphs)


def adjacency_to_edge_index(adj: Tensor) -> Tensor:
    """Dense adjacency ``(B, V, V)`` (bool or 0/1) of ``B`` graphs → edge index ``(2, E)`` of their disjoint union
    (graph ``b``'s node ``j`` is node ``b·V + j``), edges in row-major order."""
    b, v, _ = adj.shape
    g, i, j = adj.nonzero(as_tuple=True)
    return torch.stack([g * v + i, g * v + j])


class SCMGraphDataset:
    """SCM-Graph; see the module docstring for the model, the renderer and the layout.

    Args:
        split: ``train`` (confounded, ``rho``), ``probe`` or ``test`` (``do(style ~ uniform)``).
        root: unused (generation is fast, nothing is cached); accepted like every dataset.
        n: number of graphs (default 256 / 64 / 64).
        nodes: nodes per graph ``V`` (>= 2, default 64).
        num_classes: communities ``K`` (>= 2, default 4).
        num_features: feature width ``F`` (>= 2K, default 32).
        p_in, p_out: edge probabilities inside / between communities (0 <= p_out <= p_in <= 1).
        content_strength, style_strength: amplitudes of the class and style directions in the features (>= 0).
        rho: strength of the ``cls -> style`` edge in ``train``.
        seed: base seed; graph ``g`` is deterministic per (seed, split, g).

    Attributes:
        x: float ``(G, V, F)``; adj: bool ``(G, V, V)``; labels: long ``(G, V)``; latents: name → ``(G, V)``.

    Raises:
        ValueError: a bad argument, named.
    """

    name = "scm_graph"
    label_var = "cls"
    latent_roles = {"cls": "content", "style": "style"}

    def __init__(
        self,
        split: str = "train",
        root: Any = None,
        n: int | None = None,
        nodes: int = 64,
        num_classes: int = 4,
        num_features: int = 32,
        p_in: float = 0.25,
        p_out: float = 0.02,
        content_strength: float = 1.0,
        style_strength: float = 2.0,
        rho: float = 0.9,
        seed: int = 0,
    ) -> None:
        check_split(split)
        n = DEFAULT_GRAPHS[split] if n is None else n
        for name, value, low in (("n", n, 1), ("nodes", nodes, 2), ("num_classes", num_classes, 2),
                                 ("num_features", num_features, 1), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if num_features < 2 * num_classes:
            raise ValueError(f"num_features must be >= 2 * num_classes = {2 * num_classes} (one content and one "
                             f"style direction per class), got {num_features}")
        for name, value in (("p_in", p_in), ("p_out", p_out), ("rho", rho)):
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
        if p_out > p_in:
            raise ValueError(f"p_out must be <= p_in (assortative communities), got p_out={p_out}, p_in={p_in}")
        for name, value in (("content_strength", content_strength), ("style_strength", style_strength)):
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value < float("inf"):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.split, self.n, self.nodes, self.seed = split, int(n), int(nodes), int(seed)
        self.num_classes, self.num_features = int(num_classes), int(num_features)
        self.p_in, self.p_out, self.rho = float(p_in), float(p_out), float(rho)
        self.content_strength, self.style_strength = float(content_strength), float(style_strength)
        self.class_names = [f"community_{k}" for k in range(self.num_classes)]
        q, _ = np.linalg.qr(derive_rng(self.seed, "scm_graph", "directions").normal(size=(num_features, num_features)))
        self.content_directions = q[:, :num_classes].T.astype(np.float32)  # (K, F), orthonormal rows
        self.style_directions = q[:, num_classes:2 * num_classes].T.astype(np.float32)
        self.base_scm = self.build_scm()
        self.scm = self.base_scm if split == "train" else self.base_scm.do(style=uniform_choice(self.num_classes))

        v = self.nodes
        keys = [(self.seed, _SPLIT_CODES[split], g) for g in range(self.n)]
        parts = [self.scm.sample_noise(v, key) for key in keys]
        self.noise = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        self.render_noise = {
            "feature_noise": np.concatenate([derive_rng(key, "features").normal(size=(v, num_features))
                                             for key in keys]).astype(np.float32),
            "edge_seed": np.array([derive_rng(key, "edges").integers(0, 2**62) for key in keys], dtype=np.int64),
        }
        values = self.scm.evaluate(self.noise, n=self.n * v)
        x, adj = self.render(values, np.arange(self.n))
        self.x, self.adj = x, adj
        self.labels = torch.from_numpy(values[self.label_var].astype(np.int64)).view(self.n, v)
        self.latents = {k: torch.from_numpy(np.asarray(a).astype(np.int64)).view(self.n, v) for k, a in values.items()}

    # ------------------------------------------------------------------ model and renderer
    def build_scm(self) -> SCM:
        k, rho = self.num_classes, self.rho

        def style(p: dict[str, np.ndarray], u: np.ndarray) -> np.ndarray:
            other = np.minimum((u[:, 1] * k).astype(np.int64), k - 1)
            return np.where(u[:, 0] < rho, p["cls"], other)

        return (
            SCM()
            .add("cls", mechanism=lambda p, u: np.minimum((u * k).astype(np.int64), k - 1),
                 noise=lambda rng, n: rng.random(n))
            .add("style", parents=["cls"], mechanism=style, noise=lambda rng, n: rng.random((n, 2)))
        )

    def edge_noise(self, graph: int) -> np.ndarray:
        """The uniform pair noise ``(V, V)`` of graph ``graph`` (symmetric; the diagonal is unused)."""
        u = np.random.default_rng(int(self.render_noise["edge_seed"][graph])).random((self.nodes, self.nodes))
        return np.triu(u, 1) + np.triu(u, 1).T

    def render(self, values: Mapping[str, np.ndarray], graphs: np.ndarray) -> tuple[Tensor, Tensor]:
        """Features float ``(B, V, F)`` and adjacency bool ``(B, V, V)`` of graphs ``graphs`` from their node
        values (``cls``, ``style``: ``(B·V,)``, graph after graph) and their stored noise."""
        v, b = self.nodes, len(graphs)
        cls = np.asarray(values["cls"], dtype=np.int64).reshape(b, v)
        sty = np.asarray(values["style"], dtype=np.int64).reshape(b, v)
        rows = (np.asarray(graphs)[:, None] * v + np.arange(v)[None, :]).reshape(-1)
        eps = self.render_noise["feature_noise"][rows].reshape(b, v, -1)
        x = self.content_strength * self.content_directions[cls] + self.style_strength * self.style_directions[sty]
        x = (x + eps).astype(np.float32)
        adj = np.empty((b, v, v), dtype=bool)
        for i, g in enumerate(np.asarray(graphs).tolist()):
            same = cls[i][:, None] == cls[i][None, :]
            adj[i] = self.edge_noise(g) < np.where(same, self.p_in, self.p_out)
            np.fill_diagonal(adj[i], False)
        return torch.from_numpy(x), torch.from_numpy(adj)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return self.n

    @property
    def num_nodes(self) -> int:
        """Nodes over all graphs, ``G·V``."""
        return self.n * self.nodes

    def _index(self, i: int) -> int:
        i = int(i)
        if not -self.n <= i < self.n:
            raise IndexError(f"index {i} out of range for dataset of {self.n} graphs")
        return i % self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        """Graph ``i``: ``x`` ``(V, F)``, ``adj`` ``(V, V)``, ``edge_index`` ``(2, E)``, ``label`` ``(V,)``,
        ``latents``."""
        i = self._index(i)
        return {"x": self.x[i], "adj": self.adj[i], "edge_index": adjacency_to_edge_index(self.adj[i][None]),
                "label": self.labels[i], "latents": {k: v[i] for k, v in self.latents.items()}}

    def _indices(self, indices: Any) -> Tensor:
        idx = torch.as_tensor(indices).cpu()
        if idx.ndim != 1 or idx.is_floating_point() or idx.dtype == torch.bool:
            raise ValueError(f"indices must be a 1-D integer tensor, got shape {tuple(idx.shape)} dtype {idx.dtype}")
        return idx.long() % self.n

    def batch_of(self, x: Tensor, adj: Tensor) -> GraphBatch:
        """The disjoint union of graphs with features ``(B, V, F)`` and adjacency ``(B, V, V)``."""
        b, v = adj.shape[:2]
        return GraphBatch(x.reshape(b * v, -1), adjacency_to_edge_index(adj),
                          torch.arange(b).repeat_interleave(v), b)

    def get_batch(self, indices: Any) -> tuple[GraphBatch, Tensor]:
        """Graphs ``indices`` as one :class:`GraphBatch` and their node labels long ``(B·V,)``."""
        idx = self._indices(indices)
        return self.batch_of(self.x[idx], self.adj[idx]), self.labels[idx].reshape(-1)

    def all_graphs(self) -> GraphBatch:
        """Every graph of the split as one batch (node ``g·V + j`` is node ``j`` of graph ``g``)."""
        return self.batch_of(self.x, self.adj)

    def node_labels(self) -> Tensor:
        """Labels of every node, long ``(G·V,)``, in the order of :meth:`all_graphs`."""
        return self.labels.reshape(-1)

    def node_latents(self) -> dict[str, Tensor]:
        """Latents of every node, name → ``(G·V,)``, in the order of :meth:`all_graphs`."""
        return {k: v.reshape(-1) for k, v in self.latents.items()}

    def node_features(self) -> Tensor:
        """The raw node features ``(G·V, F)`` (the "raw features" baseline of a probe)."""
        return self.x.reshape(-1, self.num_features)

    # ------------------------------------------------------------------ interventions
    def _values(self, idx: np.ndarray, assignments: Mapping[str, Any], seed: Seed) -> dict[str, np.ndarray]:
        m = len(idx) * self.nodes
        fixed: dict[str, Any] = {}
        for k, a in assignments.items():
            if k not in self.scm:
                raise ValueError(f"{k}: not a variable of {self.name}; variables: {sorted(self.latents)}")
            if callable(a):
                a = a(derive_rng(seed, f"intervene({k})"), m)
            a = a.detach().cpu().numpy() if isinstance(a, Tensor) else np.asarray(a)
            if a.ndim > 0:
                a = a.reshape(-1)
                if a.shape[0] != m:
                    raise ValueError(f"{k}: expected one value per node ({m} = {len(idx)} graphs x {self.nodes}), "
                                     f"got {a.shape[0]}")
            if np.any((a < 0) | (a >= self.num_classes)) or not np.all(np.mod(a, 1) == 0):
                raise ValueError(f"{k}: expected integers in [0, {self.num_classes}), got {a!r}")
            fixed[k] = a.astype(np.int64)
        rows = (idx[:, None] * self.nodes + np.arange(self.nodes)[None, :]).reshape(-1)
        noise = {k: v[rows] for k, v in self.noise.items()}
        return self.scm.evaluate(noise, interventions=fixed or None, n=m)

    def intervene_batch(self, indices: Any, seed: Seed = 0, **assignments: Any) -> GraphBatch:
        """Graphs ``indices`` re-rendered from their stored noise under ``do(**assignments)``, as one batch.

        Each assignment is a constant, one value per node (``(B, V)`` or ``(B·V,)``), or a callable
        ``(rng, B·V) -> array`` drawn with ``seed``. With no assignment the result equals ``get_batch(indices)[0]``.
        """
        idx = self._indices(indices).numpy()
        x, adj = self.render(self._values(idx, assignments, seed), idx)
        return self.batch_of(x, adj)

    def intervene(self, index: int, **assignments: Any) -> dict[str, Any]:
        """Graph ``index`` re-rendered from the same exogenous noise under ``do(**assignments)`` (an item as
        ``dataset[index]``). Example: ``ds.intervene(0, style=2)`` keeps the adjacency, the labels and ``cls``
        and changes the features' style signal only."""
        i = self._index(index)
        values = self._values(np.array([i]), assignments, 0)
        x, adj = self.render(values, np.array([i]))
        return {"x": x[0], "adj": adj[0], "edge_index": adjacency_to_edge_index(adj), "label":
                torch.from_numpy(values[self.label_var].astype(np.int64)),
                "latents": {k: torch.from_numpy(np.asarray(a).astype(np.int64)) for k, a in values.items()}}

    def __repr__(self) -> str:
        edges = int(self.adj.sum()) // 2
        return (f"SCMGraphDataset(split={self.split!r}, graphs={self.n}, nodes={self.nodes}, "
                f"features={self.num_features}, classes={self.num_classes}, edges={edges})")
