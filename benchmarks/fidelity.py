"""The fidelity study: the seeds' claims, each reproduced, refuted or inconclusive at equal steps (issue 12).

Every configuration of ``fidelity_runs.CONFIGS`` (SimCLR with pixel augmentations, on true interventional views
with and without the pixel augmentation on top, with background swaps, without a projector, at batch 32 / 256;
ReLIC with augmentations, background interventions, interventional views; ICL-MSR and ICL-MSR on interventional
views; MetAug; LooC; the two ceilings: SimCLR on unconfounded data and a supervised encoder) trains on ``shapes``
(rho = 0.9) for the same number of steps (``--steps``, the papers' protocol of equal epochs; ``--budget time``
gives every configuration the same seconds instead), for each of ``--seeds`` seeds, and is measured as
``fidelity_runs`` describes. ``fidelity_claims`` turns the runs into the claims table: effects paired by seed, 95 %
intervals, and the verdict rule stated in its docstring.

The step count. ``benchmarks/learning_curve.py`` trained SimCLR on ``shapes`` (batch 128) for 5000 steps and
probed content along the way (``benchmarks/results/learning_curve_simclr_*.json``); ``DEFAULT_STEPS`` says what it
showed and why 3000 (README, "Fidelity study").

Resumable, never repeated: each finished (configuration, seed) writes
``benchmarks/results/fidelity_runs/<configuration>/seed<k>.json`` (metrics, steps, wall and CPU seconds, the
config it ran). A later invocation reuses every result whose config matches and trains only what is missing; a
run interrupted mid-training continues from its checkpoint in ``--run-dir`` (every 250 steps). The summary
(``benchmarks/results/fidelity.json``, the claims plot ``fidelity.png`` and the table printed in Markdown) is
rebuilt from whatever results exist, so a partial study already answers the claims whose runs are done
(``--report-only`` does only that). Work runs in ``--workers`` processes of ``--threads`` torch threads each.

Pausing it (e.g. for a timing benchmark beside it): the workers are ``multiprocessing`` spawn children whose
command line does not name this script, so ``pkill -STOP -f fidelity.py`` stops only the parent and the two
workers keep running. Stop the process group instead: ``kill -STOP -- -$(ps -o pgid= -p <pid>)`` and
``kill -CONT -- -…`` to go on (``<pid>``: this script's process).

    python benchmarks/fidelity.py                          # the full study (hours on 2 cores), resumable
    python benchmarks/fidelity.py --subset                 # C6 and C3 only (3 configurations × 3 seeds, no twins)
    python benchmarks/fidelity.py --report-only            # the table from the finished runs
    python benchmarks/fidelity.py --quick --results-dir /tmp/f --run-dir /tmp/r   # smoke test (≈ 1 min)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
import fidelity_claims as claims  # noqa: E402
from _timing import RESULTS  # noqa: E402
from fidelity_runs import (  # noqa: E402
    CONFIGS,
    LATE_METRICS,
    fill_late_metrics,
    fingerprint,
    make_config,
    needs_twin,
    record_seconds_all_parts,
    run_item,
    run_twin,
)

#: steps per run (see the module docstring): SimCLR's content probe on ``shapes`` in one 5000-step run was 17.4 %
#: at step 0, 27.4 (250), 32.4 (500), 38.6 (1000), 40.0 (1500), 44.0 (2000), 47.4 (3000), 49.1 (4000); on
#: interventional views 59.0 (250) … 77.4 (2000), 78.8 (3000). The plateau (``learning_curve.plateau_step``: the
#: first step no later point beats by more than 2 points) is 3000 for SimCLR and 2000 on interventional views.
DEFAULT_STEPS = 3000
#: the order runs are scheduled in (per seed): the claims' cheapest and most central configurations first
ORDER = ("simclr", "simclr+interventional", "simclr-no-projector", "simclr+background_swap", "relic",
         "relic+background_swap", "icl_msr", "looc", "metaug", "relic+interventional", "icl_msr+interventional",
         "simclr@rho0", "supervised", "simclr@32", "metaug@32", "simclr@256", "metaug@256",
         "simclr+interventional+augment")
SUBSET = ("simclr", "simclr+interventional", "simclr-no-projector")  # claims C6 and C3
QUICK = ("simclr", "simclr+interventional", "simclr-no-projector")
assert set(ORDER) == set(CONFIGS)


def safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label)


def result_path(results_dir: Path, label: str, seed: int) -> Path:
    return results_dir / safe(label) / f"seed{seed}.json"


def finished(results_dir: Path, label: str, seed: int, steps: int, quick: bool) -> dict[str, Any] | None:
    """The stored result of (label, seed) when it ran this very config; None otherwise."""
    path = result_path(results_dir, label, seed)
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    expected = fingerprint(label, seed, steps, quick)
    return result if result.get("config") == expected else None


def step_seconds(label: str, quick: bool) -> float:
    """Median seconds of one training step of ``label`` (3 timed steps after 1 warm-up) — ``--budget time``."""
    from causalcl.build import build_augment, build_method, build_view_fn, load_split
    from causalcl.train import Trainer

    config = make_config(label, 0, 10, quick=quick)
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


def load_runs(results_dir: Path, labels: list[str], seeds: list[int], steps: dict[str, int],
              quick: bool) -> tuple[claims.Runs, dict[str, Any]]:
    runs: claims.Runs = {}
    raw: dict[str, Any] = {}
    for label in labels:
        for seed in seeds:
            result = finished(results_dir, label, seed, steps[label], quick)
            if result is not None:
                runs.setdefault(label, {})[seed] = result["metrics"]
                raw.setdefault(label, {})[seed] = {
                    **{k: result[k] for k in ("wall_s", "cpu_s", "train_wall_s", "train_cpu_s", "steps", "threads")},
                    **{k: result.get(k, 0.0) for k in ("twin_wall_s", "twin_cpu_s")},  # a twin of its own job
                    **{k: result[k] for k in ("train_seconds_all_parts", "twin_train_seconds_all_parts")
                       if k in result}}
    return runs, raw


def config_table(runs: claims.Runs) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and sd over seeds of the main metrics of every configuration."""
    metrics = ("content", "spurious_gap", "bg_gap", "only_fg", "mixed_rand", "mce", "rendition_error", "rankme",
               "n_sv", "looc_readout", "looc_readout_circular", "readout_rotation_per_shape", "fg_gap")
    table = {}
    for label, by_seed in runs.items():
        row = {}
        for m in metrics:
            vals = [r[m] for r in by_seed.values() if isinstance(r.get(m), int | float) and math.isfinite(r[m])]
            if vals:
                row[m] = {"mean": statistics.fmean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                          "n": len(vals)}
        table[label] = row
    return table


