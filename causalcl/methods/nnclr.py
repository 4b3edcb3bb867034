"""NNCLR (Dwibedi, Aytar, Tompson, Sermanet, Zisserman, ICCV 2021, "With a Little Help from My Friends:
Nearest-Neighbor Contrastive Learning of Visual Representations", arXiv 2104.14548).

A backbone f, a projector g and a predictor h: z = g(f(x)), p = h(z). The positive of a sample is not its
other view but the nearest neighbour of its projection in a support set Q, a FIFO of the projections of
earlier batches; it is contrasted with the predictions of the other view (``causalcl.losses.nnclr_loss``)::

    l(z, p^+)_i = -log( exp(NN(z_i, Q)·p^+_i / τ) / Σ_k exp(NN(z_i, Q)·p^+_k / τ) ),   unit vectors
    L = ½ [ mean_i l(z¹, p²)_i + mean_i l(z², p¹)_i ]

NN(z, Q) = argmax_{q ∈ Q} ẑ·q̂ is a look-up without gradient, so the backbone and projector learn only
through the predictor. After the optimiser step the normalised projections z¹ of view 1 enter Q (the
official pseudo-code's ``fifo_update(Q, z1)``), replacing the oldest.

Step order: ``forward`` reads Q and stashes z¹ (detached); ``on_step_end`` enqueues it — ``forward`` changes
no state. Both views pass through f, g and h in one batch.

Support set at the start: peers (solo-learn, lightly) fill Q with random unit vectors, so during the first
K/B steps some positives are random vectors. Here the look-up uses only the entries filled so far
(``queue_filled`` counts them, capped at K; a buffer, so checkpoints carry it); at the very first step, with
Q empty, each projection is its own neighbour (the paper's "no support set" ablation).

Distributed: the look-up and the loss run on the global batch (projections gathered without gradients,
predictions with them), and every rank enqueues the projections of all ranks in rank order, which is the
global batch's order: the support set is the same on every rank and equal to one process's.

Defaults: τ = 0.1 (the paper; solo-learn's CIFAR recipe uses 0.2), support set of 6144 projections = 24
batches of the default 256, the paper's ratio (98 304 = 24 × 4096) scaled to CPU batches; projector
feature_dim → 512 → 128 and predictor 128 → 512 → 128 with BN + ReLU on the hidden layers, as this
package's SimCLR/BYOL at CPU scale (the paper: a 3-layer 2048-wide projector to 256 and a 4096-wide
predictor; ``projector``, ``projector_last_bn`` and ``predictor_hidden`` reach them, see
``assets/configs/nnclr_cifar10.yaml``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import gather, gather_no_grad, world_size
from ..losses import nnclr_loss
from ..losses._common import check_temperature
from ..models.heads import MLPHead
from .base import Method
from .momentum import FeatureQueue


class NNCLR(Method):
    """NNCLR: nearest-neighbour positives from a support queue, a predictor, symmetric InfoNCE.

    Args:
        backbone: the encoder f.
        temperature: τ of the loss.
        queue_size: K, the number of projections kept in the support set.
        projector: hidden and output widths of g after the backbone width.
        projector_last_bn: BatchNorm (without affine) on the projector's output (the paper, solo-learn).
        predictor_hidden: hidden width of the predictor h (its input and output width is the projector's).
    """

    name = "nnclr"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        temperature: float = 0.1,
        queue_size: int = 6144,
        projector: Sequence[int] = (512, 128),
        projector_last_bn: bool = False,
        predictor_hidden: int = 512,
    ) -> None:
        super().__init__(backbone)
        self.temperature = check_temperature(temperature)
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size <= 0:
            raise ValueError(f"queue_size: expected a positive int, got {queue_size!r}")
        if len(projector) < 1 or any(int(w) <= 0 for w in projector):
            raise ValueError(f"projector: expected positive widths ending with the output width, got {list(projector)}")
        if isinstance(predictor_hidden, bool) or not isinstance(predictor_hidden, int) or predictor_hidden <= 0:
            raise ValueError(f"predictor_hidden: expected a positive int, got {predictor_hidden!r}")
        out = int(projector[-1])
        self.projector = MLPHead([self.feature_dim, *projector], last_bn=bool(projector_last_bn))
        self.predictor = MLPHead([out, predictor_hidden, out])
        self.queue = FeatureQueue(queue_size, out)
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))
        self._pending: torch.Tensor | None = None  # z¹ of the last forward, enqueued in on_step_end
        self._filled: int | None = None  # queue_filled mirrored on the host (a slice length: no device read per step)

    def filled(self) -> int:
        """How many rows of the support set are filled (``queue_filled``, read from the device after a load only)."""
        if self._filled is None:
            self._filled = int(self.queue_filled)
        return self._filled

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super()._load_from_state_dict(*args, **kwargs)
        self._filled = None

    def support(self) -> torch.Tensor:
        """The filled part of the support set, (min(filled, K), D), detached."""
        return self.queue()[: self.filled()]

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        self.check_views(views, 2)
        z = self.projector(self.backbone(torch.cat(list(views[:2]))))
        p = self.predictor(z)
        z1, z2 = z.chunk(2)
        p1, p2 = p.chunk(2)
        loss = nnclr_loss(gather_no_grad(z1.detach()), gather_no_grad(z2.detach()), gather(p1), gather(p2),
                          self.support().to(z.dtype), self.temperature)
        self._pending = F.normalize(z1.detach(), dim=1)
        return {"loss": loss, "embeddings": [z1, z2]}

    def on_step_end(self, step: int, total_steps: int) -> None:
        """The projections z¹ of the last forward (of every rank) enter the support set."""
        if self._pending is None:
            return
        n = self._pending.shape[0] * world_size()
        self.queue.enqueue(self._pending)
        self._filled = min(self.filled() + n, self.queue.size)
        self.queue_filled.fill_(self._filled)
        self._pending = None
