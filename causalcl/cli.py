"""The main job: train a method, then diagnose what its representation learned, then report.

    causalcl                                  # SimCLR on the embedded `shapes` data, CPU, minutes
    causalcl --method simclr --set method.loss=dcl --steps 500 --out runs/dcl
    causalcl --dataset cifar10 --data-root ~/data --backbone resnet18 --set model.cifar_stem=true
    causalcl --methods simclr,byol,barlow_twins --out runs/zoo   # several methods side by side

Writes to ``--out``: config.yaml, train_log.csv, checkpoint.pt, results.json, results.csv,
plots/*.png and a self-contained report.html; prints a summary table.

With ``--methods a,b,c`` each method is trained and diagnosed in ``<out>/<method>/`` (the files above,
same data, backbone, batch, seed and steps), then ``<out>/`` gets one combined report.html, results.json
and results.csv comparing them; see ``causalcl.multi`` (``method.<key>`` overrides, per-method --resume).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from .train.config import Config, load_yaml, parse_assignment, save_yaml


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="causalcl", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--method", help="method name (default simclr); see causalcl.methods.METHODS")
    which.add_argument("--methods", metavar="A,B,C",
                       help="comma list of methods to train and diagnose side by side, each in <out>/<method>/")
    p.add_argument("--dataset", help="shapes | digits | cifar10 | cifar100 | imagefolder (default shapes)")
    p.add_argument("--data-root", help="local root of a real dataset (nothing is downloaded)")
    p.add_argument("--backbone", help="convnet_small | resnet18 | resnet50")
    p.add_argument("--steps", type=int, help="training steps")
    p.add_argument("--epochs", type=float, help="training epochs (overrides --steps)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", help="cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int)
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument("--views", choices=["augment", "interventional"],
                   help="pixel augmentation (default) or true counterfactuals do(style) (shapes/digits)")
    p.add_argument("--time-limit", type=float, help="stop training after this many seconds")
    p.add_argument("--config", help="YAML file of overrides (e.g. assets/configs/simclr.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set optim.lr=0.01 (repeatable)")
    p.add_argument("--diagnostics", help="comma list of linear,knn,spectrum,geometry; 'all' or 'none'")
    p.add_argument("--out", help="output folder (default runs/<method>_<dataset>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    return p


def make_config(args: argparse.Namespace, method: str | None = None, out: str | Path | None = None) -> Config:
    """Defaults ← saved config (on --resume) ← --config YAML ← flags ← --set.

    ``method`` / ``out`` override ``--method`` / ``--out`` (one method of ``--methods``)."""
    config = Config()
    out = out if out is not None else args.out
    if args.resume and out and (Path(out) / "config.yaml").is_file():
        config.update(load_yaml(Path(out) / "config.yaml"))
    if args.config:
        config.update(load_yaml(args.config))
    flags = {"method.name": method or args.method, "data.name": args.dataset, "data.root": args.data_root,
             "model.backbone": args.backbone, "train.steps": args.steps, "train.epochs": args.epochs,
             "train.batch_size": args.batch_size, "train.device": args.device, "train.seed": args.seed,
             "train.checkpoint_every": args.checkpoint_every, "train.time_limit_s": args.time_limit,
             "augment.views": args.views}
    for key, value in flags.items():
        if value is not None:
            config.set(key, value)
    if args.diagnostics is not None:
        from .diagnostics import parse_diagnostics

        config.eval.diagnostics = parse_diagnostics(args.diagnostics)
    for assignment in args.set:
        config.set(*parse_assignment(assignment))
    return config


def run(config: Config, out: Path, resume: bool = False) -> dict:
    """Train and diagnose; returns the results dict that was written to ``results.json``."""
    from evaluations.report import Report

    from .build import EMBEDDED_DATASETS, build_augment, build_method, build_random_encoder, build_view_fn, load_split
    from .diagnostics import Context, Splits, diagnose, parse_diagnostics, plot_loss_curve
    from .diagnostics.findings import findings
    from .pretrain import make_pretrain_fn
    from .train.log import read_log
    from .train.trainer import Trainer

    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    diagnostics = parse_diagnostics(config.eval.diagnostics)
    out.mkdir(parents=True, exist_ok=True)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 alone writes the outputs
        save_yaml(config, out / "config.yaml")
    started = time.perf_counter()
    train_set = load_split(config, "train")
    image_size = int(train_set.images.shape[-1])
    augment = build_augment(config, image_size)
    method = build_method(config)
    trainer = Trainer(method, train_set, build_view_fn(method, augment, config, train_set), config, out)
    result = trainer.fit(resume=resume)
    if trainer.rank != 0:  # torchrun: the other ranks stop after training; rank 0 diagnoses and reports
        return {}

    name = config.method.get("name", "simclr")
    report = Report(out, title=f"causalcl — {name} on {config.data.name}")
    report.add("run", {"method": name, "dataset": config.data.name, "backbone": config.model.backbone,
                       "steps": result.steps, "total_steps": result.total_steps,
                       "stopped_early": result.stopped_early, "train_seconds": round(result.seconds, 1),
                       "batch_size": config.train.batch_size, "seed": config.train.seed})
    log = read_log(result.log)
    if log:
        report.add_plot("loss_curve", plot_loss_curve(log), caption="Training loss per logged step.")
    if diagnostics:
        embedded = config.data.name in EMBEDDED_DATASETS
        splits = Splits(train_set, load_split(config, "probe"), load_split(config, "test"), embedded)
        random_encoder = build_random_encoder(config, config.train.seed + 1).to(config.train.device)
        ev = config.eval
        options = {"robustness_images": ev.robustness_images, "cam_images": ev.cam_images}
        if ev.fgbg_steps > 0:
            options["pretrain_fn"] = make_pretrain_fn(config, augment, ev.fgbg_steps, ev.fgbg_batch_size)
        ctx = Context(trainer.method.encoder, random_encoder, splits, augment, report, knn_k=ev.knn_k,
                      knn_temperature=ev.knn_temperature, batch_size=ev.batch_size, device=config.train.device,
                      seed=config.train.seed, options=options)
        results = diagnose(ctx, diagnostics)
    report.add("run", {"total_seconds": round(time.perf_counter() - started, 1)})
    report.write()
    print(report.summary_table())
    if diagnostics:
        print("\n" + "\n".join(f"- {sentence}" for sentence in findings(results)))
    print(f"\nwrote {out}/report.html, results.json, results.csv, plots/, checkpoint.pt, train_log.csv")
    return report.results


def main(argv: list[str] | None = None) -> int:
    from .train.ddp import teardown
    from .train.trainer import NonFiniteLossError

    args = build_parser().parse_args(argv)
    try:
        if args.methods is not None:  # several methods side by side: causalcl.multi
            from .multi import main_many

            return main_many(args)
        config = make_config(args)
        out = Path(args.out or f"runs/{config.method.get('name', 'simclr')}_{config.data.name}")
        run(config, out, resume=args.resume)
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        teardown()  # the process group of a torchrun launch, if training did not already destroy it
    return 0


if __name__ == "__main__":
    sys.exit(main())
