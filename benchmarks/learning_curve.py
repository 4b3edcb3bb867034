"""Content probe against training steps: the curve that fixes the fidelity study's step count (issue 12).

One run of a method (default SimCLR, ``shapes`` with rho = 0.9, ``convnet_small``, batch 128, the CLI's
defaults otherwise) for ``--steps`` steps under its warm-up + cosine schedule; at each step of ``--at`` the frozen
backbone is read out by the content probe of the main job (``evaluations.linear_probe``, fit on the unconfounded
``probe`` split, scored on ``test``; weight decay chosen on a hold-out). The probe at step k of an N-step run is
read while the learning rate is still above its end value, so it is a lower bound on what an k-step schedule
reaches at its end; the last point is a completed schedule.

Resumable: the trainer's checkpoint and every probe point are kept in ``--out`` (``curve.json``); a rerun with
the same arguments continues from the last point instead of starting again. The summary (the points, and the
first step after which the probe gains less than ``--plateau-gain`` points over the rest of the run) is written
to ``benchmarks/results/learning_curve_<label>.json``, and every stored curve is drawn in
``benchmarks/results/learning_curve.png`` (content probe against steps, each curve's plateau dashed, the study's
step count solid; ``--plot-only`` redraws it from the stored curves).

    python benchmarks/learning_curve.py --out runs/curve_simclr                        # ≈ 20 min on 2 cores
    python benchmarks/learning_curve.py --views interventional --out runs/curve_simclr_int
    python benchmarks/learning_curve.py --quick --out /tmp/curve                       # smoke test
    python benchmarks/learning_curve.py --plot-only                                    # the figure only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import RESULTS, write_results  # noqa: E402

import evaluations  # noqa: E402
from causalcl.build import build_augment, build_method, build_view_fn, load_split  # noqa: E402
from causalcl.train import Config, Trainer, parse_assignment  # noqa: E402
from causalcl.train.checkpoint import load_checkpoint  # noqa: E402

DEFAULT_AT = (0, 250, 500, 1000, 1500, 2000, 3000, 4000, 5000)


def make_config(args: argparse.Namespace) -> Config:
    config = Config()
    for key, value in {"method.name": args.method, "data.name": "shapes", "data.options.rho": args.rho,
                       "augment.views": args.views, "train.batch_size": args.batch_size, "train.seed": args.seed,
                       "train.steps": args.steps, "train.checkpoint_every": 0, "train.device": args.device}.items():
        config.set(key, value)
    for text in args.set:
        config.set(*parse_assignment(text))
    return config


def probe_point(trainer: Trainer, splits: dict[str, Any], device: str) -> float:
    """Content-probe accuracy of the trainer's current encoder (eval mode, then back to train mode)."""
    encoder = trainer.method.encoder
    was_training = encoder.training
    encoder.eval()
    feats = {name: evaluations.extract_features(encoder, split, batch_size=512, device=device)
             for name, split in splits.items()}
    encoder.train(was_training)
    return evaluations.linear_probe(feats["probe"].x, feats["probe"].y, feats["test"].x, feats["test"].y).accuracy


def plateau_step(points: list[dict[str, float]], gain: float) -> int | None:
    """The first probed step after which the probe never gains more than ``gain`` (accuracy, 0–1) again."""
    for i, p in enumerate(points):
        if all(q["content_probe"] - p["content_probe"] <= gain for q in points[i + 1:]):
            return int(p["step"]) if i < len(points) - 1 else None
    return None


_VIEWS = {"augment": "pixel augmentations", "interventional": "true interventional views"}


