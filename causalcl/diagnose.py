"""Diagnoses a trained encoder with the ``evaluations`` layer and fills a ``Report``.

Protocol (DESIGN.md §4.1, §6): features of the frozen backbone on the ``train`` (confounded),
``probe`` and ``test`` (unconfounded) splits;
- ``linear``: a probe fit on ``probe`` and scored on ``test`` (content decodability) and the same
  probe fit on a probe-sized random subset of the confounded ``train`` split
  (``confounded_fit_accuracy``); their difference is the spurious gap. The same protocol runs on a
  randomly initialised encoder of the same architecture and on raw pixels, so every number is read
  against those baselines.
- ``knn``: weighted kNN, ``probe`` features as the bank, ``test`` as queries.
- ``spectrum``: DirectCLR singular spectrum, RankMe and α-ReQ of the ``test`` features.
- ``geometry``: alignment of two augmented views and uniformity of the ``test`` features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import evaluations  # noqa: E402
from evaluations import geometry, spectrum  # noqa: E402
from evaluations.report import Report  # noqa: E402

DIAGNOSTICS = ("linear", "knn", "spectrum", "geometry")

NOTES = {
    "linear_probe": (
        "Multinomial logistic regression on the frozen backbone features, scored on the unconfounded test "
        "environment. 'accuracy': fit on the unconfounded probe split — how much content is linearly "
        "decodable. 'confounded_fit_accuracy': the same probe fit on as many items of the confounded training "
        "split, where the background predicts the class; 'spurious_gap' = accuracy − confounded_fit_accuracy. "
        "A large gap means the features carry the background well enough for a probe to lean on it."),
    "baselines": (
        "The same linear protocol on a randomly initialised encoder of the same architecture and on raw "
        "pixels. Read every number above against these: training helped only by what it adds to them."),
    "knn": ("Weighted kNN (cosine, weights exp(s/T), InstDisc protocol): probe split as the bank, test split "
            "as queries."),
    "spectrum": (
        "RankMe = effective rank of the raw test features (Garrido et al. 2023, ≤ feature dim); α-ReQ = decay of "
        "the covariance eigenvalues λ_i ∝ i^−α (≈ 1 is healthy, larger = more collapsed, Agrawal et al. 2022)."),
    "geometry": (
        "Alignment = mean ‖f(x¹) − f(x²)‖² of two augmented views (lower = more invariant); uniformity = "
        "log mean exp(−2‖f(x) − f(y)‖²) over test pairs (lower = more uniform), on L2-normalised backbone "
        "features (Wang & Isola 2020)."),
}

HEADLINE = (
    "linear_probe.accuracy", "linear_probe.confounded_fit_accuracy", "linear_probe.spurious_gap",
    "baselines.random_encoder.linear_probe.accuracy", "baselines.random_encoder.linear_probe.spurious_gap",
    "baselines.raw_pixels.linear_probe.accuracy", "knn.accuracy", "spectrum.rankme", "spectrum.alpha",
    "geometry.alignment", "geometry.uniformity",
)


def parse_diagnostics(text: str | list[str] | None) -> list[str]:
    """``"linear,knn"`` → ["linear", "knn"]; ``None``/``"all"`` → every diagnostic; ``"none"`` → []."""
    if text is None or text == "all":
        return list(DIAGNOSTICS)
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in DIAGNOSTICS]
    if unknown:
        raise ValueError(f"--diagnostics: unknown name(s) {unknown}; valid names are {list(DIAGNOSTICS)} "
                         "(or 'all' / 'none')")
    return names


@dataclass
class Splits:
    train: Any
    probe: Any
    test: Any
    has_environments: bool  # probe/test are the unconfounded environment (embedded SCM data)


def _features(encoder: nn.Module, splits: Splits, batch_size: int, device: str) -> dict[str, Any]:
    return {name: evaluations.extract_features(encoder, getattr(splits, name), batch_size=batch_size,
                                               device=device)
            for name in ("train", "probe", "test")}


def _pixels(dataset: Any) -> evaluations.Features:
    images = dataset.images.float().div_(255).flatten(1)
    return evaluations.Features(x=images, y=dataset.labels.clone(), extras={})


def confounded_subset(n_train: int, n_probe: int, seed: int) -> torch.Tensor:
    """Seeded indices of ``min(n_train, n_probe)`` training items: the confounded probe is fit on as
    many samples as the unconfounded one, so the spurious gap measures the environment, not the
    sample count."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n_train, generator=gen)[:min(n_train, n_probe)].sort().values


def linear_protocol(feats: dict[str, Any], has_environments: bool, seed: int = 0) -> dict[str, float]:
    """Probe fit on ``probe`` scored on ``test``; with environments also fit on (a probe-sized subset of)
    the confounded ``train`` split, and the difference of the two accuracies (the spurious gap)."""
    probe, test = feats["probe"], feats["test"]
    main = evaluations.linear_probe(probe.x, probe.y, test.x, test.y)
    out = {"accuracy": main.accuracy, "weight_decay": main.weight_decay}
    if has_environments:
        idx = confounded_subset(len(feats["train"].x), len(probe.x), seed)
        conf = evaluations.linear_probe(feats["train"].x[idx], feats["train"].y[idx], test.x, test.y)
        out["confounded_fit_accuracy"] = conf.accuracy
        out["spurious_gap"] = main.accuracy - conf.accuracy
    return out


