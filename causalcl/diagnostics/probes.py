"""Linear probe (with the spurious gap and the random-encoder / raw-pixel baselines) and weighted kNN."""

from __future__ import annotations

from typing import Any

import evaluations

from .context import Context, confounded_subset
from .headline import majority_rate
from .plots import probe_bars
from .samples import RAW_BASELINES, raw_baseline

LINEAR_NOTE = (
    "Multinomial logistic regression on the frozen backbone features, scored on the unconfounded test "
    "environment. 'accuracy': fit on the unconfounded probe split — how much content is linearly "
    "decodable. 'confounded_fit_accuracy': the same probe fit on as many items of the confounded training "
    "split, where the background predicts the class; 'spurious_gap' = accuracy − confounded_fit_accuracy. "
    "A large gap means the features carry the background well enough for a probe to lean on it.")
BASELINE_NOTE = (
    "The same linear protocol on a randomly initialised encoder of the same architecture and on the raw data "
    "(pixels; a clip's mean frame; a node's raw features). Read every number above against these: training helped "
    "only by what it adds to them.")
KNN_NOTE = ("Weighted kNN (cosine, weights exp(s/T), InstDisc protocol): probe split as the bank, test split "
            "as queries.")


def linear_protocol(feats: dict[str, Any], has_environments: bool, seed: int = 0,
                    main: evaluations.ProbeResult | None = None,
                    confounded: evaluations.ProbeResult | None = None, ctx: Context | None = None,
                    what: str = "") -> dict[str, float]:
    """Probe fit on ``probe`` scored on ``test``; with environments also fit on (a probe-sized subset of)
    the confounded ``train`` split, and the difference of the two accuracies (the spurious gap).

    With ``ctx``, the fits report their progress through ``ctx.progress``, labelled with ``what``."""
    probe, test = feats["probe"], feats["test"]

    def progress(fit: str):  # noqa: ANN202 (a callback or None)
        return ctx.probe_progress(f"{what}, {fit}") if ctx is not None else None

    main = main or evaluations.linear_probe(probe.x, probe.y, test.x, test.y, progress=progress("fit on probe"))
    out = {"accuracy": main.accuracy, "weight_decay": main.weight_decay}
    if has_environments:
        if confounded is None:
            idx = confounded_subset(len(feats["train"].x), len(probe.x), seed)
            confounded = evaluations.linear_probe(feats["train"].x[idx], feats["train"].y[idx], test.x, test.y,
                                                  progress=progress("fit on the confounded train split"))
        conf = confounded
        out["confounded_fit_accuracy"] = conf.accuracy
        out["spurious_gap"] = main.accuracy - conf.accuracy
    return out


def run_linear(ctx: Context) -> dict[str, Any]:
    envs = ctx.splits.has_environments
    confounded = ctx.confounded_probe() if envs else None
    results = {"linear_probe": linear_protocol(ctx.features(), envs, ctx.seed, main=ctx.content_probe(),
                                               confounded=confounded)}
    raw_key, raw_label = RAW_BASELINES[ctx.splits.kind]
    raw_feats = {name: raw_baseline(getattr(ctx.splits, name)) for name in ("train", "probe", "test")}
    results["baselines"] = {
        "random_encoder": {"linear_probe": linear_protocol(ctx.features("random"), envs, ctx.seed, ctx=ctx,
                                                           what="random encoder")},
        raw_key: {"linear_probe": linear_protocol(raw_feats, envs, ctx.seed, ctx=ctx, what=raw_label),
                  "what": raw_label},
    }
    ctx.report.add("linear_probe", results["linear_probe"], note=LINEAR_NOTE)
    ctx.report.add("baselines", results["baselines"], note=BASELINE_NOTE)
    ctx.report.add_plot("linear_probe", probe_bars(results, majority_rate(ctx.splits.test)), section="linear_probe",
                        caption=("Linear-probe accuracy on the test environment. 'fit on probe': the probe is fit on "
                                 "the unconfounded probe split (content decodability); 'fit on train': fit on the "
                                 "confounded training split, so it can lean on the background. The difference is "
                                 "the spurious gap. Dotted: the random encoder's content probe; dashed: chance "
                                 "(the test split's majority-class rate)."))
    return results


def run_knn(ctx: Context) -> dict[str, Any]:
    feats = ctx.features()
    k = min(ctx.knn_k, len(feats["probe"].x))
    acc = evaluations.knn_accuracy(feats["probe"].x, feats["probe"].y, feats["test"].x, feats["test"].y,
                                   k=k, temperature=ctx.knn_temperature)
    results = {"knn": {"accuracy": acc, "k": k, "temperature": ctx.knn_temperature}}
    ctx.report.add("knn", results["knn"], note=KNN_NOTE)
    return results
