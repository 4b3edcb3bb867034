"""Benchmark the kNN and linear probes against scikit-learn and against the bare matmul floor.

Features: ``--n-train`` x ``--dim`` train and ``--n-test`` query features drawn from ``--classes`` Gaussian
clusters plus isotropic noise (float32, seeded), scaled so both probes land well below 100 % accuracy.

* kNN (k = 200, T = 0.1): ``evaluations.knn_predict`` against scikit-learn
  ``KNeighborsClassifier(algorithm="brute", metric="cosine", weights=lambda d: exp((1 - d) / T))``, and
  against the floor = the (n_test x d) @ (d x n_train) float32 product alone. Two floors are timed: the
  product as one call (the definition used for the acceptance ratio), and the same product computed in the
  chunks knn_predict uses, into one reused buffer (the tighter floor). Predictions are compared one by one.
* linear probe: ``evaluations.linear_probe`` at a fixed weight decay against scikit-learn
  ``LogisticRegression(solver="lbfgs", C=1 / (n * wd))`` on the same standardised features, same max_iter;
  accuracy difference reported. The time of the weight-decay search (weight_decay=None) is reported too.

Each timing is the median of ``--repeats`` interleaved runs after one warm-up (scikit-learn kNN and the
probes: ``--sk-repeats``, default 2, because one run takes tens of seconds). Ratios are ours / reference
(time), so < 1 means faster. Prints ``RATIO <name> <value>`` lines and writes
``benchmarks/results/probes.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

import evaluations.knn as knn_mod
from evaluations import knn_predict, linear_probe


def make_features(n_train: int, n_test: int, dim: int, classes: int, seed: int, signal: float):
    """Gaussian class clusters + isotropic noise, float32."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=g)
    y = torch.randint(0, classes, (n_train + n_test,), generator=g)
    x = signal * centers[y] + torch.randn(n_train + n_test, dim, generator=g)
    return (
        x[:n_train].contiguous(),
        y[:n_train].contiguous(),
        x[n_train:].contiguous(),
        y[n_train:].contiguous(),
    )


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def median_interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, float], dict]:
    """Warm each function once, then run them in turn ``repeats`` times; median time per function."""
    results: dict[str, Any] = {}
    for name, fn in fns.items():
        _, results[name] = timed(fn)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            dt, results[name] = timed(fn)
            times[name].append(dt)
    results["_raw_seconds"] = times
    return {name: statistics.median(ts) for name, ts in times.items()}, results


def bench_knn(tx, ty, qx, k: int, temperature: float, repeats: int, sk_repeats: int) -> dict[str, Any]:
    n_train = tx.shape[0]
    chunk = knn_mod._chunk_rows(n_train, qx.shape[0])
    buf = torch.empty(chunk, n_train)

    def floor_full():
        return torch.mm(qx, tx.t())

    def floor_chunked():
        for s in range(0, qx.shape[0], chunk):
            q = qx[s : s + chunk]
            torch.mm(q, tx.t(), out=buf[: q.shape[0]])

    def ours():
        return knn_predict(tx, ty, qx, k=k, temperature=temperature)

    med, res = median_interleaved(
        {"floor_full": floor_full, "floor_chunked": floor_chunked, "knn_predict": ours}, repeats
    )
    del res["floor_full"]
    pred = res["knn_predict"]

    tx_np, ty_np, qx_np = tx.numpy(), ty.numpy(), qx.numpy()

    def sk():
        clf = KNeighborsClassifier(
            n_neighbors=k,
            algorithm="brute",
            metric="cosine",
            weights=lambda d: np.exp((1.0 - d) / temperature),
        )
        clf.fit(tx_np, ty_np)
        return clf.predict(qx_np)

    sk_times = []
    for _ in range(sk_repeats):
        dt, sk_pred = timed(sk)
        sk_times.append(dt)
    sk_pred = torch.from_numpy(np.asarray(sk_pred)).long()
    mismatch = torch.nonzero(pred != sk_pred).flatten()
    return {
        "k": k,
        "temperature": temperature,
        "chunk_rows": chunk,
        "seconds": {
            "knn_predict": med["knn_predict"],
            "floor_full_matmul": med["floor_full"],
            "floor_chunked_matmul": med["floor_chunked"],
            "sklearn": statistics.median(sk_times),
        },
        "raw_seconds": {**res["_raw_seconds"], "sklearn": sk_times},
        "mismatches": int(mismatch.numel()),
        "mismatch_indices": mismatch[:20].tolist(),
        "pred": pred,
        "sk_pred": sk_pred,
    }


