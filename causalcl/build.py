"""Builds the pieces of a run from its ``Config``: datasets, views, backbone and method."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

import torch
from torch import nn

from .data import get_dataset
from .data.augment import SimCLRAugment
from .data.interventional import InterventionalViews
from .methods import Method, get_method
from .models import build_backbone
from .train.config import Config

#: datasets generated from an SCM: they have `probe` / `test` environments, masks and latents
EMBEDDED_DATASETS = ("shapes", "digits")


def load_split(config: Config, split: str):
    """One split of the configured dataset (``train``, ``probe`` or ``test``)."""
    options: dict[str, Any] = dict(config.data.options)
    if config.data.image_size is not None:
        options.setdefault("image_size", config.data.image_size)
    if config.data.name in EMBEDDED_DATASETS:
        options.setdefault("seed", config.train.seed)
    try:
        return get_dataset(config.data.name, split=split, root=config.data.root, **options)
    except TypeError as exc:  # an option the dataset does not take
        raise ValueError(f"data.options: {exc}") from exc


def build_augment(config: Config, image_size: int) -> SimCLRAugment:
    a = config.augment
    return SimCLRAugment(image_size, scale=tuple(a.scale), flip_p=a.flip_p, jitter=tuple(a.jitter),
                         jitter_p=a.jitter_p, grayscale_p=a.grayscale_p, blur_p=a.blur_p)


def build_encoder(config: Config, seed: int | None = None) -> nn.Module:
    """The configured backbone, randomly initialised (seeded when ``seed`` is given)."""
    if seed is not None:
        torch.manual_seed(seed)
    m = config.model
    return build_backbone(m.backbone, cifar_stem=m.cifar_stem, channels_last=m.channels_last)


def build_random_encoder(config: Config, seed: int) -> nn.Module:
    """The untrained encoder of the configured method (the random-encoder baseline of the diagnostics).

    Built through the method so that methods whose encoder is not the plain backbone (CMC's pair of
    Lab encoders, LooC++'s concatenated spaces) get a baseline of the same architecture and width."""
    method = build_method(config, seed=seed)
    return method.encoder


def method_options(config: Config) -> dict[str, Any]:
    """The method's keyword arguments from ``config.method``, checked against its constructor."""
    cls = get_method(config.method.get("name", "simclr"))
    options = {k: v for k, v in config.method.items() if k != "name"}
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "backbone")]
    unknown = [k for k in options if k not in accepted]
    for key in unknown:
        close = difflib.get_close_matches(key, accepted, n=1)
        hint = f"; did you mean 'method.{close[0]}'?" if close else ""
        raise ValueError(f"config key 'method.{key}' does not exist for method {cls.name!r}{hint} "
                         f"(valid: {', '.join('method.' + a for a in accepted)})")
    return options


VIEW_KINDS = ("augment", "interventional")


def build_view_fn(method: Method, augment: SimCLRAugment, config: Config | None = None, dataset=None):
    """The Trainer's view function.

    ``augment.views = "augment"`` (default): the method draws its views from the pixel augmentation.
    ``"interventional"``: each view is a true counterfactual of the sample under do(style = s')
    (``causalcl.data.interventional.InterventionalViews``), optionally augmented as well.
    """
    kind = config.augment.views if config is not None else "augment"
    if kind not in VIEW_KINDS:
        raise ValueError(f"augment.views: expected one of {list(VIEW_KINDS)}, got {kind!r}")
    if kind == "interventional":
        custom_views = type(method).make_views is not Method.make_views
        allowed = method.supports_interventional_views
        if not (allowed if allowed is not None else not custom_views):
            raise ValueError(f"augment.views: method {method.name!r} builds its own views (multi-crop or "
                             "leave-one-out) and cannot take interventional views")
        a = config.augment
        views = InterventionalViews(dataset, a.intervene_on, augment if a.augment_counterfactuals else None)

        def interventional_fn(images: torch.Tensor, indices: torch.Tensor,
                              generator: torch.Generator) -> list[torch.Tensor]:
            return views(images, indices, generator, method.num_views)

        return interventional_fn

    def view_fn(images: torch.Tensor, _indices: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        return method.make_views(augment, images, generator)

    return view_fn


def build_method(config: Config, seed: int | None = None) -> Method:
    torch.manual_seed(config.train.seed if seed is None else seed)
    cls = get_method(config.method.get("name", "simclr"))
    options = method_options(config)
    return cls(build_encoder(config), **options)