def _seconds_cells(runs: dict[int, dict[str, Any]], raw: dict[int, dict[str, Any]]) -> str:
    """Mean training seconds over the seeds that recorded them (every resumed part, twin included) and mean
    measurement seconds (``eval_seconds`` without the twin's training)."""
    train = [r["train_seconds_all_parts"] + r.get("twin_train_seconds_all_parts", 0.0) for r in raw.values()
             if "train_seconds_all_parts" in r]
    measure = [sum(v for k, v in m.get("eval_seconds", {}).items() if k != "fg_twin") for m in runs.values()]
    cells = [f"train {statistics.fmean(train):5.0f} s" if train else "train     ? s",
             f"measure {statistics.fmean(measure):4.0f} s" if measure else ""]
    return "  ".join(cells)


def summarise(args: argparse.Namespace, labels: list[str], seeds: list[int], steps: dict[str, int],
              started: float, timings: dict[str, Any]) -> int:
    runs, raw = load_runs(args.results_dir, labels, seeds, steps, args.quick)
    table = claims.evaluate(runs)
    done = sum(len(v) for v in runs.values())
    print(f"\nfidelity: {done} of {len(labels) * len(seeds)} runs finished\n")
    print(claims.markdown(table))
    print("\nper configuration (mean over finished seeds): content probe, spurious gap, BG-gap (points); seconds of "
          "training (every resumed part, the 2×2 twin included) and of measurement")
    for label, row in config_table(runs).items():
        cells = "  ".join(f"{m} {100 * row[m]['mean']:5.1f}" for m in ("content", "spurious_gap", "bg_gap") if m in row)
        seconds = _seconds_cells(runs[label], raw[label])
        print(f"  {label:30s} n={row.get('content', {}).get('n', 0)}  {cells}  {seconds}")
    name = "fidelity_quick" if args.quick else "fidelity"
    every = [r for v in raw.values() for r in v.values()]
    payload = {"steps": steps, "seeds": seeds, "budget": args.budget, "configs": labels,
               "finished_runs": done, "claims": table, "configs_table": config_table(runs), "runs": raw,
               "this_invocation": {"wall_s": round(time.perf_counter() - started, 1), **timings},
               "total_run_wall_s": round(sum(r["wall_s"] + r["twin_wall_s"] for r in every), 1),
               "total_run_cpu_s": round(sum(r["cpu_s"] + r["twin_cpu_s"] for r in every), 1),
               # training seconds over every process that worked on a run (resumed runs included), and the runs
               # whose checkpoints did not record them (trained before the Trainer kept the sum)
               "total_train_s_all_parts": round(sum(r.get("train_seconds_all_parts", 0.0)
                                                    + r.get("twin_train_seconds_all_parts", 0.0) for r in every), 1),
               "runs_without_train_s_all_parts": sorted(f"{label} seed {seed}" for label, v in raw.items()
                                                        for seed, r in v.items()
                                                        if "train_seconds_all_parts" not in r)}
    out = args.summary_dir / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1, default=float))
    claims.plot(table, args.summary_dir / f"{name}.png")
    print(f"\nwrote {out} and {args.summary_dir / f'{name}.png'} (runs: {payload['total_run_wall_s'] / 3600:.2f} h "
          f"wall, {payload['total_run_cpu_s'] / 3600:.2f} h CPU in the processes that finished them; training over "
          f"every resumed part {payload['total_train_s_all_parts'] / 3600:.2f} h, not recorded for "
          f"{len(payload['runs_without_train_s_all_parts'])} run(s))")
    return 0


