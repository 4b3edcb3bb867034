"""Short pre-training runs on a given set of images (for the full-vs-foreground 2×2 protocol)."""

from __future__ import annotations

import contextlib
import copy
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

from .build import build_method, build_view_fn
from .train.config import Config
from .train.trainer import Trainer


class TensorImages:
    """A minimal training set over a float image tensor (N, 3, H, W) in [0, 1]."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images
        self.labels = torch.zeros(len(images), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.images)

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[indices], self.labels[indices]


def make_pretrain_fn(config: Config, augment, steps: int, batch_size: int, *, out_dir: str | Path | None = None,
                     checkpoint_every: int = 250) -> Callable[..., nn.Module]:
    """``fn(images, label=None) -> frozen encoder``: the configured method trained for ``steps`` steps on ``images``.

    Every call starts from the same seed, so two calls differ only in their images. The k-th call is labelled
    ``2×2 protocol pre-training <method> (encoder k of 2: full images | foreground images)`` in the progress bar
    and the plain log lines (or ``label`` when given), so it does not read as the run's training starting again.

    ``out_dir``: the k-th call trains in ``out_dir/encoder<k>`` with a checkpoint every ``checkpoint_every``
    steps and continues from the checkpoint it finds there (a finished one is loaded, not retrained), so a long
    study interrupted mid-way loses at most that many steps; the caller must give the same images again.
    Without it each call trains in a temporary folder, without checkpoints."""
    short = copy.deepcopy(config)
    short.set("train.steps", steps)
    short.set("train.epochs", None)
    short.set("train.batch_size", batch_size)
    short.set("train.checkpoint_every", int(checkpoint_every) if out_dir is not None else 0)
    short.set("train.time_limit_s", None)
    short.set("train.tensorboard", False)
    short.set("augment.views", "augment")  # these images carry no SCM to intervene on: the pixel views
    # nor masks: no background swaps (augment.background_swap_p, ReLIC's method.interventions) in these runs
    short.set("augment.background_swap_p", 0.0)
    short.method.pop("interventions", None)
    short.set("optim.warmup_steps", min(config.optim.warmup_steps, steps // 10))

    name = config.method.get("name", "simclr")
    calls = [0]

    def pretrain(images: torch.Tensor, label: str | None = None) -> nn.Module:
        calls[0] += 1
        which = label or {1: "encoder 1 of 2: full images", 2: "encoder 2 of 2: foreground images"}.get(
            calls[0], "encoder")
        data = TensorImages(images.cpu())
        short.set("train.batch_size", min(batch_size, len(data)))
        method = build_method(short)
        with _folder(out_dir, calls[0]) as folder:
            trainer = Trainer(method, data, build_view_fn(method, augment), short, folder, distributed=False,
                              desc=f"2×2 protocol pre-training {name} ({which})")
            trainer.fit(resume=(Path(folder) / "checkpoint.pt").is_file())
        return trainer.method.encoder.eval()

    return pretrain


@contextlib.contextmanager
def _folder(out_dir: str | Path | None, call: int) -> Iterator[str]:
    """The k-th pre-training's folder: ``out_dir/encoder<k>`` (kept), or a temporary one."""
    if out_dir is not None:
        folder = Path(out_dir) / f"encoder{call}"
        folder.mkdir(parents=True, exist_ok=True)
        yield str(folder)
        return
    with tempfile.TemporaryDirectory(prefix="causalcl_pretrain_") as tmp:
        yield tmp
