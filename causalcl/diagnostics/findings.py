"""A few plain sentences that say what the numbers show, for the top of the report."""

from __future__ import annotations

from typing import Any


def findings(results: dict[str, Any]) -> list[str]:
    """Sentences for the headline results that are present; each compares against its baseline."""
    out: list[str] = []
    lp = results.get("linear_probe")
    base = results.get("baselines", {})
    if lp:
        rand = base.get("random_encoder", {}).get("linear_probe", {}).get("accuracy")
        pix = base.get("raw_pixels", {}).get("linear_probe", {}).get("accuracy")
        text = f"Content probe accuracy {lp['accuracy']:.1%}"
        if rand is not None and pix is not None:
            text += (f" against {rand:.1%} for a random encoder and {pix:.1%} for raw pixels "
                     f"({100 * (lp['accuracy'] - rand):+.1f} points over the random encoder).")
        out.append(text)
        if "spurious_gap" in lp:
            gap = lp["spurious_gap"]
            verdict = ("the features carry the confounded background, so a probe fit where background predicts "
                       "class leans on it" if gap > 0.05 else "a probe fit on confounded data barely leans on "
                       "the background")
            out.append(f"Spurious gap {100 * gap:.1f} points (fit on unconfounded {lp['accuracy']:.1%} vs on "
                       f"confounded {lp['confounded_fit_accuracy']:.1%}): {verdict}.")
    ground = results.get("grounding", {}).get("probe")
    if ground:
        focused = ground["energy_in_mask"] > 1.25 * ground["energy_baseline"]
        out.append(f"Grad-CAM energy on the object {ground['energy_in_mask']:.1%} against "
                   f"{ground['energy_baseline']:.1%} for a uniform map: "
                   + ("the maps concentrate on the object." if focused else "the maps do not single out the object."))
    fg = results.get("foreground", {})
    if "bg_gap" in fg:
        out.append(f"BG-gap {100 * fg['bg_gap']:.1f} points (mixed-same minus mixed-rand backgrounds): "
                   + ("predictions follow the background." if fg["bg_gap"] > 0.05 else
                      "predictions depend little on which background the object sits on."))
    return out