def fill_finished(args: argparse.Namespace, done: list[tuple[str, int]], steps: dict[str, int]) -> None:
    """Give every finished (label, seed) of ``done`` the metrics added after it ran (``fidelity_runs.LATE_METRICS``)
    and its training seconds over every part, from its final checkpoint in ``--run-dir``; a run without one (an
    early supervised run, a deleted folder) is listed and left so."""
    if args.threads:
        torch.set_num_threads(args.threads)
    for label, seed in done:
        run_dir, path = args.run_dir / safe(label) / f"seed{seed}", result_path(args.results_dir, label, seed)
        record_seconds_all_parts(label, run_dir, path)
        what = fill_late_metrics(label, seed, steps[label], run_dir, path, device=args.device, quick=args.quick)
        if what != "present":
            print(f"[fidelity] {label} seed {seed}: {', '.join(LATE_METRICS)} "
                  + ("measured on its final checkpoint" if what == "filled" else f"missing ({what})"), flush=True)


def _job(kind: str, label: str, seed: int, steps: int, args: argparse.Namespace) -> dict[str, Any]:
    os.environ["TQDM_DISABLE"] = "1"  # a worker's progress bars would interleave with the others'; start/done lines
    run_dir = args.run_dir / safe(label) / f"seed{seed}"
    if kind == "twin":
        return run_twin(label, seed, steps, run_dir, result_path(args.results_dir, label, seed), device=args.device,
                        threads=args.threads, quick=args.quick)
    if not args.resume and run_dir.exists():  # a partial run without --resume starts again
        shutil.rmtree(run_dir)
    return run_item(label, seed, steps, run_dir, result_path(args.results_dir, label, seed), device=args.device,
                    threads=args.threads, robustness_images=args.robustness_images, quick=args.quick)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=",".join(ORDER), help=f"comma list from {list(ORDER)}")
    parser.add_argument("--subset", action="store_true",
                        help=f"claims C6 and C3 only: {list(SUBSET)}, without the 2×2 protocol's foreground twins "
                             "(C1; a later full study adds them to the same runs)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="training steps per run (--budget steps)")
    parser.add_argument("--budget", choices=["steps", "time"], default="steps",
                        help="steps: every run --steps steps (default); time: every run --time-s seconds of "
                             "training, its steps from its measured step time")
    parser.add_argument("--time-s", type=float, default=360.0, help="training seconds per run with --budget time")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2, help="runs trained at once (processes)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per worker (default cores/workers)")
    parser.add_argument("--robustness-images", type=int, default=300)
    parser.add_argument("--results-dir", type=Path, default=RESULTS / "fidelity_runs",
                        help="one JSON per finished run (kept: the study resumes from them)")
    parser.add_argument("--summary-dir", type=Path, default=RESULTS, help="where fidelity.json / .png go")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/fidelity"), help="checkpoints of runs in flight")
    parser.add_argument("--resume", action="store_true",
                        help="continue runs interrupted mid-training from their checkpoints (finished runs are "
                             "always reused)")
    parser.add_argument("--report-only", action="store_true", help="no training: the table from finished runs")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {list(QUICK)} (or --configs), 2 seeds, 6 steps on 256 images, 32 robustness "
                             "images")
    args = parser.parse_args(argv)
    labels = list(SUBSET) if args.subset else [c for c in args.configs.split(",") if c]
    if args.quick:  # its configurations unless --configs names others
        labels = list(QUICK) if args.configs == parser.get_default("configs") else labels
        args.seeds, args.steps, args.robustness_images = 2, 6, 32
    unknown = [c for c in labels if c not in CONFIGS]
    if unknown or args.seeds < 1 or args.steps < 1 or args.workers < 1:
        what = f"--configs: unknown {unknown}; choose from {list(ORDER)}" if unknown else \
            "--seeds, --steps and --workers must be positive"
        print(f"error: {what}", file=sys.stderr)
        return 2
    args.threads = args.threads or max(1, (os.cpu_count() or 2) // args.workers)
    seeds = list(range(args.seeds))
    started = time.perf_counter()
    steps = {label: args.steps for label in labels}
    timings: dict[str, Any] = {}
    if args.budget == "time" and not args.report_only:
        for label in labels:
            seconds = step_seconds(label, args.quick)
            steps[label] = max(10, int(args.time_s / seconds))
            print(f"[fidelity] {label}: {seconds * 1e3:.0f} ms/step → {steps[label]} steps", flush=True)
    ordered = [(label, seed) for seed in seeds for label in ORDER if label in labels]
    results = {item: finished(args.results_dir, *item, steps[item[0]], args.quick) for item in ordered}
    todo = [("run", *item) for item, r in results.items() if r is None]
    twins = not args.subset  # the 2×2 protocol's twins answer C1 only
    todo += [("twin", *item) for item, r in results.items() if twins and r is not None and needs_twin(item[0], r)]
    print(f"[fidelity] {len(ordered) - sum(k == 'run' for k, *_ in todo)} finished run(s) reused, "
          f"{sum(k == 'run' for k, *_ in todo)} to train, {sum(k == 'twin' for k, *_ in todo)} foreground twin(s) "
          f"to add ({args.workers} worker(s) × {args.threads} thread(s), {args.budget} budget)", flush=True)
    if not args.report_only:
        fill_finished(args, [item for item, r in results.items() if r is not None], steps)
    if todo and not args.report_only:
        timings["failed_runs"] = _train(todo, args, steps, twins)
    return summarise(args, labels, seeds, steps, started, timings)


def _train(todo: list[tuple[str, str, int]], args: argparse.Namespace, steps: dict[str, int], twins: bool) -> int:
    """Run the (kind, label, seed) items in ``--workers`` processes; a finished run that needs its 2×2 twin queues
    it first. Returns the number of failed items (each reported; the others go on)."""
    failures = 0
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
        pending: dict[Future, tuple[str, str, int]] = {}
        queue = list(todo)
        while queue or pending:
            while queue and len(pending) < args.workers:
                kind, label, seed = queue.pop(0)
                what = "foreground twin of " if kind == "twin" else ""
                print(f"[fidelity] start {what}{label} seed {seed} ({steps[label]} steps)", flush=True)
                pending[pool.submit(_job, kind, label, seed, steps[label], args)] = (kind, label, seed)
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                kind, label, seed = pending.pop(future)
                try:
                    r = future.result()
                except Exception as exc:  # one failed run must not lose the others: reported, study goes on
                    failures += 1
                    print(f"[fidelity] FAILED {kind} {label} seed {seed}: {type(exc).__name__}: {exc}", flush=True)
                    continue
                if kind == "twin":
                    again = r.get("twin_encoder_retrained")
                    print(f"[fidelity] done foreground twin of {label} seed {seed}: fg_gap "
                          f"{100 * r['metrics']['fg_gap']:+.1f} points in {r['twin_wall_s']:.0f} s wall, "
                          f"{r['twin_cpu_s']:.0f} s CPU" + ("" if again is None else
                          f" (its encoder trained again: content {100 * again['content_retrained']:.2f}%, "
                          f"recorded {100 * again['content_recorded']:.2f}%)"), flush=True)
                    continue
                print(f"[fidelity] done {label} seed {seed}: content {100 * r['metrics']['content']:.1f}% "
                      f"in {r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU", flush=True)
                if twins and needs_twin(label, r):
                    queue.insert(0, ("twin", label, seed))
    return failures


if __name__ == "__main__":
    raise SystemExit(main())
