"""The background variants of clips, frame by frame (``moving_shapes``: one foreground mask per frame).

For clip i with frames x_{i,t} and masks m_{i,t}, variant v of the clip is the clip of the frames' variants,

    v(x_i)_t = variants(x_{·,t}, m_{·,t}, y; seed)[v]_i          t = 0..T-1,

the ImageNet-9 variants of ``evaluations.foreground.variants`` (only_fg, no_fg, only_bg, mixed_same/rand/next).
The donor j of a mixed variant depends only on (labels, seed), so every frame of clip i takes its background from
the same clip j, frame t: the object moves as before over j's static background (its own object cut out and
filled by the Only-BG-T tiling in each frame). Each variant clip is classified by the clip encoder + the content
probe, and BG-gap = acc(mixed_same) − acc(mixed_rand) as for images. The 2×2 full-vs-foreground matrix is not run
on clips (``applicability.CLIP_MATRIX_REASON``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from evaluations import foreground

from .applicability import CLIP_MATRIX_REASON
from .context import Context
from .samples import encode_tensor
from .variant_images import variant_images  # the same confounded items as images use (no probe was fit on them)

NOTE = (
    "Accuracy of the clip encoder + content probe on ImageNet-9 style variants built frame by frame with each "
    "frame's own mask: only_fg (background black), no_fg (object black), only_bg (object box filled with tiled "
    "background), and the moving object pasted on the background of another clip of the same class (mixed_same), "
    "a random class (mixed_rand) or the next class (mixed_next), the same donor clip for every frame. BG-gap = "
    "mixed_same − mixed_rand. The clips are training-environment clips no probe was fit on (the background follows "
    "the class at rho).")


def clip_variants(clips: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor, *, seed: int,
                  num_classes: int) -> dict[str, torch.Tensor]:
    """Every variant of clips (N, T, 3, H, W) in [0, 1] with masks (N, T, H, W), frame by frame (module docstring),
    as uint8 clips (N, T, 3, H, W): ``round(255 v)``, exact for clips that are uint8 images / 255 (the embedded
    data), since a variant only selects, blacks out or tiles pixels; a quarter of float32's memory."""
    n, t = clips.shape[:2]
    out = {name: torch.empty(clips.shape, dtype=torch.uint8) for name in foreground.VARIANT_NAMES}
    for f in range(t):
        frame = foreground.variants(clips[:, f], masks[:, f], labels, seed=seed, num_classes=num_classes)
        for name, images in frame.items():
            out[name][:, f] = images.mul(255).round_().to(torch.uint8).cpu()
    return out


def clip_accuracies(classifier: nn.Module, variants: dict[str, torch.Tensor], labels: torch.Tensor, *,
                    batch_size: int, device: str) -> dict[str, float]:
    """Accuracy of ``classifier`` (clips → logits) on every variant of :func:`clip_variants`."""
    accs = {}
    for name, view in variants.items():
        pred = encode_tensor(classifier, view.float().div_(255), batch_size=batch_size, device=device).argmax(1)
        accs[name] = float((pred == labels.cpu()).double().mean())
    return accs


def run_fgbg_clips(ctx: Context) -> dict[str, Any]:
    clips, masks, labels, source = variant_images(ctx)
    variants = clip_variants(clips, masks, labels, seed=ctx.seed, num_classes=len(ctx.splits.test.class_names))
    options = {"batch_size": ctx.batch_size, "device": ctx.device}
    accs = clip_accuracies(ctx.classifier(), variants, labels, **options)
    gap = foreground.bg_gap(accs["mixed_same"], accs["mixed_rand"])
    values: dict[str, Any] = {"variants": accs, "bg_gap": gap, "variant_images": source, "frame_by_frame": True}
    ctx.report.add("foreground", values, note=NOTE)
    title = "Content probe on clips (variants frame by frame): accuracy per background variant"
    ctx.report.add_plot("background_variants", foreground.plot_variant_bars(accs, gap, title=title),
                        section="foreground",
                        caption=f"Content probe on clip variants (frame by frame): BG-gap {100 * gap:.1f} points.")
    if ctx.splits.has_environments:
        conf = clip_accuracies(ctx.classifier("confounded"), variants, labels, **options)
        conf_gap = foreground.bg_gap(conf["mixed_same"], conf["mixed_rand"])
        values["confounded_probe"] = {"variants": conf, "bg_gap": conf_gap}
        ctx.report.add("foreground", {"confounded_probe": values["confounded_probe"]})
    return {"foreground": values, "not_applicable": {"fgbg.full_vs_foreground": CLIP_MATRIX_REASON}}
