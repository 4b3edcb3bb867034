"""Positive pairs as true counterfactuals: ``--views interventional`` on the SCM datasets.

Augmentation-based methods make a positive pair by transforming pixels and hoping the transform
changes style but not content. On an SCM dataset the style variables are known, so a positive pair
can be a pair of true counterfactuals: each view re-renders sample i from its own exogenous noise
under do(S₁ = s₁', …, S_m = s_m'), with every content variable (class, shape, pose) kept.

Choice (documented, exposed): each intervened value s_v' is the value of variable v in another,
uniformly drawn training item, independently per variable and per view. The assignments therefore
follow the empirical marginal of each style variable (the product of the marginals over variables),
which removes the class–background dependence of the confounded training environment within a
pair. With ``augment=True`` the counterfactual images also pass through the pixel augmentation
(crop, flip, colour), e.g. to add the invariances the SCM does not model.

LooC's leave-one-out views (``leave_one_out``) read each intervened style variable as one atomic
augmentation: q = do(S = s^q), k_0 = do(S = s^0) with every variable drawn afresh, and k_i =
do(S_i = s^q_i, S_{j≠i} = fresh draws) -- k_i shares style variable i with q and every other one is
redrawn (LooC's definition; issue 11 words it as the complement, "k_i differs from q only in style
latent i"). Fresh draws are independent, so a redrawn discrete variable equals q's by chance at the
rate of its marginal (as a redrawn LooC augmentation parameter may).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor


def style_variables(latent_roles: dict[str, str]) -> list[str]:
    """The variables interventional views intervene on by default: those ``latent_roles`` marks ``"style"``."""
    return [name for name, role in latent_roles.items() if role == "style"]


class InterventionalViews:
    """View function for the Trainer that renders ``num_views`` counterfactuals per sample.

    Args:
        dataset: an ``SCMImageDataset`` (``shapes`` or ``digits``) with ``latents`` and
            ``intervene_batch``.
        variables: the variables to intervene on; default: those the dataset's ``latent_roles``
            marks as ``"style"``.
        augment: optional pixel augmentation ``augment(images, generator)`` applied after rendering.
    """

    def __init__(self, dataset, variables: Sequence[str] | None = None,
                 augment: Callable[[Tensor, torch.Generator], Tensor] | None = None) -> None:
        if not hasattr(dataset, "intervene_batch") or not hasattr(dataset, "latents"):
            raise ValueError(f"views: 'interventional' needs an SCM dataset (shapes, digits) with true interventions; "
                             f"got {type(dataset).__name__}")
        roles = getattr(dataset, "latent_roles", {})
        if variables is None:
            variables = style_variables(roles)
        variables = list(variables)
        if not variables:
            raise ValueError("views: no style variables to intervene on (give augment.intervene_on)")
        unknown = [v for v in variables if v not in dataset.latents]
        if unknown:
            raise ValueError(f"augment.intervene_on: {unknown} are not latents of {type(dataset).__name__}; "
                             f"valid: {sorted(dataset.latents)}")
        content = [v for v in variables if roles.get(v) == "content"]
        if content:
            raise ValueError(f"augment.intervene_on: {content} are content variables of {type(dataset).__name__}; "
                             "intervening on them would change what the pair has in common")
        self.dataset, self.variables, self.augment = dataset, variables, augment

    def assignments(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        """One draw of do(S = s') for ``n`` samples: each variable from an independent random item."""
        size = len(self.dataset)
        out = {}
        for v in self.variables:
            donors = torch.randint(size, (n,), generator=generator)
            out[v] = self.dataset.latents[v][donors]
        return out

    def leave_one_out_assignments(self, n: int, generator: torch.Generator) -> list[dict[str, Tensor]]:
        """LooC's assignments ``[q, k_0, k_1..k_m]`` (m = ``len(variables)``): k_i takes variable i from q
        and draws every other variable afresh; q and k_0 are independent draws of all of them."""
        q, k0 = self.assignments(n, generator), self.assignments(n, generator)
        keys = []
        for shared in self.variables:
            fresh = self.assignments(n, generator)
            keys.append({v: q[v] if v == shared else fresh[v] for v in self.variables})
        return [q, k0, *keys]

    def render(self, indices: Tensor, assignment: dict[str, Tensor], seed: int, generator: torch.Generator,
               device: torch.device) -> Tensor:
        """Samples ``indices`` rendered under do(**assignment), on ``device``, then pixel-augmented if set."""
        view = self.dataset.intervene_batch(indices, seed=seed, **assignment).to(device)
        return self.augment(view, generator) if self.augment is not None else view

    @staticmethod
    def _cpu_generator(generator: torch.Generator) -> torch.Generator:
        draw = torch.randint(2**62, (1,), generator=generator, device=generator.device)
        return torch.Generator().manual_seed(int(draw))  # the renderer and donor draws run on the CPU

    def __call__(self, images: Tensor, indices: Tensor, generator: torch.Generator, num_views: int = 2) -> list[Tensor]:
        """``num_views`` counterfactuals per sample, each under its own independent draw of do(S = s')."""
        cpu = self._cpu_generator(generator)
        views = []
        for _ in range(num_views):
            seed = int(torch.randint(2**31, (1,), generator=cpu))
            views.append(self.render(indices, self.assignments(len(indices), cpu), seed, generator, images.device))
        return views

    def leave_one_out(self, images: Tensor, indices: Tensor, generator: torch.Generator) -> list[Tensor]:
        """LooC's views ``[q, k_0, k_1..k_m]`` under ``leave_one_out_assignments``, rendered (m + 2 views)."""
        cpu = self._cpu_generator(generator)
        assignments = self.leave_one_out_assignments(len(indices), cpu)
        seeds = [int(s) for s in torch.randint(2**31, (len(assignments),), generator=cpu)]
        return [self.render(indices, a, s, generator, images.device) for a, s in zip(assignments, seeds, strict=True)]
