"""Foreground/background diagnostics on data with masks.

- ImageNet-9 style background variants of the test split, scored with the encoder + content probe,
  and the BG-gap = acc(mixed_same) − acc(mixed_rand) (Xiao et al., ICLR 2021).
- The ICL-MSR seed's 2×2 protocol: an encoder pre-trained with the run's method on full images and
  one pre-trained on foreground-only images (same recipe and budget: ``eval.fgbg_steps`` steps at
  ``eval.fgbg_batch_size``), each probed on full and on foreground-only images.
- On clips (``moving_shapes``) the variants are built frame by frame (``foreground_clips``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from evaluations import foreground

from .context import Context
from .foreground_clips import run_fgbg_clips
from .variant_images import split_arrays, variant_images

VARIANTS_NOTE = (
    "Accuracy of the encoder + content probe on ImageNet-9 style variants of the test split: only_fg (background "
    "black), no_fg (object black), only_bg (object box filled with tiled background), and the object pasted "
    "pixel for pixel onto the background of an image of the same class (mixed_same), a random class "
    "(mixed_rand) or the next class (mixed_next). BG-gap = mixed_same − mixed_rand: how much predictions follow "
    "the background. 'variants' use the content probe (fit on unconfounded data); 'confounded_probe' uses the "
    "probe fit on the confounded training split, which can learn to read the background from the features. On the "
    "embedded data the variants are built from training-environment images no probe was fit on, where the "
    "background follows the class (rho), as in natural images.")
MATRIX_NOTE = (
    "A separate study, not a measurement of this run's encoder: the 2×2 protocol of the ICL-MSR seed trains two "
    "fresh encoders with this run's method for eval.fgbg_steps steps each (default 40, whatever the run's own "
    "length) on the probe split — one on full images, one on foreground-only images, same budget and seed — so its "
    "numbers are the same in every run with that method and settings. Rows = what the encoder was pre-trained on, "
    "columns = what the linear probe is fit and scored on. The seed's finding: training on full images favours "
    "full-image testing, training on foregrounds favours foreground testing.")


#: the 2×2 plot's title: a study of two fresh encoders, not of the run's
STUDY_TITLE = "Separate study: full vs foreground (two fresh short-trained encoders)"


def run_fgbg(ctx: Context) -> dict[str, Any]:
    if ctx.splits.kind == "video":  # clips: the variants frame by frame, no 2×2 matrix
        return run_fgbg_clips(ctx)
    images, masks, labels, source = variant_images(ctx)
    views = foreground.variants(images, masks, labels, seed=ctx.seed, num_classes=len(ctx.splits.test.class_names))
    accs = foreground.background_variant_accuracies(ctx.classifier(), views, labels, batch_size=ctx.batch_size,
                                                    device=ctx.device)
    gap = foreground.bg_gap(accs["mixed_same"], accs["mixed_rand"])
    values: dict[str, Any] = {"variants": accs, "bg_gap": gap, "variant_images": source}
    ctx.report.add("foreground", values, note=VARIANTS_NOTE)
    content_title = "Content probe (fit on the unconfounded probe split): accuracy per background variant"
    ctx.report.add_plot("background_variants", foreground.plot_variant_bars(accs, gap, title=content_title),
                        section="foreground",
                        caption=f"Content probe: accuracy per background variant; BG-gap {100 * gap:.1f} points.")
    if ctx.splits.has_environments:  # the probe fit where the background predicts the class
        conf = foreground.background_variant_accuracies(ctx.classifier("confounded"), views, labels,
                                                        batch_size=ctx.batch_size, device=ctx.device)
        conf_gap = foreground.bg_gap(conf["mixed_same"], conf["mixed_rand"])
        values["confounded_probe"] = {"variants": conf, "bg_gap": conf_gap}
        ctx.report.add("foreground", {"confounded_probe": values["confounded_probe"]})
        conf_title = "Probe fit on the confounded train split: accuracy per background variant"
        ctx.report.add_plot("background_variants_confounded",
                            foreground.plot_variant_bars(conf, conf_gap, title=conf_title),
                            section="foreground", caption=(
                                f"Probe fit on the confounded training split: BG-gap {100 * conf_gap:.1f} points — "
                                "how far a classifier built on these features follows the background."))
    train_fn: Callable[[torch.Tensor], nn.Module] | None = ctx.options.get("pretrain_fn")
    if train_fn is not None:
        data = {"train": split_arrays(ctx.splits.probe), "test": split_arrays(ctx.splits.test)}
        matrix = foreground.full_vs_foreground(train_fn, data, batch_size=ctx.batch_size, device=ctx.device)
        values["full_vs_foreground"] = matrix.as_dict()
        ctx.report.add("foreground", {"full_vs_foreground": values["full_vs_foreground"]}, note=MATRIX_NOTE)
        ctx.report.add_plot("full_vs_foreground", matrix.plot(title=STUDY_TITLE), section="foreground",
                            caption="Separate study (not this run's encoder): the 2×2 full-vs-foreground matrix of the "
                                    "ICL-MSR seed, two fresh short-trained encoders.")
    return {"foreground": values}
