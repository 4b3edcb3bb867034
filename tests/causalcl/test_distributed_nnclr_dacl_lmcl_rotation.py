"""NNCLR, DACL, LMCL and RotNet under 2 gloo processes equal one process with the same global batch.

The same comparison as ``test_distributed.py``'s slow ``test_every_method_under_ddp_equals_one_process``
(its helpers, through the real Trainer, float64), in one spawn for these four methods only, with the
support set included: NNCLR enqueues the projections of every rank in rank order, so its queue (and fill
count) must equal one process's exactly, on every rank. Marked slow (run with ``-m slow``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from test_distributed import WORLD, _compare, _free_port, _trainer

NAMES = ("nnclr", "dacl", "lmcl", "rotation")
BATCH = 16


def _run(name: str, out: Path, distributed: bool) -> dict:
    """Loss and stepped gradients of step 1, then the whole state (queues included) after 3 steps."""
    trainer = _trainer(name, out, distributed, **{"train.batch_size": BATCH})
    views = trainer.views_for_step(0)
    terms = trainer.forward_backward(views)
    stepped = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    grads = {k: p.grad.detach().clone() for k, p in trainer.method.named_parameters()
             if p.grad is not None and id(p) in stepped}
    trainer.optimizer_step(views)
    for _ in range(2):
        trainer.train_step(trainer.views_for_step(trainer.step))
    state = {k: v.detach().clone() for k, v in trainer.method.state_dict().items() if isinstance(v, torch.Tensor)}
    return {"loss": float(terms["loss"]), "grads": grads, "state": state}  # terms: device tensors


def _worker(rank_: int, port: int, out: str) -> None:
    from causalcl.train import ddp

    torch.set_num_threads(1)
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank_),
                       "LOCAL_RANK": str(rank_), "WORLD_SIZE": str(WORLD)})
    assert ddp.setup("cpu", timeout_s=120)
    result: dict = {}
    try:
        for name in NAMES:
            try:
                result[name] = _run(name, Path(out) / name, distributed=True)
            except Exception as exc:  # noqa: BLE001 - reported by the test of that method
                result[name] = {"error": repr(exc)}
    finally:
        torch.save(result, Path(out) / f"rank{rank_}.pt")
        ddp.teardown()


@pytest.fixture(scope="module")
def spawned(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp_h15")
    mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True, start_method="fork")
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow  # one 2-process spawn, ~15 s of CPU
@pytest.mark.parametrize("name", NAMES)
def test_ddp_equals_one_process(spawned, name, tmp_path):
    single = _run(name, tmp_path, distributed=False)
    for res in spawned:
        assert "error" not in res[name], res[name].get("error")
        _compare(res[name], single)  # step-1 loss and gradients, then every state tensor after 3 steps
    if name == "nnclr":
        assert int(single["state"]["queue_filled"]) == 3 * BATCH
        for res in spawned:
            torch.testing.assert_close(res[name]["state"]["queue.queue"], single["state"]["queue.queue"],
                                       rtol=1e-7, atol=1e-10)
