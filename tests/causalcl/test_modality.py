"""What a run trains on (issue 16): the input kinds of dataset, method and backbone, the default backbone, the
one-line refusals from the API, and the pieces the clip and graph runs are made of (FramePooled, Trainer views)."""

from __future__ import annotations

import argparse

import pytest
import torch

from causalcl.build import build_encoder, build_method, build_random_encoder, default_backbone, load_split, run_plan
from causalcl.cli import build_parser
from causalcl.data import SCMGraphDataset
from causalcl.job import make_config
from causalcl.modality import backbone_options, check_backbone, dataset_kind, input_plan, method_kinds
from causalcl.models import GCN, FramePooled, build_backbone
from causalcl.train.config import Config
from causalcl.train.trainer import Trainer


def _config(method: str, dataset: str, **values) -> Config:
    config = Config()
    config.set("method.name", method)
    config.set("data.name", dataset)
    for key, value in values.items():
        config.set(key.replace("__", "."), value)
    return config


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize("method,dataset,train_on,backbone_kind,default", [
    ("simclr", "shapes", "images", "image", "convnet_small"),
    ("cpc", "shapes", "images", "image", "convnet_small"),
    ("taco", "moving_shapes", "clips", "video", "video_small"),
    ("cpc", "moving_shapes", "clips", "image", "convnet_small"),
    ("simclr", "moving_shapes", "frames", "image", "convnet_small"),
    ("dgi", "scm_graph", "graphs", "graph", "gcn"),
])
def test_input_plan_and_default_backbone(method, dataset, train_on, backbone_kind, default):
    plan = input_plan(method, dataset)
    assert (plan.train_on, plan.backbone_kind, plan.default_backbone) == (train_on, backbone_kind, default)
    assert plan.pooled_frames == (dataset == "moving_shapes" and backbone_kind == "image")
    assert default_backbone(_config(method, dataset)) == default


def test_kinds():
    from causalcl.methods import CPC, DGI, SimCLR, TaCo

    assert [dataset_kind(n) for n in ("shapes", "cifar10", "moving_shapes", "scm_graph", "no_such")] == \
        ["image", "image", "video", "graph", "image"]
    assert method_kinds(SimCLR) == ("image",) and method_kinds(TaCo) == ("video",)
    assert method_kinds(DGI) == ("graph",) and method_kinds(CPC) == ("image", "video")


@pytest.mark.parametrize("method,dataset,text", [
    ("taco", "shapes", "method 'taco' trains on video clips, but dataset 'shapes' gives images (datasets of clips"),
    ("dgi", "digits", "method 'dgi' trains on graphs, but dataset 'digits' gives images (datasets of graphs"),
    ("simclr", "scm_graph", "method 'simclr' trains on images, but dataset 'scm_graph' gives graphs (methods for "
                            "graphs: dgi)"),
    ("taco", "scm_graph", "method 'taco' trains on video clips, but dataset 'scm_graph' gives graphs"),
    ("dgi", "moving_shapes", "method 'dgi' trains on graphs, but dataset 'moving_shapes' gives video clips"),
])
def test_a_method_that_cannot_take_the_dataset_is_refused_in_one_line(method, dataset, text):
    with pytest.raises(ValueError) as info:
        build_method(_config(method, dataset))
    assert str(info.value).startswith(text) and "\n" not in str(info.value)


@pytest.mark.parametrize("method,dataset,backbone,text", [
    ("dgi", "scm_graph", "resnet18", "model.backbone: 'resnet18' takes images, but 'dgi' on 'scm_graph' needs a "
                                     "backbone for graphs (gcn)"),
    ("taco", "moving_shapes", "convnet_small", "model.backbone: 'convnet_small' takes images, but 'taco' on "
                                               "'moving_shapes' needs a backbone for video clips (video_small)"),
    ("cpc", "moving_shapes", "video_small", "(it encodes each frame alone) needs a backbone for images"),
    ("simclr", "moving_shapes", "gcn", "'simclr' on the frames of 'moving_shapes' needs a backbone for images"),
    ("simclr", "shapes", "video_small", "'video_small' takes video clips, but 'simclr' on 'shapes' needs"),
])
def test_a_backbone_that_does_not_take_the_input_is_refused_naming_model_backbone(method, dataset, backbone, text):
    config = _config(method, dataset, model__backbone=backbone)
    with pytest.raises(ValueError, match="^model.backbone: ") as info:
        build_method(config)
    assert text in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match="^model.backbone: "):
        check_backbone(backbone, input_plan(method, dataset), method, dataset)


