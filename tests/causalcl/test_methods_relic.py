"""relic / relic_t: loss on the projections, views as style interventions, EMA target, training, checkpoints."""

from __future__ import annotations

import pytest
import torch

from causalcl.causal import StyleIntervention
from causalcl.data import SimCLRAugment
from causalcl.losses import relic_terms
from causalcl.methods import METHODS
from causalcl.models import build_backbone


def _method(name: str = "relic", **kw):
    torch.manual_seed(0)
    kw.setdefault("projector", (32, 16))
    if name == "relic_t":
        kw.setdefault("predictor", (32, 16))
    return METHODS[name](build_backbone("convnet_small", channels_last=False), **kw)


def _views(v: int = 2, noise: float = 0.05) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(12, 3, 16, 16, generator=g)
    return [x] + [(x + noise * torch.randn(x.shape, generator=g)).clamp(0, 1) for _ in range(v - 1)]


def test_registered() -> None:
    assert METHODS["relic"].name == "relic" and METHODS["relic_t"].name == "relic_t"
    # true counterfactuals may replace the augmentation draws (--views interventional)
    assert METHODS["relic"].interventional_refusal is None and METHODS["relic_t"].interventional_refusal is None


@pytest.mark.parametrize("v", [2, 3])
def test_forward_equals_relic_terms_on_projections(v: int) -> None:
    method = _method(temperature=0.3, alpha=0.5, num_views=v)
    method.train()  # BatchNorm on batch statistics: the same for both passes over cat(views)
    views = _views(v, noise=0.5)
    out = method(views)
    z = list(method.projector(method.backbone(torch.cat(views))).chunk(v))
    infonce, kl = relic_terms(z, z, temperature=0.3)
    torch.testing.assert_close(out["loss"], infonce + 0.5 * kl)
    torch.testing.assert_close(out["kl"], kl)
    assert len(out["embeddings"]) == v and out["kl"] > 1e-6


def test_relic_t_uses_the_target_network_and_no_gradient_reaches_it() -> None:
    method = _method("relic_t", temperature=0.3)
    method.eval()
    views = _views()
    with torch.no_grad():  # make the target differ from the online network
        for p in method.target_projector.parameters():
            p.add_(0.1)
    out = method(views)
    x = torch.cat(views)
    online = list(method.predictor(method.projector(method.backbone(x))).chunk(2))
    target = list(method.target_projector(method.target_backbone(x)).chunk(2))
    infonce, kl = relic_terms(online, target, temperature=0.3)
    torch.testing.assert_close(out["loss"], infonce + kl)
    out["loss"].backward()
    assert all(p.grad is None for p in method.target_backbone.parameters())
    assert all(not p.requires_grad for p in method.target_projector.parameters())
    assert method.backbone.features[0].weight.grad.abs().sum() > 0


