"""Every method's train step against SimCLR's, interleaved in one run (issue 11, item 5).

Setup (the issue's): CPU, backbone ``convnet_small``, batch 128, 32 px images of the ``shapes`` training split,
every method as ``causalcl.build.build_method`` makes it from a default ``Config`` (so each ratio is "at its
defaults"), wrapped in a real ``causalcl.train.Trainer`` with ``build_view_fn`` / ``build_augment`` — the loop a
user's run goes through. One call of a method is what one iteration of ``Trainer.fit`` does:

    views = trainer.views_for_step(trainer.step)   # the method's own make_views: LooC n+2 views, SwAV multi-crop,
    trainer.train_step(views)                      # CMC Lab... ; forward, backward, optimiser, meta_step, EMA/queue

Both parts are timed inside the same call, so every round gives two readings per method:
  * ``step`` = ``Trainer.train_step(views)`` alone — the reported ratio, ``RATIO step_cost_<method>`` (the
    "SimCLR step" of the issue and of step_overhead.py / vs_lightly.py, which time ``train_step`` on ready views);
  * ``with_views`` = view making + ``train_step``, what a training run pays per step (shown beside it and in the
    JSON; view making is the same cost for every two-view method, so this ratio is closer to 1).
Every trainer has the same seed, so in a given round all methods see the same batch, and methods that draw their
views with the base ``make_views`` get the very same views; the step counter advances once per round for all.

Protocol: the trainers are built once and kept. Each round runs, for every method and then for a second SimCLR
instance (A/A), one call of the SimCLR baseline immediately followed by one call of that method: [SimCLR, m1,
SimCLR, m2, ..., SimCLR, A/A], the whole order reversed every other round (``_timing.interleaved_times``), so
each method's call sits next to its own baseline call and each goes first in half the rounds; ``--warmup`` rounds
first, untimed. The ratio of a method is the median over rounds of (method / its baseline call in the same round)
(``_timing.paired_ratio``). Pairing each method with the baseline call beside it rather than with one baseline
call per round matters on a shared machine: a full round lasts ≈ 7 s on 2 quiet cores and up to 4 min on busy ones, and
a load change inside a round otherwise lands on the method and not on its baseline (a first version did that: A/A
1.49 on a machine at load 9). ``RATIO step_cost_simclr_aa`` (the second SimCLR instance over its baseline call)
shows how far from 1 the protocol reads two identical steps on this machine; a warning is printed when it is off
by more than 5 %. The ``simclr`` method row is a third instance, built like every other method (``--set method.*``
reaches it). The baseline trainer thus takes one step per method per round, the others one per round (the step
index changes which batch a step sees, not what it costs). The load average is kept in the JSON.

``--set key=value`` overrides as in the CLI (``causalcl.train.config.parse_assignment``): ``method.<key>`` goes to
each selected method whose constructor takes it (a note says which; a key none takes is an error) and never to
the baseline / A/A SimCLR, which stay at defaults; other keys (``optim.*``, ``augment.*``, ``model.*``...) go to
every trainer, baseline included. E.g. ``--methods icl_msr,metaug --set method.meta_grad=reverse``.

Prints one ``RATIO step_cost_<method>`` line per method (with the median seconds), the A/A line, and a table sorted
by ratio; writes ``benchmarks/results/step_cost.json`` (``step_cost_quick.json`` with ``--quick``, or ``--out``).

    python benchmarks/step_cost.py                          # all: ≈ 3 min on 2 idle cores, 15–20 on busy ones
    python benchmarks/step_cost.py --methods icl_msr,metaug --set method.meta_grad=reverse
    python benchmarks/step_cost.py --quick                  # smoke test: batch 80, 16 px, 2 rounds
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_times, paired_ratio, report_ratio, sync, write_results  # noqa: E402

from causalcl.build import build_augment, build_method, build_view_fn, load_split, method_options  # noqa: E402
from causalcl.methods import METHODS  # noqa: E402
from causalcl.multi import accepted_options, parse_methods  # noqa: E402
from causalcl.train import Config, Trainer, parse_assignment  # noqa: E402

BASELINE, AA = "simclr_baseline", "simclr_aa"
#: the methods whose step is comparable with SimCLR's: those that train on image batches
IMAGE_METHODS = [name for name, cls in METHODS.items() if cls.input_kind == "image"]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def base_config(args: argparse.Namespace, assignments: list[tuple[str, Any]]) -> Config:
    """The run's config without any ``method.*`` override: the baseline's, and every method's before its own."""
    config = Config()
    for key, value in {"train.device": args.device, "train.batch_size": args.batch_size, "train.seed": 0,
                       "train.steps": 10_000, "train.checkpoint_every": 0, "train.threads": args.threads,
                       "model.backbone": args.backbone, "data.name": "shapes",
                       "data.image_size": args.image_size}.items():
        config.set(key, value)
    if args.quick:
        config.set("data.options.n", 2 * args.batch_size)
    for key, value in assignments:
        if not key.startswith("method."):
            config.set(key, value)
    return config


