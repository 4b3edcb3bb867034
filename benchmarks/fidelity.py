"""Do the seeds' claims reproduce at CPU scale? SimCLR vs the causal methods on the SCM datasets.

For each dataset (``shapes`` with rho = 0.9 and ``digits``), each method configuration and each
seed, one run of the main job (``causalcl.job.run``) trains the method for a fixed CPU budget and
diagnoses it. The budget is the same number of seconds for every method: each configuration's step
time is measured once (median of 3 training steps after one warm-up step, on the real views) and its
step count set to ``budget / step time``, so the learning-rate schedule completes and slower
methods (the bilevel ones) get fewer steps — a "same compute" comparison.

Measured per run (test environment, where the class–background correlation is cut):
  * ``linear``: content-probe accuracy on the test set;
  * ``only_fg`` / ``mixed_rand``: that probe on foreground-only and random-background variants;
  * ``bg_gap``: mixed_same − mixed_rand of the probe fit on confounded data (how much a classifier
    built on the features follows the background);
  * ``cam_energy``: Grad-CAM (similarity target) energy inside the object mask, and the uniform-map
    baseline beside it in the JSON;
  * ``mce``: mean error over the 19 synthetic corruptions × 5 severities (not ImageNet-C);
  * ``content_r2`` / ``style_r2``: mean linear read-out score of the continuous content / style
    latents (R²); ``class_acc`` / ``bg_texture_acc`` for the categorical ones.

The table (mean ± sd over seeds) is printed, written to ``benchmarks/results/fidelity.json``, and
plotted to ``benchmarks/results/fidelity.png``.

    python benchmarks/fidelity.py                    # the full run (39 min on 2 cores)
    python benchmarks/fidelity.py --quick            # a ~2-minute smoke test
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import RESULTS, write_results  # noqa: E402

from causalcl.build import build_augment, build_method, build_view_fn, load_split  # noqa: E402
from causalcl.data import DATASETS  # noqa: E402
from causalcl.job import run  # noqa: E402
from causalcl.train import Config, Trainer  # noqa: E402

#: label → (method name, method options, views)
CONFIGS: dict[str, tuple[str, dict[str, Any], str]] = {
    "simclr": ("simclr", {}, "augment"),
    "simclr+interventional": ("simclr", {}, "interventional"),
    "icl_msr(simclr)": ("icl_msr", {"base": "simclr"}, "augment"),
    "relic": ("relic", {}, "augment"),
    "looc": ("looc", {}, "augment"),
    # the official λ_aug = 1e-5 leaves the MAGs nearly inert at this scale (causalcl/methods/metaug.py)
    "metaug(aug_weight=0.1)": ("metaug", {"aug_weight": 0.1}, "augment"),
}
DATASET_OPTIONS = {"shapes": {"rho": 0.9}, "digits": {}}
PLOT_LIMIT = 1.05  # every metric lies in [0, 1] but R², which can be far below 0 for a bad read-out
METRICS = ("linear", "only_fg", "mixed_rand", "bg_gap", "cam_energy", "mce", "content_r2", "style_r2",
           "class_acc", "bg_texture_acc")


def base_config(dataset: str, label: str, seed: int, args: argparse.Namespace) -> Config:
    name, options, views = CONFIGS[label]
    config = Config()
    config.set("data.name", dataset)
    for key, value in DATASET_OPTIONS[dataset].items():
        config.set(f"data.options.{key}", value)
    config.set("method.name", name)
    for key, value in options.items():
        config.set(f"method.{key}", value)
    config.set("augment.views", views)
    config.set("train.seed", seed)
    config.set("train.batch_size", args.batch_size)
    config.set("train.checkpoint_every", 0)
    config.set("train.log_every", 10)
    config.set("eval.diagnostics", ["linear", "fgbg", "robustness", "cam", "identifiability"])
    config.set("eval.fgbg_steps", 0)
    config.set("eval.robustness_images", args.robustness_images)
    config.set("eval.cam_images", args.cam_images)
    return config


def step_seconds(config: Config) -> float:
    """Median wall time of one training step of ``config`` (3 timed steps after 1 warm-up)."""
    config = copy.deepcopy(config)
    config.set("train.steps", 10)
    train_set = load_split(config, "train")
    augment = build_augment(config, int(train_set.images.shape[-1]))
    method = build_method(config)
    with tempfile.TemporaryDirectory(prefix="fidelity_calib_") as tmp:
        trainer = Trainer(method, train_set, build_view_fn(method, augment, config, train_set), config, tmp)
        times = []
        for step in range(4):
            start = time.perf_counter()
            trainer.train_step(trainer.views_for_step(step))
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def extract(results: dict[str, Any], roles: dict[str, str]) -> dict[str, float]:
    """The table's metrics from one run's ``results.json`` dict."""
    fg = results.get("foreground", {})
    ident = results.get("identifiability", {}).get("trained", {})

    def mean_score(role: str) -> float:
        scores = [v["score"] for k, v in ident.items() if roles.get(k) == role and "chance" not in v]
        return statistics.fmean(scores) if scores else float("nan")

    cam = results.get("grounding", {}).get("similarity", {})
    return {
        "linear": results["linear_probe"]["accuracy"],
        "only_fg": fg.get("variants", {}).get("only_fg", float("nan")),
        "mixed_rand": fg.get("variants", {}).get("mixed_rand", float("nan")),
        "bg_gap": fg.get("confounded_probe", {}).get("bg_gap", float("nan")),
        "cam_energy": cam.get("energy_in_mask", float("nan")),
        "cam_baseline": cam.get("energy_baseline", float("nan")),
        "mce": results.get("robustness", {}).get("mean_error", float("nan")),
        "content_r2": mean_score("content"),
        "style_r2": mean_score("style"),
        "class_acc": ident.get("cls", {}).get("score", float("nan")),
        "bg_texture_acc": ident.get("bg_texture", {}).get("score", float("nan")),
    }


def summarise(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sd over seeds per metric; NaN (a metric the dataset does not have) stays NaN."""
    out = {}
    for metric in runs[0]:
        values = [r[metric] for r in runs]
        if any(math.isnan(v) for v in values):
            out[metric] = {"mean": float("nan"), "sd": float("nan")}
            continue
        out[metric] = {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}
    return out