def _view_pairs(dataset: Any, augment: Any, n: int, seed: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    n = min(n, len(dataset))
    images, _ = dataset.get_batch(torch.arange(n))
    gen = torch.Generator(device=device).manual_seed(seed)
    v1, v2 = augment.views(images.to(device), 2, gen)
    return v1, v2


@torch.inference_mode()
def _encode(encoder: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    was_training = encoder.training
    encoder.eval()
    out = torch.cat([encoder(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
    encoder.train(was_training)
    return out.float().cpu()


def diagnose(encoder: nn.Module, random_encoder: nn.Module, splits: Splits, augment: Any, report: Report, *,
             diagnostics: list[str], knn_k: int = 200, knn_temperature: float = 0.1, batch_size: int = 512,
             device: str = "cpu", seed: int = 0) -> dict[str, Any]:
    """Run the selected diagnostics, add results and plots to ``report``, return the results dict."""
    results: dict[str, Any] = {}
    if not diagnostics:
        return results
    feats = _features(encoder, splits, batch_size, device)
    rand_feats = _features(random_encoder, splits, batch_size, device) if "linear" in diagnostics else None

    if "linear" in diagnostics:
        results["linear_probe"] = linear_protocol(feats, splits.has_environments, seed)
        pixel_feats = {name: _pixels(getattr(splits, name)) for name in ("train", "probe", "test")}
        results["baselines"] = {
            "random_encoder": {"linear_probe": linear_protocol(rand_feats, splits.has_environments, seed)},
            "raw_pixels": {"linear_probe": linear_protocol(pixel_feats, splits.has_environments, seed)},
        }
        report.add_plot("linear_probe", _probe_bars(results), caption=(
            "Linear-probe accuracy on the test environment. 'fit on probe': the probe is fit on the "
            "unconfounded probe split (content decodability); 'fit on train': fit on the confounded "
            "training split, so it can lean on the background. The difference is the spurious gap."))

    if "knn" in diagnostics:
        k = min(knn_k, len(feats["probe"].x))
        acc = evaluations.knn_accuracy(feats["probe"].x, feats["probe"].y, feats["test"].x, feats["test"].y,
                                       k=k, temperature=knn_temperature)
        results["knn"] = {"accuracy": acc, "k": k, "temperature": knn_temperature}

    if "spectrum" in diagnostics:
        z = feats["test"].x
        alpha, r2 = spectrum.alpha_req(z)
        results["spectrum"] = {"rankme": spectrum.rankme(z), "alpha": alpha, "alpha_r2": r2,
                               "dim": int(z.shape[1])}
        spectra = {"trained": spectrum.singular_spectrum(z)}
        if rand_feats is not None:
            spectra["random encoder"] = spectrum.singular_spectrum(rand_feats["test"].x)
        report.add_plot("spectrum", spectrum.plot_spectrum(spectra), caption=(
            "Singular values of the covariance of L2-normalised test features (DirectCLR). A sharp drop "
            "marks collapsed dimensions."))

    if "geometry" in diagnostics:
        v1, v2 = _view_pairs(splits.test, augment, 2048, seed, device)
        z1, z2 = _encode(encoder, v1, batch_size), _encode(encoder, v2, batch_size)
        results["geometry"] = {"alignment": geometry.alignment(z1, z2),
                               "uniformity": geometry.uniformity(feats["test"].x[:4096])}
    for section, values in results.items():
        report.add(section, values, note=NOTES.get(section))
    flat = evaluations.report.flatten(results, lists=False)
    report.set_headline(["run.steps", "run.train_seconds", *(k for k in HEADLINE if k in flat)])
    return results


def _probe_bars(results: dict[str, Any]):
    rows = {"trained": results["linear_probe"],
            "random encoder": results["baselines"]["random_encoder"]["linear_probe"],
            "raw pixels": results["baselines"]["raw_pixels"]["linear_probe"]}
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    names = list(rows)
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [100 * rows[n]["accuracy"] for n in names], width=0.4,
           label="fit on probe (unconfounded)", color="#3b75af")
    if "confounded_fit_accuracy" in rows["trained"]:
        ax.bar([x + 0.2 for x in xs], [100 * rows[n]["confounded_fit_accuracy"] for n in names], width=0.4,
               label="fit on train (confounded)", color="#ef8636")
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_loss_curve(log: dict[str, list[float]]):
    """Loss (and every other logged term) against the step."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    for key, values in log.items():
        if key in ("step", "lr") or len(values) != len(log["step"]):
            continue
        ax.plot(log["step"], values, label=key, lw=1.4 if key == "loss" else 0.9)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig
