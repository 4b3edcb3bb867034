"""LooC and LooC++ (Xiao, Wang, Efros, Darrell, "What Should Not Be Contrastive in Contrastive
Learning", ICLR 2021, arXiv 2008.05659).

Views (``make_views``): n atomic augmentations T_1..T_n (parametric ``StyleIntervention``s from
``causalcl.data.atomic``; default colour jitter and rotation) on top of a common base augmentation
(a crop + flip drawn independently for every view). The query q and the key k_0 draw every atomic
parameter independently; the key k_i (i = 1..n) copies q's parameter t_i^q of augmentation i and
draws the others afresh: n + 2 views ``[q, k_0, k_1, .., k_n]`` per image.

Interventional views (``--views interventional`` on ``shapes`` / ``digits``; ``style_variables``): the
atomic augmentations are the SCM's style variables S_1..S_n (``augment.intervene_on``, default every
style latent of the dataset; ``causalcl.build.build_method`` passes them, so the model has one space
per variable). Views are true counterfactuals (``InterventionalViews.leave_one_out``): q = do(S = s^q),
k_0 = do(S = s^0) with every variable drawn afresh, k_i = do(S_i = s^q_i, S_{j≠i} drawn afresh) -- k_i
shares style variable i with q and differs in the others, LooC's definition (issue 11's "k_i differs
from q only in style latent i" is the complement; with it Z_i would be the space invariant to S_i).
Z_i is then the space that keeps S_i (e.g. ``loss_bg_texture``). Cost: n + 2 renders and encoder
passes per step (6 on ``shapes``' 4 style latents, 8 on ``digits``' 6; fewer with ``augment.intervene_on``).

Model: a shared backbone V, n + 1 projection heads h_0..h_n (spaces Z_0..Z_n), a MoCo key encoder
(EMA copy of V and the heads) and one queue of keys per space. Loss (``causalcl.losses.looc_loss``,
research/methods.md §4), τ-scaled cosine similarities, queries from the online network, keys from
the key encoder::

    L = 1/(n+1) Σ_{s=0..n} L_{Z_s}
    L_{Z_0} = 1/(n+1) Σ_j −log( e^{q·k_j/τ} / (e^{q·k_j/τ} + Σ_u e^{q·u/τ}) )        all keys positive
    L_{Z_i} = −log( e^{q·k_i/τ} / (Σ_{j=0..n} e^{q·k_j/τ} + Σ_u e^{q·u/τ}) )          only k_i positive

so Z_0 is invariant to every augmentation and Z_i is invariant to all but augmentation i (k_0 and
k_{j≠i} differ from q in augmentation i and are negatives). u runs over the space's queue. Choices
(the paper's text is not available to us; documented): the base augmentation is the run's
``SimCLRAugment`` with its colour jitter and grayscale switched off (``base="crop"``); each space
enqueues the key encoder's embeddings of k_0; several Z_0 positives are averaged.

``forward`` stashes the k_0 keys; ``on_step_end`` does the EMA update of the key encoder, then
enqueues them (MoCo's order). Under DDP queries are gathered with gradients, keys without.

``looc`` evaluates the backbone V. ``looc_pp`` (LooC++) trains identically and evaluates the
concatenation [V, h_0(V), .., h_n(V)] of V and the embedding spaces Z_0..Z_n (``concat="output"``,
default: "the concatenation of all embedding sub-spaces"; the head outputs, not normalised — the
probes standardise features) or [V, hidden layer of h_0, .., hidden layer of h_n]
(``concat="hidden"``: the penultimate layer of every head; (n+1)·512 extra dimensions by default,
which makes the linear-probe diagnostics several times slower); its ``encoder`` exposes the
backbone's ``last_conv`` for CAM.

Defaults (MoCo's in this project, for short CPU runs): τ = 0.2 (paper 0.07), momentum 0.99
(paper 0.999), queue 4096 per space (paper 16384), heads feature_dim → 512 → 128 with BatchNorm;
colour jitter (0.4, 0.4, 0.4, 0.1) with p 0.8 and grayscale p 0.2; rotation by 0/90/180/270°.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..causal.style import StyleIntervention
from ..data.atomic import ATOMIC_AUGMENTATIONS, color_jitter_intervention, rotation_intervention
from ..data.augment import SimCLRAugment
from ..data.interventional import InterventionalViews
from ..distributed import gather, gather_no_grad
from ..losses._common import check_real
from ..losses.looc import looc_space_loss
from ..models.heads import MLPHead
from .base import Method
from .momentum import FeatureQueue, ema_update_, frozen_copy

BASES = ("crop", "augment", "none")


class ConcatSpacesEncoder(nn.Module):
    """LooC++'s evaluation encoder: images → [V(x), head_0 part(V(x)), .., head_n part(V(x))]."""

    def __init__(self, backbone: nn.Module, heads: nn.ModuleList, concat: str) -> None:
        super().__init__()
        self.backbone, self.heads, self.concat = backbone, heads, concat
        widths = [h.widths[-2] if concat == "hidden" else h.widths[-1] for h in heads]
        self.feature_dim = int(backbone.feature_dim) + sum(widths)
        self.last_conv = backbone.last_conv

    @staticmethod
    def _hidden(head: nn.Module, v: Tensor) -> Tensor:
        for layer in list(head)[:-1]:  # all but the last Linear: the head's penultimate layer
            v = layer(v)
        return v

    def forward(self, x: Tensor) -> Tensor:
        v = self.backbone(x)
        parts = [self._hidden(head, v) if self.concat == "hidden" else head(v) for head in self.heads]
        return torch.cat([v, *parts], dim=1)


