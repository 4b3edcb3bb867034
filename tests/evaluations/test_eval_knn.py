"""kNN probe: against a loop reference written from the formula, and against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

import evaluations.knn as knn_mod
from evaluations import knn_accuracy, knn_predict


def _loop_reference(train_x, train_y, test_x, k, temperature, num_classes):
    """score_c(q) = sum_{j in topk} exp(cos(q, x_j) / T) [y_j = c]; argmax with the lowest class on ties."""
    preds = []
    for q in test_x.tolist():
        qn = math.sqrt(sum(v * v for v in q))
        sims = []
        for j, x in enumerate(train_x.tolist()):
            xn = math.sqrt(sum(v * v for v in x))
            dot = sum(a * b for a, b in zip(q, x, strict=True))
            sims.append((dot / (qn * xn), j))
        sims.sort(key=lambda t: -t[0])
        scores = [0.0] * num_classes
        for s, j in sims[:k]:
            scores[int(train_y[j])] += math.exp(s / temperature)
        best = 0
        for c in range(1, num_classes):
            if scores[c] > scores[best]:
                best = c
        preds.append(best)
    return torch.tensor(preds)


def _clusters(n, d, c, seed, spread=1.0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(c, d, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    return centers[y] + spread * torch.randn(n, d, generator=g), y


@pytest.mark.parametrize("k,temperature", [(1, 0.1), (5, 0.07), (20, 0.5), (60, 0.01)])
def test_matches_loop_reference(k, temperature):
    tx, ty = _clusters(60, 5, 4, seed=1, spread=1.5)
    qx, _ = _clusters(25, 5, 4, seed=2, spread=1.5)
    tx, qx = tx.double(), qx.double()
    pred = knn_predict(tx, ty, qx, k=k, temperature=temperature, num_classes=4)
    ref = _loop_reference(tx, ty, qx, k, temperature, 4)
    assert pred.dtype == torch.long
    assert torch.equal(pred, ref)


def _sklearn_predict(tx, ty, qx, k, temperature):
    clf = KNeighborsClassifier(
        n_neighbors=k,
        algorithm="brute",
        metric="cosine",
        weights=lambda d: np.exp((1.0 - d) / temperature),
    )
    clf.fit(tx, ty)
    return torch.from_numpy(clf.predict(qx))


@pytest.mark.parametrize("k,temperature", [(20, 0.1), (200, 0.1), (7, 0.05)])
def test_matches_sklearn(k, temperature):
    tx, ty = _clusters(3000, 32, 10, seed=3, spread=2.0)
    qx, _ = _clusters(400, 32, 10, seed=4, spread=2.0)
    tx, qx = tx.double().numpy(), qx.double().numpy()
    pred = knn_predict(tx, ty.numpy(), qx, k=k, temperature=temperature)
    ref = _sklearn_predict(tx, ty.numpy(), qx, k, temperature)
    assert torch.equal(pred, ref)


def test_chunking_does_not_change_predictions(monkeypatch):
    tx, ty = _clusters(500, 16, 5, seed=5, spread=2.0)
    qx, _ = _clusters(300, 16, 5, seed=6, spread=2.0)
    whole = knn_predict(tx, ty, qx, k=30)
    monkeypatch.setattr(knn_mod, "_BLOCK_ELEMENTS", 500 * 17)  # 17 queries per chunk, ragged last chunk
    assert knn_mod._chunk_rows(500, 300) == 17
    assert torch.equal(knn_predict(tx, ty, qx, k=30), whole)
    monkeypatch.setattr(knn_mod, "_VOTE_ELEMENTS", 17 * 30 * 3)  # votes cast per 51 queries
    assert torch.equal(knn_predict(tx, ty, qx, k=30), whole)


@pytest.mark.parametrize("n,k", [(6400, 200), (6413, 200), (5000, 7), (399, 10), (1000, 1)])
def test_pruned_topk_matches_torch_topk(n, k):
    g = torch.Generator().manual_seed(n + k)
    sim = torch.randn(37, n, generator=g)
    sim[:, 5::3] = sim[:, 5::3].round(decimals=1)  # plenty of exact ties
    sim[3] = 0.25  # a constant row
    values, cols = knn_mod._topk_pruned(sim, k)
    ref = torch.topk(sim, k, dim=1)
    assert torch.equal(values, ref.values)
    assert torch.equal(sim.gather(1, cols), values)
    assert all(len(set(row)) == k for row in cols.tolist())  # distinct columns


def test_ties_go_to_lowest_class():
    # Query equidistant from a class-1 point and a class-0 point: equal scores, class 0 must win.
    tx = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    ty = torch.tensor([1, 0])
    qx = torch.tensor([[1.0, 1.0]])
    assert knn_predict(tx, ty, qx, k=2).item() == 0
    ty2 = torch.tensor([0, 2])
    assert knn_predict(tx, ty2, qx, k=2).item() == 0


def test_small_temperature_is_stable():
    tx, ty = _clusters(200, 8, 3, seed=7, spread=2.0)
    qx, _ = _clusters(40, 8, 3, seed=8, spread=2.0)
    pred = knn_predict(tx, ty, qx, k=50, temperature=0.001)  # exp(1000) would overflow
    ref = knn_predict(tx, ty, qx, k=1)  # at T -> 0 the nearest neighbour dominates
    assert torch.equal(pred, ref)


def test_accuracy_is_fraction_of_correct_predictions():
    tx, ty = _clusters(400, 16, 5, seed=9, spread=2.5)
    qx, qy = _clusters(100, 16, 5, seed=10, spread=2.5)
    acc = knn_accuracy(tx, ty, qx, qy, k=10)
    pred = knn_predict(tx, ty, qx, k=10)
    assert acc == pytest.approx(float((pred == qy).float().mean()))
    assert 0.0 < acc < 1.0
    # A test class never seen in training just counts as wrong.
    qy_new = qy.clone()
    qy_new[0] = 7
    assert knn_accuracy(tx, ty, qx, qy_new, k=10) <= acc


def test_numpy_and_float32_inputs():
    tx, ty = _clusters(300, 8, 3, seed=11)
    qx, _ = _clusters(50, 8, 3, seed=12)
    a = knn_predict(tx.numpy(), ty.numpy(), qx.numpy(), k=15)
    b = knn_predict(tx, ty, qx, k=15)
    assert torch.equal(a, b)


_TX, _TY = _clusters(30, 4, 3, seed=13)
_QX, _QY = _clusters(10, 4, 3, seed=14)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"train_x": torch.full((30, 4), float("nan"))}, "train_x"),
        ({"test_x": torch.cat([_QX[:9], torch.tensor([[float("inf"), 0, 0, 0]])])}, "test_x"),
        ({"train_y": torch.full((30,), 5), "num_classes": 3}, "train_y"),
        ({"train_y": -torch.ones(30, dtype=torch.long)}, "train_y"),
        ({"train_y": torch.zeros(29, dtype=torch.long)}, "train_y"),
        ({"train_y": torch.full((30,), 0.5)}, "train_y"),
        ({"k": 31}, "k"),
        ({"k": 0}, "k"),
        ({"k": 2.5}, "k"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"test_x": torch.randn(10, 5)}, "test_x"),
        ({"test_x": torch.randn(0, 4)}, "test_x"),
        ({"train_x": torch.randn(0, 4), "train_y": torch.zeros(0, dtype=torch.long)}, "train_x"),
        ({"train_x": torch.randn(30)}, "train_x"),
        ({"train_x": "not an array"}, "train_x"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_bad_inputs_raise(kwargs, match):
    args = {"train_x": _TX, "train_y": _TY, "test_x": _QX, "k": 5}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        knn_predict(args.pop("train_x"), args.pop("train_y"), args.pop("test_x"), **args)


def test_bad_test_labels_raise():
    with pytest.raises(ValueError, match="test_y"):
        knn_accuracy(_TX, _TY, _QX, _QY[:5], k=5)
    with pytest.raises(ValueError, match="test_y"):
        knn_accuracy(_TX, _TY, _QX, -torch.ones(10, dtype=torch.long), k=5)


def test_huge_label_values_cost_no_memory():
    """A label 1e9 (allowed: labels only need to be >= 0) must not allocate 1e9 score columns."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 8, generator=g)
    y = torch.arange(60) % 3
    big = torch.where(y == 2, torch.tensor(10**9), y)
    assert torch.equal(knn_predict(x, big, x, k=5), torch.where(knn_predict(x, y, x, k=5) == 2, 10**9,
                                                                 knn_predict(x, y, x, k=5)))
    assert knn_accuracy(x, big, x, big, k=5) == knn_accuracy(x, y, x, y, k=5)
    with pytest.raises(ValueError, match=r"train_y: class labels must lie in \[0, 5\)"):
        knn_predict(x, big, x, k=5, num_classes=5)
