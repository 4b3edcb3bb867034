"""Builds the pieces of a run from its ``Config``: datasets, views, backbone and method."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .causal.background import BACKGROUND_SOURCES, DONOR_FILLS, BackgroundSwap
from .data import DATASETS, check_dataset_kwargs, get_dataset
from .data.augment import SimCLRAugment
from .data.interventional import InterventionalViews, style_variables
from .methods import Method, get_method
from .methods.base import interventional_refusal
from .modality import InputPlan, backbone_options, check_backbone, dataset_kind, input_plan
from .models import FramePooled, build_backbone
from .train.config import Config
from .train.typed import coerce_kwargs

#: datasets generated from an SCM: they have `probe` / `test` environments and latents (masks: all but scm_graph)
EMBEDDED_DATASETS = ("shapes", "digits", "moving_shapes", "scm_graph")


def load_split(config: Config, split: str):
    """One split of the configured dataset (``train``, ``probe`` or ``test``)."""
    options: dict[str, Any] = dict(config.data.options)
    if config.data.image_size is not None:
        if dataset_kind(config.data.name) == "graph":
            raise ValueError(f"data.image_size: dataset {config.data.name!r} has no image size (its items are graphs; "
                             "the node-feature width is data.options.num_features); unset data.image_size")
        options.setdefault("image_size", config.data.image_size)
    if config.data.name in EMBEDDED_DATASETS:
        options.setdefault("seed", config.train.seed)
    cls = DATASETS.get(config.data.name)
    if cls is not None:  # typed like the dataset's constructor declares (data.options.n=1e3 → 1000)
        check_dataset_kwargs(config.data.name, options, prefix="data.options.")
        typed = coerce_kwargs("data.options.", cls.__init__, dict(config.data.options))
        config.data.options.update(typed)
        options.update(typed)
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
    options = backbone_options(m.backbone, config.data.name, config.data.options)  # gcn: the node-feature width
    return build_backbone(m.backbone, cifar_stem=m.cifar_stem, channels_last=m.channels_last, **options)


def run_plan(config: Config) -> InputPlan:
    """What the configured method trains on, on the configured dataset, with the backbone checked against it
    (``causalcl.modality``).

    Raises:
        ValueError: one line: the method cannot train on the dataset's items, or ``model.backbone`` does not take
            what the method feeds it.
    """
    name = config.method.get("name", "simclr")
    plan = input_plan(name, config.data.name)
    check_backbone(config.model.backbone, plan, name, config.data.name)
    return plan


def default_backbone(config: Config) -> str:
    """The backbone a run gets when none is asked for: the default of what the method trains on, on the dataset
    (``convnet_small`` for images and frames, ``video_small`` for clips, ``gcn`` for graphs)."""
    return input_plan(config.method.get("name", "simclr"), config.data.name).default_backbone


def diagnostic_encoder(encoder: nn.Module, config: Config) -> nn.Module:
    """The encoder as the diagnostics read it: on a clip dataset an image backbone is read per clip, as the mean of
    its frame features (``FramePooled``); otherwise the encoder itself."""
    return FramePooled(encoder) if run_plan(config).pooled_frames else encoder


def build_random_encoder(config: Config, seed: int) -> nn.Module:
    """The untrained encoder of the configured method (the random-encoder baseline of the diagnostics).

    Built through the method so that methods whose encoder is not the plain backbone (CMC's pair of
    Lab encoders, LooC++'s concatenated spaces) get a baseline of the same architecture and width."""
    method = build_method(config, seed=seed)
    return diagnostic_encoder(method.encoder, config)


def method_options(config: Config) -> dict[str, Any]:
    """The method's keyword arguments from ``config.method``, checked against its constructor and parsed to the
    types it declares (``method.temperature=1e-1`` → 0.1; ``'abc'`` → ``ValueError`` naming the key). The typed
    values are written back to ``config.method``, so the saved config records them."""
    cls = get_method(config.method.get("name", "simclr"))
    options = {k: v for k, v in config.method.items() if k != "name"}
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "backbone")]
    unknown = [k for k in options if k not in accepted]
    for key in unknown:
        close = difflib.get_close_matches(key, accepted, n=1)
        hint = f"; did you mean 'method.{close[0]}'?" if close else ""
        raise ValueError(f"config key 'method.{key}' does not exist for method {cls.name!r}{hint} "
                         f"(valid: {', '.join('method.' + a for a in accepted)})")
    options = coerce_kwargs("method.", cls.__init__, options)
    config.method.update(options)
    return options


VIEW_KINDS = ("augment", "interventional")


