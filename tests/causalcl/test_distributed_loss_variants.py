"""Issue 15 under DDP: 2 gloo processes against one process with the same global batch, through the real
Trainer (``test_distributed``'s harness): MoCo with a loss variant on the queue, CMC + Debiased, ReSSL on the
cosine momentum schedule and SwAV with its queue in use (filled at step 1, full from step 2, so the third step's
codes come from Sinkhorn over queue + batch, each rank scoring its half of the queue). Loss and gradients of
step 1, then every parameter, EMA target and BN statistic after three steps, and the queues themselves."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
import test_distributed as harness
import torch
import torch.multiprocessing as mp

#: (test id, method, options of the tiny model)
CASES = [
    ("moco_hard", "moco", {"projector": (32, 16), "queue_size": 32, "momentum": 0.9, "loss": "hard",
                           "loss_options": {"beta": 2.0}}),
    ("cmc_debiased", "cmc", {"projector": (16,), "loss": "debiased"}),
    ("ressl_cosine", "ressl", {"projector": (32, 16), "queue_size": 32, "momentum": 0.9}),
    ("swav_queue_hard", "swav", {"projector": (32, 16), "num_prototypes": 12, "freeze_prototypes_steps": 0,
                                 "queue_length": 16, "loss": "hard"}),
]


@contextlib.contextmanager
def _options(case: str):
    """The harness's tiny-model options of the case's method, for the duration of the block."""
    _, name, options = next(c for c in CASES if c[0] == case)
    saved = harness.METHOD_OPTIONS.get(name)
    harness.METHOD_OPTIONS[name] = options
    try:
        yield name
    finally:
        if saved is None:
            harness.METHOD_OPTIONS.pop(name, None)
        else:
            harness.METHOD_OPTIONS[name] = saved


def _run(case: str, out: Path, distributed: bool) -> dict:
    with _options(case) as name:
        return harness._run_method(name, out / case, distributed=distributed)


def _queues(case: str, out: Path, distributed: bool) -> dict[str, torch.Tensor]:
    """The queue buffers after three steps (a run of their own: the harness leaves them out of its state).
    MoCo enqueues [k1; k2] per rank, so its rows come in another order than in one process: sorted here."""
    with _options(case) as name:
        trainer = harness._trainer(name, out / f"{case}_q", distributed)
        for _ in range(3):
            trainer.train_step(trainer.views_for_step(trainer.step))
        queues = {k: v.clone() for k, v in trainer.method.state_dict().items() if k.endswith("queue")}
        if name == "swav":  # full after step 2: step 3's codes came from the queue
            assert trainer.method.queue_filled == trainer.method.queue_length == 16
    if name == "moco":
        key = torch.linspace(1.0, 2.0, next(iter(queues.values())).shape[1], dtype=torch.float64)
        queues = {k: v[torch.argsort(v @ key)] for k, v in queues.items()}
    return queues


def _worker(rank_: int, port: int, out: str) -> None:
    from causalcl.train import ddp

    torch.set_num_threads(1)
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank_),
                       "LOCAL_RANK": str(rank_), "WORLD_SIZE": str(harness.WORLD)})
    assert ddp.setup("cpu", timeout_s=120)
    result: dict = {}
    try:
        for case, _, _ in CASES:
            try:
                result[case] = {"run": _run(case, Path(out), True), "queues": _queues(case, Path(out), True)}
            except Exception as exc:  # noqa: BLE001 - reported by the test of that case
                result[case] = {"error": repr(exc)}
    finally:
        torch.save(result, Path(out) / f"rank{rank_}.pt")
        ddp.teardown()


@pytest.fixture(scope="module")
def spawned(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp_variants")
    mp.start_processes(_worker, args=(harness._free_port(), str(out)), nprocs=harness.WORLD, join=True,
                       start_method="fork")
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(harness.WORLD)]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_two_processes_equal_one(spawned, case, tmp_path):
    single = _run(case, tmp_path, False)
    queues = _queues(case, tmp_path, False)
    for res in spawned:
        assert "error" not in res[case], res[case].get("error")
        harness._compare(res[case]["run"], single)
        assert set(res[case]["queues"]) == set(queues)
        for key, value in queues.items():
            torch.testing.assert_close(res[case]["queues"][key], value, rtol=1e-7, atol=1e-10, msg=key)
