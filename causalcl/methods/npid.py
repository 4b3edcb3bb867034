"""NPID: instance discrimination with a memory bank (Wu, Xiong, Yu, Lin, "Unsupervised Feature Learning via
Non-Parametric Instance Discrimination", CVPR 2018, arXiv 1805.01978).

Every training image is its own class. The backbone f and a linear layer map one augmented view of item i to
a unit vector f_i = normalize(W f(x_i)) (128-d); a memory bank holds one unit vector v_j per training item.
The non-parametric softmax P(i | f) = exp(v_i.f / tau) / sum_j exp(v_j.f / tau) has two losses (``loss=``):

* ``"softmax"`` (default): the paper's objective (eq. 2) computed exactly, the full softmax over all n entries,
  L = -1/N sum_i log P(i | f_i) (``causalcl.losses.instance_softmax``);
* ``"nce"`` (the paper's approximation for ImageNet, eq. 5-7): noise-contrastive estimation with m noise
  entries drawn uniformly from the bank, P(i|f) = exp(v_i.f/tau) / Z with the constant Z ~ n * mean exp(v.f/tau)
  estimated ONCE, on the first step, from that step's positive and noise scores, and kept
  (``causalcl.losses.instance_nce``): L = -1/N sum_i [log h(i, f_i) + sum_k log(1 - h(k, f_i))],
  h = P / (P + m/n). ``normalizer_momentum=mu`` keeps a moving average of the per-step estimates instead
  (Kaiming He's fix for CMC's NCE, HobbitLong/CMC#23, 0.99 there).

Why softmax by default: NCE approximates the softmax when n is too large for a (B x n) matmul (1.28 M on
ImageNet); at CIFAR scale the exact softmax costs one such matmul and the paper's CIFAR table has it ahead
(80.8 vs 80.4 % kNN). On the embedded ``shapes`` data (1024 items, 16 px, batch 128, 120 AdamW steps) NCE with
Z estimated once diverged -- loss 112 -> 4540 (SGD 0.03: -> 10 000), kNN 11.6 % (chance 12.5 %) -- as the bank
fills with the still-similar features of an early network and every noise entry outscores m/n; with
``normalizer_momentum=0.99`` the loss stayed at 11-19 (kNN 12.9 %); the softmax went 7.3 -> 4.5 (kNN 15.9 %).

The positive of anchor i is its own bank entry v_i (the memory, not the current feature), as the paper and its
code. After the optimiser step (``on_step_end``) the bank is updated with the features of the step:
v_i <- normalize(0.5 v_i + 0.5 f_i) (momentum 0.5, the official code's; §3.1 of the paper writes v_i <- f_i).

Item indices: the Trainer hands every batch's dataset indices to ``set_batch_indices`` and the training-set size
to ``bind_dataset`` (which allocates the bank); see ``causalcl.methods.memory_bank``. One view per image
(``num_views = 1``).

Noise: one draw of m indices per step, shared by every anchor of the global batch (the reference code draws m
per anchor). Each anchor still sees m i.i.d. uniform noise entries, so the loss and its gradient have the same
expectation; sharing turns a (B, m, D) gather into an (m, D) one and a single matmul.

Distributed: features are gathered with gradients and indices without; every rank evaluates the loss of the
global batch (as SimCLR) and applies the same update with the gathered (indices, features), so the banks,
Z and the noise draws are identical on every rank and equal to one process with the same global batch.

Defaults: tau = 0.07, m = 4096 noise entries (for ``loss="nce"``), momentum 0.5, 128-d embeddings, all the
paper's; a single linear layer after the backbone (the paper's replaced fc); the loss: softmax (above).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..distributed import gather, gather_no_grad
from ..losses import instance_nce, instance_softmax
from .base import Method
from .memory_bank import MemoryBank

LOSSES = ("softmax", "nce")


def check_bank_options(temperature: float, momentum: float, num_negatives: int,
                       normalizer_momentum: float | None) -> None:
    """The options NPID and PIRL share, each a ``ValueError`` naming it."""
    if normalizer_momentum is not None and (isinstance(normalizer_momentum, bool)
                                            or not isinstance(normalizer_momentum, int | float)
                                            or not 0.0 <= normalizer_momentum < 1.0):
        raise ValueError(f"normalizer_momentum: expected None (Z estimated once) or a value in [0, 1), "
                         f"got {normalizer_momentum!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not temperature > 0:
        raise ValueError(f"temperature: expected a positive float, got {temperature!r}")
    if isinstance(momentum, bool) or not isinstance(momentum, int | float) or not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum: expected a value in [0, 1), got {momentum!r}")
    if isinstance(num_negatives, bool) or not isinstance(num_negatives, int) or num_negatives < 1:
        raise ValueError(f"num_negatives: expected a positive int, got {num_negatives!r}")


class NPID(Method):
    """Non-parametric instance discrimination with a memory bank.

    Args:
        backbone: the encoder f.
        temperature: tau of the softmax / NCE.
        loss: ``"softmax"`` (the full bank) or ``"nce"`` (m noise entries, Z estimated once).
        num_negatives: m, noise entries per step for ``loss="nce"``.
        momentum: of the bank update, in [0, 1).
        embedding_dim: width of the linear layer after the backbone (and of the bank).
        normalizer_momentum: ``None`` (default, the paper): NCE's Z is estimated once, on the first step; mu in
            [0, 1): Z <- mu Z + (1 - mu) Z_batch every step (He's fix for CMC's NCE, 0.99 there).
    """

    name = "npid"
    num_views = 1

    def __init__(self, backbone: nn.Module, *, temperature: float = 0.07, loss: str = "softmax",
                 num_negatives: int = 4096, momentum: float = 0.5, embedding_dim: int = 128,
                 normalizer_momentum: float | None = None) -> None:
        super().__init__(backbone)
        check_bank_options(temperature, momentum, num_negatives, normalizer_momentum)
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {list(LOSSES)}, got {loss!r}")
        self.temperature, self.loss_name = float(temperature), loss
        self.num_negatives, self.momentum = num_negatives, float(momentum)
        self.normalizer_momentum = None if normalizer_momentum is None else float(normalizer_momentum)
        self.memory = MemoryBank(embedding_dim)  # validates embedding_dim
        self.projector = nn.Linear(self.feature_dim, embedding_dim)
        self._indices: Tensor | None = None
        self._pending: tuple[Tensor, Tensor, Tensor | None] | None = None  # indices, features, new Z

    def bind_dataset(self, num_items: int) -> None:
        self.memory.allocate(num_items)

    def set_batch_indices(self, indices: Tensor) -> None:
        self._indices = indices

    def forward(self, views: list[Tensor]) -> dict[str, Tensor]:
        self.check_views(views, 1)
        indices = self.memory.check_indices(self._indices, views[0].shape[0], self.name)
        z = self.projector(self.backbone(views[0]))
        z_all, idx_all = gather(z), gather_no_grad(indices)  # the global batch under DDP
        bank = self.memory()
        new_z = None
        if self.loss_name == "softmax":
            loss = instance_softmax(z_all, bank, idx_all, self.temperature)
        else:
            positive, negatives = bank[idx_all], bank[self.memory.noise(self.num_negatives)]
            new_z = self.memory.next_normalizer(z_all, positive, negatives, self.temperature, self.normalizer_momentum)
            normalizer = float(self.memory.normalizer if new_z is None else new_z)  # new_z: kept by on_step_end
            loss = instance_nce(z_all, positive, negatives, num_items=self.memory.num_items, normalizer=normalizer,
                                temperature=self.temperature)
        self._pending = (idx_all, F.normalize(z_all.detach(), dim=1), new_z)
        return {"loss": loss, "embeddings": [z]}

    def on_step_end(self, step: int, total_steps: int) -> None:
        """The bank rows of the last forward's items move towards their features; Z is kept once estimated."""
        self.memory.apply(self._pending, self.momentum)
        self._pending = None