def plot(results_dir: Path = RESULTS) -> Path | None:
    """Draw every stored curve (``learning_curve_<method>_<views>.json``, quick ones left out) into
    ``learning_curve.png`` beside them; None when there is none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from fidelity import DEFAULT_STEPS as STUDY_STEPS  # the step count this curve chose, drawn on the figure

    curves = [json.loads(p.read_text()) for p in sorted(results_dir.glob("learning_curve_*.json"))
              if not p.stem.endswith("_quick")]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for curve, colour in zip(curves, ("#3b75af", "#2a9d4b", "#c0392b", "#7f8c8d"), strict=False):
        steps = [p["step"] for p in curve["points"]]
        acc = [100 * p["content_probe"] for p in curve["points"]]
        name = f"{curve['method']}, {_VIEWS.get(curve['views'], curve['views'])}"
        ax.plot(steps, acc, "o-", color=colour, label=name)
        if curve.get("plateau_step") is not None:
            ax.axvline(curve["plateau_step"], color=colour, ls="--", lw=1)
            at = acc[steps.index(curve["plateau_step"])] if curve["plateau_step"] in steps else min(acc)
            ax.annotate(f"plateau: step {curve['plateau_step']}", (curve["plateau_step"], at), color=colour,
                        textcoords="offset points", xytext=(6, -14), fontsize=8)
    ax.axvline(STUDY_STEPS, color="black", lw=1.2)
    ax.annotate(f"study: {STUDY_STEPS} steps", (STUDY_STEPS, 1.0), xycoords=("data", "axes fraction"),
                textcoords="offset points", xytext=(4, -12), fontsize=8)
    gain = curves[0].get("plateau_gain", 0.02)
    ax.set(xlabel="training steps (batch 128)", ylabel="content probe accuracy (%)", ylim=(0, 100),
           title=f"Content probe vs steps on shapes (rho 0.9); plateau: no later point more than {100 * gain:.0f} "
                 "points higher")
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    fig.tight_layout()
    out = results_dir / "learning_curve.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="simclr")
    parser.add_argument("--views", default="augment", choices=["augment", "interventional"])
    parser.add_argument("--rho", type=float, default=0.9)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--at", default=",".join(map(str, DEFAULT_AT)), help="comma list of steps to probe at")
    parser.add_argument("--plateau-gain", type=float, default=0.02,
                        help="a step is on the plateau when no later point is more than this above it")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, help="folder for the checkpoint and curve.json (required to train)")
    parser.add_argument("--plot-only", action="store_true", help="redraw learning_curve.png from the stored curves")
    parser.add_argument("--quick", action="store_true", help="smoke test: 12 steps, probed at 0, 6, 12, n=256")
    args = parser.parse_args(argv)
    if args.plot_only:
        out = plot()
        print(f"wrote {out}" if out else "no stored learning curves to draw")
        return 0
    if args.out is None:
        print("error: --out: required (the folder for the checkpoint and curve.json)", file=sys.stderr)
        return 2
    if args.quick:
        args.steps, args.at = 12, "0,6,12"
        args.set = [*args.set, "data.options.n=256", "train.batch_size=32"]
    at = sorted({int(s) for s in args.at.split(",") if s.strip()} | {args.steps})
    if any(s < 0 or s > args.steps for s in at):
        print(f"error: --at: steps must lie in 0..{args.steps}, got {args.at}", file=sys.stderr)
        return 2
    config = make_config(args)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    label = f"{args.method}_{args.views}" + ("_quick" if args.quick else "")
    args.out.mkdir(parents=True, exist_ok=True)
    curve_path = args.out / "curve.json"
    saved = json.loads(curve_path.read_text()) if curve_path.is_file() else {}
    if saved and saved.get("config") != config.to_dict():
        print(f"error: --out: {curve_path} is the curve of another configuration", file=sys.stderr)
        return 2
    points: list[dict[str, float]] = saved.get("points", [])
    train_set = load_split(config, "train")
    splits = {name: load_split(config, name) for name in ("probe", "test")}
    augment = build_augment(config, int(train_set.images.shape[-1]))
    method = build_method(config)
    trainer = Trainer(method, train_set, build_view_fn(method, augment, config, train_set), config, args.out)
    if trainer.checkpoint_path.is_file() and points:
        trainer.load_state_dict(load_checkpoint(trainer.checkpoint_path, map_location=trainer.device))
    seconds = float(saved.get("train_seconds", 0.0))
    resuming = f"; resuming at step {trainer.step}" if points else ""
    print(f"learning curve: {args.method} ({args.views} views) on shapes rho={args.rho}, batch "
          f"{config.train.batch_size}, {args.steps} steps, probe at {at}{resuming}", flush=True)
    for target in at:
        if any(int(p["step"]) == target for p in points):
            continue
        started = time.perf_counter()
        while trainer.step < target:
            trainer.train_step(trainer.views_for_step(trainer.step))
        seconds += time.perf_counter() - started
        probe_started = time.perf_counter()
        acc = probe_point(trainer, splits, args.device)
        points.append({"step": target, "content_probe": acc, "train_seconds": round(seconds, 1),
                       "probe_seconds": round(time.perf_counter() - probe_started, 1),
                       "lr": trainer.scheduler.get_last_lr()[0]})
        trainer.save()
        curve_path.write_text(json.dumps({"config": config.to_dict(), "points": points, "train_seconds": seconds},
                                         indent=1))
        print(f"  step {target:5d}: content probe {acc:.3f}  ({seconds:.0f} s of training)", flush=True)
    plateau = plateau_step(points, args.plateau_gain)
    payload = {"method": args.method, "views": args.views, "rho": args.rho, "batch_size": args.batch_size,
               "steps": args.steps, "seed": args.seed, "plateau_gain": args.plateau_gain, "plateau_step": plateau,
               "points": points, "torch_threads": torch.get_num_threads()}
    path = write_results(f"learning_curve_{label}", payload)
    figure = None if args.quick else plot(path.parent)
    print(f"plateau (no later gain above {args.plateau_gain:.0%}): "
          f"{'step ' + str(plateau) if plateau is not None else 'not reached'}; wrote {path}"
          + (f" and {figure}" if figure else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
