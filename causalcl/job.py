"""The single-method job behind the CLI: a ``Config`` from the command line, then train, diagnose and report.

``make_config`` merges defaults ← --config YAML ← flags ← --set; on ``--resume`` the base is the run's own record
instead of the defaults: the checkpoint's config, which is the truth, and ``config.yaml`` beside it, which must
agree with it (a damaged or edited one is refused naming the file). ``run`` checks everything it can — values,
device, the output folder, on ``--resume`` that the request is the same run (``causalcl.train.resume``), the data,
the method, the Trainer — and only then writes config.yaml (atomically) and trains; it writes config.yaml,
train_log.csv, checkpoint.pt, results.json, results.csv, plots/ and report.html. ``causalcl.cli`` parses the
arguments and calls these; ``causalcl.multi`` calls them once per method of ``--methods``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import torch

from .train.checkpoint import check_run_checkpoint, load_checkpoint
from .train.config import Config, ModelConfig, check_values, load_yaml, parse_assignment, save_yaml, valid_keys
from .train.device import resolve_device
from .train.resume import check_same_run, constructor_defaults, flatten, run_differences


def default_out(config: Config) -> Path:
    """The output folder when ``--out`` is not given: ``runs/<method>_<dataset>``."""
    return Path(f"runs/{config.method.get('name', 'simclr')}_{config.data.name}")


def make_config(args: argparse.Namespace, method: str | None = None, out: str | Path | None = None) -> Config:
    """Defaults (on --resume: the run's record, see :func:`resume_base`) ← --config YAML ← flags ← --set.

    ``method`` / ``out`` override ``--method`` / ``--out`` (one method of ``--methods``). Every value is typed
    and range-checked here (``ValueError`` naming the key), before anything is built or written."""
    out = out if out is not None else args.out
    base = Config()
    if args.resume:
        folder = Path(out) if out is not None else default_out(_requested(Config(), args, method))
        base = resume_base(folder)
    config = _requested(base, args, method)
    check_values(config)
    return config


def _requested(config: Config, args: argparse.Namespace, method: str | None) -> Config:
    """``config`` ← --config YAML ← flags ← --set (in place; returned).

    A backbone that none of them names, left at the default, follows what the method trains on, on the dataset
    (``causalcl.build.default_backbone``: ``video_small`` for clips, ``gcn`` for graphs)."""
    explicit = args.backbone is not None
    if args.config:
        values = load_yaml(args.config)
        config.update(values)
        explicit = explicit or "model.backbone" in flatten(values)
    flags = {"method.name": method or args.method, "data.name": args.dataset, "data.root": args.data_root,
             "model.backbone": args.backbone, "train.steps": args.steps, "train.epochs": args.epochs,
             "train.batch_size": args.batch_size, "train.device": args.device, "train.seed": args.seed,
             "train.checkpoint_every": args.checkpoint_every, "train.time_limit_s": args.time_limit,
             "augment.views": args.views}
    for key, value in flags.items():
        if value is not None:
            config.set(key, value)
    if args.steps is not None and args.epochs is None:  # --steps asked for explicitly: an inherited epochs must not win
        config.set("train.epochs", None)
    if args.diagnostics is not None:
        from .diagnostics import parse_diagnostics

        config.eval.diagnostics = parse_diagnostics(args.diagnostics)
    for assignment in args.set:
        key, value = parse_assignment(assignment)
        config.set(key, value)
        explicit = explicit or key == "model.backbone"
    if not explicit and config.model.backbone == ModelConfig.backbone:
        from .build import default_backbone

        config.model.backbone = default_backbone(config)
    return config


def read_run_checkpoint(folder: Path) -> dict[str, Any] | None:
    """The checkpoint of the run in ``folder``, checked (:func:`causalcl.train.checkpoint.check_run_checkpoint`),
    or ``None`` when there is none."""
    path = folder / "checkpoint.pt"
    if not path.is_file():
        return None
    return check_run_checkpoint(load_checkpoint(path), path)


def resume_base(folder: Path) -> Config:
    """The config a resumed run starts from: the checkpoint's, or ``config.yaml`` where it agrees with it.

    ``config.yaml`` may differ from the checkpoint only in the keys a resume may change (a longer run that was
    stopped before its first checkpoint). Without a checkpoint the defaults are returned (``run`` then refuses
    a single-method resume; ``--methods`` starts that method afresh).

    Raises:
        ValueError: naming ``config.yaml`` when it is empty, not valid YAML, incomplete (truncated) or disagrees
            with the checkpoint; naming the checkpoint when it cannot be resumed.
    """
    state = read_run_checkpoint(folder)
    if state is None:
        return Config()
    saved = Config.from_dict(state["config"])
    path = folder / "config.yaml"
    if not path.is_file():
        return saved
    hint = "the checkpoint holds the run's settings: delete the file to resume from them"
    try:
        values = load_yaml(path, allow_empty=False)
    except ValueError as exc:
        raise ValueError(f"{exc}; {hint}") from None
    try:
        recorded = Config.from_dict(values)
    except ValueError as exc:
        raise ValueError(f"config file {str(path)!r} is truncated or damaged ({exc}); {hint}") from None
    present = flatten(values)
    missing = [k for k in valid_keys(recorded) if k not in present and not any(p.startswith(f"{k}.") for p in present)
               and k not in ("data.options",)]
    if missing:
        raise ValueError(f"config file {str(path)!r} is incomplete (no {', '.join(missing[:3])}"
                         f"{' …' if len(missing) > 3 else ''}): it was truncated or damaged; {hint}")
    defaults = _method_defaults(recorded)
    diffs = run_differences(state["config"], recorded.to_dict(), defaults)
    if diffs:
        raise ValueError(f"config file {str(path)!r} disagrees with the checkpoint beside it (checkpoint → "
                         f"config.yaml): {'; '.join(diffs)}; it was edited or damaged — {hint}")
    return recorded


def _method_defaults(config: Config) -> dict[str, Any]:
    from .methods import get_method

    return constructor_defaults(get_method(config.method.get("name", "simclr")))


def check_resumable(config: Config, out: Path) -> None:
    """Before anything is built or written: ``out`` holds a checkpoint that this config continues.

    Raises:
        FileNotFoundError: no folder, or no checkpoint in it (nothing is created).
        ValueError: the checkpoint holds another method / backbone or other settings (listed).
    """
    if not out.is_dir():
        raise FileNotFoundError(f"--resume: there is no run folder {str(out)!r} to resume (nothing was created); "
                                "run without --resume to start one")
    state = read_run_checkpoint(out)
    if state is None:
        raise FileNotFoundError(f"--resume: {str(out)!r} holds no checkpoint.pt to resume from; run without "
                                "--resume to start a new run there")
    check_same_run(out / "checkpoint.pt", state["method"], state["config"], config.to_dict(), _method_defaults(config))


def check_out(out: Path) -> None:
    """``out`` can become the output folder: not an existing file, nor under one."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "is a file" if folder == out else f"is under {str(folder)!r}, which is a file"
                raise ValueError(f"--out {str(out)!r} {what}, not a folder")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise PermissionError(f"--out {str(out)!r}: the folder {str(folder)!r} is not writable")
            return


def run(config: Config, out: Path, resume: bool = False) -> dict:
    """Train and diagnose; returns the results dict that was written to ``results.json``."""
    from .build import build_augment, build_method, build_view_fn, load_split, run_plan
    from .diagnostics import parse_diagnostics
    from .train.trainer import Trainer, TrainingInterrupted

    check_values(config)
    resolve_device(config.train.device)
    if resume:
        check_resumable(config, out)
    check_out(out)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    diagnostics = parse_diagnostics(config.eval.diagnostics)
    plan = run_plan(config)  # before any data is built: the method takes the dataset's items, the backbone fits
    started = time.perf_counter()
    train_set = load_split(config, "train")
    # graphs have no pixel augmentation; an image method on a clip dataset trains on its frames (N·T images)
    augment = build_augment(config, int(train_set.images.shape[-1])) if plan.dataset_kind != "graph" else None
    data = train_set.frames_dataset() if plan.train_on == "frames" else train_set
    method = build_method(config)
    trainer = Trainer(method, data, build_view_fn(method, augment, config, data), config, out)
    if resume:
        trainer.restore()  # checks the checkpoint against this run and re-plans a longer schedule
    if trainer.rank == 0:  # every check has passed: now the folder and config.yaml (torchrun: rank 0 alone)
        out.mkdir(parents=True, exist_ok=True)
        save_yaml(config, out / "config.yaml")
    result = trainer.fit(resume=resume)
    if trainer.rank != 0:  # torchrun: the other ranks stop after training; rank 0 diagnoses and reports
        return {}
    try:
        return _diagnose_and_report(config, out, trainer, result, train_set, augment, diagnostics, started)
    except KeyboardInterrupt:
        raise TrainingInterrupted(result.steps, result.checkpoint, result.steps, stage="the diagnostics") from None


def _diagnose_and_report(config: Config, out: Path, trainer, result, train_set, augment, diagnostics: list[str],
                         started: float) -> dict:
    from evaluations.report import Report
    from evaluations.report_card import card_text

    from .build import EMBEDDED_DATASETS, build_random_encoder, diagnostic_encoder, load_split
    from .diagnostics import Context, Splits, diagnose, plot_loss_curve
    from .diagnostics.findings import findings
    from .diagnostics.headline import build_card, majority_rate, undertrained_note
    from .pretrain import make_pretrain_fn
    from .train.log import read_log
    from .train.progress import say

    name = config.method.get("name", "simclr")
    if result.stopped_early:
        say("Under-trained: " + undertrained_note(result.steps, result.total_steps, config.train.time_limit_s))
    report = Report(out, title=f"causalcl — {name} on {config.data.name}")
    report.add("run", {"method": name, "dataset": config.data.name, "backbone": config.model.backbone,
                       "steps": result.steps, "total_steps": result.total_steps,
                       "stopped_early": result.stopped_early, "train_seconds": round(result.seconds, 1),
                       "batch_size": config.train.batch_size, "seed": config.train.seed})
    results: dict = {}
    log = read_log(result.log)
    if log:
        report.add_plot("loss_curve", plot_loss_curve(log), caption="Training loss per logged step.")
    if diagnostics:
        embedded = config.data.name in EMBEDDED_DATASETS
        splits = Splits(train_set, load_split(config, "probe"), load_split(config, "test"), embedded)
        random_encoder = build_random_encoder(config, config.train.seed + 1).to(config.train.device)
        ev = config.eval
        options = {"robustness_images": ev.robustness_images, "cam_images": ev.cam_images}
        if ev.fgbg_steps > 0 and splits.kind == "image":  # the 2×2 protocol pre-trains on images
            options["pretrain_fn"] = make_pretrain_fn(config, augment, ev.fgbg_steps, ev.fgbg_batch_size)
        encoder = diagnostic_encoder(trainer.method.encoder, config)  # clips through an image backbone: frame mean
        ctx = Context(encoder, random_encoder, splits, augment, report, knn_k=ev.knn_k,
                      knn_temperature=ev.knn_temperature, batch_size=ev.batch_size, device=config.train.device,
                      seed=config.train.seed, options=options, progress=say)
        results = diagnose(ctx, diagnostics)
    report.add("run", {"total_seconds": round(time.perf_counter() - started, 1)})
    chance = majority_rate(splits.test) if diagnostics else None
    card = build_card(results, report.results["run"], chance, config.train.time_limit_s)
    report.set_card(card)
    report.write()
    print("\n" + card_text(card) + "\n")
    print(report.summary_table())
    if diagnostics:
        heading = card.findings_title + ":"
        print("\n" + heading + "\n" + "\n".join(f"- {sentence}" for sentence in findings(results)))
    print(f"\nwrote {out}/report.html, results.json, results.csv, plots/, checkpoint.pt, train_log.csv")
    return report.results
