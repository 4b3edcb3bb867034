"""The main job: train a method, then diagnose what its representation learned, then report.

    causalcl                                  # SimCLR on the embedded `shapes` data, CPU, minutes
    causalcl --method simclr --set method.loss=dcl --steps 500 --out runs/dcl
    causalcl --dataset cifar10 --data-root ~/data --backbone resnet18 --set model.cifar_stem=true
    causalcl --methods simclr,byol,barlow_twins --out runs/zoo   # several methods side by side

Writes to ``--out``: config.yaml, train_log.csv, checkpoint.pt, results.json, results.csv,
plots/*.png and a self-contained report.html; prints a summary table.

With ``--methods a,b,c`` each method is trained and diagnosed in ``<out>/<method>/`` (the files above,
same data, backbone, batch, seed and steps), then ``<out>/`` gets one combined report.html, results.json
and results.csv comparing them; see ``causalcl.multi`` (``method.<key>`` overrides, per-method --resume).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .job import make_config, run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="causalcl", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--method", help="method name (default simclr); see causalcl.methods.METHODS")
    which.add_argument("--methods", metavar="A,B,C",
                       help="comma list of methods to train and diagnose side by side, each in <out>/<method>/")
    p.add_argument("--dataset", help="shapes | digits | cifar10 | cifar100 | imagefolder (default shapes)")
    p.add_argument("--data-root", help="local root of a real dataset (nothing is downloaded)")
    p.add_argument("--backbone", help="convnet_small | resnet18 | resnet50")
    p.add_argument("--steps", type=int, help="training steps")
    p.add_argument("--epochs", type=float, help="training epochs (overrides --steps)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", help="cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int)
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument("--views", choices=["augment", "interventional"],
                   help="pixel augmentation (default) or true counterfactuals do(style) (shapes/digits)")
    p.add_argument("--time-limit", type=float, help="stop training after this many seconds")
    p.add_argument("--config", help="YAML file of overrides (e.g. assets/configs/simclr.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set optim.lr=0.01 (repeatable)")
    p.add_argument("--diagnostics", help="comma list of linear,knn,spectrum,geometry; 'all' or 'none'")
    p.add_argument("--out", help="output folder (default runs/<method>_<dataset>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    return p


def main(argv: list[str] | None = None) -> int:
    from .train.ddp import teardown
    from .train.trainer import NonFiniteLossError

    args = build_parser().parse_args(argv)
    try:
        if args.methods is not None:  # several methods side by side: causalcl.multi
            from .multi import main_many

            return main_many(args)
        config = make_config(args)
        out = Path(args.out or f"runs/{config.method.get('name', 'simclr')}_{config.data.name}")
        run(config, out, resume=args.resume)
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        teardown()  # the process group of a torchrun launch, if training did not already destroy it
    return 0


if __name__ == "__main__":
    sys.exit(main())