class LooC(Method):
    """LooC: leave-one-out views, one embedding space per atomic augmentation plus an invariant one.

    Args:
        backbone: the shared backbone V (its EMA copy is the key encoder's).
        augmentations: names of the atomic augmentations, from ``causalcl.data.atomic.ATOMIC_AUGMENTATIONS``.
        temperature: τ; momentum: EMA rate of the key encoder; queue_size: keys per space's queue.
        projector: hidden and output widths of every head after the backbone width.
        color_jitter, color_p, grayscale_p: the colour augmentation's strengths and probabilities.
        rotation_angles: the rotation augmentation's angles (multiples of 90).
        base: the augmentation common to every view: ``"crop"`` (the run's SimCLRAugment without
            colour jitter and grayscale), ``"augment"`` (the run's augmentation as given), ``"none"``.
        concat: LooC++ only: ``"hidden"`` or ``"output"`` layers of the heads (module docstring).
        style_variables: interventional views only: the SCM style variables that replace the atomic
            augmentations (one space each; ``augmentations`` is then unused). Set by
            ``causalcl.build.build_method`` from ``augment.intervene_on`` or the dataset's style latents.
    """

    name = "looc"

    def __init__(self, backbone: nn.Module, *, augmentations: Sequence[str] = ("color", "rotation"),
                 temperature: float = 0.2, momentum: float = 0.99, queue_size: int = 4096,
                 projector: Sequence[int] = (512, 128), color_jitter: Sequence[float] = (0.4, 0.4, 0.4, 0.1),
                 color_p: float = 0.8, grayscale_p: float = 0.2, rotation_angles: Sequence[int] = (0, 90, 180, 270),
                 base: str = "crop", concat: str = "output", style_variables: Sequence[str] | None = None) -> None:
        super().__init__(backbone)
        names = [augmentations] if isinstance(augmentations, str) else list(augmentations)
        unknown = [a for a in names if a not in ATOMIC_AUGMENTATIONS]
        if not names or unknown or len(set(names)) != len(names):
            raise ValueError(f"augmentations: expected distinct names from {sorted(ATOMIC_AUGMENTATIONS)}, got {names}")
        self.temperature = check_real(temperature, "temperature", low=0.0, low_open=True)
        self.momentum = check_real(momentum, "momentum", low=0.0, high=1.0)
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size <= 0:
            raise ValueError(f"queue_size: expected a positive int, got {queue_size!r}")
        if len(projector) < 2:
            raise ValueError(f"projector: expected hidden and output widths (at least two), got {projector}")
        if base not in BASES:
            raise ValueError(f"base: expected one of {BASES}, got {base!r}")
        if concat not in ("hidden", "output"):
            raise ValueError(f"concat: expected 'hidden' or 'output', got {concat!r}")
        variables = [style_variables] if isinstance(style_variables, str) else style_variables
        if variables is not None and (not variables or len(set(variables)) != len(variables)
                                      or not all(isinstance(v, str) for v in variables)):
            raise ValueError(f"style_variables: expected distinct variable names, got {style_variables!r}")
        builders = {"color": lambda: color_jitter_intervention(color_jitter, color_p, grayscale_p),
                    "rotation": lambda: rotation_intervention(rotation_angles)}
        self.augmentations = tuple(names)
        self.style_variables = None if variables is None else tuple(variables)
        # the pixel atoms, or none when the style variables are intervened on instead
        self.atoms: list[StyleIntervention] = [builders[a]() for a in names] if variables is None else []
        factors = self.style_variables or self.augmentations
        self.num_views = len(factors) + 2
        if self.style_variables is None:
            self.interventional_refusal = (f"its embedding spaces are built for the pixel augmentations {list(names)}; "
                                           "build it with style_variables (causalcl.build.build_method does)")
        self.base, self.concat = base, concat
        self.heads = nn.ModuleList(MLPHead([self.feature_dim, *projector]) for _ in range(len(factors) + 1))
        self.key_backbone = frozen_copy(self.backbone)
        self.key_heads = frozen_copy(self.heads)
        self.queues = nn.ModuleList(FeatureQueue(queue_size, int(projector[-1])) for _ in self.heads)
        self._pending_keys: list[Tensor] | None = None  # k_0 keys per space, enqueued in on_step_end
        self._base_cache: tuple[object, Callable[..., Tensor]] | None = None

    @property
    def spaces(self) -> list[str]:
        """Names of the embedding spaces: ``"invariant"`` then one per atomic augmentation (or style variable)."""
        return ["invariant", *(self.style_variables or self.augmentations)]

    # ------------------------------------------------------------------ views
    def base_augment(self, augment: Callable[..., Tensor]) -> Callable[..., Tensor]:
        """The augmentation every view starts from (see ``base``)."""
        if self.base == "none":
            return lambda images, generator=None: images
        if self.base == "augment":
            return augment
        if not isinstance(augment, SimCLRAugment):
            raise ValueError(f"base: 'crop' derives the crop from a SimCLRAugment, got {type(augment).__name__}; "
                             "use base='augment' or base='none'")
        if self._base_cache is None or self._base_cache[0] is not augment:
            a = augment
            crop = SimCLRAugment(a.image_size, scale=a.scale, ratio=a.ratio, flip_p=a.flip_p, jitter_p=0.0,
                                 grayscale_p=0.0, blur_p=a.blur_p, blur_sigma=a.blur_sigma, blur_kernel=a.blur_kernel)
            self._base_cache = (augment, crop)
        return self._base_cache[1]

    def view_parameters(self, n: int, generator: torch.Generator | None = None,
                        device: torch.device | str | None = None) -> list[list[Tensor]]:
        """Atomic parameters of the n + 2 views: ``params[v][i]`` is augmentation i's (n, p) values in view
        v = q, k_0, k_1..k_n; ``params[1 + i + 1][i]`` is ``params[0][i]`` (k_i shares q's parameter i)."""
        q = [atom.sample(n, generator, device) for atom in self.atoms]
        params = [q, [atom.sample(n, generator, device) for atom in self.atoms]]
        for i in range(len(self.atoms)):
            params.append([q[j] if j == i else atom.sample(n, generator, device) for j, atom in enumerate(self.atoms)])
        return params

    def apply_atoms(self, images: Tensor, params: Sequence[Tensor]) -> Tensor:
        """The atomic augmentations, in order, with explicit parameters."""
        for atom, a in zip(self.atoms, params, strict=True):
            images = atom.apply(images, a)
        return images

    def leave_one_out_views(self, augment: Callable[..., Tensor], images: Tensor,
                            generator: torch.Generator | None = None) -> tuple[list[Tensor], list[list[Tensor]]]:
        """``([q, k_0, k_1..k_n], params)``: the views and the atomic parameters each was made with."""
        base = self.base_augment(augment)
        params = self.view_parameters(images.shape[0], generator, images.device)
        return [self.apply_atoms(base(images, generator), p) for p in params], params

    def make_views(self, augment: Callable[..., Tensor], images: Tensor,
                   generator: torch.Generator | None = None) -> list[Tensor]:
        if self.style_variables is not None:
            raise ValueError(f"style_variables: {list(self.style_variables)} are intervened on by interventional "
                             "views (augment.views=interventional); pixel views need style_variables=None")
        return self.leave_one_out_views(augment, images, generator)[0]

    def make_interventional_views(self, views: InterventionalViews, images: Tensor, indices: Tensor,
                                  generator: torch.Generator) -> list[Tensor]:
        """``[q, k_0, k_1..k_n]`` as true counterfactuals: k_i shares style variable i with q (module docstring)."""
        if self.style_variables is None or list(views.variables) != list(self.style_variables):
            raise ValueError(f"style_variables: the model has spaces for {self.style_variables} but the views "
                             f"intervene on {list(views.variables)}; build both from one config (augment.intervene_on)")
        return views.leave_one_out(images, indices, generator)

    # ------------------------------------------------------------------ loss
    @torch.no_grad()
    def keys(self, keys: Tensor) -> list[Tensor]:
        """Key-encoder embeddings of the stacked key views (K·B, ...) per space, each (K, B, D)."""
        k = self.num_views - 1
        h = self.key_backbone(keys)
        return [head(h).view(k, keys.shape[0] // k, -1) for head in self.key_heads]

    def forward(self, views: list[Tensor]) -> dict[str, Tensor]:
        self.check_views(views, self.num_views)
        h = self.backbone(views[0])
        queries = [head(h) for head in self.heads]
        keys = self.keys(torch.cat(list(views[1:self.num_views])))
        out: dict[str, Tensor] = {}
        terms = []
        for s, (q, k, queue) in enumerate(zip(queries, keys, self.queues, strict=True)):
            k_global = gather_no_grad(k.transpose(0, 1).contiguous()).transpose(0, 1)
            term = looc_space_loss(gather(q), k_global, queue(), None if s == 0 else s, self.temperature)
            out[f"loss_{self.spaces[s]}"] = term.detach()
            terms.append(term)
        self._pending_keys = [F.normalize(k[0], dim=1) for k in keys]
        return {"loss": torch.stack(terms).mean(), **out, "embeddings": [queries[0]]}

    def on_step_end(self, step: int, total_steps: int) -> None:
        """EMA update of the key encoder, then each space's k_0 keys of the last forward enter its queue."""
        ema_update_(self.key_backbone, self.backbone, self.momentum)
        ema_update_(self.key_heads, self.heads, self.momentum)
        if self._pending_keys is not None:
            for queue, k in zip(self.queues, self._pending_keys, strict=True):
                queue.enqueue(k)
            self._pending_keys = None


class LooCPP(LooC):
    """LooC++: LooC's training; the evaluated encoder concatenates V and every embedding space."""

    name = "looc_pp"

    @property
    def encoder(self) -> nn.Module:
        return ConcatSpacesEncoder(self.backbone, self.heads, self.concat)
