"""The baselines of a ``--methods`` comparison: random-encoder and raw-data columns, and who beats the random encoder.

Every method's run diagnoses a randomly initialised encoder of the same architecture and the raw data (pixels, or
raw node features) with the same protocol (``baselines.*`` and ``identifiability.random.*`` in its
``results.json``). Methods of one comparison share the backbone, data and seed, so these numbers are the same in
every run; the columns show the first run's. A method "beats the random encoder" when its content probe
(``linear_probe.accuracy``) is above the random encoder's of its own run. Only such methods can be marked best of a
row: a method below the random encoder learned nothing linearly decodable, and its low spurious gap or BG-gap is no
win (a representation that encodes nothing leans on nothing).
"""

from __future__ import annotations

from typing import Any

from evaluations.report import flatten, format_value

CONTENT = "linear_probe.accuracy"
RANDOM = "random encoder"


def baseline_key(key: str, baseline: str) -> str | None:
    """Where the ``baseline`` (``random_encoder``, ``raw_pixels``, ``raw_features``) value of the metric ``key``
    lies in a run's results, or None when the protocol has no such baseline for it."""
    if key.startswith("linear_probe."):
        return f"baselines.{baseline}.{key}"
    if key.startswith("identifiability.trained.") and baseline == "random_encoder":
        return "identifiability.random." + key.removeprefix("identifiability.trained.")
    return None


def _raw(flat: dict[str, Any]) -> tuple[str, str] | None:
    for raw in ("raw_pixels", "raw_features"):
        if any(k.startswith(f"baselines.{raw}.") for k in flat):
            return raw, str(flat.get(f"baselines.{raw}.what", raw.replace("_", " ")))
    return None


def baseline_columns(results: dict[str, dict[str, Any]], keys: list[str]) -> dict[str, dict[str, Any]]:
    """``{column label: {metric key: value}}`` for the random encoder and the raw data (the first run that has
    each value); a column no metric has is left out."""
    flats = [flatten(r, lists=False) for r in results.values()]
    raws = [r for f in flats if (r := _raw(f)) is not None]
    sources = [("random_encoder", RANDOM)] + ([(raws[0][0], raws[0][1])] if raws else [])
    columns: dict[str, dict[str, Any]] = {}
    for baseline, label in sources:
        values = {}
        for key in keys:
            where = baseline_key(key, baseline)
            found = [f[where] for f in flats if where is not None and f.get(where) is not None]
            if found:
                values[key] = found[0]
        if values:
            columns[label] = values
    return columns


def beats_random(results: dict[str, dict[str, Any]]) -> dict[str, bool | None]:
    """Per method: content probe above its run's random encoder (True / False), or None when either is missing."""
    out: dict[str, bool | None] = {}
    for name, r in results.items():
        flat = flatten(r, lists=False)
        acc, rand = flat.get(CONTENT), flat.get(f"baselines.random_encoder.{CONTENT}")
        out[name] = None if acc is None or rand is None else acc > rand
    return out


def eligible(results: dict[str, dict[str, Any]]) -> set[str]:
    """The methods that may be marked best: those that beat the random encoder (all, where no run measured it)."""
    beats = beats_random(results)
    return {name for name, b in beats.items() if b is not False}


def below_random_findings(results: dict[str, dict[str, Any]]) -> list[str]:
    """One sentence per method whose content probe is not above the random encoder's, and one when none is."""
    beats = beats_random(results)
    out = []
    for name, b in beats.items():
        if b is False:
            flat = flatten(results[name], lists=False)
            acc, rand = flat[CONTENT], flat[f"baselines.random_encoder.{CONTENT}"]
            out.append(f"{name} is below the random encoder on the content probe ({format_value(CONTENT, acc)} vs "
                       f"{format_value(CONTENT, rand)}): its training added no linearly decodable content, so it is "
                       "never marked best, and its low gaps mean little.")
    if beats and all(b is False for b in beats.values()):
        out.append("No method beats the random encoder on the content probe: no best value is marked.")
    return out
