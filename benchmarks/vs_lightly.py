"""Our methods against the same methods assembled from lightly's losses and heads (DESIGN.md §8, issue 4).

For simclr, moco, byol, simsiam, barlow_twins and swav, the lightly side is a ``causalcl`` ``Method`` whose
heads, loss, momentum update and memory bank are lightly's (``lightly.loss``, ``lightly.models.modules``,
``lightly.models.utils``, ``lightly.utils.scheduler``), with the widths and options of our method's defaults.
Both sides then run in the SAME loop: ``causalcl.train.Trainer`` (same optimiser, warm-up + cosine schedule,
batches and views: our ``SimCLRAugment`` driven by the Trainer's generator seeded from (seed, step)), the same
backbone (``causalcl.models.build_backbone``, identical initial weights per seed), the same data
(``get_dataset("shapes", ...)``, train split) and the same batch.

Measured per method:
  (0) a check that the pair is one method: lightly's side given our weights (and MoCo's bank our queue)
      computes the same loss on one batch (BYOL: 4 + 4·L, see below); printed and stored, not a ratio;
  (a) step time: ``--repeats`` rounds of one ``Trainer.train_step`` call of each side on the same views, the
      order alternating between rounds (``_timing.interleaved_times``); the median over rounds of the
      within-round ratio → ``RATIO vs_lightly_step_<method> <ours / lightly>`` (the JSON also keeps each
      side's median and their ratio); with ``--aa`` a second instance of ours runs in the same rounds, and
      ``RATIO vs_self_step_<method>`` (ours / ours) shows the protocol's own spread on the machine;
  (b) kNN accuracy after ``--steps`` training steps, for ``--seeds`` seeds: the main job's protocol (frozen
      backbone features, ``probe`` split as the bank, ``test`` split as queries, ``evaluations.knn_accuracy``
      with k = 200, T = 0.1) → ``RATIO vs_lightly_knn_diff_<method> <mean ours − mean lightly>`` (fractions;
      0.01 = one point).
Writes ``benchmarks/results/vs_lightly.json`` (``vs_lightly_quick.json`` with ``--quick``).

How the lightly side is assembled, and where it cannot equal ours (every choice below is lightly's own):
  * simclr: ``NTXentLoss(temperature)``; the projector is lightly's generic ``ProjectionHead`` with our
    blocks (Linear-BN-ReLU, Linear), because ``SimCLRProjectionHead(batch_norm=True)`` adds a BatchNorm on the
    output that ours does not have.
  * moco: ``NTXentLoss(temperature, memory_bank_size=(K, d))`` (its ``MemoryBankModule`` is the queue: read,
    then the keys are enqueued), key encoder = ``deepcopy`` + ``deactivate_requires_grad``, EMA with
    ``update_momentum`` after each optimiser step. Our default is symmetric (both views as queries, the
    mean of the two directions, both views' keys enqueued): lightly gets ONE loss call on the 2N queries
    [q1; q2] against keys [k2; k1], which is exactly that mean, with the same queue for both directions and
    2N keys enqueued. Generic ``ProjectionHead`` (ours has BN on the hidden layer only).
  * byol: ``BYOLProjectionHead``, ``BYOLPredictionHead``, ``NegativeCosineSimilarity`` as in lightly's
    examples, L = ½[−cos(p1, z'2) − cos(p2, z'1)]. Ours is Σ (2 − 2cos) = 4 + 4·L: an affine change that
    AdamW (the default optimiser) does not see, up to its ε. Momentum: lightly's ``cosine_schedule(k, K,
    τ_base, 1)`` (its cosine runs over K − 1 steps, ours over K) and ``update_momentum``.
  * simsiam: ``SimSiamProjectionHead`` / ``SimSiamPredictionHead`` and ``NegativeCosineSimilarity``. The last
    projector Linear has no bias in lightly (ours has one, cancelled by the BatchNorm that follows).
  * barlow_twins: ``BarlowTwinsProjectionHead``, ``BarlowTwinsLoss(lambda_param)`` (× our ``scale_loss``).
  * swav: ``SwaVProjectionHead``, ``SwaVPrototypes(d, K, n_steps_frozen_prototypes)`` (lightly's prototypes
    are a Linear WITH bias, and freezing turns ``requires_grad`` off; ours: no bias, zero gradient),
    ``SwaVLoss(temperature, sinkhorn_iterations, sinkhorn_epsilon)``; prototype rows normalised after every
    optimiser step (lightly's examples: before every step — the same sequence). Two large crops, no queue.
  * BatchNorm running statistics of the EMA targets are copied in ours and left alone by ``update_momentum``;
    targets run in train mode (batch statistics), so the losses do not depend on them.
A method that ``causalcl.methods.METHODS`` does not (yet) have is skipped with a message.

    python benchmarks/vs_lightly.py                       # the full run (≈ 23 min on 2 idle CPU cores)
    python benchmarks/vs_lightly.py --quick               # a smoke test, < 1 min
    python benchmarks/vs_lightly.py --device cuda --backbone resnet18 --batch-size 512 --steps 500
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_times, paired_ratio, report_ratio, write_results  # noqa: E402

import evaluations  # noqa: E402
from causalcl.build import build_augment, build_view_fn  # noqa: E402
from causalcl.data import get_dataset  # noqa: E402
from causalcl.methods import METHODS, Method  # noqa: E402
from causalcl.models import build_backbone  # noqa: E402
from causalcl.train import Config, Trainer  # noqa: E402

try:
    from lightly.loss import BarlowTwinsLoss, NegativeCosineSimilarity, NTXentLoss, SwaVLoss
    from lightly.models.modules import heads as lightly_heads
    from lightly.models.utils import deactivate_requires_grad, update_momentum
    from lightly.utils.scheduler import cosine_schedule

    LIGHTLY_ERROR: ImportError | None = None
except ImportError as _exc:  # lightly is the optional `bench` extra
    LIGHTLY_ERROR = _exc

PAIRS = ("simclr", "moco", "byol", "simsiam", "barlow_twins", "swav")
#: full-run default, sized for about 25 min on 2 idle CPU cores at batch 256: a SimCLR step takes 0.60 s there
#: (benchmarks/results/step_overhead_convnet_small_cpu.json), MoCo/BYOL about 0.8 s (one more forward), so the six
#: pairs cost about 9 s per step with view drawing, × 3 seeds × 40 steps ≈ 18 min, plus ≈ 3 min of timing rounds
#: and ≈ 1 min of feature extraction. The script prints its own estimate after the timing rounds.
DEFAULT_STEPS = 40


# ---------------------------------------------------------------------------------------------- lightly side
def _generic_head(widths: list[int], hidden_bn: bool = True) -> nn.Module:
    """lightly's ``ProjectionHead`` with our MLPHead's blocks: (Linear-BN-ReLU)* then a plain Linear."""
    blocks: list[tuple[int, int, nn.Module | None, nn.Module | None]] = []
    for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        last = i == len(widths) - 2
        bn = nn.BatchNorm1d(w_out) if hidden_bn and not last else None
        blocks.append((w_in, w_out, bn, None if last else nn.ReLU()))
    return lightly_heads.ProjectionHead(blocks)


def _frozen(module: nn.Module) -> nn.Module:
    target = copy.deepcopy(module)
    deactivate_requires_grad(target)
    return target


def _widths(ours: Method, attr: str, hidden_layers: int) -> list[int]:
    widths = list(getattr(ours, attr).widths)
    if len(widths) != hidden_layers + 2:
        raise ValueError(f"{ours.name}.{attr}: lightly's head has {hidden_layers} hidden layer(s), ours {widths}")
    return widths


class LightlySimCLR(Method):
    name = "lightly_simclr"

    def __init__(self, backbone: nn.Module, ours: Method) -> None:
        super().__init__(backbone)
        if ours.loss_name != "infonce":
            raise ValueError(f"simclr: lightly has no {ours.loss_name!r} loss for SimCLR")
        self.projector = _generic_head(list(ours.projector.widths))
        self.criterion = NTXentLoss(temperature=ours.loss_options["temperature"])

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        z0, z1 = self.projector(self.backbone(torch.cat(list(views[:2])))).chunk(2)
        return {"loss": self.criterion(z0, z1)}


class LightlyMoCo(Method):
    name = "lightly_moco"

    def __init__(self, backbone: nn.Module, ours: Method) -> None:
        super().__init__(backbone)
        hidden_bn = any(isinstance(m, nn.BatchNorm1d) for m in ours.projector)
        self.projector = _generic_head(list(ours.projector.widths), hidden_bn=hidden_bn)
        self.key_backbone, self.key_projector = _frozen(self.backbone), _frozen(self.projector)
        self.momentum, self.symmetric = ours.momentum, ours.symmetric
        self.criterion = NTXentLoss(temperature=ours.temperature,
                                    memory_bank_size=(ours.queue.size, ours.projector.widths[-1]))

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        x = torch.cat(list(views[:2]))
        q0, q1 = self.projector(self.backbone(x)).chunk(2)
        with torch.no_grad():
            k0, k1 = self.key_projector(self.key_backbone(x)).chunk(2)
        if self.symmetric:  # one call on 2N queries = the mean of both directions; enqueues the 2N keys
            return {"loss": self.criterion(torch.cat([q0, q1]), torch.cat([k1, k0]))}
        return {"loss": self.criterion(q0, k1)}

    def on_step_end(self, step: int, total_steps: int) -> None:
        update_momentum(self.backbone, self.key_backbone, m=self.momentum)
        update_momentum(self.projector, self.key_projector, m=self.momentum)


class LightlyBYOL(Method):
    name = "lightly_byol"

    def __init__(self, backbone: nn.Module, ours: Method) -> None:
        super().__init__(backbone)
        d, hidden, out = _widths(ours, "projector", 1)
        _, p_hidden, _ = _widths(ours, "predictor", 1)
        self.projector = lightly_heads.BYOLProjectionHead(d, hidden, out)
        self.predictor = lightly_heads.BYOLPredictionHead(out, p_hidden, out)
        self.target_backbone, self.target_projector = _frozen(self.backbone), _frozen(self.projector)
        self.base_momentum = ours.base_momentum
        self.criterion = NegativeCosineSimilarity()

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        x = torch.cat(list(views[:2]))
        p0, p1 = self.predictor(self.projector(self.backbone(x))).chunk(2)
        with torch.no_grad():
            t0, t1 = self.target_projector(self.target_backbone(x)).chunk(2)
        return {"loss": 0.5 * (self.criterion(p0, t1) + self.criterion(p1, t0))}

    def on_step_end(self, step: int, total_steps: int) -> None:
        m = cosine_schedule(step - 1, total_steps, self.base_momentum, 1.0)
        update_momentum(self.backbone, self.target_backbone, m=m)
        update_momentum(self.projector, self.target_projector, m=m)


class LightlySimSiam(Method):
    name = "lightly_simsiam"

    def __init__(self, backbone: nn.Module, ours: Method) -> None:
        super().__init__(backbone)
        d, hidden, hidden2, out = _widths(ours, "projector", 2)
        if hidden2 != hidden:
            raise ValueError(f"simsiam: lightly's projector has equal hidden widths, ours {ours.projector.widths}")
        _, p_hidden, _ = list(ours.predictor.widths)
        self.projector = lightly_heads.SimSiamProjectionHead(d, hidden, out)
        self.predictor = lightly_heads.SimSiamPredictionHead(out, p_hidden, out)
        self.criterion = NegativeCosineSimilarity()

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        z = self.projector(self.backbone(torch.cat(list(views[:2]))))
        p0, p1 = self.predictor(z).chunk(2)
        z0, z1 = z.detach().chunk(2)
        return {"loss": 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))}


class LightlyBarlowTwins(Method):
    name = "lightly_barlow_twins"

    def __init__(self, backbone: nn.Module, ours: Method) -> None:
        super().__init__(backbone)
        d, hidden, hidden2, out = _widths(ours, "projector", 2)
        if hidden2 != hidden:
            raise ValueError(f"barlow_twins: lightly's projector has equal hidden widths, ours {ours.projector.widths}")
        self.projector = lightly_heads.BarlowTwinsProjectionHead(d, hidden, out)
        self.criterion = BarlowTwinsLoss(lambda_param=ours.lambd)
        self.scale_loss = ours.scale_loss

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        z0, z1 = self.projector(self.backbone(torch.cat(list(views[:2])))).chunk(2)
        return {"loss": self.scale_loss * self.criterion(z0, z1)}


class LightlySwAV(Method):
    name = "lightly_swav"

    def __init__(self, backbone: nn.Module, ours: Method) -> None:
        super().__init__(backbone)
        if tuple(ours.num_crops) != (2, 0):
            raise ValueError(f"swav: the benchmark pairs two large crops, got num_crops={ours.num_crops}")
        d, hidden, out = _widths(ours, "projector", 1)
        self.projector = lightly_heads.SwaVProjectionHead(d, hidden, out)
        self.prototypes = lightly_heads.SwaVPrototypes(out, ours.num_prototypes,
                                                       n_steps_frozen_prototypes=ours.freeze_prototypes_steps)
        self.prototypes.normalize()
        self.criterion = SwaVLoss(temperature=ours.temperature, sinkhorn_iterations=ours.sinkhorn_iterations,
                                  sinkhorn_epsilon=ours.epsilon)
        self.steps_done = 0

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        z = F.normalize(self.projector(self.backbone(torch.cat(list(views[:2])))), dim=1)
        s0, s1 = self.prototypes(z, step=self.steps_done).chunk(2)
        return {"loss": self.criterion([s0, s1], []).squeeze(0)}  # lightly returns shape (1,)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.steps_done = step
        self.prototypes.normalize()


LIGHTLY: dict[str, Callable[[nn.Module, Method], Method]] = {
    "simclr": LightlySimCLR, "moco": LightlyMoCo, "byol": LightlyBYOL, "simsiam": LightlySimSiam,
    "barlow_twins": LightlyBarlowTwins, "swav": LightlySwAV,
}


# ---------------------------------------------------------------------------------------------- the loop
def make_config(args: argparse.Namespace, seed: int) -> Config:
    config = Config()
    for key, value in {"train.batch_size": args.batch_size, "train.steps": args.steps, "train.seed": seed,
                       "train.device": args.device, "train.checkpoint_every": 0, "train.log_every": 10**9,
                       "model.backbone": args.backbone, "optim.warmup_steps": max(1, args.steps // 10)}.items():
        config.set(key, value)
    return config


def build_pair(name: str, seed: int, args: argparse.Namespace) -> tuple[Method, Method]:
    """Our method with its defaults and lightly's, on backbones with identical initial weights."""
    cifar_stem = args.backbone != "convnet_small"

    def backbone() -> nn.Module:
        torch.manual_seed(seed)
        return build_backbone(args.backbone, cifar_stem=cifar_stem)

    ours = METHODS[name](backbone())
    theirs = LIGHTLY[name](backbone(), ours)  # its heads start from the same RNG state as ours
    return ours, theirs


