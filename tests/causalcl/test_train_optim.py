import math

import pytest
import torch

from causalcl.train import LARS, OptimConfig, WarmupCosine, build_optimizer


def test_warmup_cosine_curve():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = WarmupCosine(opt, total_steps=10, warmup_steps=2)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs[0] == pytest.approx(1 / 3) and lrs[1] == pytest.approx(2 / 3)
    assert lrs[2] == pytest.approx(1.0)
    assert lrs[6] == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 8)))
    state = sched.state_dict()
    sched2 = WarmupCosine(torch.optim.SGD([p], lr=1.0), total_steps=10, warmup_steps=2)
    sched2.load_state_dict(state)
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_lars_matches_formula():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3))
    b = torch.nn.Parameter(torch.randn(3))
    w0, b0 = w.detach().clone(), b.detach().clone()
    gw, gb = torch.randn(4, 3), torch.randn(3)
    w.grad, b.grad = gw.clone(), gb.clone()
    opt = LARS([w, b], lr=0.5, momentum=0.9, weight_decay=0.01, trust_coefficient=0.001)
    opt.step()
    g = gw + 0.01 * w0
    trust = 0.001 * w0.norm() / g.norm()
    torch.testing.assert_close(w.detach(), w0 - 0.5 * trust * g)
    torch.testing.assert_close(b.detach(), b0 - 0.5 * gb)  # 1-D: no decay, no adaptation


@pytest.mark.parametrize("name", ["sgd", "lars", "adamw"])
def test_build_optimizer_excludes_norms_from_decay(name):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    opt = build_optimizer(net, OptimConfig(name=name, weight_decay=0.1))
    decays = [g["weight_decay"] for g in opt.param_groups]
    assert decays == [0.1, 0.0]
    assert sum(len(g["params"]) for g in opt.param_groups) == 4


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="optim.name"):
        build_optimizer(torch.nn.Linear(2, 2), OptimConfig(name="rmsprop"))
