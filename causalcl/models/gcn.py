"""A graph convolutional network (``gcn``) in plain torch, with ``torch.sparse`` propagation.

GCN layer (Kipf & Welling, ICLR 2017, "Semi-Supervised Classification with Graph Convolutional Networks",
Eq. 2): ``H' = act(Â H W + b)`` with the renormalised adjacency ``Â = D̃^{-1/2} (A + I) D̃^{-1/2}``,
``D̃_ii = Σ_j (A + I)_ij``. Deep Graph Infomax's encoder (Veličković et al., ICLR 2019) is this layer with
a PReLU activation, the default here.

Why plain torch and not ``torch_geometric``: PyG 2.x does install cleanly on CPU (pure Python, no compiled
extension needed for its ``GCNConv``), but it brings about a dozen further packages (aiohttp, requests,
psutil, xxhash, ...) that the rest of causalcl never uses, for a layer that is a few lines of
``torch.sparse``; the library's runtime dependencies (DESIGN §3) stay as they are. The propagation is
one sparse-dense product per layer, batched over any number of graphs (their disjoint union).

Input: node features ``x`` ``(N, F)`` and ``edge_index`` ``(2, E)`` (directed pairs ``source → target``;
list both directions of an undirected edge), or one object with ``.x`` and ``.edge_index`` (a
``causalcl.data.scm_graph.GraphBatch``). Output: node embeddings ``(N, feature_dim)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["GCN", "GCNLayer", "gcn", "normalized_adjacency"]


def normalized_adjacency(edge_index: torch.Tensor, num_nodes: int, dtype: torch.dtype = torch.float32,
                         device: torch.device | str | None = None) -> torch.Tensor:
    """``Â = D̃^{-1/2} (A + I) D̃^{-1/2}`` as a coalesced sparse COO tensor ``(N, N)``; ``A_ij = 1`` for each edge
    ``(i, j)`` of ``edge_index`` (a repeated edge counts once more, as a weight).

    Raises:
        ValueError: ``edge_index`` that is not ``(2, E)`` integer, or a node id outside ``[0, num_nodes)``.
    """
    if not isinstance(edge_index, torch.Tensor) or edge_index.ndim != 2 or edge_index.shape[0] != 2 \
            or edge_index.is_floating_point():
        shape = tuple(edge_index.shape) if isinstance(edge_index, torch.Tensor) else type(edge_index).__name__
        raise ValueError(f"edge_index: expected an integer tensor of shape (2, E), got {shape}")
    device = edge_index.device if device is None else torch.device(device)
    edge_index = edge_index.to(device).long()
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"edge_index: node ids must lie in [0, {num_nodes}), got "
                         f"[{int(edge_index.min())}, {int(edge_index.max())}]")
    loops = torch.arange(num_nodes, device=device)
    index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
    values = torch.ones(index.shape[1], dtype=dtype, device=device)
    adj = torch.sparse_coo_tensor(index, values, (num_nodes, num_nodes), check_invariants=False).coalesce()
    row, col = adj.indices()
    deg = torch.zeros(num_nodes, dtype=dtype, device=device).index_add_(0, row, adj.values())
    scale = deg.rsqrt()
    return torch.sparse_coo_tensor(adj.indices(), scale[row] * adj.values() * scale[col], (num_nodes, num_nodes),
                                   is_coalesced=True, check_invariants=False)


class GCNLayer(nn.Module):
    """One graph convolution ``Â X W + b`` (no activation)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)
        out = torch.sparse.mm(adjacency.to(h.dtype), h) if h.dtype in (torch.float32, torch.float64) else \
            torch.sparse.mm(adjacency, h.float()).to(h.dtype)  # sparse products in half precision: in float32
        return out + self.bias if self.bias is not None else out


class GCN(nn.Module):
    """A stack of GCN layers, each followed by the activation (PReLU by default, as DGI's encoder).

    Args:
        in_features: width ``F`` of the node features (``SCMGraphDataset.num_features``; default 32, the
            ``scm_graph`` default).
        widths: output width of each layer (default 64-64: two hops of propagation).
        activation: ``"prelu"`` (one learnable slope per layer, DGI), ``"relu"`` or ``"none"``.

    Attributes:
        feature_dim: ``widths[-1]``; last_conv: the last layer (output ``(N, feature_dim)`` before activation).

    Raises:
        ValueError: bad arguments (named), features of the wrong width, or bad ``edge_index``.
    """

    def __init__(self, in_features: int = 32, widths: Sequence[int] = (64, 64), activation: str = "prelu") -> None:
        super().__init__()
        if isinstance(in_features, bool) or int(in_features) != in_features or in_features < 1:
            raise ValueError(f"in_features: expected a positive integer, got {in_features!r}")
        widths = [int(w) for w in widths]
        if not widths or min(widths) < 1:
            raise ValueError(f"widths: expected at least one positive width, got {widths}")
        acts = {"prelu": nn.PReLU, "relu": nn.ReLU, "none": nn.Identity}
        if activation not in acts:
            raise ValueError(f"activation: expected one of {sorted(acts)}, got {activation!r}")
        self.in_features, self.activation = int(in_features), activation
        dims = [self.in_features, *widths]
        self.layers = nn.ModuleList(GCNLayer(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.acts = nn.ModuleList(acts[activation]() for _ in widths)
        self.feature_dim = widths[-1]
        self.last_conv = self.layers[-1]

    def forward(self, x, edge_index: torch.Tensor | None = None, *,
                adjacency: torch.Tensor | None = None) -> torch.Tensor:
        """Node embeddings ``(N, feature_dim)`` of features ``x`` ``(N, F)`` on the graph ``edge_index``, or on the
        precomputed ``adjacency`` (:func:`normalized_adjacency`, e.g. shared by DGI's clean and corrupted pass);
        ``x`` may also be a batch object with ``.x`` and ``.edge_index``."""
        if hasattr(x, "edge_index") and hasattr(x, "x"):
            x, edge_index = x.x, x.edge_index if edge_index is None else edge_index
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.in_features:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected node features of shape (N, {self.in_features}) (the GCN's in_features), "
                             f"got {shape}")
        if adjacency is None:
            if edge_index is None:
                raise ValueError("edge_index: the GCN needs the graph (edge_index or adjacency)")
            dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
            adjacency = normalized_adjacency(edge_index, x.shape[0], dtype=dtype, device=x.device)
        elif adjacency.shape != (x.shape[0], x.shape[0]):
            raise ValueError(f"adjacency: expected shape ({x.shape[0]}, {x.shape[0]}), got {tuple(adjacency.shape)}")
        h = x
        for layer, act in zip(self.layers, self.acts, strict=True):
            h = act(layer(h, adjacency))
        return h


def gcn(**kwargs: object) -> nn.Module:
    """The GCN backbone (DGI's encoder; 64-d node embeddings by default)."""
    return GCN(**kwargs)  # type: ignore[arg-type]
