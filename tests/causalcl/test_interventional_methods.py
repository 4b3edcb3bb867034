"""``--views interventional`` for every method that contrasts views (issue 11, item 7): which methods take
true counterfactuals, that each trains on them, LooC's leave-one-out over style variables, and the
one-line refusals."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from causalcl.build import build_augment, build_method, build_random_encoder, build_view_fn
from causalcl.cli import main
from causalcl.data import ShapesDataset
from causalcl.data.interventional import InterventionalViews
from causalcl.methods import METHODS, LooC, Method
from causalcl.methods.base import interventional_refusal
from causalcl.models import build_backbone
from causalcl.train.config import Config
from causalcl.train.trainer import Trainer

SHAPES_STYLE = ["fg_hue", "bg_hue", "brightness", "bg_texture"]

#: every method whose ``make_views`` is not the default draws its own views; each has decided what
#: ``--views interventional`` means for it (a new one must be added here, with its decision)
DECIDED = {"swav": "large crops -> counterfactuals; small crops refused", "ressl": "pair replaces strong/weak",
           "cmc": "L and ab from two counterfactuals", "relic": "num_views counterfactuals",
           "relic_t": "num_views counterfactuals", "looc": "leave-one-out over style variables",
           "looc_pp": "as looc", "icl_msr": "its base's views", "metaug": "two views (cmc: its base's)",
           "metaug_oucl": "as metaug",
           "taco": "x and the x_m from two counterfactual clips (moving_shapes; tested in test_methods_taco)",
           "dgi": "one counterfactual graph, then its corruption (scm_graph; tested in test_methods_dgi)",
           "cpc": "one counterfactual image, or clip (moving_shapes; tested in test_cli_clips_graphs)",
           "pirl": "two counterfactuals, the second as a jigsaw",
           "dacl": "two counterfactuals, each mixed with another sample's",
           "clsa": "2 + S counterfactuals, RandAugment on S"}

#: (method, options) trained for 2 steps on interventional views: every registered method, each base of the
#: wrappers
TINY_OPTIONS = {"wmse": {"projector": [32, 4], "w_size": 8}}  # whitening needs more samples than dimensions
#: (TaCo's clips and DGI's graphs are trained on interventional views in their own tests)
TRAINED = [(name, TINY_OPTIONS.get(name, {})) for name in sorted(METHODS)
           if name != "icl_msr" and METHODS[name].input_kind == "image"] + [
    ("icl_msr", {"base": base}) for base in ("simclr", "byol", "ressl", "moco")] + [
    ("metaug", {"base": "cmc"})]


@pytest.fixture(scope="module")
def shapes() -> ShapesDataset:
    return ShapesDataset("train", n=32, image_size=16, cache=False)


def _config(name: str, tmp_path=None, **options) -> Config:
    config = Config()
    for key, value in {"method.name": name, "augment.views": "interventional", "data.image_size": 16,
                       "train.steps": 2, "train.batch_size": 8, "train.checkpoint_every": 0, "train.log_every": 1,
                       "optim.warmup_steps": 0, "model.channels_last": False}.items():
        config.set(key, value)
    for key, value in options.items():
        config.method[key] = value
    return config


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_every_method_with_its_own_views_has_decided() -> None:
    custom = {name for name, cls in METHODS.items() if cls.make_views is not Method.make_views}
    assert custom <= set(DECIDED), f"decide --views interventional for {sorted(custom - set(DECIDED))}"


@pytest.mark.parametrize("name,options", TRAINED, ids=[f"{n}-{o['base']}" if "base" in o else n for n, o in TRAINED])
def test_trains_two_steps_on_interventional_views(name, options, shapes, tmp_path) -> None:
    config = _config(name, **options)
    method = build_method(config)
    assert interventional_refusal(method) is None
    view_fn = build_view_fn(method, build_augment(config, 16), config, shapes)
    idx = torch.arange(8)
    views = view_fn(shapes.get_batch(idx)[0], idx, _gen())
    assert len(views) == method.num_views and all(v.shape == (8, 3, 16, 16) for v in views)
    result = Trainer(method, shapes, view_fn, config, tmp_path, distributed=False).fit()
    assert result.steps == 2
    with open(result.log, newline="") as fh:
        losses = [float(r["loss"]) for r in csv.DictReader(fh)]
    assert losses and all(math.isfinite(x) for x in losses)


# ---------------------------------------------------------------- LooC: leave-one-out over style variables
def test_looc_is_built_with_one_space_per_intervened_style_variable() -> None:
    method = build_method(_config("looc"))
    assert method.style_variables == tuple(SHAPES_STYLE) and method.spaces == ["invariant", *SHAPES_STYLE]
    assert method.num_views == 6 and len(method.heads) == len(method.queues) == 5 and method.atoms == []
    method = build_method(_config("looc_pp", projector=[32, 8]), seed=1)
    config = _config("looc_pp", projector=[32, 8])
    config.set("augment.intervene_on", ["bg_texture", "fg_hue"])
    small = build_method(config)
    assert small.spaces == ["invariant", "bg_texture", "fg_hue"] and small.num_views == 4
    # the random-encoder baseline has the trained encoder's width (LooC++ concatenates the spaces)
    assert build_random_encoder(config, 1).feature_dim == small.encoder.feature_dim == small.feature_dim + 3 * 8
    assert method.encoder.feature_dim == method.feature_dim + 5 * 8


def test_looc_keys_share_exactly_their_style_variable_with_q(shapes, monkeypatch) -> None:
    config = _config("looc")
    method = build_method(config)
    rendered: list[dict] = []
    real = shapes.intervene_batch

    def spy(indices, seed=0, **assignments):
        rendered.append({k: torch.as_tensor(v) for k, v in assignments.items()})
        return real(indices, seed=seed, **assignments)

    monkeypatch.setattr(shapes, "intervene_batch", spy)
    view_fn = build_view_fn(method, build_augment(config, 16), config, shapes)
    idx = torch.arange(32)
    views = view_fn(shapes.get_batch(idx)[0], idx, _gen(4))
    assert len(views) == len(rendered) == 6  # q, k_0, k_fg_hue, k_bg_hue, k_brightness, k_bg_texture
    q, k0, keys = rendered[0], rendered[1], rendered[2:]
    for a in rendered:
        assert list(a) == SHAPES_STYLE
    for v in SHAPES_STYLE:  # k_0 redraws every variable (equal to q only by chance, as two donors can agree)
        assert (k0[v] != q[v]).float().mean() > 0.6
    for shared, k in zip(SHAPES_STYLE, keys, strict=True):
        assert torch.equal(k[shared], q[shared])
        for v in SHAPES_STYLE:
            if v != shared:
                assert (k[v] != q[v]).float().mean() > 0.6, (shared, v)
    # the views are those assignments rendered (content kept, the style variables as assigned)
    for view, a in zip(views, rendered, strict=True):
        torch.testing.assert_close(view, real(idx, **a))
    # the same generator gives the same views
    again = view_fn(shapes.get_batch(idx)[0], idx, _gen(4))
    assert all(torch.equal(x, y) for x, y in zip(views, again, strict=True))


def test_looc_leave_one_out_assignments_on_many_samples(shapes) -> None:
    views = InterventionalViews(shapes, ["bg_texture", "fg_hue"])
    q, k0, k_tex, k_hue = views.leave_one_out_assignments(2000, _gen(1))
    assert torch.equal(k_tex["bg_texture"], q["bg_texture"]) and torch.equal(k_hue["fg_hue"], q["fg_hue"])
    assert (k_tex["fg_hue"] != q["fg_hue"]).float().mean() > 0.9  # continuous: a redraw almost never repeats
    n_textures = len(set(shapes.latents["bg_texture"].tolist()))
    assert (k_hue["bg_texture"] == q["bg_texture"]).float().mean() < 2.5 / n_textures  # about 1/8 by chance
    assert (k0["bg_texture"] == q["bg_texture"]).float().mean() < 2.5 / n_textures


def test_looc_modes_do_not_mix(shapes) -> None:
    pixel = LooC(build_backbone("convnet_small", channels_last=False), projector=(16, 8))
    config = _config("looc")
    with pytest.raises(ValueError, match="style_variables") as info:
        build_view_fn(pixel, build_augment(config, 16), config, shapes)
    assert "\n" not in str(info.value) and "'looc'" in str(info.value)
    method = build_method(config)
    with pytest.raises(ValueError, match="style_variables"):
        method.make_views(build_augment(config, 16), shapes.get_batch(torch.arange(8))[0], _gen())
    config.set("augment.intervene_on", ["bg_texture"])  # views that do not match the model's spaces
    with pytest.raises(ValueError, match="spaces for"):
        build_view_fn(method, build_augment(config, 16), config, shapes)(
            shapes.get_batch(torch.arange(8))[0], torch.arange(8), _gen())
    with pytest.raises(ValueError, match="augment.intervene_on instead"):
        build_method(_config("looc", style_variables=["bg_texture"]))
    config = _config("looc")
    config.set("data.name", "cifar10")
    with pytest.raises(ValueError, match="SCM dataset"):
        build_method(config)


# ---------------------------------------------------------------- refusals
def test_swav_small_crops_are_refused_in_one_line(shapes) -> None:
    with pytest.raises(ValueError, match="small multi-crop") as info:
        build_method(_config("swav", num_crops=[2, 2]))
    assert "\n" not in str(info.value) and "'swav'" in str(info.value) and "num_crops=[2, 0]" in str(info.value)
    config = _config("swav", num_crops=[3, 0])
    method = build_method(config)
    assert len(build_view_fn(method, build_augment(config, 16), config, shapes)(
        shapes.get_batch(torch.arange(8))[0], torch.arange(8), _gen())) == 3


def test_a_wrapper_is_refused_when_its_base_is() -> None:
    with pytest.raises(ValueError, match="through its base 'swav'") as info:
        build_method(_config("icl_msr", base="swav", base_options={"num_crops": [2, 1]}))
    assert "\n" not in str(info.value)


def test_cli_refusal_exits_2(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CAUSALCL_CACHE", str(tmp_path / "cache"))
    code = main(["--method", "swav", "--views", "interventional", "--steps", "1", "--batch-size", "8",
                 "--set", "data.options.n=32", "--set", "data.image_size=16", "--set", "method.num_crops=[2,2]",
                 "--diagnostics", "none", "--out", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot take interventional views" in err and "small multi-crop" in err