def build_view_fn(method: Method, augment: SimCLRAugment, config: Config | None = None, dataset=None):
    """The Trainer's view function.

    ``augment.views = "augment"`` (default): the method draws its views from the pixel augmentation.
    ``"interventional"``: each view is a true counterfactual of the sample under do(style = s')
    (``causalcl.data.interventional.InterventionalViews``), optionally augmented as well, made by the
    method's ``make_interventional_views``; a method that cannot take them is refused with its reason
    (``causalcl.methods.base.interventional_refusal``).
    """
    kind = config.augment.views if config is not None else "augment"
    if kind not in VIEW_KINDS:
        raise ValueError(f"augment.views: expected one of {list(VIEW_KINDS)}, got {kind!r}")
    swapped = background_swap_view_fn(method, augment, config, dataset)  # DESIGN §5.3a; None when off
    if kind == "interventional":
        check_interventional(method)
        a = config.augment
        views = InterventionalViews(dataset, a.intervene_on, counterfactual_augment(augment, config, dataset))

        def interventional_fn(images: torch.Tensor, indices: torch.Tensor,
                              generator: torch.Generator) -> list[torch.Tensor]:
            return method.make_interventional_views(views, images, indices, generator)

        return interventional_fn
    if swapped is not None:
        return swapped

    def view_fn(images: torch.Tensor, _indices: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        return method.make_views(augment, images, generator)

    return view_fn


def counterfactual_augment(augment: SimCLRAugment | None, config: Config, dataset) -> Callable[..., Any] | None:
    """The pixel augmentation of the counterfactuals (``augment.augment_counterfactuals``), or ``None``: on clips the
    same draw for every frame of a clip (``clip_consistent``).

    Raises:
        ValueError: ``augment.augment_counterfactuals`` on a dataset of graphs (they have no pixels)."""
    if not config.augment.augment_counterfactuals:
        return None
    if augment is None or hasattr(dataset, "all_graphs"):
        raise ValueError(f"augment.augment_counterfactuals: dataset {config.data.name!r} has no pixel augmentation "
                         "(its items are graphs); unset it")
    if getattr(dataset, "video", False):
        from .data.temporal import clip_consistent

        return lambda clips, generator: clip_consistent(augment, clips, generator)
    return augment


class InterveneThenAugment(SimCLRAugment):
    """``augment(intervention(x))``: a ``SimCLRAugment`` that first applies a per-batch ``StyleIntervention``.

    It is a copy of the wrapped augmentation's settings (a ``SimCLRAugment`` itself), so a method that
    reads, copies or modifies its augmentation (CMC's grayscale, ReSSL's weak teacher view) keeps the
    intervention; one that builds a new ``SimCLRAugment`` from the settings (SwAV's small crops, LooC's
    ``base="crop"``) does not get it for those views.
    """

    def __init__(self, intervention: Callable[..., torch.Tensor], augment: SimCLRAugment) -> None:
        self.__dict__.update(vars(augment))  # the settings, as validated by augment's own constructor
        self.intervention = intervention
        self._calls = [0]  # shared with copies (CMC and ReSSL copy their augmentation)

    @property
    def calls(self) -> int:
        """How many batches this augmentation (or a copy of it) has augmented."""
        return self._calls[0]

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        self._calls[0] += 1
        return super().__call__(self.intervention(images, generator), generator)

    def __repr__(self) -> str:
        return f"InterveneThenAugment({self.intervention!r}, {super().__repr__()})"


def background_swap_view_fn(method: Method, augment: SimCLRAugment, config: Config | None, dataset):
    """The view function with background swaps do(background = b′) (DESIGN §5.3a), or ``None`` when none is asked.

    Two uses, both needing the training set's foreground masks (``dataset.masks``, bool (N, H, W); the
    SCM datasets ``shapes`` and ``digits`` carry them), looked up per batch by the batch's ``indices``:

    * ``augment.background_swap_p = p > 0`` (any method): every call of the augmentation first swaps
      the background of each image with probability p (``augment.background_swap_source``,
      ``augment.background_swap_fill``), so each view gets its own independent draw:
      view = augment(background_swap(x, m)). The swap comes *before* the pixel augmentation because
      the masks are aligned with the stored images; a crop or flip would move the pixels off them.
    * a method with ``mask_interventions`` (ReLIC's ``method.interventions``): the named swaps, bound
      to the batch's masks, are passed to its ``make_intervened_views``.

    Raises:
        ValueError: a bad ``augment.background_swap_*`` value, a dataset without masks, or
            ``augment.views=interventional`` (true counterfactuals are not pixel views to swap).
    """
    if config is None:
        return None
    a = config.augment
    p, names = a.background_swap_p, tuple(getattr(method, "mask_interventions", ()))
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ValueError(f"augment.background_swap_p: expected a probability in [0, 1], got {p!r}")
    if p == 0 and not names:
        return None
    if a.background_swap_source not in BACKGROUND_SOURCES:
        raise ValueError(f"augment.background_swap_source: expected one of {list(BACKGROUND_SOURCES)}, "
                         f"got {a.background_swap_source!r}")
    if a.background_swap_fill not in DONOR_FILLS:
        raise ValueError(f"augment.background_swap_fill: expected one of {list(DONOR_FILLS)}, "
                         f"got {a.background_swap_fill!r}")
    key = "augment.background_swap_p" if p > 0 else "method.interventions"
    if a.views == "interventional":
        raise ValueError(f"{key}: background swaps act on the pixel views; they cannot be combined with "
                         "augment.views=interventional (set one or the other)")
    masks = getattr(dataset, "masks", None)
    if masks is None:
        raise ValueError(f"{key}: dataset {config.data.name!r} has no foreground masks, which a background swap "
                         "needs (datasets with masks: shapes, digits, moving_shapes' frames for an image method, and "
                         f"imagefolder when every image has a <image stem>.mask.npy beside it); unset {key}")
    if getattr(dataset, "video", False):
        raise ValueError(f"{key}: background swaps act on images, and method {method.name!r} trains on the clips of "
                         f"{config.data.name!r}; unset {key} (an image method on the frames can use it)")
    swap = BackgroundSwap(a.background_swap_source, float(p), a.background_swap_fill) if p > 0 else None
    styles = {name: BackgroundSwap.from_name(name, fill=a.background_swap_fill) for name in names}

    def swapped_view_fn(images: torch.Tensor, indices: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        batch_masks = masks[torch.as_tensor(indices).cpu().long()].to(images.device, non_blocking=True)
        aug = augment if swap is None else InterveneThenAugment(swap.bind(batch_masks), augment)
        if names:
            bound = {name: style.bind(batch_masks) for name, style in styles.items()}
            views = method.make_intervened_views(aug, images, generator, bound)
        else:
            views = method.make_views(aug, images, generator)
        if swap is not None and aug.calls == 0:
            raise ValueError(f"augment.background_swap_p: method {method.name!r} never called the configured "
                             "augmentation (it builds its own), so no view would be swapped; choose a setting that "
                             "uses it (e.g. LooC's method.base=augment) or unset augment.background_swap_p")
        return views

    return swapped_view_fn


def check_interventional(method: Method) -> None:
    """Raise the one-line reason why ``method`` cannot take ``--views interventional``, if it cannot."""
    refusal = interventional_refusal(method)
    if refusal is not None:
        raise ValueError(f"augment.views: {refusal}")


def interventional_variables(config: Config) -> list[str]:
    """The variables ``--views interventional`` intervenes on: ``augment.intervene_on`` or the dataset's style
    latents (``InterventionalViews`` checks them against the dataset when the views are built)."""
    if config.augment.intervene_on:
        return list(config.augment.intervene_on)
    roles = getattr(DATASETS.get(config.data.name), "latent_roles", None)
    if not roles:
        raise ValueError(f"augment.views: 'interventional' needs an SCM dataset ({', '.join(EMBEDDED_DATASETS)}) "
                         f"with true interventions; got {config.data.name!r}")
    return style_variables(roles)


def build_method(config: Config, seed: int | None = None) -> Method:
    """The configured method. Under ``--views interventional`` a method with one embedding space per
    intervened variable (LooC's ``style_variables``) is built with them, and a method that cannot take
    interventional views is refused here, before anything trains."""
    torch.manual_seed(config.train.seed if seed is None else seed)
    cls = get_method(config.method.get("name", "simclr"))
    options = method_options(config)
    interventional = config.augment.views == "interventional"
    plan = run_plan(config)  # the method takes the dataset's items, the backbone takes what the method feeds it
    if interventional and plan.train_on == "frames":
        raise ValueError(f"augment.views: interventional views of {config.data.name!r} are re-rendered clips, but "
                         f"method {cls.name!r} trains on single frames; use a method for clips (taco, cpc) or "
                         "augment.views=augment")
    if "style_variables" in options:
        raise ValueError("method.style_variables: set augment.intervene_on instead (with augment.views=interventional "
                         "the method is built with those variables)")
    if interventional and "style_variables" in inspect.signature(cls.__init__).parameters:
        options["style_variables"] = interventional_variables(config)
    method = cls(build_encoder(config), **options)
    if interventional:
        check_interventional(method)
    return method
