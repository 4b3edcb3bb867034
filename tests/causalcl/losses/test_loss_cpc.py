"""CPC's InfoNCE over a sequence of latents against a loop-by-loop reference of its formula."""

from __future__ import annotations

import math

import pytest
import torch

from causalcl.losses import NonFiniteEmbeddingError, cpc_loss


def _inputs(b: int, t: int, p: int, d: int, k: int, seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, t, p, d, generator=g, dtype=torch.float64)
    preds = [0.8 * z[:, j:] + torch.randn(b, t - j, p, d, generator=g, dtype=torch.float64) for j in range(1, k + 1)]
    return z, preds


def naive_cpc(z: torch.Tensor, preds: list[torch.Tensor]) -> torch.Tensor:
    b, t, p, d = z.shape
    everything = [(bb, tt, pp) for bb in range(b) for tt in range(t) for pp in range(p)]
    total = 0.0
    for k, pred in enumerate(preds, start=1):
        per_offset, count = 0.0, 0
        for bb in range(b):
            for tt in range(t - k):
                for pp in range(p):
                    q = pred[bb, tt, pp]
                    positive = torch.exp((q * z[bb, tt + k, pp]).sum())
                    denominator = sum(torch.exp((q * z[x]).sum()) for x in everything)
                    per_offset = per_offset - torch.log(positive / denominator)
                    count += 1
        total = total + per_offset / count
    return total / len(preds)


CASES = [(1, 2, 1, 3, 1), (2, 3, 2, 2, 2), (3, 4, 1, 4, 3), (2, 5, 3, 2, 2)]


def _value_and_grads(fn, z, preds):
    zz = z.clone().requires_grad_()
    pp = [p.clone().requires_grad_() for p in preds]
    loss = fn(zz, pp)
    loss.backward()
    return loss, zz.grad, [p.grad for p in pp]


@pytest.mark.parametrize("b,t,p,d,k", CASES)
def test_matches_naive_value_and_gradient(b: int, t: int, p: int, d: int, k: int) -> None:
    z, preds = _inputs(b, t, p, d, k, seed=b * 1000 + t * 100 + p * 10 + k)
    got = _value_and_grads(cpc_loss, z, preds)
    want = _value_and_grads(naive_cpc, z, preds)
    torch.testing.assert_close(got[0], want[0], atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(got[1], want[1], atol=1e-10, rtol=1e-8)
    for a, c in zip(got[2], want[2], strict=True):
        torch.testing.assert_close(a, c, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("chunk", [1, 7, 50])
def test_chunks_equal_the_full_matrix(chunk: int) -> None:
    z, preds = _inputs(3, 5, 2, 4, 3, seed=7)  # 3·(4+3+2)·2 = 54 predictions × 30 latents
    full = _value_and_grads(cpc_loss, z, preds)
    chunked = _value_and_grads(lambda a, b: cpc_loss(a, b, max_chunk_logits=chunk * 30), z, preds)
    torch.testing.assert_close(chunked[0], full[0], atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(chunked[1], full[1], atol=1e-12, rtol=1e-10)
    for a, c in zip(chunked[2], full[2], strict=True):
        torch.testing.assert_close(a, c, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("b,t,p,k", [(1, 2, 1, 1), (2, 4, 3, 2), (4, 7, 7, 3)])
def test_zero_predictions_give_log_of_the_candidate_count(b: int, t: int, p: int, k: int) -> None:
    z, preds = _inputs(b, t, p, 3, k, seed=8)
    zero = [torch.zeros_like(x) for x in preds]
    assert cpc_loss(z, zero).item() == pytest.approx(math.log(b * t * p), abs=1e-12)


def test_better_predictions_lower_the_loss() -> None:
    z, preds = _inputs(2, 4, 2, 6, 2, seed=9)
    exact = [4 * z[:, k:] for k in range(1, 3)]
    assert cpc_loss(z, exact) < cpc_loss(z, preds)


def test_gradcheck() -> None:
    z, preds = _inputs(2, 3, 1, 2, 2, seed=10)
    inputs = (z.clone().requires_grad_(), *[p.clone().requires_grad_() for p in preds])
    assert torch.autograd.gradcheck(lambda a, *ps: cpc_loss(a, list(ps)), inputs)


def test_bad_inputs() -> None:
    z, preds = _inputs(2, 4, 2, 3, 2, seed=11)
    for args, name in (((z[0], preds), r"\bz\b"), ((z[:, :1], [preds[0][:, :0]]), r"\bz\b"),
                       ((z.long(), preds), r"\bz\b"), ((z, preds[0]), "predictions"), ((z, []), "predictions"),
                       ((z, [*preds, z[:, 3:], z[:, 4:]]), "predictions"),
                       ((z, [preds[1], preds[0]]), r"predictions\[0\]"),
                       ((z, [preds[0], preds[1].float()]), r"predictions\[1\]")):
        with pytest.raises(ValueError, match=name):
            cpc_loss(*args)
    with pytest.raises(ValueError, match="max_chunk_logits"):
        cpc_loss(z, preds, max_chunk_logits=0)
    bad = preds[1].clone()
    bad[0, 0, 0, 0] = math.nan
    with pytest.raises(NonFiniteEmbeddingError, match=r"predictions\[1\]"):
        cpc_loss(z, [preds[0], bad])


def test_gradcheck_of_the_chunked_path() -> None:
    z, preds = _inputs(2, 3, 2, 2, 2, seed=12)  # 12 predictions × 12 latents, chunks of 5 rows
    inputs = (z.clone().requires_grad_(), *[p.clone().requires_grad_() for p in preds])
    assert torch.autograd.gradcheck(lambda a, *ps: cpc_loss(a, list(ps), max_chunk_logits=60), inputs)


def test_half_precision_is_scored_in_float32() -> None:
    z, preds = _inputs(2, 4, 2, 3, 2, seed=13)
    want = cpc_loss(z, preds)
    for chunk in (1 << 25, 16):
        got = cpc_loss(z.bfloat16(), [p.bfloat16() for p in preds], max_chunk_logits=chunk)
        assert got.dtype == torch.float32
        assert got.item() == pytest.approx(want.item(), rel=2e-2)
        zb = z.bfloat16().requires_grad_()
        cpc_loss(zb, [p.bfloat16() for p in preds], max_chunk_logits=chunk).backward()
        assert zb.grad.dtype == torch.bfloat16 and torch.isfinite(zb.grad.float()).all()
