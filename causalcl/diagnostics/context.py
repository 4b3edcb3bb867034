"""What every diagnostic shares: the splits, the encoders and lazily computed features and probes.

The samples are images, clips or graph nodes (``causalcl.diagnostics.samples``): features, labels and latents
are per sample, so the probes, kNN, spectra and read-outs run unchanged on every kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

import evaluations
from evaluations.report import Report

from .samples import encode, input_kind, sample_latents


@dataclass
class Splits:
    train: Any
    probe: Any
    test: Any
    has_environments: bool  # probe/test are the unconfounded environment (embedded SCM data)

    @property
    def kind(self) -> str:
        """What a sample is: ``image``, ``video`` (a clip) or ``graph`` (a node)."""
        return input_kind(self.test)

    @property
    def has_masks(self) -> bool:
        return getattr(self.test, "masks", None) is not None

    @property
    def has_latents(self) -> bool:
        return getattr(self.test, "latents", None) is not None

    def latents(self, split: str = "test") -> dict[str, torch.Tensor] | None:
        """Ground-truth latents per sample of ``split`` (per node on graphs)."""
        return sample_latents(getattr(self, split))


@dataclass
class Context:
    """Inputs of a diagnosis run; features and the content probe are computed once, on first use."""

    def probe_progress(self, what: str) -> Callable[[str], None] | None:
        """The ``progress`` callback of one linear-probe fit, its lines prefixed with ``what`` (None: silent)."""
        if self.progress is None:
            return None
        say = self.progress
        return lambda line: say(f"      linear probe ({what}): {line}")

    encoder: nn.Module
    random_encoder: nn.Module
    splits: Splits
    augment: Any
    report: Report
    knn_k: int = 200
    knn_temperature: float = 0.1
    batch_size: int = 512
    device: str = "cpu"
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    #: where progress lines go (diagnostic steps, linear-probe fits); None = silent (library use, tests)
    progress: Callable[[str], None] | None = None
    _cache: dict[str, Any] = field(default_factory=dict)

    def features(self, which: str = "trained") -> dict[str, evaluations.Features]:
        """Frozen backbone features of the train/probe/test splits (``which``: trained | random)."""
        key = f"features/{which}"
        if key not in self._cache:
            encoder = self.encoder if which == "trained" else self.random_encoder
            self._cache[key] = {
                name: encode(encoder, getattr(self.splits, name), batch_size=self.batch_size, device=self.device)
                for name in ("train", "probe", "test")}
        return self._cache[key]

    def content_probe(self) -> evaluations.ProbeResult:
        """The linear probe of the trained encoder fit on ``probe`` and scored on ``test``."""
        if "probe" not in self._cache:
            feats = self.features()
            self._cache["probe"] = evaluations.linear_probe(feats["probe"].x, feats["probe"].y,
                                                            feats["test"].x, feats["test"].y,
                                                            progress=self.probe_progress("trained, fit on probe"))
        return self._cache["probe"]

    def confounded_probe(self) -> evaluations.ProbeResult:
        """The same probe fit on a probe-sized subset of the confounded ``train`` split (where the
        background predicts the class), scored on ``test``."""
        if "confounded_probe" not in self._cache:
            feats = self.features()
            idx = confounded_subset(len(feats["train"].x), len(feats["probe"].x), self.seed)
            self._cache["confounded_probe"] = evaluations.linear_probe(
                feats["train"].x[idx], feats["train"].y[idx], feats["test"].x, feats["test"].y,
                progress=self.probe_progress("trained, fit on the confounded train split"))
        return self._cache["confounded_probe"]

    def classifier(self, probe: str = "content") -> nn.Module:
        """Encoder followed by a probe (``content`` or ``confounded``): images → class logits."""
        result = self.content_probe() if probe == "content" else self.confounded_probe()
        return nn.Sequential(self.encoder, result.classifier.to(self.device)).eval()

    def test_images(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` test images (clips on a clip dataset; float, on the device) and labels."""
        n = len(self.splits.test) if n is None else min(n, len(self.splits.test))
        images, labels = self.splits.test.get_batch(torch.arange(n))
        return images.to(self.device), labels


def confounded_subset(n_train: int, n_probe: int, seed: int) -> torch.Tensor:
    """Seeded indices of ``min(n_train, n_probe)`` training items: the confounded probe is fit on as
    many samples as the unconfounded one, so the spurious gap measures the environment, not the
    sample count."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n_train, generator=gen)[:min(n_train, n_probe)].sort().values
