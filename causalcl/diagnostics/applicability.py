"""Which diagnostics apply to a dataset, and one line saying why for each one that does not.

A diagnostic needs what its registry entry names (``masks``, ``latents``) and an input kind it is defined on:
clips (``moving_shapes``) get the probes, spectra, geometry (frame-consistent views), the background variants
frame by frame and the read-outs; graph nodes (``scm_graph``) get the probes, spectra and read-outs.
"""

from __future__ import annotations

from typing import Any

#: (input kind → diagnostic → why it does not apply)
NOT_APPLICABLE: dict[str, dict[str, str]] = {
    "video": {
        "robustness": "the corruption suite (ImageNet-C / CIFAR-10-C parameters) is defined on still images; "
                      "corrupting clips frame by frame would not be a calibrated benchmark, so it is not run",
        "cam": "the evaluation layer's Grad-CAM makes one map per input image; a clip encoder's last maps are per "
               "frame and mixed over time (or pooled over frames), which it does not model",
    },
    "graph": {
        "geometry": "alignment needs two augmented views of a sample, and graphs have no augmentation here (DGI "
                    "contrasts nodes with a corrupted graph)",
        "fgbg": "nodes have no foreground or background (no masks); scm_graph's confounded style is measured by the "
                "spurious gap and the style read-out instead",
        "robustness": "image corruptions do not apply to node features and edges",
        "cam": "Grad-CAM maps pixels, and a node embedding has no spatial map",
    },
}

#: why a diagnostic is skipped when the dataset lacks what it needs
MISSING = {"masks": "the dataset has no foreground masks",
           "latents": "the dataset has no ground-truth latents (it is not generated from an SCM)"}

#: the fg/bg diagnostic on clips: the part that is not run, and why
CLIP_MATRIX_REASON = ("the 2×2 full-vs-foreground protocol of the evaluation layer pre-trains and probes on still "
                      "images (N, 3, H, W); a clip version is not implemented, so only the background variants run "
                      "(frame by frame)")

KIND_WORDS = {"image": "images", "video": "clips", "graph": "graph nodes"}


def applicable(names: list[str], requirements: dict[str, str], splits: Any) -> tuple[list[str], dict[str, str]]:
    """(the diagnostics of ``names`` that run, {each other one: why not}) for the dataset of ``splits``.

    ``requirements``: diagnostic → what it needs (``""``, ``"masks"``, ``"latents"``)."""
    have = {"": True, "masks": splits.has_masks, "latents": splits.has_latents}
    kind = splits.kind
    reasons: dict[str, str] = {}
    for name in names:
        if name in NOT_APPLICABLE.get(kind, {}):
            reasons[name] = NOT_APPLICABLE[kind][name]
        elif not have[requirements[name]]:
            reasons[name] = MISSING[requirements[name]]
    return [n for n in names if n not in reasons], reasons
