"""Grad-CAM maps for classifiers, for encoders read through a linear probe, and for contrastive similarity.

Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization", ICCV 2017): for a scalar score ``y`` and the activations ``A`` (channels ``k``, positions
``ij``) of a convolutional layer, ``alpha_k = mean_ij dy/dA^k_ij`` and ``L = ReLU(sum_k alpha_k A^k)``. The map
is computed by captum's ``LayerGradCam(..., relu_attributions=True)`` and upsampled to the image size by
``LayerAttribution.interpolate(..., interpolate_mode="bilinear")``; the result is exactly what a direct
captum call on the same inputs returns.

Three kinds of score ``y``:

- **class logit of a classifier** (``model`` maps images to logits ``(N, C)``): ``targets`` are class
  indices, ``None`` = each image's predicted class.
- **class logit of a linear probe** for an encoder without a head (``model`` maps images to features
  ``(N, D)``, ``probe`` maps features to logits, e.g. ``evaluations.linear_probe(...).classifier``). When
  ``target_layer``'s output is global-average-pooled straight into the features (the ``last_conv`` of this
  project's backbones), the probe logit is linear in ``A`` with ``dy^c/dA^k_ij = w^c_k / Z`` (``w`` the probe's
  effective weights, standardisation included; ``Z`` the number of positions), so Grad-CAM equals the
  classic CAM ``ReLU(sum_k w^c_k A^k)`` of Zhou et al. (CVPR 2016) up to the factor ``1/Z``.
- **similarity to a positive view** (``targets="similarity"``, CAST, Selvaraju et al., "CASTing Your Model:
  Learning to Localize Improves Self-Supervised Representations", CVPR 2021): ``y_i = cos(f(x_i),
  sg[f(p_i)])``, the cosine between the encoder output of image ``i`` and the detached encoder output of its
  positive view ``p_i``. It shows what in the image makes it match its other view.

Any convolutional layer inside ``model`` (any module whose output is ``(N, K, h, w)``) can be
``target_layer``; the later the layer, the more semantic and the coarser the map. The backbones of this
project expose their last convolutional block as ``backbone.last_conv``.

The model (and probe) are put in eval mode for the call and their train/eval flags restored afterwards;
gradients are taken with ``torch.autograd.grad`` with respect to the layer activations only, so the
parameters' ``.grad`` are left as they were (they are also restored explicitly).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from .._validate import as_labels, check_int

__all__ = ["grad_cam", "ProbeLogits", "PositiveSimilarity"]


class ProbeLogits(nn.Module):
    """Scores images by the logits of a probe on an encoder's features: ``probe(encoder(x))``."""

    def __init__(self, encoder: nn.Module, probe: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.probe = probe

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.probe(self.encoder(x))


class PositiveSimilarity(nn.Module):
    """Scores each image by the cosine similarity of its embedding to a fixed (detached) key embedding.

    ``forward(x, keys)`` returns ``cos(encoder(x)_i, keys_i)`` for each row ``i``, a ``(N,)`` tensor: one
    scalar per example, so captum needs no ``target``.
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(self.encoder(x), keys.detach(), dim=1)


@contextmanager
def _frozen_eval(*modules: nn.Module) -> Iterator[None]:
    """Eval mode for the duration; afterwards restore every submodule's training flag and every ``.grad``."""
    flags = [(m, m.training) for top in modules for m in top.modules()]
    params = {id(p): p for top in modules for p in top.parameters()}
    grads = [(p, p.grad) for p in params.values()]
    for top in modules:
        top.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag
        for p, g in grads:
            p.grad = g


def _as_images(images: Any, name: str = "images") -> torch.Tensor:
    if isinstance(images, np.ndarray) and images.dtype.kind == "f":
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name}: expected a float tensor (N, 3, H, W), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[0] == 0:
        raise ValueError(f"{name}: expected a float tensor of shape (N, 3, H, W), N >= 1, got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got dtype {images.dtype}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name}: expected only finite values, found NaN/inf")
    return images.detach()


def _model_device_dtype(model: nn.Module, images: torch.Tensor) -> tuple[torch.device, torch.dtype]:
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    return images.device, images.dtype


def _check_output(out: torch.Tensor, n: int, what: str, hint: str) -> None:
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != n:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{what}: expected a 2-D output (N={n}, C), got {shape}. {hint}")


