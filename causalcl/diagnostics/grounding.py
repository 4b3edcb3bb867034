"""CAM grounding on data with foreground masks: does the encoder look at the object?

Grad-CAM (captum LayerGradCam on the backbone's last convolutional block) for two targets:
``probe`` — the true class's logit of the content probe (for GAP + linear this is the classic
CAM) — and ``similarity`` — the cosine to another augmented view of the same image (CAST).
Each metric is reported beside the mask-area baseline a uniform map would score.
"""

from __future__ import annotations

from typing import Any

import torch

from evaluations import grounding

from .context import Context

NOTE = (
    "Grad-CAM of the backbone's last convolutional block against the ground-truth foreground masks of the test "
    "split. 'probe': target = the true class's logit of the content probe; 'similarity': target = cosine to "
    "another augmented view of the same image. energy_in_mask = share of the map's mass on the object; "
    "pointing_game = share of maps whose peak is on the object; each *_baseline is what a uniform map scores "
    "(the mask area). Scores near their baselines mean the encoder does not single out the object.")


def run_cam(ctx: Context, shown: int = 8) -> dict[str, Any]:
    images, labels = ctx.test_images(ctx.options.get("cam_images", 256))
    masks = ctx.splits.test.masks[: len(images)]
    layer = ctx.encoder.last_conv
    probe = ctx.content_probe().classifier.to(ctx.device)
    cams = {"probe": grounding.grad_cam(ctx.encoder, images, layer, labels, probe=probe)}
    gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed + 7)
    positive = ctx.augment.views(images, 1, gen)[0]
    cams["similarity"] = grounding.grad_cam(ctx.encoder, images, layer, "similarity", positive_views=positive)
    values = {target: _metrics(cam, masks) for target, cam in cams.items()}
    ctx.report.add("grounding", values, note=NOTE)
    fig = grounding.plot_cam_overlays(images[:shown].cpu(), cams["probe"][:shown], masks[:shown],
                                      titles=[ctx.splits.test.class_names[int(y)] for y in labels[:shown]])
    ctx.report.add_plot("cam_overlays", fig, section="grounding", caption=(
        f"Grad-CAM (probe target) on test images: energy in mask {values['probe']['energy_in_mask']:.1%} "
        f"vs {values['probe']['energy_baseline']:.1%} for a uniform map; pointing game "
        f"{values['probe']['pointing_game']:.1%} vs {values['probe']['pointing_game_baseline']:.1%}."))
    return {"grounding": values}


def _metrics(cams: torch.Tensor, masks: torch.Tensor) -> dict[str, float]:
    keep = ("pointing_game", "pointing_game_baseline", "energy_in_mask", "energy_baseline", "iou", "iou_baseline")
    out = grounding.grounding_metrics(cams, masks)
    return {k: float(out[k]) for k in keep if k in out}
