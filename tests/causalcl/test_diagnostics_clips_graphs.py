"""Diagnostics on clips and graph nodes (issue 16): the samples, which diagnostics apply, and the background
variants of clips frame by frame."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from causalcl.data import MovingShapesDataset, SCMGraphDataset, ShapesDataset
from causalcl.diagnostics import DIAGNOSTICS, Splits, parse_diagnostics, supported
from causalcl.diagnostics.applicability import NOT_APPLICABLE, applicable
from causalcl.diagnostics.findings import findings
from causalcl.diagnostics.foreground_clips import clip_accuracies, clip_variants
from causalcl.diagnostics.samples import encode, encode_tensor, input_kind, raw_baseline, sample_latents
from causalcl.models import FramePooled, build_backbone
from evaluations import foreground


@pytest.fixture(scope="module")
def clips() -> MovingShapesDataset:
    return MovingShapesDataset("test", n=12, image_size=16, frames=3, cache=False)


@pytest.fixture(scope="module")
def graphs() -> SCMGraphDataset:
    return SCMGraphDataset("test", n=3, nodes=10)


def test_samples_are_clips_and_nodes(clips, graphs):
    assert [input_kind(d) for d in (clips, graphs, ShapesDataset("test", n=4, image_size=16, cache=False))] == \
        ["video", "graph", "image"]
    torch.manual_seed(0)
    feats = encode(FramePooled(build_backbone("convnet_small", channels_last=False)), clips, batch_size=6)
    assert feats.x.shape == (12, 128) and torch.equal(feats.y, clips.labels)
    assert set(feats.extras["latents"]) == set(clips.latents)
    gcn = build_backbone("gcn", in_features=graphs.num_features, widths=(8,))
    nodes = encode(gcn, graphs, batch_size=20)  # two graphs per call
    assert nodes.x.shape == (30, 8) and torch.equal(nodes.y, graphs.node_labels())
    with torch.no_grad():
        torch.testing.assert_close(nodes.x, gcn.eval()(graphs.all_graphs()))
    assert sample_latents(graphs)["style"].shape == (30,)


def test_raw_baselines(clips, graphs):
    raw = raw_baseline(clips)  # each clip's mean frame
    torch.testing.assert_close(raw.x, clips.images.float().mean(1).div(255).flatten(1))
    assert torch.equal(raw_baseline(graphs).x, graphs.node_features())
    assert torch.equal(raw_baseline(graphs).y, graphs.node_labels())


def test_which_diagnostics_apply(clips, graphs):
    requirements = {n: req for n, (_, req) in DIAGNOSTICS.items()}
    every = parse_diagnostics("all")
    on_clips = Splits(clips, clips, clips, True)
    ok, why = applicable(every, requirements, on_clips)
    assert ok == ["linear", "knn", "spectrum", "geometry", "fgbg", "identifiability"]
    assert set(why) == {"robustness", "cam"} and why["cam"] == NOT_APPLICABLE["video"]["cam"]
    ok, why = applicable(every, requirements, Splits(graphs, graphs, graphs, True))
    assert ok == ["linear", "knn", "spectrum", "identifiability"]
    assert set(why) == {"geometry", "fgbg", "robustness", "cam"}
    assert supported(every, Splits(graphs, graphs, graphs, True))[1] == list(why)
    no_masks = SimpleNamespace(kind="image", has_masks=False, has_latents=False)
    assert applicable(["fgbg", "identifiability"], requirements, no_masks)[1] == {
        "fgbg": "the dataset has no foreground masks",
        "identifiability": "the dataset has no ground-truth latents (it is not generated from an SCM)"}
    lines = findings({"not_applicable": why})
    assert len(lines) == 4 and lines[0].startswith("Not run: geometry — alignment needs two augmented views")


def test_clip_variants_are_the_frame_variants_with_one_donor_per_clip(clips):
    x, _ = clips.get_batch(torch.arange(len(clips)))
    masks, labels = clips.masks, clips.labels
    out = clip_variants(x, masks, labels, seed=3, num_classes=8)
    assert set(out) == set(foreground.VARIANT_NAMES)
    for t in range(3):
        frame = foreground.variants(x[:, t], masks[:, t], labels, seed=3, num_classes=8)
        for name, images in frame.items():  # uint8 storage is exact for images that are uint8 / 255
            torch.testing.assert_close(out[name][:, t].float().div(255), images, atol=0, rtol=0)
    # the donor clip j of a mixed variant is the same for every frame: the draw depends on (labels, seed) alone
    donors = [foreground.variants(x[:, t], masks[:, t], labels, seed=3, num_classes=8, return_indices=True)[1]
              for t in range(3)]
    assert all(torch.equal(d[k], donors[0][k]) for d in donors for k in donors[0])


def test_clip_accuracies_score_each_variant(clips):
    x, _ = clips.get_batch(torch.arange(len(clips)))
    variants = clip_variants(x, clips.masks, clips.labels, seed=0, num_classes=8)

    class Oracle(torch.nn.Module):  # class 2 for every clip: on each variant, accuracy = the share of class 2
        def forward(self, v: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot(torch.full((len(v),), 2), 8).float()

    accs = clip_accuracies(Oracle(), variants, clips.labels, batch_size=6, device="cpu")
    share = float((clips.labels == 2).double().mean())
    assert set(accs) == set(foreground.VARIANT_NAMES) and all(a == pytest.approx(share) for a in accs.values())
    assert encode_tensor(Oracle(), x, batch_size=6).shape == (12, 8)