def grad_cam(
    model: nn.Module,
    images: Any,
    target_layer: nn.Module,
    targets: Any = None,
    *,
    positive_views: Any = None,
    probe: nn.Module | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """Grad-CAM maps of ``images`` at ``target_layer``, ReLU'd and bilinearly upsampled to the image size.

    Args:
        model: a classifier (images -> logits ``(N, C)``), or an encoder (images -> features ``(N, D)``)
            together with ``probe`` or ``targets="similarity"``.
        images: float tensor ``(N, 3, H, W)``; moved to the model's device and dtype.
        target_layer: a module inside ``model`` whose output is ``(N, K, h, w)``, e.g. ``backbone.last_conv``.
        targets: class indices (length ``N``; tensor, array or list), ``None`` for each image's predicted
            class, or ``"similarity"`` for the cosine to ``positive_views`` (CAST).
        positive_views: images of the same shape as ``images``; required with ``targets="similarity"`` only.
        probe: a module mapping the encoder's features to logits; the class logit of the probe is explained.
        batch_size: images per captum call.

    Returns:
        ``(N, H, W)`` non-negative maps on the CPU (the model's floating dtype). Not normalised: the scale is
        that of the gradients, so compare maps after normalising them (the metrics of this package do).
    """
    images = _as_images(images)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected an nn.Module, got {type(model).__name__}")
    if not isinstance(target_layer, nn.Module) or not any(m is target_layer for m in model.modules()):
        raise ValueError("target_layer: expected an nn.Module inside model (e.g. backbone.last_conv)")
    if probe is not None and not isinstance(probe, nn.Module):
        raise ValueError(f"probe: expected an nn.Module mapping features to logits, got {type(probe).__name__}")
    batch_size = check_int(batch_size, "batch_size", low=1)
    n, _, height, width = images.shape

    similarity = isinstance(targets, str)
    labels: torch.Tensor | None = None
    if similarity:
        if targets != "similarity":
            raise ValueError(f"targets: expected class indices, None or 'similarity', got {targets!r}")
        if positive_views is None:
            raise ValueError("positive_views: required with targets='similarity' (the positive view of each image)")
        if probe is not None:
            raise ValueError("probe: not used with targets='similarity'; pass probe=None")
        positive_views = _as_images(positive_views, "positive_views")
        if positive_views.shape != images.shape:
            raise ValueError(
                f"positive_views: expected the shape of images {tuple(images.shape)}, got {tuple(positive_views.shape)}"
            )
    else:
        if positive_views is not None:
            raise ValueError("positive_views: only used with targets='similarity'")
        if targets is not None:
            labels = as_labels(targets, "targets", n=n)

    device, dtype = _model_device_dtype(model, images)
    modules = (model,) if probe is None else (model, probe)
    scorer: nn.Module = model if probe is None else ProbeLogits(model, probe)
    if similarity:
        scorer = PositiveSimilarity(model)
    cam = LayerGradCam(scorer, target_layer)
    out: list[torch.Tensor] = []
    with _frozen_eval(*modules), torch.enable_grad():
        for start in range(0, n, batch_size):
            x = images[start : start + batch_size].to(device=device, dtype=dtype)
            b = x.shape[0]
            extra: tuple[torch.Tensor, ...] | None = None
            target: torch.Tensor | None = None
            if similarity:
                assert positive_views is not None
                with torch.no_grad():
                    keys = model(positive_views[start : start + b].to(device=device, dtype=dtype))
                _check_output(keys, b, "model", "With targets='similarity' the encoder must return (N, D) features.")
                extra = (keys.detach(),)
            else:
                with torch.no_grad():
                    if probe is None:
                        logits = model(x)
                        _check_output(
                            logits, b, "model", "Expected class logits; for an encoder without a head pass probe=."
                        )
                    else:
                        feats = model(x)
                        _check_output(feats, b, "model", "With probe= the encoder must return (N, D) features.")
                        logits = probe(feats)
                        _check_output(logits, b, "probe", "The probe must map (N, D) features to (N, C) logits.")
                if labels is None:
                    target = logits.argmax(dim=1)
                else:
                    target = labels[start : start + b].to(device)
                    hi = int(target.max())
                    if hi >= logits.shape[1]:
                        raise ValueError(
                            f"targets: class indices must lie in [0, {logits.shape[1]}) (the number of logits), "
                            f"found {hi}"
                        )
            attr = cam.attribute(x, target=target, additional_forward_args=extra, relu_attributions=True)
            if attr.dim() != 4:
                raise ValueError(
                    f"target_layer: expected a convolutional layer with output (N, K, h, w), got a map of shape "
                    f"{tuple(attr.shape)}"
                )
            up = LayerAttribution.interpolate(attr, (height, width), interpolate_mode="bilinear")
            out.append(up[:, 0].detach().cpu())
    return torch.cat(out, dim=0)
