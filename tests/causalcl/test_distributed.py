"""Distributed training: helpers in one process, and 2 gloo processes on CPU against one process.

The 2-process run (``torch.multiprocessing.spawn``, one spawn for the whole module) checks:

* ``gather``: the backward sums the gradients that every rank sends to a slice;
  ``all_reduce_sum`` likewise; ``gather_no_grad`` concatenates in rank order;
* ``GlobalBatchNorm`` over two half batches = ``BatchNorm`` over the whole batch (output, gradients
  of input and affine parameters, running statistics);
* for SimCLR, Barlow Twins and MoCo through the real ``Trainer`` (its batch slicing, global views,
  synchronised BN, DDP): the loss and every parameter gradient of the first step equal one process
  with the same global batch (float64), and so do the parameters (EMA key encoder included) and the
  BN running statistics after two more optimiser steps;
* ``fit`` under DDP writes one log and one checkpoint (rank 0), and resume loads on every rank.

``-m slow`` runs the same step-1 comparison for every registered method (one more spawn, ~2 min).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from causalcl.build import build_view_fn
from causalcl.data.augment import SimCLRAugment
from causalcl.distributed import all_reduce_sum, gather, gather_no_grad, is_distributed, is_main_process, rank
from causalcl.distributed import world_size as dist_world_size
from causalcl.methods import METHODS
from causalcl.models import build_backbone
from causalcl.train import Config, Trainer, load_checkpoint
from causalcl.train.ddp import GlobalBatchNorm, convert_sync_batchnorm
from causalcl.train.log import read_log

#: the methods that train on image views (TaCo takes clips, DGI graphs: their own tests cover them)
IMAGE_METHODS = sorted(n for n, cls in METHODS.items() if cls.input_kind == "image")
WORLD = 2
BATCH = 8  # global batch
#: the methods of the fast test, with small heads; a name not registered is skipped
CORE = ("simclr", "barlow_twins", "moco")
#: options of the tiny models (every other method runs with its defaults in the slow test)
METHOD_OPTIONS: dict[str, dict] = {
    "simclr": {"projector": (32, 16)},
    "barlow_twins": {"projector": (32, 32)},
    "moco": {"projector": (32, 16), "queue_size": 32, "momentum": 0.9},
    "wmse": {"projector": (32, 8), "w_size": 16},
}

class TinyData:
    def __init__(self, n: int = 32, size: int = 16) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = (torch.rand(n, 3, size, size, generator=g) * 255).to(torch.uint8)
        self.labels = torch.arange(n) % 4

    def __len__(self) -> int:
        return len(self.images)

    def get_batch(self, indices):
        return self.images[indices].float() / 255, self.labels[indices]


def _config(**extra) -> Config:
    config = Config()
    for key, value in {"train.steps": 3, "train.batch_size": BATCH, "train.checkpoint_every": 0,
                       "train.log_every": 1, "model.channels_last": False, "optim.name": "sgd",
                       "optim.lr": 0.05, "optim.warmup_steps": 0, **extra}.items():
        config.set(key, value)
    return config


def _trainer(name: str, out: Path, distributed: bool, **extra) -> Trainer:
    torch.manual_seed(0)
    options = METHOD_OPTIONS.get(name, {})
    method = METHODS[name](build_backbone("convnet_small", channels_last=False), **options).double()
    view_fn = build_view_fn(method, SimCLRAugment(16))

    def double_views(images, indices, gen):
        return [v.double() for v in view_fn(images, indices, gen)]

    return Trainer(method, TinyData(), double_views, _config(**extra), out, distributed=distributed)


def _run_method(name: str, out: Path, distributed: bool, batch: int = BATCH) -> dict:
    """Loss and gradients of step 1, then the state (parameters, BN statistics, EMA targets) after 3 steps.

    Queues are left out of the state: MoCo enqueues [k1; k2] per rank, so the gathered keys come in
    another order than in one process (the same set; the loss does not depend on the order)."""
    trainer = _trainer(name, out, distributed, **{"train.batch_size": batch})
    views = trainer.views_for_step(0)
    terms = trainer.forward_backward(views)
    stepped = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    grads = {k: p.grad.detach().clone() for k, p in trainer.method.named_parameters()
             if p.grad is not None and id(p) in stepped}
    trainer.optimizer_step(views)
    for _ in range(2):
        trainer.train_step(trainer.views_for_step(trainer.step))
    state = {k: v.detach().clone() for k, v in trainer.method.state_dict().items()
             if isinstance(v, torch.Tensor) and "queue" not in k}
    return {"loss": float(terms["loss"]), "grads": grads, "state": state}  # terms: device tensors


def _compare(got: dict, single: dict, state: bool = True) -> None:
    assert got["loss"] == pytest.approx(single["loss"], rel=1e-10, abs=1e-12)
    assert set(got["grads"]) == set(single["grads"]) and single["grads"]
    for key, grad in single["grads"].items():
        torch.testing.assert_close(got["grads"][key], grad, rtol=1e-7, atol=1e-10, msg=key)
    if state:
        assert set(got["state"]) == set(single["state"])
        for key, value in single["state"].items():
            torch.testing.assert_close(got["state"][key], value, rtol=1e-7, atol=1e-10, msg=key)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank_: int, port: int, out: str, task: str) -> None:

    from causalcl.train import ddp

    torch.set_num_threads(1)
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank_),
                       "LOCAL_RANK": str(rank_), "WORLD_SIZE": str(WORLD)})
    assert ddp.setup("cpu", timeout_s=120) and ddp.launched_with_torchrun()
    result: dict = {"rank": rank(), "world": dist_world_size(), "main": is_main_process()}
    try:
        if task == "all":
            for name in IMAGE_METHODS:
                try:
                    result[name] = _run_method(name, Path(out) / name, distributed=True, batch=16)
                except Exception as exc:  # noqa: BLE001 - reported by the test of that method
                    result[name] = {"error": repr(exc)}
            return
        # gather: rank r sends the gradient c_r to the gathered tensor; slice s receives Σ_r c_r[s]
        x = torch.full((2, 3), float(rank_ + 1), dtype=torch.float64, requires_grad=True)
        y = gather(x)
        coeff = torch.arange(12, dtype=torch.float64).view(4, 3) * (rank_ + 1)
        (y * coeff).sum().backward()
        result["gathered"], result["gather_grad"] = y.detach(), x.grad.clone()
        # the same through a transpose: the gradient reaching gather is not contiguous (gloo needs it dense)
        xt = x.detach().clone().requires_grad_(True)
        (gather(xt).t() * coeff.t()).sum().backward()
        result["gather_grad_t"] = xt.grad.clone()
        xs_ = x.detach().clone().requires_grad_(True)
        (gather(xs_).sum() * (rank_ + 1)).backward()  # an expanded (stride-0) gradient
        result["gather_grad_expanded"] = xs_.grad.clone()
        result["no_grad"] = gather_no_grad(torch.tensor([rank_ * 10.0]))
        s = torch.tensor([float(rank_ + 1)], requires_grad=True)
        (all_reduce_sum(s) * (rank_ + 1)).sum().backward()
        result["reduced_grad"] = s.grad.clone()
        # GlobalBatchNorm on this rank's half of a batch
        g = torch.Generator().manual_seed(0)
        full = torch.randn(6, 4, 3, 3, generator=g, dtype=torch.float64) * 2 + 1
        bn = GlobalBatchNorm(4).double()
        nn.init.normal_(bn.weight, generator=g), nn.init.normal_(bn.bias, generator=g)
        xs = full[rank_ * 3:(rank_ + 1) * 3].clone().requires_grad_(True)
        ys = bn(xs)
        (ys * full[:3].flip(0)).sum().backward()  # the same upstream gradient on both ranks
        result["bn"] = {"y": ys.detach(), "x_grad": xs.grad, "w_grad": bn.weight.grad, "b_grad": bn.bias.grad,
                        "running_mean": bn.running_mean, "running_var": bn.running_var}
        with pytest.raises(ValueError, match="divisible"):
            _trainer("simclr", Path(out) / "bad", distributed=True, **{"train.batch_size": 7})
        local = _trainer("simclr", Path(out) / "local", distributed=True, **{"train.ddp_views": "local"})
        result["local_shape"] = tuple(local.views_for_step(0)[0].shape)
        result["methods"] = {name: _run_method(name, Path(out) / name, distributed=True)
                             for name in CORE if name in METHODS}
        # fit killed after the step-2 checkpoint, then resumed: rank 0 writes, every rank loads
        fit_dir = Path(out) / "fit"
        broken = _trainer("simclr", fit_dir, True, **{"train.checkpoint_every": 2})
        original = broken.views_for_step

        def dies_at_step_3(step: int) -> list[torch.Tensor]:
            if step == 2:
                raise KeyboardInterrupt("simulated kill")
            return original(step)

        broken.views_for_step = dies_at_step_3
        with pytest.raises(KeyboardInterrupt):
            broken.fit()
        resumed = _trainer("simclr", fit_dir, True, **{"train.checkpoint_every": 2})
        result["fit"] = resumed.fit(resume=True).steps
        result["resumed_state"] = {k: v.clone() for k, v in resumed.method.state_dict().items()}
        result["out"] = out
        # a new group after teardown (``--methods`` trains one method after another under one torchrun)
        ddp.teardown()
        assert ddp.setup("cpu", timeout_s=120)
        one = torch.tensor([float(rank_ + 1)], requires_grad=True)
        result["second_group_sum"] = float(gather(one).sum() + all_reduce_sum(one).sum())
    finally:
        torch.save(result, Path(out) / f"rank{rank_}.pt")
        ddp.teardown()


def _spawn(out: Path, task: str) -> list[dict]:
    # fork: the children inherit the imported modules (a spawned child re-imports torch, ~5 s of CPU each);
    # they run with one thread, so the parent's OpenMP pool is never used after the fork
    mp.start_processes(_worker, args=(_free_port(), str(out), task), nprocs=WORLD, join=True, start_method="fork")
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.fixture(scope="module")
def spawned(tmp_path_factory) -> list[dict]:
    return _spawn(tmp_path_factory.mktemp("ddp"), "core")


@pytest.fixture(scope="module")
def spawned_all(tmp_path_factory) -> list[dict]:
    return _spawn(tmp_path_factory.mktemp("ddp_all"), "all")


@pytest.fixture(autouse=True)
def one_thread():
    """The references are tiny: one thread avoids OpenMP spin-waiting on the shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- one process ----------------------------------------------------------------------------------
