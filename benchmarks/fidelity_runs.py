"""The fidelity study's configurations and one run of one of them: train, then measure what the claims read.

Every configuration trains ``convnet_small`` on ``shapes`` (rho = 0.9 unless stated; batch 128 unless
stated) for the study's number of steps with the CLI's defaults otherwise (AdamW 2e-3, 50 warm-up steps, cosine),
then is diagnosed on the frozen backbone:

  * ``content``: the content probe (``evaluations.linear_probe`` fit on the unconfounded probe split, scored on
    the test split); ``spurious_gap``: content − the same probe fit on a probe-sized subset of the confounded
    training split (``causalcl.diagnostics.probes.linear_protocol``);
  * ``only_fg``, ``mixed_rand``: the content probe on ImageNet-9 style variants; ``bg_gap``: mixed_same −
    mixed_rand of the probe fit on confounded data (how far a classifier built on these features follows the
    background; ``causalcl.diagnostics.foreground.run_fgbg``);
  * ``mce``: mean error over the synthetic corruptions (19 × 5 severities), ``rendition_error``: mean error over
    the renditions (pencil, cartoon, edge-preserving), both with the content probe, on the first
    ``robustness_images`` test images (``run_robustness``);
  * ``rankme`` and ``n_sv`` — the number of eigenvalues of the covariance of the L2-normalised test features
    above 1e-3 of the largest (DirectCLR's spectrum; ``evaluations.spectrum.singular_spectrum``);
  * the linear read-out of every SCM latent (``run_identifiability`` on the raw latent values), and
    ``looc_readout``: the mean R² of the latents LooC's default augmentations change — rotation (a content
    latent of ``shapes``) and the colour latents fg_hue, bg_hue, brightness; ``looc_readout_circular`` (and
    ``readout_circular_<latent>``): the same with the latents that wrap around (rotation, the hues) read out as
    their point on the unit circle (``evaluations.identifiability``, ``circular=``) — the raw read-out cannot
    follow a hue of 0.99 to 0.01 and scores an encoder that keeps the hue below 1 — and the rotation read out
    within each shape up to the shape's symmetry (``readout_rotation_per_shape``; ``symmetry=``, the dataset's
    ``latent_symmetries``: a square's rotation repeats every quarter turn, a disc's is invisible; on the plain
    circle, ``readout_circular_rotation``, it scores ≈ 0 for every encoder). These were added after the study
    began (``LATE_METRICS``): a finished run without them gets them from its final checkpoint
    (``fill_late_metrics``, the same features, split and regression as a fresh run's), not by retraining;
  * with ``fg_twin`` (SimCLR, ICL-MSR): the ICL-MSR 2×2 protocol — a twin encoder trained with the same config,
    seed and steps on the foreground-only images (mask × image) of the same training split
    (``causalcl.pretrain.make_pretrain_fn``, checkpointed every 250 steps in the run folder's ``fg_twin``, so an
    interrupted study continues it), both encoders probed on full and foreground-only images
    (``evaluations.foreground.full_vs_foreground``); ``fg_gap`` = acc(fg-trained, fg test) − acc(full-trained,
    fg test). The twin is a job of its own (``run_twin``, after the run: it reads the run's final checkpoint and
    adds ``fg_gap`` to the run's result), so a study that needs no C1 (``--subset``) skips it and a later full
    study adds it to the same runs.

``supervised`` is no registered method: the backbone and a linear layer trained with cross-entropy on the
(confounded) training labels, one augmented view per image, the same optimiser, schedule and steps.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from causalcl.build import build_augment, build_method, build_random_encoder, build_view_fn, load_split
from causalcl.diagnostics import Context, Splits
from causalcl.diagnostics.foreground import run_fgbg
from causalcl.diagnostics.identifiability import read_out, run_identifiability
from causalcl.diagnostics.probes import linear_protocol
from causalcl.diagnostics.robustness import run_robustness
from causalcl.diagnostics.variant_images import split_arrays
from causalcl.models import build_backbone
from causalcl.train import Config, Trainer
from causalcl.train.checkpoint import load_checkpoint, save_checkpoint
from causalcl.train.files import atomic_write
from causalcl.train.optim import build_optimizer
from causalcl.train.schedule import WarmupCosine
from evaluations import foreground, spectrum
from evaluations.report import Report

#: latents LooC's default augmentations (colour, rotation) change, read out for claim C5
LOOC_LATENTS = ("rotation", "fg_hue", "bg_hue", "brightness")
#: the supervised run's trained backbone, in its run folder
SUPERVISED_CHECKPOINT = "supervised.pt"
#: metrics added after the study began; a finished run without them gets them from its final checkpoint
LATE_METRICS = ("looc_readout_circular", "readout_rotation_per_shape")
#: the eigenvalue threshold of ``n_sv``, relative to the largest (claim C3)
SV_THRESHOLD = 1e-3


@dataclass(frozen=True)
class Spec:
    """One configuration: ``settings`` are config keys (``--set``), ``fg_twin`` adds the 2×2 protocol."""

    settings: dict[str, Any]
    fg_twin: bool = False
    supervised: bool = False
    note: str = ""
    claims: tuple[str, ...] = field(default_factory=tuple)


SIMCLR = {"method.name": "simclr"}
CONFIGS: dict[str, Spec] = {
    "simclr": Spec(SIMCLR, fg_twin=True, claims=("C1", "C2", "C3", "C5", "C6", "C7")),
    "simclr+interventional": Spec({**SIMCLR, "augment.views": "interventional"}, claims=("C6", "C7")),
    "simclr+interventional+augment": Spec(
        {**SIMCLR, "augment.views": "interventional", "augment.augment_counterfactuals": True},
        note="context for C6/C7: the interventional views with the pixel augmentation too (the default "
             "interventional views have none, while background swaps come on top of it)", claims=("C6",)),
    "simclr-no-projector": Spec({"method.name": "directclr", "method.d0": 128, "method.temperature": 0.5},
                                note="DirectCLR with d0 = the whole 128-d representation and SimCLR's τ: SimCLR's "
                                     "InfoNCE on the backbone features, no projector", claims=("C3",)),
    "simclr+background_swap": Spec({**SIMCLR, "augment.background_swap_p": 0.5}, claims=("C7",)),
    "relic": Spec({"method.name": "relic"}, claims=("C2",)),
    "relic+background_swap": Spec({"method.name": "relic", "method.interventions": ["background_swap"]},
                                  claims=("C2", "C7")),
    "relic+interventional": Spec({"method.name": "relic", "augment.views": "interventional"}),
    "icl_msr": Spec({"method.name": "icl_msr", "method.base": "simclr"}, fg_twin=True, claims=("C1", "C7")),
    "icl_msr+interventional": Spec({"method.name": "icl_msr", "method.base": "simclr",
                                    "augment.views": "interventional"}),
    "metaug": Spec({"method.name": "metaug"}),
    "looc": Spec({"method.name": "looc"}, claims=("C5",)),
    "simclr@rho0": Spec({**SIMCLR, "data.options.rho": 0.0}, note="unconfounded training data: a ceiling"),
    "supervised": Spec({**SIMCLR}, supervised=True, note="cross-entropy on the confounded labels: a ceiling"),
    "simclr@32": Spec({**SIMCLR, "train.batch_size": 32}, claims=("C4",)),
    "metaug@32": Spec({"method.name": "metaug", "train.batch_size": 32}, claims=("C4",)),
    "simclr@256": Spec({**SIMCLR, "train.batch_size": 256}, claims=("C4",)),
    "metaug@256": Spec({"method.name": "metaug", "train.batch_size": 256}, claims=("C4",)),
}


def make_config(label: str, seed: int, steps: int, *, device: str = "cpu", threads: int | None = None,
                quick: bool = False) -> Config:
    config = Config()
    for key, value in {"data.name": "shapes", "data.options.rho": 0.9, "train.batch_size": 128,
                       "train.seed": seed, "train.steps": steps, "train.device": device, "train.threads": threads,
                       "train.checkpoint_every": max(1, min(250, steps)), "train.log_every": 10}.items():
        config.set(key, value)
    for key, value in CONFIGS[label].settings.items():
        config.set(key, copy.deepcopy(value))
    if quick:  # a smoke test: small data and batches
        config.set("data.options.n", 256)
        config.set("train.batch_size", min(32, config.train.batch_size))
        config.set("optim.warmup_steps", 1)
    return config


#: bumped whenever the protocol changes what a finished run means (measurements, base settings): older results
#: are then trained again instead of reused
PROTOCOL = 1


def fingerprint(label: str, seed: int, steps: int, quick: bool = False) -> str:
    """What a finished run's result must match to be reused: the configuration's settings, seed, steps and the
    protocol version — not the whole config dict, which gains keys whenever the library does."""
    return json.dumps({"protocol": PROTOCOL, "label": label, "settings": CONFIGS[label].settings, "seed": seed,
                       "steps": steps, "quick": quick, "fg_twin": CONFIGS[label].fg_twin,
                       "supervised": CONFIGS[label].supervised}, sort_keys=True, default=str)


def _splits(config: Config) -> Splits:
    return Splits(load_split(config, "train"), load_split(config, "probe"), load_split(config, "test"), True)


def train_ssl(config: Config, out: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The configured method trained (resuming from ``out/checkpoint.pt`` when an interrupted run left one)."""
    train_set = load_split(config, "train")
    augment = build_augment(config, int(train_set.images.shape[-1]))
    method = build_method(config)
    trainer = Trainer(method, train_set, build_view_fn(method, augment, config, train_set), config, out,
                      distributed=False)
    resume = (out / "checkpoint.pt").is_file()
    result = trainer.fit(resume=resume)
    return trainer.method.encoder.eval(), {"steps": result.steps, "resumed_from_checkpoint": resume,
                                           "train_seconds_all_parts": round(trainer.train_seconds(), 1)}