def print_table(dataset: str, table: dict[str, dict[str, dict[str, float]]]) -> None:
    print(f"\n{dataset}: mean ± sd over seeds")
    print(f"{'method':24s}" + "".join(f"{m:>16s}" for m in METRICS))
    for label, summary in table.items():
        cells = "".join(f"{summary[m]['mean']:>9.3f}±{summary[m]['sd']:<6.3f}" for m in METRICS)
        print(f"{label:24s}{cells}")


def plot(tables: dict[str, dict[str, dict[str, dict[str, float]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ("linear", "only_fg", "mixed_rand", "bg_gap", "cam_energy", "mce", "content_r2", "style_r2")
    fig, axes = plt.subplots(len(tables), 1, figsize=(12, 3.6 * len(tables)), squeeze=False)
    for ax, (dataset, table) in zip(axes[:, 0], tables.items(), strict=True):
        labels = list(table)
        width = 0.8 / max(len(labels), 1)
        for j, label in enumerate(labels):
            xs = [i + (j - (len(labels) - 1) / 2) * width for i in range(len(metrics))]
            means = [table[label][m]["mean"] for m in metrics]
            ax.bar(xs, means, width, yerr=[table[label][m]["sd"] for m in metrics], label=label, capsize=2)
            for x, mean in zip(xs, means, strict=True):  # R² can fall far below 0: print what the axis cuts off
                if abs(mean) > PLOT_LIMIT:
                    ax.annotate(f"{mean:.1f}", (x, math.copysign(PLOT_LIMIT - 0.04, mean)), ha="center", fontsize=7,
                                va="bottom" if mean < 0 else "top", zorder=5,
                                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "grey", "lw": 0.5})
        ax.set_ylim(-PLOT_LIMIT, PLOT_LIMIT)
        ax.set_xticks(range(len(metrics)), metrics)
        ax.set_title(f"{dataset} (mean ± sd over seeds, same CPU budget per method; axis cut at ±{PLOT_LIMIT})")
        ax.axhline(0, color="black", linewidth=0.5)
        ax.legend(fontsize=8, ncols=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="shapes,digits")
    parser.add_argument("--methods", default=",".join(CONFIGS), help=f"labels from {list(CONFIGS)}")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=25.0, help="training seconds per run (same for all)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--robustness-images", type=int, default=100)
    parser.add_argument("--cam-images", type=int, default=128)
    parser.add_argument("--out", default=None, help="folder for the runs (default: a temporary folder)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the runs of --out that already wrote results.json (an interrupted benchmark)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 seed, 3 s budget, shapes, 2 methods")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.methods, args.seeds, args.budget_s = "shapes", "simclr,simclr+interventional", 1, 3.0
        args.robustness_images, args.cam_images = 32, 32
    datasets = [d for d in args.datasets.split(",") if d]
    labels = [m for m in args.methods.split(",") if m]
    unknown = [m for m in labels if m not in CONFIGS] + [d for d in datasets if d not in DATASET_OPTIONS]
    if unknown:
        raise SystemExit(f"unknown method label or dataset: {unknown}; methods: {list(CONFIGS)}, "
                         f"datasets: {list(DATASET_OPTIONS)}")
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="fidelity_"))
    started = time.perf_counter()
    tables: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    raw: dict[str, dict[str, Any]] = {}
    for dataset in datasets:
        roles = getattr(DATASETS[dataset], "latent_roles", {})
        tables[dataset], raw[dataset] = {}, {}
        for label in labels:
            outs = [root / dataset / "".join(c if c.isalnum() else "_" for c in label) / f"seed{seed}"
                    for seed in range(args.seeds)]
            finished = {out: json.loads((out / "results.json").read_text()) for out in outs
                        if args.resume and (out / "results.json").is_file()}  # runs of an interrupted benchmark
            # calibrate only when a run is left to do; a fully reused configuration keeps its runs' step count
            seconds = step_seconds(base_config(dataset, label, 0, args)) if len(finished) < len(outs) else math.nan
            steps = max(10, int(args.budget_s / seconds)) if finished.keys() != set(outs) else \
                next(iter(finished.values()))["run"]["steps"]
            runs = []
            for seed, out in enumerate(outs):
                if out in finished:
                    print(f"[fidelity] {dataset} {label} seed {seed}: reusing {out / 'results.json'}", flush=True)
                    runs.append(extract(finished[out], roles))
                    continue
                config = base_config(dataset, label, seed, args)
                config.set("train.steps", steps)
                config.set("optim.warmup_steps", max(1, steps // 10))
                print(f"[fidelity] {dataset} {label} seed {seed}: {steps} steps ({seconds * 1e3:.0f} ms/step)",
                      flush=True)
                runs.append(extract(run(config, out), roles))
            tables[dataset][label] = summarise(runs)
            raw[dataset][label] = {"steps": steps, "step_seconds": seconds, "runs": runs}
        print_table(dataset, tables[dataset])
    payload = {"budget_s": args.budget_s, "seeds": args.seeds, "batch_size": args.batch_size,
               "robustness_images": args.robustness_images, "cam_images": args.cam_images,
               "torch_threads": torch.get_num_threads(), "total_seconds": round(time.perf_counter() - started, 1),
               "tables": tables, "raw": raw}
    name = "fidelity_quick" if args.quick else "fidelity"
    path = write_results(name, payload)
    plot(tables, RESULTS / f"{name}.png")
    print(f"\nwrote {path} and {RESULTS / f'{name}.png'} in {payload['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
