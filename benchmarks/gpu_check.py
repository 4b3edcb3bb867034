"""One check of the GPU path (issue 17; DESIGN.md §8 ``gpu_check.sh``): does everything run on the device, how fast.

Parts, in order (``--parts`` picks some), each printed as lines that parse (``<KIND> <name> <value> key=value…``):

* ``env``: ``ENV <key> <value>`` — device, GPU name and memory, torch / CUDA / cuDNN / torchvision / numpy /
  Python versions, threads, the precision settings.
* ``overhead``: ``benchmarks/step_overhead.py`` for resnet18 at batch 512 and convnet_small at batch 256 (32 px,
  ``--amp``): ``RATIO simclr_step_overhead_<backbone>_<device>[_amp] <ratio> step_s=… bare_s=…``.
* ``methods``: every method of ``causalcl.methods.METHODS`` that trains on images, on ``shapes`` (resnet18 with the
  CIFAR stem at batch 256 on a GPU), plus TaCo on ``moving_shapes`` clips and DGI on ``scm_graph`` graphs, each for
  ``--steps`` steps through a real ``Trainer`` (views + ``train_step``, the loop of ``Trainer.fit``):
  ``STEP <method> <s/step> dataset=… backbone=… batch=… loss=… peak_mib=…`` (wall time of the steps after the first
  ``--warmup`` over their number, views included, one synchronisation at the end as between two logging steps;
  the loss is the last step's), or ``SKIP <method> <reason>``
  for TaCo/DGI when their data does not run through the Trainer here, or ``FAIL <method> <error>``.
* ``job``: the main job (``causalcl`` CLI) end to end with every diagnostic the dataset supports:
  ``JOB main <total_s> train_s=… diagnostics_s=… steps=…`` (diagnostics_s = total − training, so it includes
  loading the probe/test splits and writing the report).
* ``cost``: ``benchmarks/step_cost.py --methods relic,icl_msr,metaug,looc``: ``RATIO step_cost_<method> …``.

Each part ends with ``DONE <part> <seconds>``; the last line is ``SUMMARY <failures> seconds=…``. Exit status 0
when nothing failed, 1 when a part failed, 2 for bad arguments (one line on stderr). The full output of each part
(the job's tables, the progress bars) goes to ``<out>/<part>.log``; JSON results to ``<out>/``.

``--quick``: the same parts on the CPU at tiny sizes (16 px, batches of 4–16, 2 steps per method of which 1 timed, a
2-step job with small diagnostics), for CI: measured 93–136 s wall (88–132 s of CPU time) on 2 cores shared with
other jobs (load 3.5–4); a third of it is the job's diagnostics (the linear probe's 42 L-BFGS fits, the 2×2 protocol).

    bash benchmarks/gpu_check.sh                 # on a GPU machine: ≈ 5–8 min (untimed here: no GPU was available)
    bash benchmarks/gpu_check.sh --quick         # CPU smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PARTS = ("env", "overhead", "methods", "job", "cost")
CAUSAL_METHODS = "relic,icl_msr,metaug,looc"
#: non-image methods and the dataset each trains on (skipped with a note when that path does not run here)
OTHER_METHODS = {"taco": "moving_shapes", "dgi": "scm_graph"}
#: options a tiny (--quick) batch needs: W-MSE whitens fewer dimensions than samples per sub-batch
TINY_OPTIONS = {"wmse": {"method.projector": [32, 8], "method.w_size": 16}}


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"gpu_check_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]


@contextlib.contextmanager
def _captured(path: Path) -> Iterator[io.StringIO]:
    """stdout and stderr of a part into ``path`` (and a buffer the caller scans for its RATIO lines)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            yield buffer
        finally:
            path.write_text(buffer.getvalue())


def _echo_ratios(text: str) -> None:
    for line in text.splitlines():
        if line.startswith(("RATIO ", "warning:")):
            print(line, flush=True)


