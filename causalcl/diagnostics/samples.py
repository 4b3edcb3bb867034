"""The samples a diagnostic scores, per input kind: images, clips (one sample per clip) or graph nodes.

* ``image``: the evaluation layer's ``extract_features`` over the split (one sample per image).
* ``video`` (``moving_shapes``): one sample per clip; the encoder maps clips (B, T, 3, H, W) to (B, D) (a video
  backbone, or an image backbone read as the mean of its frame features, ``causalcl.models.FramePooled``).
* ``graph`` (``scm_graph``): one sample per node; the encoder maps a batch of graphs to node embeddings (N, D),
  labels and latents are the nodes' (``node_labels()``, ``node_latents()``).

Raw baselines (the probe on the data themselves): the pixels of an image; the mean frame of a clip (3·H·W values,
the clip's pixels averaged over time: the object's path and the background, not its motion); the raw node
features of a node (``node_features()``: content and style directions plus noise, before any propagation).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

import evaluations

#: results key and label of the raw baseline, per input kind
RAW_BASELINES: dict[str, tuple[str, str]] = {"image": ("raw_pixels", "raw pixels"),
                                             "video": ("raw_pixels", "raw pixels (each clip's mean frame)"),
                                             "graph": ("raw_features", "raw node features")}


def input_kind(dataset: Any) -> str:
    """``"graph"`` (items are graphs, samples are nodes), ``"video"`` (items are clips) or ``"image"``."""
    if hasattr(dataset, "all_graphs"):
        return "graph"
    return "video" if getattr(dataset, "video", False) else "image"


@contextlib.contextmanager
def _frozen(encoder: nn.Module) -> Iterator[None]:
    """Eval mode and inference mode for the block; every submodule gets its train/eval flag back afterwards."""
    modes = [(m, m.training) for m in encoder.modules()]
    encoder.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        for module, training in modes:
            module.training = training


def _batched(encoder: nn.Module, dataset: Any, batch_size: int, device: str, what: str) -> torch.Tensor:
    """Encoder outputs over ``dataset.get_batch`` chunks of ``batch_size`` items, concatenated on the CPU."""
    out = []
    with _frozen(encoder):
        for start in tqdm(range(0, len(dataset), batch_size), desc=f"extract features ({what})", leave=False,
                          disable=None):
            items, _ = dataset.get_batch(torch.arange(start, min(start + batch_size, len(dataset))))
            out.append(encoder(items.to(device)).float().cpu())
    return torch.cat(out)


def encode_tensor(encoder: nn.Module, x: torch.Tensor, *, batch_size: int = 512, device: str = "cpu"
                  ) -> torch.Tensor:
    """Frozen features (N, D) of a tensor of images or clips, ``batch_size`` images (or frames) per call."""
    step = max(1, batch_size // (x.shape[1] if x.ndim == 5 else 1))
    with _frozen(encoder):
        return torch.cat([encoder(x[i:i + step].to(device)).float().cpu() for i in range(0, len(x), step)])


def encode(encoder: nn.Module, dataset: Any, *, batch_size: int = 512, device: str = "cpu") -> evaluations.Features:
    """Frozen features of every sample of ``dataset`` (see the module docstring), with labels and latents."""
    kind = input_kind(dataset)
    if kind == "image":
        return evaluations.extract_features(encoder, dataset, batch_size=batch_size, device=device)
    if kind == "video":
        x = _batched(encoder, dataset, max(1, batch_size // dataset.frames), device, "clips")
        return evaluations.Features(x=x, y=dataset.labels.clone(), extras=_latents(dataset))
    graphs = max(1, batch_size // dataset.nodes)  # about batch_size nodes per call
    x = _batched(encoder, dataset, graphs, device, "graphs")
    return evaluations.Features(x=x, y=dataset.node_labels().clone(), extras=_latents(dataset))


def _latents(dataset: Any) -> dict[str, Any]:
    latents = sample_latents(dataset)
    return {"latents": latents} if latents is not None else {}


def sample_latents(dataset: Any) -> dict[str, torch.Tensor] | None:
    """Ground-truth latents per sample (per node for graphs), name → (N,), or ``None``."""
    if input_kind(dataset) == "graph":
        return dataset.node_latents()
    return getattr(dataset, "latents", None)


def raw_baseline(dataset: Any) -> evaluations.Features:
    """The raw data of each sample as features (see the module docstring)."""
    kind = input_kind(dataset)
    if kind == "graph":
        return evaluations.Features(x=dataset.node_features().float(), y=dataset.node_labels().clone(), extras={})
    if kind == "image":
        pixels = dataset.images.float().div_(255)
    else:  # the mean frame, summed in float32 without a float copy of every frame
        pixels = dataset.images.sum(dim=1, dtype=torch.float32).div_(255 * dataset.images.shape[1])
    return evaluations.Features(x=pixels.flatten(1), y=dataset.labels.clone(), extras={})
