"""Spectrum (DirectCLR, RankMe, α-ReQ) and geometry (alignment, uniformity) of the test features."""

from __future__ import annotations

from typing import Any

import torch

import evaluations
from evaluations import geometry, spectrum

from ..data.temporal import clip_consistent
from .context import Context
from .samples import encode_tensor

SPECTRUM_NOTE = (
    "RankMe = effective rank of the raw test features (Garrido et al. 2023, ≤ feature dim); α-ReQ = decay of "
    "the covariance eigenvalues λ_i ∝ i^−α (≈ 1 is healthy, larger = more collapsed, Agrawal et al. 2022).")
GEOMETRY_NOTE = (
    "Alignment = mean ‖f(x¹) − f(x²)‖² of two augmented views (lower = more invariant); uniformity = "
    "log mean exp(−2‖f(x) − f(y)‖²) over test pairs (lower = more uniform), on L2-normalised backbone "
    "features (Wang & Isola 2020). On clips the two views are frame-consistent augmentations of each clip.")


def run_spectrum(ctx: Context) -> dict[str, Any]:
    z = ctx.features()["test"].x
    alpha, r2 = spectrum.alpha_req(z)
    values = {"rankme": spectrum.rankme(z), "alpha": alpha, "alpha_r2": r2, "dim": int(z.shape[1])}
    spectra = {"trained": spectrum.singular_spectrum(z),
               "random encoder": spectrum.singular_spectrum(ctx.features("random")["test"].x)}
    ctx.report.add("spectrum", values, note=SPECTRUM_NOTE)
    ctx.report.add_plot("spectrum", spectrum.plot_spectrum(spectra), section="spectrum", caption=(
        "Singular values of the covariance of L2-normalised test features (DirectCLR). A sharp drop "
        "marks collapsed dimensions."))
    return {"spectrum": values}


def run_geometry(ctx: Context, n: int = 2048) -> dict[str, Any]:
    images, _ = ctx.test_images(n)
    gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed)
    if images.ndim == 5:  # clips: each view one draw of the augmentation, the same for every frame of a clip
        v1, v2 = (clip_consistent(ctx.augment, images, gen) for _ in range(2))
        z1, z2 = (encode_tensor(ctx.encoder, v, batch_size=ctx.batch_size, device=ctx.device) for v in (v1, v2))
    else:
        v1, v2 = ctx.augment.views(images, 2, gen)
        z1, z2 = (evaluations.extract_features(ctx.encoder, v, batch_size=ctx.batch_size, device=ctx.device).x
                  for v in (v1, v2))
    uniformity = geometry.uniformity(ctx.features()["test"].x[:4096])
    values = {"alignment": geometry.alignment(z1, z2), "uniformity": uniformity}
    ctx.report.add("geometry", values, note=GEOMETRY_NOTE)
    return {"geometry": values}