# --- parts -----------------------------------------------------------------------------------------------------------
def part_env(args: argparse.Namespace) -> None:
    import numpy
    import torchvision

    import causalcl

    cuda = args.device.startswith("cuda")
    values: dict[str, object] = {
        "device": args.device, "quick": args.quick, "amp": args.amp, "python": platform.python_version(),
        "torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": numpy.__version__,
        "causalcl": getattr(causalcl, "__version__", "unknown"), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
    }
    if cuda:
        index = torch.device(args.device).index or 0
        props = torch.cuda.get_device_properties(index)
        values.update({"gpu": props.name, "gpu_count": torch.cuda.device_count(),
                       "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                       "compute_capability": f"{props.major}.{props.minor}",
                       "cudnn": torch.backends.cudnn.version(), "cudnn_benchmark": torch.backends.cudnn.benchmark,
                       "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                       "tf32_cudnn": torch.backends.cudnn.allow_tf32})
    for key, value in values.items():
        print(f"ENV {key} {value}", flush=True)


def part_overhead(args: argparse.Namespace) -> None:
    step_overhead = _load("step_overhead")
    if args.quick:
        runs = [("resnet18", 4, 16), ("convnet_small", 16, 16)]
        extra = ["--repeats", "1", "--warmup", "1"]
    else:
        runs = [("resnet18", 512, 32), ("convnet_small", 256, 32)]
        extra = ["--repeats", "20", "--warmup", "3"]
    for backbone, batch, size in runs:
        argv = ["--device", args.device, "--backbone", backbone, "--batch-size", str(batch), "--image-size",
                str(size), "--amp", args.amp, "--out", str(args.out / f"step_overhead_{backbone}.json"), *extra]
        with _captured(args.out / f"overhead_{backbone}.log") as text:
            step_overhead.main(argv)
        _echo_ratios(text.getvalue())


def _method_config(name: str, args: argparse.Namespace) -> Any:
    from causalcl.build import default_backbone
    from causalcl.train import Config

    config = Config()
    dataset = OTHER_METHODS.get(name, "shapes")
    values: dict[str, Any] = {"method.name": name, "data.name": dataset, "train.device": args.device,
                              "train.amp": args.amp, "train.steps": args.steps, "train.checkpoint_every": 0,
                              "train.log_every": args.steps, "train.seed": 0}
    values.update({"train.batch_size": args.batch_size, "data.options.n": 4 * args.batch_size})
    if args.quick:
        values.update(TINY_OPTIONS.get(name, {}))
        if dataset != "scm_graph":
            values["data.image_size"] = 16
    for key, value in values.items():
        config.set(key, value)
    if dataset == "shapes":
        config.set("model.backbone", args.backbone)
        config.set("model.cifar_stem", True)
    else:
        config.set("model.backbone", default_backbone(config))
    return config


def _time_method(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from causalcl.build import build_augment, build_method, build_view_fn, load_split, run_plan
    from causalcl.train import Trainer
    from causalcl.train.trainer import host_terms

    config = _method_config(name, args)
    plan = run_plan(config)
    train_set = load_split(config, "train")
    augment = build_augment(config, int(train_set.images.shape[-1])) if plan.dataset_kind != "graph" else None
    data = train_set.frames_dataset() if plan.train_on == "frames" else train_set
    method = build_method(config)
    trainer = Trainer(method, data, build_view_fn(method, augment, config, data), config, tmp / name,
                      distributed=False)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for step in range(args.warmup):  # first steps: allocations, cuDNN / autotuning, lazily built state
        trainer.train_step(trainer.views_for_step(step))
    _sync(args.device)
    start = time.perf_counter()
    terms: dict[str, Any] = {}
    for step in range(args.warmup, args.steps):  # no synchronisation inside, as between two logging steps
        terms = trainer.train_step(trainer.views_for_step(step))
    _sync(args.device)
    elapsed = time.perf_counter() - start
    trainer.check_finite()  # raises NonFiniteLossError naming the first non-finite step
    timed = args.steps - args.warmup
    loss = host_terms(terms)["loss"]
    peak = torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else float("nan")
    return {"s_per_step": elapsed / timed,
            "dataset": config.data.name, "backbone": config.model.backbone, "batch": config.train.batch_size,
            "steps": args.steps, "timed_steps": timed, "loss": loss, "peak_mib": peak}


def part_methods(args: argparse.Namespace) -> int:
    from causalcl.methods import METHODS

    names = args.methods or [n for n, c in METHODS.items() if c.input_kind == "image"] + list(OTHER_METHODS)
    failures, results = 0, {}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        for name in names:
            log = io.StringIO()
            try:
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    result = _time_method(name, args, Path(tmp))
            except Exception as exc:  # noqa: BLE001 - every method gets its own line
                (args.out / f"method_{name}.log").write_text(log.getvalue() + traceback.format_exc())
                if name in OTHER_METHODS and METHODS[name].input_kind != "image":
                    print(f"SKIP {name} {OTHER_METHODS[name]} does not train through the Trainer here: "
                          f"{_one_line(exc)}", flush=True)
                    results[name] = {"skipped": _one_line(exc)}
                else:
                    print(f"FAIL {name} {_one_line(exc)}", flush=True)
                    results[name] = {"failed": _one_line(exc)}
                    failures += 1
                continue
            results[name] = result
            peak = "" if result["peak_mib"] != result["peak_mib"] else f" peak_mib={result['peak_mib']:.0f}"
            print(f"STEP {name} {result['s_per_step']:.5f} dataset={result['dataset']} backbone={result['backbone']} "
                  f"batch={result['batch']} steps={result['steps']} timed={result['timed_steps']} "
                  f"loss={result['loss']:.4g}{peak}", flush=True)
    (args.out / "methods.json").write_text(json.dumps({"device": args.device, "amp": args.amp, "methods": results},
                                                      indent=2, default=str))
    return failures


def part_job(args: argparse.Namespace) -> int:
    from causalcl.cli import main as cli_main

    out = args.out / "job"
    argv = ["--device", args.device, "--out", str(out), "--set", f"train.amp={args.amp}"]
    if args.quick:
        argv += ["--steps", "2", "--batch-size", "16", "--set", "data.options.n=64", "--set", "data.image_size=16",
                 "--set", "eval.knn_k=5", "--set", "eval.fgbg_steps=1", "--set", "eval.fgbg_batch_size=16",
                 "--set", "eval.robustness_images=4", "--set", "eval.cam_images=4", "--set", "eval.batch_size=64"]
    start = time.perf_counter()
    with _captured(args.out / "job.log"):
        status = cli_main(argv)
    total = time.perf_counter() - start
    if status != 0:
        print(f"FAIL job exit status {status} (see {args.out / 'job.log'})", flush=True)
        return 1
    run = json.loads((out / "results.json").read_text()).get("run", {})
    train_s = float(run.get("train_seconds", float("nan")))
    print(f"JOB main {total:.2f} train_s={train_s:.2f} diagnostics_s={total - train_s:.2f} "
          f"steps={run.get('steps')} out={out}", flush=True)
    return 0


def part_cost(args: argparse.Namespace) -> None:
    step_cost = _load("step_cost")
    argv = ["--methods", CAUSAL_METHODS, "--device", args.device, "--out", str(args.out / "step_cost.json"),
            "--set", f"train.amp={args.amp}"]
    if args.quick:  # smaller than step_cost's own --quick (batch 80): these four methods need no large batch
        argv += ["--batch-size", "16", "--image-size", "16", "--repeats", "1", "--warmup", "1",
                 "--set", "data.options.n=32"]
    else:
        argv += ["--repeats", "10", "--warmup", "3"]
    with _captured(args.out / "cost.log") as text:
        status = step_cost.main(argv)
    _echo_ratios(text.getvalue())
    if status != 0:
        raise RuntimeError(f"step_cost.py exit status {status} (see {args.out / 'cost.log'})")


# --- driver ----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes on the CPU (CI smoke test, 2-3 minutes on 2 shared cores)")
    parser.add_argument("--device", default=None,
                        help="cuda, cuda:N or cpu (default: cuda when available, else cpu; cpu with --quick)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)} (default all)")
    parser.add_argument("--methods", default=None, help="comma list for the methods part (default: every method)")
    parser.add_argument("--steps", type=int, default=None, help="steps per method (default 60; 2 with --quick)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 10; 1 with --quick)")
    parser.add_argument("--backbone", default=None,
                        help="image backbone of the methods part (default resnet18; convnet_small with --quick)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch of the methods part (default 256; 16 with --quick)")
    parser.add_argument("--amp", default=None, choices=["none", "bf16", "fp16"],
                        help="train.amp everywhere (default bf16 on CUDA, none on the CPU)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for logs and JSON (default benchmarks/results/gpu_check[_quick])")
    args = parser.parse_args(argv)
    return args


def check_args(args: argparse.Namespace) -> None:
    """Fill the defaults and refuse bad values (``ValueError`` naming the argument)."""
    from causalcl.multi import parse_methods
    from causalcl.train.device import resolve_device

    if args.device is None:
        args.device = "cpu" if args.quick or not torch.cuda.is_available() else "cuda"
    try:
        resolve_device(args.device)
    except ValueError as exc:
        raise ValueError(f"--device: {str(exc).removeprefix('train.device: ')}") from None
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ValueError(f"--parts: unknown part(s) {unknown or [args.parts]}; valid: {', '.join(PARTS)}")
    args.parts = parts
    args.methods = parse_methods(args.methods) if args.methods is not None else None
    args.steps = args.steps if args.steps is not None else (2 if args.quick else 60)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 10)
    if args.steps < 2:
        raise ValueError(f"--steps: expected an integer >= 2, got {args.steps}")
    if not 0 <= args.warmup < args.steps:
        raise ValueError(f"--warmup: expected an integer in [0, --steps), got {args.warmup}")
    args.backbone = args.backbone or ("convnet_small" if args.quick else "resnet18")
    args.batch_size = args.batch_size if args.batch_size is not None else (16 if args.quick else 256)
    if args.batch_size < 2:
        raise ValueError(f"--batch-size: expected an integer >= 2, got {args.batch_size}")
    if args.amp is None:
        args.amp = "bf16" if args.device.startswith("cuda") else "none"
    args.out = args.out or HERE / "results" / ("gpu_check_quick" if args.quick else "gpu_check")
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out: {str(args.out)!r} is a file, not a folder")


#: the line kinds of the output and the fields each must parse to
LINE_KINDS = ("ENV", "RATIO", "STEP", "SKIP", "FAIL", "JOB", "DONE", "SUMMARY")


def parse_output(text: str) -> dict[str, list[dict[str, Any]]]:
    """The check's output read back: per kind, one record per line (``name``, ``value``, and the ``key=value``
    fields as floats where they parse). Lines of other kinds (warnings) are left out; a line of a known kind that
    does not parse raises ``ValueError`` naming it."""
    records: dict[str, list[dict[str, Any]]] = {kind: [] for kind in LINE_KINDS}
    for line in text.splitlines():
        kind = line.split(" ", 1)[0]
        if kind not in LINE_KINDS:
            continue
        parts = line.split()
        try:
            if kind in ("ENV", "SKIP", "FAIL"):
                record: dict[str, Any] = {"name": parts[1], "value": " ".join(parts[2:])}
            else:
                first = 2 if kind != "SUMMARY" else 1
                name = parts[1] if kind != "SUMMARY" else "summary"
                record = {"name": name, "value": float(parts[first])}
                for field in parts[first + 1:]:
                    key, _, raw = field.partition("=")
                    if not raw:
                        raise ValueError(f"expected key=value, got {field!r}")
                    try:
                        record[key] = float(raw)
                    except ValueError:
                        record[key] = raw
        except (IndexError, ValueError) as exc:
            raise ValueError(f"gpu_check output: the line {line!r} does not parse ({exc})") from None
        records[kind].append(record)
    return records


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        check_args(args)
        args.out.mkdir(parents=True, exist_ok=True)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parts: dict[str, Callable[[argparse.Namespace], int | None]] = {
        "env": part_env, "overhead": part_overhead, "methods": part_methods, "job": part_job, "cost": part_cost}
    failures, started = 0, time.perf_counter()
    for name in args.parts:
        start = time.perf_counter()
        try:
            failures += parts[name](args) or 0
        except Exception as exc:  # noqa: BLE001 - a failed part is reported and the others still run
            (args.out / f"{name}.error.log").write_text(traceback.format_exc())
            print(f"FAIL {name} {_one_line(exc)}", flush=True)
            failures += 1
        print(f"DONE {name} {time.perf_counter() - start:.2f}", flush=True)
    print(f"SUMMARY {failures} seconds={time.perf_counter() - started:.1f} device={args.device} out={args.out}",
          flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
