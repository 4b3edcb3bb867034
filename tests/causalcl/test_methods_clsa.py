"""CLSA: views, L = L_C + beta * sum L_D on the projections, queue and key encoder, checkpoints, bad options."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from causalcl.data.augment import SimCLRAugment
from causalcl.losses import clsa_ddm_loss, info_nce_queue
from causalcl.methods import METHODS
from causalcl.models import build_backbone


def _method(**kw):
    torch.manual_seed(0)
    options = {"projector": (32, 16), "queue_size": 32, **kw}
    return METHODS["clsa"](build_backbone("convnet_small", channels_last=False), **options)


def _views(method, b: int = 8) -> list[torch.Tensor]:
    images = torch.rand(b, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return method.make_views(SimCLRAugment(16), images, torch.Generator().manual_seed(2))


def test_views_weak_pair_then_strong() -> None:
    method = _method(num_strong=2)
    views = _views(method)
    assert method.num_views == 4 and len(views) == 4 and all(v.shape == (8, 3, 16, 16) for v in views)
    assert not torch.equal(views[0], views[1]) and not torch.equal(views[2], views[3])


@pytest.mark.parametrize("num_strong,beta", [(1, 1.0), (2, 0.5)])
def test_forward_is_contrastive_plus_beta_times_the_ddm_losses(num_strong, beta) -> None:
    method = _method(num_strong=num_strong, beta=beta, ddm_temperature=0.3)
    method.eval()
    views = _views(method)
    q = method.projector(method.backbone(torch.cat([views[0], *views[2:]])))
    weak, strong = q[:8], q[8:].chunk(num_strong)
    k = method.key_projector(method.key_backbone(views[1]))
    queue = method.queue.queue.clone()
    contrastive = info_nce_queue(weak, k, queue, 0.2)
    ddm = sum(clsa_ddm_loss(weak, s, k, queue, 0.3) for s in strong)
    out = method(views)
    torch.testing.assert_close(out["loss"], contrastive + beta * ddm)
    torch.testing.assert_close(out["ddm_loss"], ddm.detach())
    torch.testing.assert_close(out["contrastive_loss"], contrastive.detach())
    assert torch.equal(method.queue.queue, queue)  # forward changes no state
    # a second call with the returned keys skips the key encoder and gives the same loss
    torch.testing.assert_close(method(views, targets=out["targets"])["loss"], out["loss"])


def test_step_end_updates_the_key_encoder_then_enqueues_the_weak_keys() -> None:
    method = _method(momentum=0.9, momentum_schedule="constant")
    views = _views(method)
    keys = F.normalize(method.keys(views[1]), dim=1)
    before = [p.clone() for p in method.key_projector.parameters()]
    method(views)["loss"].backward()
    with torch.no_grad():
        for p in method.projector.parameters():
            p.add_(0.1)
    method.on_step_end(1, 10)
    torch.testing.assert_close(method.queue.queue[:8], keys)
    assert int(method.queue.ptr) == 8
    for b, p, o in zip(before, method.key_projector.parameters(), method.projector.parameters(), strict=True):
        torch.testing.assert_close(p, 0.9 * b + 0.1 * o)
    cosine = _method(momentum=0.9)
    cosine.on_step_end(5, 10)  # the update after step 5 of 10: 1 - 0.1 (cos(0.4 pi) + 1) / 2
    assert cosine.current_momentum == pytest.approx(1 - 0.1 * (math.cos(0.4 * math.pi) + 1) / 2)


def test_a_few_steps_lower_the_loss() -> None:
    method = _method()
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    views = _views(method)
    method.train()
    losses = []
    for _ in range(6):
        out = method(views)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < losses[0]


def test_checkpoint_round_trip(tmp_path) -> None:
    method = _method()
    views = _views(method)
    method(views)
    method.on_step_end(1, 10)
    torch.save(method.state_dict(), tmp_path / "m.pt")
    other = _method()
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert torch.equal(other.queue.queue, method.queue.queue) and int(other.queue.ptr) == 8
    method.eval(), other.eval()
    torch.testing.assert_close(method(views)["loss"], other(views)["loss"])


@pytest.mark.parametrize("kwargs,name", [
    ({"temperature": 0}, "temperature"), ({"ddm_temperature": -0.1}, "ddm_temperature"), ({"beta": -1}, "beta"),
    ({"num_strong": 0}, "num_strong"), ({"strong_ops": -1}, "strong_ops"),
    ({"strong_magnitude": 11}, "strong_magnitude"), ({"momentum": 1.5}, "momentum"),
    ({"queue_size": 0}, "queue_size"), ({"projector": ()}, "projector"),
])
def test_bad_options_name_the_argument(kwargs, name) -> None:
    with pytest.raises(ValueError, match=name):
        _method(**kwargs)


def test_too_few_views_are_refused() -> None:
    method = _method(num_strong=2)
    with pytest.raises(ValueError, match="views"):
        method(_views(method)[:3])