def _copy_weights(ours: Method, theirs: Method) -> None:
    """Give lightly's online network our weights (parameters matched in order by shape; a lightly bias that we
    do not have is zeroed), its targets/keys the online weights, and MoCo's bank our queue."""
    online_o = [p for n, p in ours.named_parameters() if not n.startswith(("key_", "target_"))]
    online_t = [p for n, p in theirs.named_parameters() if not n.startswith(("key_", "target_"))]
    with torch.no_grad():
        j = 0
        for p in online_t:
            while j < len(online_o) and online_o[j].shape != p.shape:
                j += 1
            if j < len(online_o):
                p.copy_(online_o[j])
                j += 1
            elif p.ndim == 1:
                p.zero_()
            else:
                raise ValueError(f"{ours.name}: no weights of ours for lightly's {tuple(p.shape)} parameter")
        for attr in ("key_backbone", "key_projector", "target_backbone", "target_projector"):
            if hasattr(theirs, attr):
                online = getattr(theirs, attr.split("_", 1)[1])
                getattr(theirs, attr).load_state_dict(online.state_dict())
        if isinstance(theirs, LightlyMoCo):
            theirs.criterion.memory_bank.bank.copy_(ours.queue.queue)


def same_loss_check(name: str, args: argparse.Namespace) -> dict[str, float]:
    """Both sides' loss on one tiny batch with lightly holding our weights: shows the pair is one method.

    BYOL's lightly loss L maps to ours as 4 + 4·L (see the module docstring)."""
    ours, theirs = build_pair(name, 0, args)
    _copy_weights(ours, theirs)
    gen = torch.Generator().manual_seed(0)
    views = [torch.rand(8, 3, args.image_size, args.image_size, generator=gen) for _ in range(2)]
    ours.train()
    theirs.train()
    with torch.no_grad():
        lo, lt = float(ours(views)["loss"]), float(theirs(views)["loss"])
    mapped = 4 + 4 * lt if name == "byol" else lt
    return {"ours": lo, "lightly": lt, "lightly_as_ours": mapped, "abs_diff": abs(lo - mapped)}