def test_helpers_are_identities_in_one_process():
    assert not is_distributed() and dist_world_size() == 1 and rank() == 0 and is_main_process()
    x = torch.randn(3, 2, requires_grad=True)
    assert gather(x) is x and gather_no_grad(x) is x and all_reduce_sum(x) is x


def test_global_batch_norm_is_batch_norm_in_one_process():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(36, 5), nn.BatchNorm1d(5))
    params, keys = [id(p) for p in net.parameters()], list(net.state_dict())
    x = torch.randn(6, 3, 5, 5)
    expected = net(x)
    converted = convert_sync_batchnorm(net, torch.device("cpu"))
    assert isinstance(converted[1], GlobalBatchNorm) and isinstance(converted[4], GlobalBatchNorm)
    assert [id(p) for p in converted.parameters()] == params  # the optimiser's parameters stay valid
    assert list(converted.state_dict()) == keys  # checkpoints load with or without DDP
    torch.testing.assert_close(converted(x), expected)


def test_trainer_stays_single_process_without_torchrun(tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    trainer = _trainer("simclr", tmp_path, distributed=None)
    assert not trainer.distributed and trainer.world_size == 1 and trainer.model is trainer.method
    assert trainer.local_slice() == slice(0, BATCH)


# --- two processes --------------------------------------------------------------------------------
def test_gather_sums_gradients_over_ranks(spawned):
    coeff = torch.arange(12, dtype=torch.float64).view(4, 3)
    for r, res in enumerate(spawned):
        assert (res["rank"], res["world"], res["main"]) == (r, WORLD, r == 0)
        torch.testing.assert_close(res["gathered"], torch.tensor([1.0, 1, 2, 2], dtype=torch.float64)[:, None]
                                   .expand(4, 3))
        # Σ_r (r+1)·coeff over the rows of rank r's slice
        torch.testing.assert_close(res["gather_grad"], 3 * coeff[2 * r:2 * r + 2])
        torch.testing.assert_close(res["gather_grad_t"], 3 * coeff[2 * r:2 * r + 2])
        torch.testing.assert_close(res["gather_grad_expanded"], torch.full((2, 3), 3.0, dtype=torch.float64))
        torch.testing.assert_close(res["no_grad"], torch.tensor([0.0, 10.0]))
        torch.testing.assert_close(res["reduced_grad"], torch.tensor([3.0]))


def test_global_batch_norm_equals_batch_norm_over_the_global_batch(spawned):
    g = torch.Generator().manual_seed(0)
    full = (torch.randn(6, 4, 3, 3, generator=g, dtype=torch.float64) * 2 + 1).requires_grad_(True)
    bn = nn.BatchNorm2d(4).double()
    nn.init.normal_(bn.weight, generator=g), nn.init.normal_(bn.bias, generator=g)
    y = bn(full)
    upstream = full.detach()[:3].flip(0)
    (y * torch.cat([upstream, upstream])).sum().backward()  # each rank's own upstream gradient
    for r, res in enumerate(spawned):
        got = res["bn"]
        torch.testing.assert_close(got["y"], y.detach()[3 * r:3 * r + 3])
        torch.testing.assert_close(got["x_grad"], full.grad[3 * r:3 * r + 3])
        torch.testing.assert_close(got["running_mean"], bn.running_mean)
        torch.testing.assert_close(got["running_var"], bn.running_var)
    # each rank holds the affine gradient of its own rows; their sum (what DDP all-reduces) is the whole
    torch.testing.assert_close(sum(res["bn"]["w_grad"] for res in spawned), bn.weight.grad)
    torch.testing.assert_close(sum(res["bn"]["b_grad"] for res in spawned), bn.bias.grad)


def test_batch_is_sliced_per_rank(spawned):
    assert all(res["local_shape"] == (BATCH // WORLD, 3, 16, 16) for res in spawned)


def test_a_new_process_group_after_teardown(spawned):
    assert all(res["second_group_sum"] == 6.0 for res in spawned)


@pytest.mark.parametrize("name", CORE)
def test_ddp_loss_and_gradients_equal_one_process(spawned, name, tmp_path):
    if name not in METHODS:
        pytest.skip(f"method {name!r} is not registered")
    single = _run_method(name, tmp_path, distributed=False)
    for res in spawned:
        _compare(res["methods"][name], single)


@pytest.mark.slow
@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_every_method_under_ddp_equals_one_process(spawned_all, name, tmp_path):
    single = _run_method(name, tmp_path, distributed=False, batch=16)
    for res in spawned_all:
        assert "error" not in res[name], res[name].get("error")
        _compare(res[name], single, state=False)  # step 1: loss and the gradient of every stepped parameter
    for res in spawned_all:
        _compare(res[name], single)  # after 3 steps (meta_step, EMA, queues included)


def test_fit_under_ddp_logs_once_and_resumes_to_the_one_process_result(spawned, tmp_path):
    fit_dir = Path(spawned[0]["out"]) / "fit"
    assert all(res["fit"] == 3 for res in spawned)
    assert read_log(fit_dir / "train_log.csv")["step"] == [1, 2, 3]  # one writer, rows after step 2 replayed once
    assert load_checkpoint(fit_dir / "checkpoint.pt")["step"] == 3
    single = _trainer("simclr", tmp_path, False, **{"train.checkpoint_every": 2})
    single.fit()
    for key, value in single.method.state_dict().items():
        for res in spawned:
            torch.testing.assert_close(res["resumed_state"][key], value, rtol=1e-7, atol=1e-10, msg=key)


def test_time_limit_stop_logs_its_last_step(tmp_path):
    trainer = _trainer("simclr", tmp_path, False, **{"train.time_limit_s": 0.0, "train.log_every": 10})
    result = trainer.fit()
    assert result.stopped_early and result.steps == 1
    assert read_log(tmp_path / "train_log.csv")["step"] == [1]  # the stop is logged even between log steps
