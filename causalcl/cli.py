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

Errors (a bad value, an unknown name, a run that --resume cannot continue, an output folder that cannot be
written) print one line on stderr and exit with status 2; a non-finite loss exits with 3; Ctrl-C prints where
the last checkpoint is and the exact command that continues the run, and exits with 130. ``--debug`` shows the
full traceback instead.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import NoReturn


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (``causalcl: error: ... (see --help)``), status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _count(text: str) -> int:
    """An integer flag that also takes ``1e3`` / ``1000.0`` (a whole number); the range is checked later."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="causalcl", description=__doc__.splitlines()[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--method", help="method name (default simclr); see causalcl.methods.METHODS")
    which.add_argument("--methods", metavar="A,B,C",
                       help="comma list of methods to train and diagnose side by side, each in <out>/<method>/")
    p.add_argument("--dataset", help="shapes | digits | moving_shapes (clips) | scm_graph (graphs) | cifar10 | "
                                     "cifar100 | imagefolder (default shapes)")
    p.add_argument("--data-root", help="local root of a real dataset (nothing is downloaded)")
    p.add_argument("--backbone", help="convnet_small | resnet18 | resnet50 | video_small | gcn (default: follows the "
                                      "dataset and method: convnet_small, video_small for clips, gcn for graphs)")
    p.add_argument("--steps", type=_count, help="training steps (with --resume: a longer run re-plans the schedule)")
    p.add_argument("--epochs", type=float, help="training epochs (overrides --steps)")
    p.add_argument("--batch-size", type=_count)
    p.add_argument("--device", help="cpu | cuda | cuda:N")
    p.add_argument("--seed", type=_count)
    p.add_argument("--checkpoint-every", type=_count, help="steps between checkpoints")
    p.add_argument("--views", choices=["augment", "interventional"],
                   help="pixel augmentation (default) or true counterfactuals do(style) (shapes/digits)")
    p.add_argument("--time-limit", type=float, help="stop training after this many seconds")
    p.add_argument("--config", help="YAML file of overrides (e.g. assets/configs/simclr.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set optim.lr=1e-3 (repeatable)")
    p.add_argument("--diagnostics", help="comma list of linear,knn,spectrum,geometry; 'all' or 'none'")
    p.add_argument("--out", help="output folder (default runs/<method>_<dataset>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint (its settings must not change)")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return p


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (an OSError with its file name)."""
    if isinstance(exc, OSError) and exc.strerror:  # without "[Errno N]"; with the file name when it has one
        return f"{exc.strerror}: {str(exc.filename)!r}" if exc.filename is not None else exc.strerror
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _program() -> str:
    script = sys.argv[0] if sys.argv and sys.argv[0] else "causalcl"
    return f"python {shlex.quote(script)}" if script.endswith(".py") else "causalcl"


def resume_command(argv: list[str], out: Path | None) -> str:
    """The command line that continues this run: the same arguments with ``--resume`` (and ``--out``)."""
    args = list(argv)
    if out is not None and not any(a == "--out" or a.startswith("--out=") for a in args):
        args += ["--out", str(out)]
    if "--resume" not in args:
        args.append("--resume")
    return " ".join([_program(), *map(shlex.quote, args)])


def interrupted_message(exc: KeyboardInterrupt, argv: list[str], out: Path | None) -> str:
    """What Ctrl-C left behind: the step reached, the last checkpoint, and the command that continues.

    Imports nothing: Ctrl-C may have stopped an import half-way (of torch itself), which must not be re-run."""
    trainer = sys.modules.get("causalcl.train.trainer")
    if trainer is not None and isinstance(exc, trainer.TrainingInterrupted):
        head = str(exc)
        if exc.checkpoint is None:
            return f"{head}; nothing to resume — run the same command again to start over"
        return f"{head}; continue with: {resume_command(argv, out)}"
    checkpoint = out / "checkpoint.pt" if out is not None else None
    if "--resume" in argv and checkpoint is not None and checkpoint.is_file():  # the run being resumed is intact
        return (f"interrupted (Ctrl-C) before training; the last checkpoint is {str(checkpoint)!r}; continue with: "
                f"{resume_command(argv, out)}")
    return "interrupted (Ctrl-C) before training started; this run wrote no checkpoint — run the same command to start"


def main(argv: list[str] | None = None) -> int:
    """Run the job; returns the exit status (0 ok, 2 bad input or unwritable output, 3 non-finite loss, 130 Ctrl-C,
    1 an internal error). Heavy modules are imported inside, so Ctrl-C at any moment gets the one-line answer."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    where: dict[str, Path | None] = {"out": Path(args.out) if args.out else None}
    try:
        return _dispatch(args, where)
    except KeyboardInterrupt as exc:
        if args.debug:
            raise
        print(interrupted_message(exc, argv, where["out"]), file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        status, text = _error_line(exc)
        print(text, file=sys.stderr)
        return status
    finally:
        ddp = sys.modules.get("causalcl.train.ddp")
        if ddp is not None and hasattr(ddp, "teardown"):
            ddp.teardown()  # the process group of a torchrun launch, if training did not already destroy it


def _dispatch(args: argparse.Namespace, where: dict[str, Path | None]) -> int:
    from .job import default_out, make_config, run

    if args.methods is not None:  # several methods side by side: causalcl.multi
        from .multi import main_many, parse_methods

        where["out"] = where["out"] or Path(f"runs/{'+'.join(parse_methods(args.methods))}_{args.dataset or 'shapes'}")
        return main_many(args, where["out"])
    config = make_config(args)
    where["out"] = where["out"] or default_out(config)
    run(config, where["out"], resume=args.resume)
    return 0


def _error_line(exc: Exception) -> tuple[int, str]:
    """(exit status, the one line on stderr) for an exception that ended the job."""
    trainer = sys.modules.get("causalcl.train.trainer")
    if trainer is not None and isinstance(exc, trainer.NonFiniteLossError):
        return 3, f"error: {one_line(exc)}"
    if isinstance(exc, ValueError | OSError):  # bad input, missing files, unwritable or full output folders
        return 2, f"error: {one_line(exc)}"
    return 1, (f"error: internal error, {type(exc).__name__}: {one_line(exc)} (rerun with --debug for the "
               "traceback)")


if __name__ == "__main__":
    sys.exit(main())
