"""``causalcl --methods a,b,c``: train and diagnose several methods in one call, then compare them.

Each method runs the single-method job (:func:`causalcl.job.run`) in ``<out>/<method>/`` with the same data,
backbone, batch, seed and step budget; ``<out>/`` then gets the combined report of
:mod:`causalcl.diagnostics.compare`. Everything that can be checked is checked before the first step:
method names (with the valid list), repeated names, ``method.<key>`` overrides and the constructors' own
argument checks.

Decisions:
- a ``method.<key>`` override (from ``--config`` or ``--set``) is given to every listed method whose constructor
  takes ``<key>`` (a note says which when not all); a key that no listed method takes is an error naming the
  nearest valid key;
- ``--resume`` applies per method: a method with a checkpoint continues from it, one without starts from the
  beginning, and one that already finished training and diagnosis with exactly the same config is reused;
- a method whose training hits a non-finite loss is listed as failed in the combined report; the others go on
  (exit status 3).
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .train.config import Config, load_yaml


def parse_methods(text: str) -> list[str]:
    """``"simclr, byol"`` → ["simclr", "byol"]; unknown or repeated names raise with the valid list."""
    from .methods import METHODS

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in METHODS]
    if not names or unknown:
        close = {n: difflib.get_close_matches(n, list(METHODS), n=1) for n in unknown}
        hint = "".join(f"; did you mean {c[0]!r}?" if len(close) == 1 else f"; {n!r}: did you mean {c[0]!r}?"
                       for n, c in close.items() if c)
        raise ValueError(f"--methods: unknown name(s) {unknown or [text]}{hint} (valid names are "
                         f"{', '.join(sorted(METHODS))})")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"--methods: {repeated} listed more than once")
    return names


def accepted_options(name: str) -> set[str] | None:
    """The keyword arguments of a method's constructor (None: it takes any, via ``**kwargs``)."""
    from .methods import get_method

    params = inspect.signature(get_method(name).__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {p for p in params if p not in ("self", "backbone")}


def make_configs(args: argparse.Namespace, names: list[str], out: Path) -> dict[str, Config]:
    """One config per method, validated (options and constructor) before anything trains."""
    from .build import build_method
    from .job import make_config

    configs: dict[str, Config] = {}
    takers: dict[str, list[str]] = {}
    for name in names:
        config = make_config(args, method=name, out=out / name)
        accepted = accepted_options(name)
        for key in [k for k in config.method if k != "name"]:
            takers.setdefault(key, [])
            if accepted is None or key in accepted:
                takers[key].append(name)
            else:
                del config.method[key]
        configs[name] = config
    for key, who in takers.items():
        if not who:
            valid = sorted(set().union(*(accepted_options(n) or set() for n in names)))
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean 'method.{close[0]}'?" if close else ""
            raise ValueError(f"config key 'method.{key}' does not exist for any of the methods {names}{hint}")
        if len(who) < len(names):
            print(f"note: method.{key} applies to {', '.join(who)} only", file=sys.stderr)
    for config in configs.values():
        build_method(config)  # the constructor's own checks (bad values), before any training
    return configs


def finished(config: Config, folder: Path) -> bool:
    """Whether ``folder`` holds a run that completed training and diagnosis with exactly ``config``."""
    paths = [folder / n for n in ("results.json", "checkpoint.pt", "config.yaml")]
    if not all(p.is_file() for p in paths) or paths[0].stat().st_mtime < max(p.stat().st_mtime for p in paths[1:]):
        return False
    if Config.from_dict(load_yaml(paths[2])).to_dict() != config.to_dict():
        return False
    info = json.loads(paths[0].read_text()).get("run", {})
    return info.get("steps") == info.get("total_steps") and not info.get("stopped_early")


def run_many(configs: dict[str, Config], out: Path, resume: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
    """Train and diagnose each method in ``<out>/<method>/``, then write the combined report in ``out``.

    Returns (the combined results, {failed method: reason})."""
    from .diagnostics.compare import comparison_findings, side_by_side, summary_text, write_comparison
    from .job import run
    from .train.trainer import NonFiniteLossError

    started = time.perf_counter()
    runs: dict[str, Path] = {}
    failed: dict[str, str] = {}
    for i, (name, config) in enumerate(configs.items(), 1):
        folder = out / name
        print(f"\n[{i}/{len(configs)}] {name} → {folder}", flush=True)
        if resume and finished(config, folder):
            print(f"--resume: {name} already finished with this config; reusing {folder}/results.json")
        else:
            continuing = resume and (folder / "checkpoint.pt").is_file()
            if resume and not continuing:
                print(f"--resume: no checkpoint for {name} yet; training it from the start")
            try:
                run(config, folder, resume=continuing)
            except NonFiniteLossError as exc:
                print(f"error: {name}: {exc}", file=sys.stderr)
                failed[name] = str(exc)
                continue
        runs[name] = folder
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 alone writes the outputs
        return {}, failed
    if not runs:
        print("error: every method failed; no comparison written", file=sys.stderr)
        return {}, failed
    first = next(iter(configs.values()))
    budget = f"{first.train.epochs:g} epochs" if first.train.epochs is not None else first.train.steps
    backbones = {name: config.model.backbone for name, config in configs.items()}  # per method on clips (frames)
    backbone = first.model.backbone if len(set(backbones.values())) == 1 else \
        ", ".join(f"{name}: {b}" for name, b in backbones.items())
    info = {"dataset": first.data.name, "backbone": backbone, "steps": budget,
            "batch_size": first.train.batch_size, "seed": first.train.seed,
            "total_seconds": round(time.perf_counter() - started, 1)}
    report = write_comparison(out, runs, run_info=info, failed=failed)
    results = report.results
    methods = list(runs)
    print("\n" + report.title)
    per_method = {m: results["methods"][m]["results"] for m in methods}
    table = side_by_side(per_method)
    print(summary_text(table, methods, results=per_method))
    print("\n" + "\n".join(f"- {sentence}" for sentence in comparison_findings(table, per_method)))
    if failed:
        print(f"failed: {', '.join(failed)} (see above)")
    print(f"\nwrote {out}/report.html, results.json, results.csv, plots/ and one folder per method")
    return results, failed


def main_many(args: argparse.Namespace, out: Path | None = None) -> int:
    """The ``--methods`` branch of ``causalcl.cli.main``: 0 on success, 3 when a method failed."""
    names = parse_methods(args.methods)
    out = out or Path(args.out or f"runs/{'+'.join(names)}_{args.dataset or Config().data.name}")
    _, failed = run_many(make_configs(args, names, out), out, resume=args.resume)
    return 3 if failed else 0
