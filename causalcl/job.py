"""The single-method job behind the CLI: a ``Config`` from the command line, then train, diagnose and report.

``make_config`` merges defaults ← saved config (on --resume) ← --config YAML ← flags ← --set; ``run`` trains
the configured method and writes config.yaml, train_log.csv, checkpoint.pt, results.json, results.csv, plots/
and report.html. ``causalcl.cli`` parses the arguments and calls these; ``causalcl.multi`` calls them once per
method of ``--methods``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from .train.config import Config, load_yaml, parse_assignment, save_yaml


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
