"""What a run trains on: the input kinds of the dataset, the method and the backbone, and the default backbone.

Three input kinds (``Method.input_kind``, ``causalcl.models.BACKBONE_INPUTS``): ``image`` batches (B, 3, H, W),
``video`` clips (B, T, 3, H, W) and ``graph`` batches (``causalcl.data.GraphBatch``). A dataset gives one kind
(``moving_shapes``: clips, ``scm_graph``: graphs, every other one: images). The rules:

==============  =====================================  ================================================
dataset gives   method                                 trains on (backbone kind)
==============  =====================================  ================================================
images          takes images                           images (image)
clips           takes clips (``taco``, ``cpc``)        clips (the method's ``clip_backbone_kind``:
                                                       ``video`` for TaCo's (2+1)D net; ``image`` for CPC,
                                                       which encodes each frame alone and runs its context
                                                       over the frames)
clips           takes images only (SimCLR, ...)        the clips' frames, every frame an image (image)
graphs          takes graphs (``dgi``)                 graphs (graph)
==============  =====================================  ================================================

Anything else (``taco`` on ``shapes``, ``simclr`` or ``resnet18`` on ``scm_graph``) is refused with one line. The
default backbone of each kind is :data:`DEFAULT_BACKBONES`; a clip dataset evaluated with an image backbone is
scored per clip on the mean of its frame features (``causalcl.models.FramePooled``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from .data import DATASETS
from .methods import Method, get_method
from .models import BACKBONE_INPUTS

#: the backbone a run gets when none is asked for, per backbone input kind
DEFAULT_BACKBONES: dict[str, str] = {"image": "convnet_small", "video": "video_small", "graph": "gcn"}
_WHAT = {"image": "images", "video": "video clips", "graph": "graphs"}
_CLIP_METHODS_HINT = "datasets of clips: moving_shapes"
_GRAPH_HINT = "datasets of graphs: scm_graph"


def dataset_kind(name: str) -> str:
    """The input kind dataset ``name`` gives: ``"video"`` (items are clips), ``"graph"`` or ``"image"`` (also for an
    unknown name, which ``get_dataset`` refuses later with the list of valid ones)."""
    cls = DATASETS.get(name)
    if cls is None:
        return "image"
    if getattr(cls, "video", False):
        return "video"
    return "graph" if hasattr(cls, "all_graphs") else "image"


def method_kinds(cls: type[Method]) -> tuple[str, ...]:
    """The input kinds a method class trains on: its ``input_kinds`` if it declares several, else its
    ``input_kind``."""
    return tuple(getattr(cls, "input_kinds", (cls.input_kind,)))


def _methods_for(kind: str) -> list[str]:
    from .methods import METHODS

    return sorted(n for n, c in METHODS.items() if kind in method_kinds(c))


@dataclass(frozen=True)
class InputPlan:
    """What a (method, dataset) pair trains on.

    Attributes:
        dataset_kind: ``image``, ``video`` or ``graph``.
        train_on: ``images``, ``clips``, ``frames`` (an image method on the frames of a clip dataset) or ``graphs``.
        backbone_kind: the input kind the backbone must take.
    """

    dataset_kind: str
    train_on: str
    backbone_kind: str

    @property
    def default_backbone(self) -> str:
        return DEFAULT_BACKBONES[self.backbone_kind]

    @property
    def pooled_frames(self) -> bool:
        """Clips evaluated through an image backbone: features = mean over frames of the frame features."""
        return self.dataset_kind == "video" and self.backbone_kind == "image"


def input_plan(method: str, dataset: str) -> InputPlan:
    """The :class:`InputPlan` of method ``method`` on dataset ``dataset`` (see the module docstring).

    Raises:
        ValueError: the method cannot train on what the dataset gives (one line, naming both and what would fit).
    """
    cls = get_method(method)
    kinds, data = method_kinds(cls), dataset_kind(dataset)
    if data == "graph":
        if "graph" in kinds:
            return InputPlan("graph", "graphs", "graph")
        raise ValueError(f"method {method!r} trains on {_WHAT[kinds[0]]}, but dataset {dataset!r} gives graphs "
                         f"(methods for graphs: {', '.join(_methods_for('graph'))})")
    if data == "video":
        if "video" in kinds:
            return InputPlan("video", "clips", getattr(cls, "clip_backbone_kind", "video"))
        if "image" in kinds:
            return InputPlan("video", "frames", "image")
        raise ValueError(f"method {method!r} trains on {_WHAT[kinds[0]]}, but dataset {dataset!r} gives video clips "
                         f"(methods for clips: {', '.join(_methods_for('video'))}; image methods train on the frames)")
    if "image" in kinds:
        return InputPlan("image", "images", "image")
    hint = _CLIP_METHODS_HINT if "video" in kinds else _GRAPH_HINT
    raise ValueError(f"method {method!r} trains on {_WHAT[kinds[0]]}, but dataset {dataset!r} gives images ({hint})")


def check_backbone(backbone: str, plan: InputPlan, method: str, dataset: str) -> None:
    """Raise a one-line ``ValueError`` naming ``model.backbone`` when ``backbone`` does not take the plan's input.

    An unknown name is left to ``build_backbone`` (which lists the valid ones)."""
    kind = BACKBONE_INPUTS.get(backbone)
    if kind is None or kind == plan.backbone_kind:
        return
    why = f"{method!r} on {dataset!r}"
    if plan.train_on == "frames":
        why = f"{method!r} on the frames of {dataset!r}"
    elif plan.train_on == "clips" and plan.backbone_kind == "image":
        why += " (it encodes each frame alone)"
    valid = sorted(n for n, k in BACKBONE_INPUTS.items() if k == plan.backbone_kind)
    choices = f"{', '.join(valid)}; default {plan.default_backbone!r}" if len(valid) > 1 else valid[0]
    raise ValueError(f"model.backbone: {backbone!r} takes {_WHAT[kind]}, but {why} needs a backbone for "
                     f"{_WHAT[plan.backbone_kind]} ({choices})")


def backbone_options(backbone: str, dataset: str, data_options: dict[str, Any]) -> dict[str, Any]:
    """Builder options that come from the dataset: ``gcn``'s ``in_features`` = the dataset's node-feature width
    (``data.options.num_features``, else the dataset's default)."""
    if BACKBONE_INPUTS.get(backbone) != "graph" or dataset_kind(dataset) != "graph":
        return {}
    width = data_options.get("num_features")
    if width is None:
        width = inspect.signature(DATASETS[dataset].__init__).parameters["num_features"].default
    return {"in_features": int(width)}