def train_supervised(config: Config, out: Path | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Backbone + linear layer, cross-entropy on the training labels, one augmented view, the SSL schedule; the
    trained backbone is kept in ``out/supervised.pt`` (for ``_final_encoder``; no resume: ≈ 10 min a run)."""
    start = time.perf_counter()
    torch.manual_seed(config.train.seed)
    train_set = load_split(config, "train")
    augment = build_augment(config, int(train_set.images.shape[-1]))
    backbone = build_backbone(config.model.backbone)
    model = nn.Sequential(backbone, nn.Linear(backbone.feature_dim, len(train_set.class_names)))
    optimizer = build_optimizer(model, config.optim)
    scheduler = WarmupCosine(optimizer, config.train.steps, config.optim.warmup_steps)
    gen = torch.Generator().manual_seed(config.train.seed)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(config.train.steps):
        idx = torch.randint(len(train_set), (config.train.batch_size,), generator=gen)
        images, labels = train_set.get_batch(idx)
        view = augment.views(images, 1, gen)[0]
        loss = loss_fn(model(view), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    seconds = round(time.perf_counter() - start, 1)  # one part: no resume
    if out is not None:
        save_checkpoint({"step": config.train.steps, "backbone": backbone.state_dict(), "train_seconds": seconds},
                        out / SUPERVISED_CHECKPOINT)
    return backbone.eval(), {"steps": config.train.steps, "final_loss": float(loss.detach()),
                             "train_seconds_all_parts": seconds}


def _fg_images(dataset: Any) -> torch.Tensor:
    images, _ = dataset.get_batch(torch.arange(len(dataset)))
    return images * dataset.masks.unsqueeze(1).to(images.dtype)


def fg_matrix(config: Config, encoder: nn.Module, splits: Splits,
              out_dir: Path | None = None) -> dict[str, dict[str, float]]:
    """The 2×2 protocol with ``encoder`` as the full-image one and its foreground-trained twin (trained in
    ``out_dir/encoder1`` with checkpoints, so an interrupted study continues it, or in a temporary folder)."""
    from causalcl.pretrain import make_pretrain_fn

    augment = build_augment(config, int(splits.train.images.shape[-1]))
    pretrain = make_pretrain_fn(config, augment, config.train.steps, config.train.batch_size, out_dir=out_dir)
    twin = pretrain(_fg_images(splits.train), label="the foreground-trained twin")
    data = {"train": split_arrays(splits.probe), "test": split_arrays(splits.test)}
    return foreground.full_vs_foreground(None, data, encoders={"full": encoder, "foreground": twin},
                                         device=config.train.device).as_dict()


def measure(config: Config, encoder: nn.Module, splits: Splits, out: Path, robustness_images: int) -> dict[str, Any]:
    """Every metric of the module docstring for a trained encoder."""
    ctx = _context(config, encoder, splits, out / "report", robustness_images)
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        start = time.perf_counter()
        value = fn()
        seconds[name] = round(time.perf_counter() - start, 1)
        return value

    lin = timed("linear", lambda: linear_protocol(ctx.features(), True, ctx.seed, main=ctx.content_probe(),
                                                  confounded=ctx.confounded_probe()))
    fg = timed("fgbg", lambda: run_fgbg(ctx)["foreground"])
    rob = timed("robustness", lambda: run_robustness(ctx)["robustness"])
    ident = timed("identifiability", lambda: run_identifiability(ctx, circular=False)["identifiability"])
    circular = timed("identifiability_circular", lambda: circular_readout(ctx))
    z = ctx.features()["test"].x
    eig = spectrum.singular_spectrum(z)  # of the covariance: eigenvalues, descending
    readout = {k: v["score"] for k, v in ident.get("trained", {}).items()}
    renditions = list(rob.get("renditions", {}).values())
    return {
        "content": lin["accuracy"], "spurious_gap": lin["spurious_gap"],
        "confounded_fit_accuracy": lin["confounded_fit_accuracy"],
        "only_fg": fg["variants"]["only_fg"], "mixed_rand": fg["variants"]["mixed_rand"],
        "mixed_same": fg["variants"]["mixed_same"], "bg_gap": fg["confounded_probe"]["bg_gap"],
        "bg_gap_content_probe": fg["bg_gap"],
        "mce": rob["mean_error"], "clean_error": rob["clean_error"],
        "rendition_error": sum(renditions) / len(renditions) if renditions else math.nan,
        "rankme": spectrum.rankme(z), "n_sv": int((eig > SV_THRESHOLD * eig.max()).sum()),
        "looc_readout": sum(readout.get(k, math.nan) for k in LOOC_LATENTS) / len(LOOC_LATENTS),
        **{f"readout_{k}": v for k, v in readout.items()},
        **circular,
        "eval_seconds": seconds,
    }


def _context(config: Config, encoder: nn.Module, splits: Splits, report_dir: Path,
             robustness_images: int | None = None) -> Context:
    """The diagnostics context of a trained encoder: the run's random encoder (seed + 1), augmentation and seed."""
    device = config.train.device
    options = {} if robustness_images is None else {"robustness_images": robustness_images}
    return Context(encoder, build_random_encoder(config, config.train.seed + 1).to(device), splits,
                   build_augment(config, int(splits.train.images.shape[-1])), Report(report_dir, title="fidelity run"),
                   device=device, seed=config.train.seed, options=options)


def circular_readout(ctx: Context) -> dict[str, float]:
    """``readout_circular_<latent>`` for the ``LOOC_LATENTS`` (the test split's ``latent_periods`` read out on the
    unit circle, brightness as its raw value), ``readout_rotation_per_shape`` (the rotation within each shape up to
    its symmetry, the split's ``latent_symmetries``) and ``looc_readout_circular``, the mean R² of the rotation per
    shape, the hues on the circle and brightness — the features, the fit/score split (seeded by ``ctx.seed``) and
    the regression (``read_out``) of ``run_identifiability``."""
    test = ctx.splits.test
    latents = {k: v.numpy() for k, v in ctx.splits.latents("test").items() if k in (*LOOC_LATENTS, "cls")}
    x = ctx.features()["test"].x
    table, chosen = read_out(x, latents, test, seed=ctx.seed)
    used = {row.latent: float(row.score) for row in table.itertuples()}  # the rotation per shape
    plain, _ = read_out(x, {"rotation": latents["rotation"]}, test, seed=ctx.seed)
    per_shape = used["rotation"] if "rotation" in chosen["symmetric"] else math.nan
    return {**{f"readout_circular_{k}": used[k] for k in LOOC_LATENTS if k != "rotation"},
            "readout_circular_rotation": float(plain.score.iloc[0]), "readout_rotation_per_shape": per_shape,
            "looc_readout_circular": sum(used[k] for k in LOOC_LATENTS) / len(LOOC_LATENTS)}


def needs_twin(label: str, result: dict[str, Any]) -> bool:
    """Whether a finished run of ``label`` still lacks its 2×2 protocol twin."""
    return CONFIGS[label].fg_twin and "fg_gap" not in result["metrics"]


def run_twin(label: str, seed: int, steps: int, run_dir: Path, result_path: Path, *, device: str = "cpu",
             threads: int | None = None, quick: bool = False) -> dict[str, Any]:
    """The 2×2 protocol of a finished run (module docstring): its encoder from the final checkpoint, the twin
    trained (or continued from ``run_dir/fg_twin``), ``fg_gap`` and the 2×2 matrix added to ``result_path``.

    When the run's final checkpoint is gone (the run finished on another machine), its encoder is trained again
    from the same config and seed in ``run_dir`` (checkpointed, so an interruption continues it; not the result:
    that stays as recorded) and its content probe is measured beside the recorded one
    (``twin_encoder_retrained``): single-threaded CPU training is deterministic, so the two are equal when the
    retrained encoder is the run's."""
    if threads:
        torch.set_num_threads(threads)
    wall, cpu = time.perf_counter(), time.process_time()
    result = json.loads(result_path.read_text())
    info = None
    try:
        config, encoder = _final_encoder(label, seed, steps, run_dir, device, quick)
    except ValueError:  # no final checkpoint here: the encoder again, from its seed
        config = make_config(label, seed, steps, device=device, threads=threads, quick=quick)
        encoder, info = train_ssl(config, run_dir)
    splits = _splits(config)
    if info is not None:
        retrained = _context(config, encoder, splits, run_dir / "retrained").content_probe().accuracy  # = content
        result["twin_encoder_retrained"] = {"content_recorded": result["metrics"]["content"],
                                            "content_retrained": retrained,
                                            "train_seconds_all_parts": info["train_seconds_all_parts"]}
    matrix = fg_matrix(config, encoder, splits, run_dir / "fg_twin")  # {"train: full": {"test: full": …}}
    metrics = result["metrics"]
    metrics["full_vs_foreground"] = matrix
    metrics["fg_gap"] = matrix["train: foreground"]["test: foreground"] - matrix["train: full"]["test: foreground"]
    metrics["eval_seconds"]["fg_twin"] = round(time.perf_counter() - wall, 1)
    result.update(twin_wall_s=round(time.perf_counter() - wall, 1), twin_cpu_s=round(time.process_time() - cpu, 1),
                  twin_commit=_commit())
    twin_key = "twin_train_seconds_all_parts"
    result.update(_seconds_all_parts(run_dir, {twin_key: SECONDS_ALL_PARTS[twin_key]}))
    _write_json(result_path, result)
    return result


#: a run's training seconds summed over every process that worked on it (``Trainer.train_seconds``, kept in its
#: checkpoints): key in the result -> folder of the checkpoint under the run folder
SECONDS_ALL_PARTS = {"train_seconds_all_parts": ".", "twin_train_seconds_all_parts": "fg_twin/encoder1"}


def _seconds_all_parts(run_dir: Path, keys: dict[str, str]) -> dict[str, float]:
    """The ``train_seconds`` of the final checkpoints in ``run_dir`` (those that recorded it)."""
    out = {}
    for key, folder in keys.items():
        ckpt = run_dir / folder / "checkpoint.pt"
        if ckpt.is_file() and (seconds := load_checkpoint(ckpt).get("train_seconds")) is not None:
            out[key] = round(float(seconds), 1)
    return out


def record_seconds_all_parts(label: str, run_dir: Path, result_path: Path) -> bool:
    """Add the missing ``SECONDS_ALL_PARTS`` of a finished run from its checkpoints (a run resumed in another
    process records only that process's ``wall_s``); True when anything was added."""
    result = json.loads(result_path.read_text())
    wanted = {k: f for k, f in SECONDS_ALL_PARTS.items() if k not in result
              and (k == "train_seconds_all_parts" or "fg_gap" in result["metrics"])}
    found = _seconds_all_parts(run_dir, wanted) if wanted and not CONFIGS[label].supervised else {}
    if found:
        result.update(found)
        _write_json(result_path, result)
    return bool(found)


def _final_encoder(label: str, seed: int, steps: int, run_dir: Path, device: str,
                   quick: bool) -> tuple[Config, nn.Module]:
    """The run's config and its trained encoder from the checkpoint of its last step (``ValueError`` when
    ``run_dir`` has none, as for supervised runs trained before they kept ``supervised.pt``)."""
    supervised = CONFIGS[label].supervised
    ckpt = run_dir / (SUPERVISED_CHECKPOINT if supervised else "checkpoint.pt")
    if not ckpt.is_file():
        raise ValueError(f"run_dir: no checkpoint in {run_dir}")
    state = load_checkpoint(ckpt)
    if int(state["step"]) != steps:
        raise ValueError(f"run_dir: the checkpoint in {run_dir} is at step {int(state['step'])}, not {steps}")
    config = make_config(label, seed, steps, device=device, quick=quick)
    if supervised:
        backbone = build_backbone(config.model.backbone)
        backbone.load_state_dict(state["backbone"])
        return config, backbone.eval().to(device)
    method = build_method(config)
    method.load_state_dict(state["model"])
    return config, method.encoder.eval().to(device)


def fill_late_metrics(label: str, seed: int, steps: int, run_dir: Path, result_path: Path, *, device: str = "cpu",
                      quick: bool = False) -> str:
    """Add ``LATE_METRICS`` to the finished run at ``result_path`` from the final checkpoint in ``run_dir`` (the
    trained encoder, not retrained). Returns ``"present"``, ``"filled"``, or why not (no checkpoint, as for
    supervised runs trained before they kept one, or one of another step)."""
    result = json.loads(result_path.read_text())
    if all(k in result["metrics"] for k in LATE_METRICS):
        return "present"
    try:
        config, encoder = _final_encoder(label, seed, steps, run_dir, device, quick)
    except ValueError as err:
        return str(err).removeprefix("run_dir: ")
    ctx = _context(config, encoder, _splits(config), run_dir / "late")
    start = time.perf_counter()
    metrics = circular_readout(ctx)
    result["metrics"].update(metrics)
    result["metrics"]["eval_seconds"]["identifiability_circular"] = round(time.perf_counter() - start, 1)
    result["late_metrics"] = {"keys": sorted(metrics), "from": "the final checkpoint", "commit": _commit()}
    _write_json(result_path, result)
    return "filled"


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(payload, indent=1, default=float).encode())


