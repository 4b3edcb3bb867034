"""SimCLR train-step overhead over the bare backbone (DESIGN.md §8).

ratio = median time of one full SimCLR training step (backbone + projector forward, NT-Xent,
backward, optimiser and schedule step — ``Trainer.train_step``) ÷ median time of the bare backbone
forward + backward on the same views. Both run interleaved in one process on the same tensors; with ``--amp`` both
run under the same autocast (``train.amp``). The views are ready on the device (the augmentation is not timed).

    python benchmarks/step_overhead.py [--device cuda] [--backbone resnet18] [--batch-size 512] [--amp bf16]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import interleaved_medians, report_ratio, write_results  # noqa: E402

from causalcl.methods import SimCLR  # noqa: E402
from causalcl.models import build_backbone  # noqa: E402
from causalcl.train import Config, Trainer  # noqa: E402


class _RandomImages:
    def __init__(self, n: int, size: int) -> None:
        self.images = torch.rand(n, 3, size, size)
        self.labels = torch.zeros(n, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.images)

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[indices], self.labels[indices]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backbone", default="convnet_small")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"],
                        help="autocast of both the step and the bare pass (train.amp)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args(argv)

    config = Config()
    config.set("train.device", args.device)
    config.set("train.batch_size", args.batch_size)
    config.set("train.steps", 10_000)
    config.set("train.amp", args.amp)
    config.set("model.backbone", args.backbone)
    torch.manual_seed(0)
    method = SimCLR(build_backbone(args.backbone, cifar_stem=args.image_size < 64))
    data = _RandomImages(args.batch_size, args.image_size)
    trainer = Trainer(method, data, lambda x, _i, _g: [x, x.flip(-1)], config, "/tmp/causalcl_bench")
    views = trainer.views_for_step(0)
    backbone = trainer.method.backbone

    autocast = (torch.autocast(trainer.device.type, dtype=trainer.amp_dtype) if trainer.amp_dtype is not None
                else contextlib.nullcontext())

    def bare() -> None:
        backbone.zero_grad(set_to_none=True)
        with autocast:
            out = backbone(torch.cat(views)).float().sum()
        out.backward()

    def full() -> None:
        trainer.train_step(views)

    medians = interleaved_medians({"simclr_step": full, "bare_backbone": bare}, args.repeats, warmup=args.warmup,
                                  device=args.device)
    trainer.check_finite()
    ratio = medians["simclr_step"] / medians["bare_backbone"]
    amp = "" if args.amp == "none" else f"_{args.amp}"
    report_ratio(f"simclr_step_overhead_{args.backbone}_{args.device}{amp}", ratio,
                 step_s=medians["simclr_step"], bare_s=medians["bare_backbone"])
    payload = {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, **medians, "ratio": ratio}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2))
    else:
        write_results(f"step_overhead_{args.backbone}_{args.device}{amp}", payload)
    return payload


if __name__ == "__main__":
    main()
