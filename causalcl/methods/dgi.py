"""Deep Graph Infomax (Veličković, Fedus, Hamilton, Liò, Bengio, Hjelm; ICLR 2019, arXiv 1809.10341; in the
CL survey of the seeds).

For a graph (X, A): a corruption (X̃, Ã) = C(X, A) -- here, as in the paper's transductive experiments, the
rows of X shuffled among the nodes of each graph with A kept; the encoder gives patch representations
H = E(X, A) and H̃ = E(X̃, Ã) (a GCN, ``causalcl.models.gcn``, PReLU); the readout summarises the graph,
s = R(H) = σ(1/N Σ_i h_i); a bilinear discriminator scores patch-summary pairs, D(h, s) = σ(hᵀ W s + b).
The loss is the binary cross-entropy form of the paper's Equation 1 (``causalcl.losses.dgi_loss``)::

    L = −1/(N + M) ( Σ_i log D(h_i, s) + Σ_j log(1 − D(h̃_j, s)) )

A batch of B graphs (their disjoint union, ``GraphBatch``) is handled as DGI does on PPI: one summary per
graph, each node (real or corrupted) scored against the summary of its own graph.

Views (``make_views``): ``[graph, perm]``, the ``GraphBatch`` and the corruption's row permutation long ``(N,)``
(drawn from the step's generator, within each graph; the image augmentation is not used). Under
``--views interventional`` the graph is a counterfactual do(style = s') of each node (``scm_graph``).

Defaults: discriminator ``nn.Bilinear(D, D, 1)`` with bias (the reference implementation's), weights
Xavier-uniform, bias 0. Backbone: ``gcn`` (two 64-wide PReLU layers by default; DGI's transductive encoder
is one 512-wide layer: ``gcn`` with ``widths=(512,)``). The embeddings evaluated are the node embeddings H.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..losses import dgi_loss, dgi_readout
from ..models.gcn import GCN, normalized_adjacency
from .base import Method

if TYPE_CHECKING:
    from ..data.interventional import InterventionalViews


def corruption_permutation(batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random permutation of the nodes within each graph, long ``(N,)``, for node-graph ids ``batch`` sorted
    graph after graph (as a ``GraphBatch`` holds them): ``x[perm]`` are the row-shuffled features."""
    src = generator.device if generator is not None else batch.device
    noise = torch.rand(batch.shape[0], generator=generator, device=src, dtype=torch.float64).to(batch.device)
    return torch.argsort(batch.double() + noise)


class DGI(Method):
    """Deep Graph Infomax; see the module docstring.

    Args:
        backbone: a graph encoder taking a ``GraphBatch`` (``.x``, ``.edge_index``) to node embeddings (N, D)
            with ``feature_dim``; a ``causalcl.models.GCN`` reuses one normalised adjacency for both passes.

    Raises:
        ValueError: a backbone without ``feature_dim``, or bad views (named).
    """

    name = "dgi"
    input_kind = "graph"
    num_views = 1

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__(backbone)
        d = self.feature_dim
        self.discriminator = nn.Bilinear(d, d, 1)
        nn.init.xavier_uniform_(self.discriminator.weight)
        nn.init.zeros_(self.discriminator.bias)

    def make_views(self, augment: Callable[..., torch.Tensor] | None, images, generator: torch.Generator | None = None
                   ) -> list:
        """``[graph, perm]``: the batch itself and the corruption's permutation (``augment`` is not used)."""
        return [images, corruption_permutation(images.batch, generator)]

    def make_interventional_views(self, views: InterventionalViews, images, indices: torch.Tensor,
                                  generator: torch.Generator) -> list:
        graph = views(images, indices, generator, 1)[0]
        return [graph, corruption_permutation(graph.batch, generator)]

    def encode_pair(self, graph, perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Node embeddings of the graph and of its corruption (rows of ``x`` permuted by ``perm``)."""
        if isinstance(self.backbone, GCN):
            x = graph.x
            dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
            adjacency = normalized_adjacency(graph.edge_index, x.shape[0], dtype=dtype, device=x.device)
            return self.backbone(x, adjacency=adjacency), self.backbone(x[perm], adjacency=adjacency)
        return self.backbone(graph), self.backbone(graph.with_features(graph.x[perm]))

    def forward(self, views: list) -> dict[str, torch.Tensor]:
        if not isinstance(views, list | tuple) or len(views) != 2 or not hasattr(views[0], "edge_index"):
            raise ValueError("views: expected [graph, perm] (a GraphBatch and the corruption's permutation; "
                             f"make_views builds them), got {type(views).__name__}")
        graph, perm = views
        n = graph.x.shape[0]
        if not isinstance(perm, torch.Tensor) or perm.shape != (n,) or perm.is_floating_point():
            raise ValueError(f"views: the corruption permutation must be long ({n},), got "
                             f"{tuple(perm.shape) if isinstance(perm, torch.Tensor) else type(perm).__name__}")
        h, h_corrupt = self.encode_pair(graph, perm)
        summary = dgi_readout(h, graph.batch, graph.num_graphs)
        weight, bias = self.discriminator.weight[0], self.discriminator.bias
        loss = dgi_loss(h, h_corrupt, summary, weight, bias, graph.batch)
        with torch.no_grad():
            pos = ((h @ weight) * summary[graph.batch]).sum(1) + bias
            neg = ((h_corrupt @ weight) * summary[graph.batch]).sum(1) + bias
            accuracy = torch.cat([pos > 0, neg < 0]).float().mean()
        return {"loss": loss, "discriminator_accuracy": accuracy}
