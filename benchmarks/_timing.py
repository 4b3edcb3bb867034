"""Shared timing helpers for the benchmarks: interleaved medians and RATIO lines."""

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


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 3,
                        device: str = "cpu") -> dict[str, float]:
    """Run each function ``warmup`` times, then ``repeats`` rounds in turn; median seconds per name."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def report_ratio(name: str, value: float, **absolute: float) -> None:
    extras = "  ".join(f"{k}={v:.4g}" for k, v in absolute.items())
    print(f"RATIO {name} {value:.3f}  {extras}".rstrip())


def write_results(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path
