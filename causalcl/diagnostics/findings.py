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
        raw_key = "raw_features" if "raw_features" in base else "raw_pixels"
        raw = base.get(raw_key, {}).get("linear_probe", {}).get("accuracy")
        what = "raw node features" if raw_key == "raw_features" else "raw pixels"
        text = f"Content probe accuracy {lp['accuracy']:.1%}"
        if rand is not None and raw is not None:
            text += (f" against {rand:.1%} for a random encoder and {raw:.1%} for {what} "
                     f"({100 * (lp['accuracy'] - rand):+.1f} points over the random encoder, "
                     f"{100 * (lp['accuracy'] - raw):+.1f} over {what}).")
        out.append(text)
        if "spurious_gap" in lp:
            gap = lp["spurious_gap"]
            style = "style signal" if raw_key == "raw_features" else "background"  # graphs: the feature style
            verdict = (f"the features carry the confounded {style}, so a probe fit where the {style} predicts "
                       "class leans on it" if gap > 0.05 else "a probe fit on confounded data barely leans on "
                       f"the {style}")
            out.append(f"Spurious gap {100 * gap:.1f} points (fit on unconfounded {lp['accuracy']:.1%} vs on "
                       f"confounded {lp['confounded_fit_accuracy']:.1%}): {verdict}.")
    ground = results.get("grounding", {}).get("probe")
    if ground:
        focused = ground["energy_in_mask"] > 1.25 * ground["energy_baseline"]
        out.append(f"Grad-CAM energy on the object {ground['energy_in_mask']:.1%} against "
                   f"{ground['energy_baseline']:.1%} for a uniform map: "
                   + ("the maps concentrate on the object." if focused else "the maps do not single out the object."))
    fg = results.get("foreground", {})
    for key, who in (("", "content probe"), ("confounded_probe", "probe fit on confounded data")):
        part = fg.get(key, {}) if key else fg
        if "bg_gap" in part:
            out.append(f"BG-gap of the {who} {100 * part['bg_gap']:.1f} points (mixed-same minus mixed-rand "
                       "backgrounds): " + ("its predictions follow the background." if part["bg_gap"] > 0.05 else
                                          "its predictions depend little on the background."))
    # the 2×2 full-vs-foreground matrix is a separate study of two fresh short-trained encoders, not a finding about
    # this run (its section says so): it is not listed here
    ident = results.get("identifiability", {}).get("trained", {})
    style = {k: v for k, v in ident.items() if v.get("role") == "style" and v.get("metric") == "accuracy"}
    if "cls" in ident and style:
        name, best = max(style.items(), key=lambda kv: kv[1]["score"])
        out.append(f"Read-out: {name} (style) {best['score']:.1%} (chance {best['chance']:.1%}) vs the class "
                   f"{ident['cls']['score']:.1%} (chance {ident['cls']['chance']:.1%}).")
    for name, reason in results.get("not_applicable", {}).items():
        out.append(f"Not run: {name} — {reason}.")
    return out
