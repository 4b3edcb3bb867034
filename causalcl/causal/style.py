"""Style interventions: a data augmentation read as an intervention do(S = a) on the style S.

ReLIC (Mitrovic, McWilliams, Walker, Buesing, Blundell; ICLR 2021, arXiv 2010.07922) assumes the
data are generated from content C and style S (independent), and reads each content-preserving
augmentation a as an intervention ``do(S = a)``: ``x^a`` is the image the world would have produced
with its style set to ``a``. Representations that predict the same proxy target under every
intervention, p^{do(S=a_l)}(Y^R | f(x)) = p^{do(S=a_k)}(Y^R | f(x)), are invariant to style. ReLIC
compares the ordered pairs (a_l, a_k) of a set of interventions (``StyleIntervention.pairs``).

A ``StyleIntervention`` is either

* **opaque**: ``StyleIntervention(name, augment)``: ``augment(images, generator)`` draws a style
  value a per sample and applies it in one go (e.g. ``SimCLRAugment``); or
* **parametric**: ``StyleIntervention(name, sample=..., apply=...)``: ``sample(n, generator, device)``
  draws the style values a explicitly (an ``(n, p)`` tensor) and ``apply(images, a)`` applies them,
  so the *same* a can be imposed on another batch (LooC's keys share the query's parameter of one
  augmentation). ``causalcl.data.atomic`` builds the colour-jitter and rotation interventions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor

__all__ = ["StyleIntervention"]

T = TypeVar("T")
Augment = Callable[[Tensor, "torch.Generator | None"], Tensor]
Sampler = Callable[[int, "torch.Generator | None", torch.device], Tensor]
Applier = Callable[[Tensor, Tensor], Tensor]


class StyleIntervention:
    """An augmentation read as ``do(S = a)`` (see the module docstring).

    Args:
        name: a short name (``"color"``, ``"rotation"``, ``"simclr"``).
        augment: ``augment(images, generator) -> images`` for an opaque intervention.
        sample: ``sample(n, generator, device) -> a`` of shape ``(n, p)`` (parametric form).
        apply: ``apply(images, a) -> images`` (parametric form; ``a`` as returned by ``sample``).
        parameters: the distribution's settings, for ``repr`` and reports (e.g. ``{"angles": (0, 90)}``).

    Example:
        >>> flip = StyleIntervention("flip", sample=lambda n, g, d: torch.ones(n, 1, device=d),
        ...                         apply=lambda x, a: torch.where(a.view(-1, 1, 1, 1) > 0, x.flip(-1), x))
        >>> flip(torch.rand(2, 3, 4, 4)).shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(self, name: str, augment: Augment | None = None, *, sample: Sampler | None = None,
                 apply: Applier | None = None, parameters: Mapping[str, Any] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"name: expected a non-empty string, got {name!r}")
        if augment is not None and (sample is not None or apply is not None):
            raise ValueError("augment: give either augment (opaque) or sample + apply (parametric), not both")
        if augment is None and (sample is None or apply is None):
            raise ValueError("sample/apply: a parametric intervention needs both sample and apply "
                             "(or pass augment for an opaque one)")
        for label, fn in (("augment", augment), ("sample", sample), ("apply", apply)):
            if fn is not None and not callable(fn):
                raise ValueError(f"{label}: expected a callable, got {type(fn).__name__}")
        self.name = name
        self._augment, self._sample, self._apply = augment, sample, apply
        self.parameters = dict(parameters or {})

    @property
    def is_parametric(self) -> bool:
        """True when the style values a can be drawn and applied separately."""
        return self._augment is None

    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> Tensor:
        """Draw ``n`` style values ``a`` (parametric interventions only)."""
        if self._sample is None:
            raise ValueError(f"sample: intervention {self.name!r} is opaque (built from an augment callable)")
        if int(n) != n or n < 0:
            raise ValueError(f"n: expected a non-negative integer, got {n!r}")
        return self._sample(int(n), generator, torch.device(device or "cpu"))

    def apply(self, images: Tensor, a: Tensor) -> Tensor:
        """``images`` under ``do(S = a)`` with explicit per-sample values ``a`` (parametric only)."""
        if self._apply is None:
            raise ValueError(f"apply: intervention {self.name!r} is opaque (built from an augment callable)")
        if a.shape[0] != images.shape[0]:
            raise ValueError(f"a: expected one style value per image ({images.shape[0]}), got {a.shape[0]}")
        return self._apply(images, a)

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One random draw: ``images`` under ``do(S = a)`` with ``a`` sampled per image."""
        if self._augment is not None:
            return self._augment(images, generator)
        return self.apply(images, self.sample(images.shape[0], generator, images.device))

    @staticmethod
    def pairs(items: Sequence[T], *, include_self: bool = False) -> list[tuple[T, T]]:
        """The ordered pairs ``(a_l, a_k)``, ``l != k`` (``l == k`` too with ``include_self``), in
        row-major order: ``pairs([a, b, c]) == [(a, b), (a, c), (b, a), (b, c), (c, a), (c, b)]``.

        ReLIC's InfoNCE runs over these pairs and its KL penalty over pairs of them.
        """
        items = list(items)
        return [(x, y) for i, x in enumerate(items) for j, y in enumerate(items) if include_self or i != j]

    def __repr__(self) -> str:
        kind = "parametric" if self.is_parametric else "opaque"
        params = ", ".join(f"{k}={v!r}" for k, v in self.parameters.items())
        return f"StyleIntervention(do(S={self.name}), {kind}{', ' + params if params else ''})"
