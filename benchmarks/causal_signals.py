"""Is a causal method's mechanism alive? Train it and summarise the logged quantity that shows it (issue 11).

* ``icl_msr``: ``meta_lookahead_share`` (the part of f_msr's gradient that comes from the contrastive task
  through the lookahead) — its minimum over the logged steps after warm-up, and where; ``msr_loss``,
  ``uni_loss`` (the strata's spread: log n² when every stratum is the same vector) and how often
  L_ct(θ¹) > L_ct(θ).
* ``metaug``: ``mag_grad_norm_aug``, ``mag_grad_norm_margin``, ``mag_grad_norm_lookahead`` — their ranges
  and the largest ratio between the two direct terms (and among all three) over the logged steps.

A real ``Trainer`` run on ``shapes`` (the method's defaults unless ``--set``), ``train.log_every`` 10:

    python benchmarks/causal_signals.py --method icl_msr --steps 500          # the defaults' 500-step check
    python benchmarks/causal_signals.py --method metaug --steps 200
    python benchmarks/causal_signals.py --method icl_msr --set method.gamma=0.1 --out /tmp/sig

Writes ``benchmarks/results/causal_signals_<method>.json`` (or ``--out``) with the summary and every logged row.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import RESULTS  # noqa: E402

from causalcl.build import build_augment, build_method, build_view_fn, load_split  # noqa: E402
from causalcl.train import Config, Trainer  # noqa: E402
from causalcl.train.config import parse_assignment  # noqa: E402
from causalcl.train.log import read_log  # noqa: E402

SIGNALS = {"icl_msr": ("meta_lookahead_share", "msr_loss", "uni_loss", "ct_loss", "meta_ct_loss"),
           "metaug": ("mag_grad_norm_aug", "mag_grad_norm_margin", "mag_grad_norm_lookahead")}


def summarise(method: str, log: dict[str, list[float]], warmup: int) -> dict[str, object]:
    """The mechanism's figures from a ``train_log.csv`` read by ``read_log``."""
    steps = log["step"]
    after = [i for i, s in enumerate(steps) if s > warmup]
    if method == "icl_msr":
        share = log["meta_lookahead_share"]
        low = min(after, key=lambda i: share[i]) if after else None
        return {"min_share_after_warmup": None if low is None else share[low],
                "min_share_step": None if low is None else steps[low],
                "msr_loss_first_last": [log["msr_loss"][0], log["msr_loss"][-1]],
                "msr_loss_min": min(log["msr_loss"]),
                "uni_loss_first_last": [log["uni_loss"][0], log["uni_loss"][-1]],
                "lookahead_raised_ct": sum(m > c for m, c in zip(log["meta_ct_loss"], log["ct_loss"], strict=True)),
                "logged_steps": len(steps)}
    aug, margin, look = (log[k] for k in SIGNALS["metaug"])
    pairs = list(zip(aug, margin, look, strict=True))
    return {"aug_range": [min(aug), max(aug)], "margin_range": [min(margin), max(margin)],
            "lookahead_range": [min(look), max(look)],
            "max_ratio_aug_margin": max(max(a, m) / min(a, m) for a, m, _ in pairs),
            "max_ratio_all_three": max(max(t) / min(t) for t in pairs),
            "all_positive": all(min(t) > 0 for t in pairs), "logged_steps": len(steps)}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=sorted(SIGNALS), default="icl_msr")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=None, help="the JSON's path (default benchmarks/results/)")
    args = parser.parse_args(argv)
    config = Config()
    for key, value in {"method.name": args.method, "train.steps": args.steps, "train.batch_size": args.batch_size,
                       "train.log_every": 10, "train.checkpoint_every": 0}.items():
        config.set(key, value)
    try:
        for assignment in args.set:
            config.set(*parse_assignment(assignment))
        train = load_split(config, "train")
        method = build_method(config)
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")
    view_fn = build_view_fn(method, build_augment(config, train.image_size), config, train)
    with tempfile.TemporaryDirectory() as tmp:
        Trainer(method, train, view_fn, config, tmp).fit()
        log = read_log(Path(tmp) / "train_log.csv")
    summary = summarise(args.method, log, config.optim.warmup_steps)
    for key, value in summary.items():
        print(f"{key}: {value}")
    payload = {"method": args.method, "config": config.to_dict(), "summary": summary,
               "rows": {k: log[k] for k in ("step", *SIGNALS[args.method])}}
    out = args.out or RESULTS / f"causal_signals_{args.method}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1))
    print(f"wrote {out}")
    return summary


if __name__ == "__main__":
    main()