def bench_linear(tx, ty, qx, qy, wd: float, max_iter: int, sk_repeats: int, search: bool) -> dict[str, Any]:
    n = tx.shape[0]

    def ours():
        return linear_probe(tx, ty, qx, qy, weight_decay=wd, max_iter=max_iter)

    def sk():
        scaler = StandardScaler().fit(tx.numpy())
        clf = LogisticRegression(C=1.0 / (n * wd), max_iter=max_iter)
        clf.fit(scaler.transform(tx.numpy()), ty.numpy())
        return clf.score(scaler.transform(qx.numpy()), qy.numpy()), int(np.max(clf.n_iter_))

    # Warm-up on a small slice: the first L-BFGS step in a process pays one-off imports and allocations.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        linear_probe(tx[:2000], ty[:2000], qx[:500], qy[:500], weight_decay=wd, max_iter=20)
        LogisticRegression(max_iter=20).fit(tx[:2000].numpy(), ty[:2000].numpy())
    our_times, sk_times = [], []
    for _ in range(sk_repeats):
        dt, res = timed(ours)
        our_times.append(dt)
        dt, (sk_acc, sk_iter) = timed(sk)
        sk_times.append(dt)
    out = {
        "weight_decay": wd,
        "sklearn_C": 1.0 / (n * wd),
        "max_iter": max_iter,
        "seconds": {"linear_probe": statistics.median(our_times), "sklearn": statistics.median(sk_times)},
        "accuracy": {"linear_probe": res.accuracy, "sklearn": float(sk_acc)},
        "accuracy_difference_points": 100.0 * (res.accuracy - float(sk_acc)),
        "raw_seconds": {"linear_probe": our_times, "sklearn": sk_times},
        "iterations": {"linear_probe": res.n_iter, "sklearn": sk_iter},
        "converged": res.converged,
    }
    if search:
        dt, sres = timed(lambda: linear_probe(tx, ty, qx, qy, max_iter=max_iter))
        out["search"] = {
            "seconds": dt,
            "chosen_weight_decay": sres.weight_decay,
            "accuracy": sres.accuracy,
            "val_accuracy": {str(k): v for k, v in sres.val_accuracy.items()},
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-train", type=int, default=50_000)
    p.add_argument("--n-test", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--signal", type=float, default=0.16, help="cluster-centre scale relative to the noise")
    p.add_argument("--k", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sk-repeats", type=int, default=2)
    p.add_argument("--weight-decay", type=float, default=1e-3)
    p.add_argument("--max-iter", type=int, default=1000)
    p.add_argument("--skip-linear", action="store_true")
    p.add_argument("--skip-search", action="store_true", help="do not time the weight-decay search")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "probes.json")
    args = p.parse_args(argv)

    tx, ty, qx, qy = make_features(args.n_train, args.n_test, args.dim, args.classes, args.seed, args.signal)
    print(
        f"features: train {tuple(tx.shape)}, test {tuple(qx.shape)}, {args.classes} classes; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs",
        flush=True,
    )

    knn = bench_knn(tx, ty, qx, args.k, args.temperature, args.repeats, args.sk_repeats)
    s = knn["seconds"]
    knn["accuracy"] = {
        "knn_predict": float((knn.pop("pred") == qy).double().mean()),
        "sklearn": float((knn.pop("sk_pred") == qy).double().mean()),
    }
    knn["ratios"] = {
        "knn_vs_sklearn": s["knn_predict"] / s["sklearn"],
        "knn_vs_floor": s["knn_predict"] / s["floor_full_matmul"],
        "knn_vs_chunked_floor": s["knn_predict"] / s["floor_chunked_matmul"],
    }
    print(
        f"kNN k={args.k} T={args.temperature}: accuracy {100 * knn['accuracy']['knn_predict']:.2f}% "
        f"(sklearn {100 * knn['accuracy']['sklearn']:.2f}%), prediction mismatches vs sklearn: "
        f"{knn['mismatches']} of {args.n_test} {knn['mismatch_indices'] or ''}"
    )
    r = knn["ratios"]
    print(
        f"RATIO knn_vs_sklearn {r['knn_vs_sklearn']:.3f}  (knn_predict {s['knn_predict']:.2f} s, "
        f"sklearn {s['sklearn']:.2f} s: {1 / r['knn_vs_sklearn']:.1f}x faster)"
    )
    print(
        f"RATIO knn_vs_floor {r['knn_vs_floor']:.3f}  (knn_predict {s['knn_predict']:.2f} s, "
        f"bare matmul {s['floor_full_matmul']:.2f} s)"
    )
    print(
        f"RATIO knn_vs_chunked_floor {r['knn_vs_chunked_floor']:.3f}  (knn_predict {s['knn_predict']:.2f} s, "
        f"chunked matmul into a reused buffer {s['floor_chunked_matmul']:.2f} s)",
        flush=True,
    )

    result: dict[str, Any] = {
        "benchmark": "probes",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "knn": knn,
    }
    if not args.skip_linear:
        lin = bench_linear(
            tx, ty, qx, qy, args.weight_decay, args.max_iter, args.sk_repeats, not args.skip_search
        )
        ls = lin["seconds"]
        lin["ratios"] = {"linear_probe_vs_sklearn_time": ls["linear_probe"] / ls["sklearn"]}
        print(
            f"linear probe wd={args.weight_decay:g} (C={lin['sklearn_C']:.3g}): accuracy "
            f"{100 * lin['accuracy']['linear_probe']:.2f}% vs sklearn "
            f"{100 * lin['accuracy']['sklearn']:.2f}% "
            f"(difference {lin['accuracy_difference_points']:+.2f} points); iterations "
            f"{lin['iterations']['linear_probe']} vs {lin['iterations']['sklearn']}"
        )
        print(
            f"RATIO linear_probe_vs_sklearn_time {lin['ratios']['linear_probe_vs_sklearn_time']:.3f}  "
            f"(linear_probe {ls['linear_probe']:.2f} s, sklearn {ls['sklearn']:.2f} s)"
        )
        if "search" in lin:
            print(
                f"linear probe with weight-decay search: {lin['search']['seconds']:.2f} s, chose "
                f"{lin['search']['chosen_weight_decay']:g}, accuracy {100 * lin['search']['accuracy']:.2f}%"
            )
        result["linear_probe"] = lin

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, allow_nan=False, default=_json_default) + "\n")
    print(f"wrote {args.out}")
    return result


def _json_default(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


if __name__ == "__main__":
    main()
