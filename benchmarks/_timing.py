"""Shared timing helpers for the benchmarks: interleaved timing rounds, medians, paired ratios, RATIO lines."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved_times(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 3,
                      device: str = "cpu") -> dict[str, list[float]]:
    """Run each function ``warmup`` times, then ``repeats`` rounds in turn; seconds of every call per name.

    The order within a round is reversed on every other round, so neither side always runs first (after a
    cold cache, or beside a drifting background load)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            sync(device)
            start = time.perf_counter()
            fns[name]()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 3,
                        device: str = "cpu") -> dict[str, float]:
    """Median seconds per name over :func:`interleaved_times`."""
    return {name: statistics.median(v) for name, v in interleaved_times(fns, repeats, warmup, device).items()}


def paired_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    """Median over rounds of ``num``'s time / ``den``'s time in the same round: a ratio that a load change
    between rounds does not move (both calls of a round see the same machine)."""
    return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))


def report_ratio(name: str, value: float, **absolute: float) -> None:
    extras = "  ".join(f"{k}={v:.4g}" for k, v in absolute.items())
    print(f"RATIO {name} {value:.3f}  {extras}".rstrip())


def write_results(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path
