"""Short pre-training runs on a given set of images (for the full-vs-foreground 2×2 protocol)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
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
    study interrupted mid-way loses at most that many steps. The folder records a SHA-256 of the images
    (``images.sha256``); a call whose images differ from the recorded ones raises ``ValueError`` instead of
    continuing another run. Without ``out_dir`` each call trains in a temporary folder, without checkpoints."""
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
            if out_dir is not None:
                _check_same_images(Path(folder), data.images)
            trainer = Trainer(method, data, build_view_fn(method, augment), short, folder, distributed=False,
                              desc=f"2×2 protocol pre-training {name} ({which})")
            trainer.fit(resume=(Path(folder) / "checkpoint.pt").is_file())
        return trainer.method.encoder.eval()

    return pretrain


def images_digest(images: torch.Tensor) -> str:
    """SHA-256 of an image tensor's shape, dtype and bytes."""
    flat = images.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{tuple(flat.shape)} {flat.dtype}".encode())
    digest.update(flat.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _check_same_images(folder: Path, images: torch.Tensor) -> None:
    """Record the images' digest in ``folder``, or check it against the one recorded by an earlier call."""
    record, digest = folder / "images.sha256", images_digest(images)
    if record.is_file() and record.read_text().strip() != digest:
        raise ValueError(f"out_dir: {folder} holds a pre-training on other images (SHA-256 differs); "
                         "pass the same images, another out_dir, or delete the folder")
    record.write_text(digest + "\n")


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