def _commit() -> str | None:
    """The git commit of the code that ran (None outside a git checkout)."""
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def run_item(label: str, seed: int, steps: int, run_dir: Path, result_path: Path, *, device: str = "cpu",
             threads: int | None = None, robustness_images: int = 300, quick: bool = False) -> dict[str, Any]:
    """Train and measure one (configuration, seed); writes ``result_path`` (JSON) and returns it."""
    if threads:
        torch.set_num_threads(threads)
    config = make_config(label, seed, steps, device=device, threads=threads, quick=quick)
    spec = CONFIGS[label]
    run_dir.mkdir(parents=True, exist_ok=True)
    wall, cpu = time.perf_counter(), time.process_time()
    encoder, info = train_supervised(config, run_dir) if spec.supervised else train_ssl(config, run_dir)
    train_wall, train_cpu = time.perf_counter() - wall, time.process_time() - cpu
    splits = _splits(config)
    metrics = measure(config, encoder, splits, run_dir, robustness_images)
    result = {"label": label, "seed": seed, "steps": steps, "config": fingerprint(label, seed, steps, quick),
              "full_config": config.to_dict(), "commit": _commit(), **info,
              "metrics": metrics, "train_wall_s": round(train_wall, 1), "train_cpu_s": round(train_cpu, 1),
              "wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1),
              "threads": torch.get_num_threads()}
    _write_json(result_path, result)
    return result
