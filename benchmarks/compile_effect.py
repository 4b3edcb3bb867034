"""``train.compile=true`` against eager: the same method, weights and views, interleaved in one process (issue 17).

Two Trainers built alike (same seed, so the same initial weights), one with ``train.compile=true`` (the method's
forward and loss compiled in place by ``torch.compile``; backward through AOTAutograd; meta-steps stay eager).
The first compiled call compiles (timed apart: ``compile_s``); then ``--warmup`` untimed rounds and ``--repeats``
rounds of one ``train_step`` each on fixed views, the order reversed every other round. ``RATIO compile_<method>``
is the median over rounds of compiled / eager step time (below 1: compile helps). The losses of the first step
are printed side by side (they must agree to float rounding).

    python benchmarks/compile_effect.py                          # simclr, convnet_small, batch 256, 32 px, CPU
    python benchmarks/compile_effect.py --device cuda --backbone resnet18 --batch-size 512 --amp bf16
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_times, paired_ratio, report_ratio, sync, write_results  # noqa: E402

from causalcl.build import build_augment, build_method, build_view_fn, load_split  # noqa: E402
from causalcl.train import Config, Trainer  # noqa: E402
from causalcl.train.trainer import host_terms  # noqa: E402


def make(args: argparse.Namespace, compiled: bool, out: Path) -> Trainer:
    config = Config()
    for key, value in {"method.name": args.method, "train.device": args.device, "train.batch_size": args.batch_size,
                       "train.steps": 10_000, "train.checkpoint_every": 0, "train.amp": args.amp,
                       "train.compile": compiled, "model.backbone": args.backbone,
                       "model.cifar_stem": args.backbone.startswith("resnet"), "data.image_size": args.image_size,
                       "data.options.n": 2 * args.batch_size}.items():
        config.set(key, value)
    data = load_split(config, "train")
    method = build_method(config)
    return Trainer(method, data, build_view_fn(method, build_augment(config, args.image_size), config, data), config,
                   out, distributed=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="simclr")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backbone", default="convnet_small")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="compile_effect_") as tmp:
        eager, compiled = make(args, False, Path(tmp) / "eager"), make(args, True, Path(tmp) / "compiled")
        views = eager.views_for_step(0)
        start = time.perf_counter()
        first = host_terms(compiled.train_step(views))["loss"]  # compiles forward and backward
        sync(args.device)
        compile_s = time.perf_counter() - start
        eager_first = host_terms(eager.train_step(views))["loss"]
        print(f"first-step loss: eager {eager_first:.6f}, compiled {first:.6f}; compile took {compile_s:.1f} s",
              flush=True)
        times = interleaved_times({"eager": lambda: eager.train_step(views),
                                   "compiled": lambda: compiled.train_step(views)},
                                  args.repeats, warmup=args.warmup, device=args.device)
        eager.check_finite(), compiled.check_finite()
    ratio = paired_ratio(times, "compiled", "eager")
    medians = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    amp = "" if args.amp == "none" else f"_{args.amp}"
    report_ratio(f"compile_{args.method}_{args.backbone}_{args.device}{amp}", ratio, compiled_s=medians["compiled"],
                 eager_s=medians["eager"], compile_s=compile_s)
    write_results(f"compile_{args.method}_{args.backbone}_{args.device}{amp}",
                  {**vars(args), "ratio": ratio, "compile_s": compile_s, "eager_first_loss": eager_first,
                   "compiled_first_loss": first, "times": times, "torch": torch.__version__,
                   "threads": torch.get_num_threads()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