def method_configs(names: list[str], base: Config, assignments: list[tuple[str, Any]]) -> dict[str, Config]:
    """One config per method: the base config, ``method.name`` and the ``method.*`` overrides its constructor takes."""
    overrides = [(k.split(".", 1)[1], v) for k, v in assignments if k.startswith("method.")]
    takers: dict[str, list[str]] = {key: [] for key, _ in overrides}
    configs: dict[str, Config] = {}
    for name in names:
        config = Config.from_dict(base.to_dict())
        config.set("method.name", name)
        accepted = accepted_options(name)
        for key, value in overrides:
            if accepted is None or key.split(".")[0] in accepted:
                config.set(f"method.{key}", value)
                takers[key].append(name)
        method_options(config)  # checks the keys against the constructor
        configs[name] = config
    for key, who in takers.items():
        if not who:
            raise ValueError(f"--set method.{key}: none of the methods {names} takes '{key}'")
        if len(who) < len(names):
            print(f"note: method.{key} applies to {', '.join(who)} only", file=sys.stderr)
    return configs


def make_trainer(config: Config, train_set: Any, out: Path) -> Trainer:
    method = build_method(config)  # seeded with train.seed: the baseline and the A/A SimCLR start identical
    augment = build_augment(config, int(train_set.images.shape[-1]))
    view_fn = build_view_fn(method, augment, config, train_set)
    return Trainer(method, train_set, view_fn, config, out, distributed=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(IMAGE_METHODS),
                        help="comma list of causalcl.methods.METHODS names (default: every method that trains on "
                             "images; TaCo's clips and DGI's graphs have no SimCLR step to compare with)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override as in the CLI, repeatable (method.* keys: the methods only)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backbone", default="convnet_small")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (one call of every trainer each)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"torch threads (default: the cores this process may use, here {available_cores()})")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test (≈ 25 s for all methods): batch 80 of 16 px images from 160, 1 warm-up and "
                             "2 timed rounds; writes step_cost_quick.json")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default benchmarks/results/step_cost.json, step_cost_quick.json with --quick)")
    args = parser.parse_args(argv)
    if args.quick:  # WMSE at its defaults whitens 64-d embeddings: it needs a batch above 64
        args.batch_size, args.image_size, args.repeats, args.warmup = 80, 16, 2, 1
    args.threads = args.threads or available_cores()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        torch.set_num_threads(previous_threads)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    names = parse_methods(args.methods)
    other = [name for name in names if name not in IMAGE_METHODS]
    if other:
        raise ValueError(f"--methods: {other} do not train on images (input_kind "
                         f"{[METHODS[n].input_kind for n in other]}); step_cost compares image methods with SimCLR")
    assignments = [parse_assignment(text) for text in args.set]
    base = base_config(args, assignments)
    configs = method_configs(names, base, assignments)
    baseline_config = Config.from_dict(base.to_dict())
    baseline_config.set("method.name", "simclr")

    train_set = load_split(base, "train")
    tmp = Path(tempfile.mkdtemp(prefix="step_cost_"))
    trainers: dict[str, Trainer] = {BASELINE: make_trainer(baseline_config, train_set, tmp / BASELINE)}
    for name in names:
        trainers[name] = make_trainer(configs[name], train_set, tmp / name)
    trainers[AA] = make_trainer(Config.from_dict(baseline_config.to_dict()), train_set, tmp / AA)
    rows = [*names, AA]
    order = [key for name in rows for key in (f"{BASELINE}@{name}", name)]  # each row right after its baseline call
    load_before = os.getloadavg()
    built_s = time.perf_counter() - started
    print(f"step cost: {len(names)} method(s) against SimCLR, {args.backbone}, batch {args.batch_size}, "
          f"{int(train_set.images.shape[-1])} px, {args.device}, torch threads {torch.get_num_threads()}, "
          f"{args.warmup} warm-up + {args.repeats} timed rounds (built in {built_s:.0f} s)", flush=True)

    view_s: dict[str, list[float]] = {key: [] for key in order}
    calls = [0]
    rounds = args.warmup + args.repeats
    round_started = [time.perf_counter()]

    def call(name: str, trainer: Trainer) -> Callable[[], None]:
        def fn() -> None:
            if calls[0] % len(order) == 0:  # the first call of a round
                r = calls[0] // len(order)
                what = (f"warm-up {r + 1}/{args.warmup}" if r < args.warmup
                        else f"round {r - args.warmup + 1}/{args.repeats}")
                last = f" (last round {time.perf_counter() - round_started[0]:.1f} s)" if r else ""
                print(f"  {what}{last}", file=sys.stderr, flush=True)
                round_started[0] = time.perf_counter()
            calls[0] += 1
            start = time.perf_counter()
            views = trainer.views_for_step(trainer.step)
            sync(args.device)
            view_s[name].append(time.perf_counter() - start)
            trainer.train_step(views)

        return fn

    fns = {key: call(key, trainers[key.split("@")[0]]) for key in order}
    total = interleaved_times(fns, args.repeats, warmup=args.warmup, device=args.device)
    views = {key: v[-args.repeats:] for key, v in view_s.items()}  # the timed rounds' (warm-up calls come first)
    step = {key: [t - v for t, v in zip(total[key], views[key], strict=True)] for key in order}
    load_after = os.getloadavg()
    print(f"  {rounds} rounds in {time.perf_counter() - started - built_s:.0f} s", file=sys.stderr, flush=True)

    results: dict[str, dict[str, Any]] = {}
    base_calls = {kind: [t for name in rows for t in times[f"{BASELINE}@{name}"]]
                  for kind, times in (("step", step), ("views", views), ("total", total))}
    simclr_s = statistics.median(base_calls["step"])
    for name in rows:
        ratio = paired_ratio(step, name, f"{BASELINE}@{name}")
        ratio_with_views = paired_ratio(total, name, f"{BASELINE}@{name}")
        per_round = [a / b for a, b in zip(step[name], step[f"{BASELINE}@{name}"], strict=True)]
        results[name] = {
            "ratio": ratio, "ratio_with_views": ratio_with_views,
            "step_s": statistics.median(step[name]), "views_s": statistics.median(views[name]),
            "with_views_s": statistics.median(total[name]),
            "round_ratios": [round(x, 4) for x in per_round],
            "method": configs[name].method if name in configs else {"name": "simclr"},
        }
        label = "step_cost_simclr_aa" if name == AA else f"step_cost_{name}"
        report_ratio(label, ratio, step_s=results[name]["step_s"], simclr_s=simclr_s, with_views=ratio_with_views)
    baseline = {"step_s": simclr_s, "views_s": statistics.median(base_calls["views"]),
                "with_views_s": statistics.median(base_calls["total"])}

    print(f"\n{'method':<14} {'× simclr':>9} {'with views':>11} {'step ms':>9} {'views ms':>9}   rounds min–max")
    for name in sorted(names, key=lambda n: results[n]["ratio"]):
        r = results[name]
        print(f"{name:<14} {r['ratio']:>9.2f} {r['ratio_with_views']:>11.2f} {1e3 * r['step_s']:>9.1f} "
              f"{1e3 * r['views_s']:>9.1f}   {min(r['round_ratios']):.2f}–{max(r['round_ratios']):.2f}")
    aa = results[AA]
    print(f"{'(A/A simclr)':<14} {aa['ratio']:>9.3f} {aa['ratio_with_views']:>11.3f} {1e3 * aa['step_s']:>9.1f} "
          f"{1e3 * aa['views_s']:>9.1f}   {min(aa['round_ratios']):.2f}–{max(aa['round_ratios']):.2f}")
    print(f"{'(baseline)':<14} {'1':>9} {'1':>11} {1e3 * baseline['step_s']:>9.1f} {1e3 * baseline['views_s']:>9.1f}")

    if abs(results[AA]["ratio"] - 1) > 0.05:
        print(f"\nwarning: the A/A ratio is {results[AA]['ratio']:.3f}: two identical SimCLR steps differ by more than "
              f"5 % on this machine now (load average {load_before[0]:.1f} before, {load_after[0]:.1f} after, "
              f"{available_cores()} cores); rerun on a quieter machine", file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    payload = {
        "methods": {n: results[n] for n in names},
        "simclr_aa": results[AA],
        "baseline": baseline,
        "protocol": "per round, for each method and the A/A SimCLR: one baseline SimCLR call then one call of it, "
                    "the whole order reversed every other round; call = views_for_step + train_step; ratio = "
                    "median over rounds of train_step time / the adjacent baseline call's train_step time; "
                    "ratio_with_views the same with view making included",
        "load_average": {"before": list(load_before), "after": list(load_after)},
        "repeats": args.repeats, "warmup": args.warmup, "batch_size": args.batch_size,
        "image_size": int(train_set.images.shape[-1]), "backbone": args.backbone, "device": args.device,
        "data": base.data.name, "set": args.set, "config": base.to_dict(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "quick": args.quick, "peak_rss_mib": round(peak_rss_mib), "build_seconds": round(built_s, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2))
        path = args.out
    else:
        path = write_results("step_cost_quick" if args.quick else "step_cost", payload)
    print(f"\nwrote {path} in {payload['total_seconds']:.0f} s (peak RSS {payload['peak_rss_mib']} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
