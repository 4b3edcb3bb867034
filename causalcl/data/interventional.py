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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor


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
            variables = [name for name, role in roles.items() if role == "style"]
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

    def __call__(self, images: Tensor, indices: Tensor, generator: torch.Generator, num_views: int = 2) -> list[Tensor]:
        draw = torch.randint(2**62, (1,), generator=generator, device=generator.device)
        cpu = torch.Generator().manual_seed(int(draw))  # the renderer and donor draws run on the CPU
        views = []
        for _ in range(num_views):
            seed = int(torch.randint(2**31, (1,), generator=cpu))
            view = self.dataset.intervene_batch(indices, seed=seed, **self.assignments(len(indices), cpu))
            view = view.to(images.device)
            if self.augment is not None:
                view = self.augment(view, generator)
            views.append(view)
        return views
