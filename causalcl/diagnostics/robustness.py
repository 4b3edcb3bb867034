"""Robustness of the encoder + content probe to synthetic corruptions and renditions.

The 19 corruptions of ``evaluations.robustness`` at severities 1–5 (CIFAR-10-C parameters below
64 px, ImageNet-C parameters above) and the OpenCV renditions, on the first ``n`` test images.
Results are labelled "synthetic corruptions": they are not ImageNet-C.
"""

from __future__ import annotations

from typing import Any

from evaluations import robustness

from .context import Context

NOTE = (
    "Top-1 error of the encoder + content probe on synthetic corruptions of the test split (ImageNet-C "
    "style; CIFAR-10-C parameters below 64 px), severities 1–5, and on OpenCV renditions (stylization, pencil, "
    "cartoon, edge-preserving). mean_error averages the 15 benchmark corruptions over severities; compare it "
    "with clean_error. Labelled 'synthetic corruptions', not ImageNet-C.")


def run_robustness(ctx: Context) -> dict[str, Any]:
    images, labels = ctx.test_images(ctx.options.get("robustness_images", 500))
    result = robustness.corruption_errors(ctx.classifier(), (images, labels), seed=ctx.seed,
                                          batch_size=ctx.batch_size, device=ctx.device, renditions=True)
    values = result.to_dict()
    ctx.report.add("robustness", values, note=NOTE)
    ctx.report.add_plot("corruption_errors", result.plot(), section="robustness", caption=(
        f"Error by corruption and severity ({result.label}, {result.n_images} test images); dashed: clean error."))
    return {"robustness": values}