def trainer_for(method: Method, train_set: Any, config: Config, out: Path) -> Trainer:
    augment = build_augment(config, int(train_set.images.shape[-1]))
    return Trainer(method, train_set, build_view_fn(method, augment), config, out, distributed=False)


def knn(encoder: nn.Module, probe: Any, test: Any, k: int, device: str) -> float:
    """The main job's kNN: ``probe`` features as the bank, ``test`` features as the queries, T = 0.1."""
    bank = evaluations.extract_features(encoder, probe, batch_size=512, device=device)
    queries = evaluations.extract_features(encoder, test, batch_size=512, device=device)
    return evaluations.knn_accuracy(bank.x, bank.y, queries.x, queries.y, k=min(k, len(bank.x)), temperature=0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(PAIRS), help=f"comma list from {list(PAIRS)}")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"training steps per run for the kNN comparison (default {DEFAULT_STEPS}: the full "
                             "run, 6 methods × 3 seeds × 2 sides, in about 25 min on 2 CPU cores at batch 256)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20, help="interleaved timing rounds per method")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backbone", default="convnet_small")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--knn-k", type=int, default=200, help="neighbours of the kNN classifier (main job: 200)")
    parser.add_argument("--timing-only", action="store_true",
                        help="only the step-time rounds (b is skipped); writes vs_lightly_timing.json")
    parser.add_argument("--aa", action="store_true",
                        help="also time a second instance of ours in the same rounds (RATIO vs_self_step_<method>): "
                             "how far from 1 the protocol reads two identical sides on this machine")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test in seconds: 2 steps, 1 seed, batch 32, 16 px, 2 timing rounds, small splits")
    args = parser.parse_args(argv)
    if LIGHTLY_ERROR is not None:
        print(f"error: benchmarks/vs_lightly.py needs lightly ({LIGHTLY_ERROR}); install the optional extra: "
              "pip install -e '.[bench]'", file=sys.stderr)
        return 2
    sizes: dict[str, int | None] = {"train": None, "probe": None, "test": None}
    if args.quick:
        args.steps, args.seeds, args.batch_size, args.repeats, args.image_size, args.knn_k = 2, 1, 32, 2, 16, 20
        sizes = {"train": 128, "probe": 200, "test": 200}
    names = [n.strip() for n in args.methods.split(",") if n.strip()]
    unknown = [n for n in names if n not in PAIRS]
    if unknown:
        print(f"error: --methods: no lightly pairing for {unknown}; valid names are {list(PAIRS)}", file=sys.stderr)
        return 2
    skipped = {n: "not in causalcl.methods.METHODS yet" for n in names if n not in METHODS}
    for name, why in skipped.items():
        print(f"skip {name}: {why}")
    names = [n for n in names if n not in skipped]

    started = time.perf_counter()
    data = {split: get_dataset("shapes", split=split, n=n, image_size=args.image_size, seed=0)
            for split, n in sizes.items()}
    tmp = Path(tempfile.mkdtemp(prefix="vs_lightly_"))
    print(f"vs lightly: {names}, {args.backbone}, batch {args.batch_size}, {args.steps} steps × {args.seeds} "
          f"seed(s), {args.device}, torch threads {torch.get_num_threads()}", flush=True)

    # (0) the same loss at the same weights
    same_loss = {name: same_loss_check(name, args) for name in names}
    for name, check in same_loss.items():
        print(f"same weights, same loss: {name:<13} ours {check['ours']:.6f}  lightly {check['lightly_as_ours']:.6f}"
              f"  |diff| {check['abs_diff']:.1e}")

    # (a) step time: both sides interleaved on the same views
    step_s: dict[str, dict[str, float]] = {}
    for name in names:
        ours, theirs = build_pair(name, 0, args)
        config = make_config(args, 0)
        t_ours = trainer_for(ours, data["train"], config, tmp / name / "time_ours")
        t_theirs = trainer_for(theirs, data["train"], config, tmp / name / "time_lightly")
        views = t_ours.views_for_step(0)
        fns = {"ours": lambda t=t_ours, v=views: t.train_step(v),
               "lightly": lambda t=t_theirs, v=views: t.train_step(v)}
        if args.aa:  # a second, identical instance of ours in the same rounds: the protocol's own spread
            t_again = trainer_for(build_pair(name, 0, args)[0], data["train"], config, tmp / name / "time_ours_again")
            fns["ours_again"] = lambda t=t_again, v=views: t.train_step(v)
        times = interleaved_times(fns, args.repeats, warmup=1 if args.quick else 3, device=args.device)
        step_s[name] = {side: statistics.median(v) for side, v in times.items()}
        ratio = paired_ratio(times, "ours", "lightly")
        report_ratio(f"vs_lightly_step_{name}", ratio, ours_s=step_s[name]["ours"], lightly_s=step_s[name]["lightly"])
        step_s[name] |= {"ratio": ratio, "ratio_of_medians": step_s[name]["ours"] / step_s[name]["lightly"]}
        if args.aa:
            step_s[name]["aa_ratio"] = paired_ratio(times, "ours", "ours_again")
            report_ratio(f"vs_self_step_{name}", step_s[name]["aa_ratio"], ours_s=step_s[name]["ours"],
                         ours_again_s=step_s[name]["ours_again"])
    if args.timing_only:
        payload = {"step_s": step_s, "repeats": args.repeats, "aa": args.aa, "batch_size": args.batch_size,
                   "backbone": args.backbone, "torch_threads": torch.get_num_threads()}
        path = write_results("vs_lightly_timing_quick" if args.quick else "vs_lightly_timing", payload)
        print(f"wrote {path}")
        return 0
    estimate = sum(args.seeds * args.steps * (s["ours"] + s["lightly"]) for s in step_s.values())
    print(f"training for the kNN comparison: about {estimate / 60:.1f} min", flush=True)

    # (b) kNN accuracy after the same number of steps, per seed
    results: dict[str, Any] = {}
    for name in names:
        acc: dict[str, list[float]] = {"ours": [], "lightly": []}
        train_s: dict[str, list[float]] = {"ours": [], "lightly": []}
        for seed in range(args.seeds):
            pair = dict(zip(("ours", "lightly"), build_pair(name, seed, args), strict=True))
            for side, method in pair.items():
                trainer = trainer_for(method, data["train"], make_config(args, seed), tmp / name / f"{side}{seed}")
                fit = trainer.fit()
                train_s[side].append(round(fit.seconds, 2))
                acc[side].append(knn(trainer.method.encoder, data["probe"], data["test"], args.knn_k, args.device))
            print(f"  {name} seed {seed}: kNN ours {acc['ours'][-1]:.4f}  lightly {acc['lightly'][-1]:.4f}",
                  flush=True)
        mean = {side: statistics.fmean(v) for side, v in acc.items()}
        diff = mean["ours"] - mean["lightly"]
        report_ratio(f"vs_lightly_knn_diff_{name}", diff, ours=mean["ours"], lightly=mean["lightly"])
        results[name] = {"same_loss_check": same_loss[name], "step_s": step_s[name], "knn": acc,
                         "knn_mean": mean, "knn_diff": diff, "train_s": train_s}

    payload = {"methods": results, "skipped": skipped, "steps": args.steps, "seeds": args.seeds,
               "batch_size": args.batch_size, "repeats": args.repeats, "backbone": args.backbone,
               "device": args.device, "image_size": args.image_size, "data": "shapes", "split_sizes": sizes,
               "knn": {"k": args.knn_k, "temperature": 0.1, "bank": "probe", "queries": "test"},
               "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "quick": args.quick,
               "total_seconds": round(time.perf_counter() - started, 1)}
    shutil.rmtree(tmp, ignore_errors=True)
    path = write_results("vs_lightly_quick" if args.quick else "vs_lightly", payload)
    print(f"wrote {path} in {payload['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