def test_make_views_draws_num_views_interventions() -> None:
    method = _method(num_views=3)
    aug = SimCLRAugment(16)
    images = torch.rand(4, 3, 16, 16)
    views = method.make_views(aug, images, torch.Generator().manual_seed(0))
    assert len(views) == 3 and all(v.shape == (4, 3, 16, 16) for v in views)
    assert not torch.equal(views[0], views[1])
    # the same draws as the augmentation wrapped in a StyleIntervention
    again = method.make_views(StyleIntervention("simclr", aug), images, torch.Generator().manual_seed(0))
    for a, b in zip(views, again, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name,kw", [("relic", {}), ("relic_t", {}), ("relic", {"num_views": 3})])
def test_training_lowers_the_loss(name: str, kw: dict) -> None:
    method = _method(name, **kw)
    views = _views(kw.get("num_views", 2))
    opt = torch.optim.Adam(method.optim_parameters(), lr=2e-3)
    method.train()
    first = float(method(views)["loss"].detach())
    for step in range(5):
        out = method(views)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        method.on_step_end(step + 1, 5)
    assert float(method(views)["loss"].detach()) < first


def test_relic_t_target_moves_only_in_on_step_end() -> None:
    method = _method("relic_t", base_momentum=0.5)
    before = [p.clone() for p in method.target_backbone.parameters()]
    with torch.no_grad():
        for p in method.backbone.parameters():
            p.add_(1.0)
    method.train()
    out = method(_views())
    assert float(out["momentum"]) == pytest.approx(0.5)
    for a, b in zip(before, method.target_backbone.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    method.on_step_end(1, 10)  # first update: τ = τ_base
    for a, o, t in zip(before, method.backbone.parameters(), method.target_backbone.parameters(), strict=True):
        torch.testing.assert_close(t, 0.5 * a + 0.5 * o)


@pytest.mark.parametrize("name", ["relic", "relic_t"])
def test_checkpoint_round_trip(tmp_path, name: str) -> None:
    method = _method(name)
    method.train()
    method(_views())
    method.on_step_end(1, 4)
    torch.save(method.state_dict(), tmp_path / "m.pt")
    torch.manual_seed(5)
    other = METHODS[name](build_backbone("convnet_small", channels_last=False), projector=(32, 16),
                          **({"predictor": (32, 16)} if name == "relic_t" else {}))
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    method.eval(), other.eval()
    torch.testing.assert_close(method(_views())["loss"], other(_views())["loss"])


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="temperature"):
        _method(temperature=0)
    with pytest.raises(ValueError, match="alpha"):
        _method(alpha=-1)
    with pytest.raises(ValueError, match="num_views"):
        _method(num_views=1)
    with pytest.raises(ValueError, match="kl_stop_gradient"):
        _method(kl_stop_gradient="online")
    with pytest.raises(ValueError, match="predictor"):
        _method("relic_t", predictor=(32, 8))
    with pytest.raises(ValueError, match="base_momentum"):
        _method("relic_t", base_momentum=1.5)
    with pytest.raises(ValueError, match="views"):
        _method(num_views=3)(_views(2))


def test_default_kl_is_the_exact_gradient() -> None:
    for name in ("relic", "relic_t"):
        assert _method(name).kl_stop_gradient == "none"
    method = _method(kl_stop_gradient="entropy")  # still available as an ablation
    assert method.kl_stop_gradient == "entropy"


def _masked_batch(b: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    masks = torch.zeros(b, 16, 16, dtype=torch.bool)
    masks[:, 4:12, 5:11] = True
    return torch.rand(b, 3, 16, 16, generator=g), masks


def test_interventions_compose_a_background_swap_with_the_augmentation() -> None:
    from causalcl.causal import BackgroundSwap, background_swap

    images, masks = _masked_batch()
    identity = lambda x, generator=None: x.clone()  # noqa: E731 -- isolates the intervention
    method = _method(num_views=3, interventions=["augment", "background_swap"])
    assert method.interventions == ("augment", "background_swap") and method.mask_interventions == ("background_swap",)
    styles = {"background_swap": BackgroundSwap.from_name("background_swap").bind(masks)}
    views = method.make_intervened_views(identity, images, torch.Generator().manual_seed(0), styles)
    # view l draws interventions[l mod 2]: augment alone, a swap, augment alone
    assert len(views) == 3 and torch.equal(views[0], images) and torch.equal(views[2], images)
    g = torch.Generator().manual_seed(0)
    torch.testing.assert_close(views[1], background_swap(images, masks, g))
    fg = masks[:, None].expand_as(images)
    assert torch.equal(views[1][fg], images[fg]) and not torch.equal(views[1][~fg], images[~fg])
    # every view its own draw when all are swaps
    both = _method(interventions=["background_swap"]).make_intervened_views(
        identity, images, torch.Generator().manual_seed(0), styles)
    assert not torch.equal(both[0], both[1])
    # without the masks bound, the views cannot be made
    with pytest.raises(ValueError, match="masks"):
        method.make_views(identity, images, torch.Generator())
    with pytest.raises(ValueError, match="background_swap"):
        method.make_intervened_views(identity, images, torch.Generator(), {})


def test_interventions_train_through_the_view_function() -> None:
    from causalcl.build import build_augment, build_method, build_view_fn
    from causalcl.data import ShapesDataset
    from causalcl.train.config import Config

    shapes = ShapesDataset("train", n=32, image_size=16, cache=False)
    config = Config()
    config.set("method", {"name": "relic_t", "interventions": ["texture_swap"], "projector": [32, 16],
                          "predictor": [32, 16]})
    method = build_method(config)
    fn = build_view_fn(method, build_augment(config, 16), config, shapes)
    idx = torch.arange(16)
    views = fn(shapes.get_batch(idx)[0], idx, torch.Generator().manual_seed(0))
    assert len(views) == 2 and views[0].shape == (16, 3, 16, 16)
    out = method(views)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and out["kl"] > 0


def test_bad_interventions() -> None:
    with pytest.raises(ValueError, match=r"valid: \['augment', 'background_swap', 'texture_swap'\]"):
        _method(interventions=["background"])
    with pytest.raises(ValueError, match="num_views"):
        _method(interventions=["augment", "background_swap", "texture_swap"])
    with pytest.raises(ValueError, match="interventions"):
        _method(interventions="background_swap")
    with pytest.raises(ValueError, match="interventions"):
        _method(interventions=[])