def test_gcn_takes_its_width_from_the_dataset():
    assert backbone_options("gcn", "scm_graph", {}) == {"in_features": 32}  # SCMGraphDataset's default
    assert backbone_options("gcn", "scm_graph", {"num_features": 12}) == {"in_features": 12}
    assert backbone_options("convnet_small", "scm_graph", {}) == {}
    encoder = build_encoder(_config("dgi", "scm_graph", model__backbone="gcn", data__options={"num_features": 12}))
    assert isinstance(encoder, GCN) and encoder.in_features == 12


def test_the_cli_default_backbone_follows_method_and_dataset_unless_asked_for():
    assert make_config(_args("--method", "taco", "--dataset", "moving_shapes")).model.backbone == "video_small"
    assert make_config(_args("--method", "cpc", "--dataset", "moving_shapes")).model.backbone == "convnet_small"
    assert make_config(_args("--method", "dgi", "--dataset", "scm_graph")).model.backbone == "gcn"
    assert make_config(_args()).model.backbone == "convnet_small"
    asked = make_config(_args("--method", "taco", "--dataset", "moving_shapes", "--set",
                              "model.backbone=convnet_small"))
    assert asked.model.backbone == "convnet_small"  # explicit: kept, and refused when the method is built
    with pytest.raises(ValueError, match="^model.backbone: "):
        run_plan(asked)


def test_other_bad_inputs_name_their_key():
    with pytest.raises(ValueError, match=r"^data.image_size: dataset 'scm_graph' has no image size"):
        load_split(_config("dgi", "scm_graph", model__backbone="gcn", data__image_size=16), "train")
    with pytest.raises(ValueError, match=r"^augment.views: interventional views of 'moving_shapes' are re-rendered "
                                         r"clips, but method 'simclr' trains on single frames"):
        build_method(_config("simclr", "moving_shapes", augment__views="interventional"))


def test_random_encoder_of_an_image_backbone_on_clips_pools_the_frames():
    encoder = build_random_encoder(_config("cpc", "moving_shapes", model__channels_last=False), seed=1)
    assert isinstance(encoder, FramePooled) and encoder.feature_dim == 128
    assert not isinstance(build_random_encoder(_config("taco", "moving_shapes", model__backbone="video_small"), 1),
                          FramePooled)


def test_frame_pooled_is_the_mean_of_the_frame_features():
    torch.manual_seed(0)
    backbone = build_backbone("convnet_small", channels_last=False).eval()
    pooled = FramePooled(backbone)
    clips = torch.rand(2, 3, 3, 16, 16)
    want = torch.stack([backbone(clips[:, t]) for t in range(3)]).mean(0)
    torch.testing.assert_close(pooled(clips), want)
    with pytest.raises(ValueError, match="clips: expected a"):
        pooled(clips[:, 0])
    with pytest.raises(ValueError, match="backbone"):
        FramePooled(torch.nn.Linear(2, 2))


def test_trainer_views_keep_graphs_and_clips_as_they_are(tmp_path):
    config = _config("dgi", "scm_graph", model__backbone="gcn", train__batch_size=2, train__steps=1,
                     train__checkpoint_every=0)
    data = SCMGraphDataset("train", n=4, nodes=8)
    method = build_method(config)
    view_fn = lambda images, indices, gen: method.make_views(None, images, gen)  # noqa: E731
    trainer = Trainer(method, data, view_fn, config, tmp_path, distributed=False)
    assert trainer.channels_last  # the default: only 4-D image batches are converted
    graph, perm = trainer.views_for_step(0)
    assert graph.num_graphs == 2 and perm.shape == (16,)
    trainer.distributed = True  # as under torchrun with train.ddp_views=global: graphs cannot be sliced per rank
    with pytest.raises(ValueError, match="^train.ddp_views: views that are not tensors"):
        trainer.views_for_step(0)
