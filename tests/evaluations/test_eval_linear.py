"""Linear probe against scikit-learn LogisticRegression at matched regularisation (C = 1 / (n * wd))."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from evaluations import linear_probe
from evaluations.linear import WD_GRID, LinearProbeClassifier


def _problem(n, d, c, seed, spread=2.0, dtype=torch.float64, *, split=0):
    """Gaussian classes with unequal feature scales; the first ``split`` rows and the rest share classes."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(c, d, generator=g)
    scale = torch.rand(d, generator=g) * 5 + 0.1  # unequal feature scales: standardisation matters
    y = torch.randint(0, c, (n,), generator=g)
    x = ((centers[y] + spread * torch.randn(n, d, generator=g)) * scale + 3.0).to(dtype)
    if split:
        return x[:split], y[:split], x[split:], y[split:]
    return x, y


@pytest.mark.parametrize("wd", [1e-3, 1e-2])
def test_matches_sklearn_at_matched_regularisation(wd):
    tx, ty, qx, qy = _problem(1000, 10, 3, seed=0, split=600)
    res = linear_probe(tx, ty, qx, qy, weight_decay=wd, max_iter=500)

    scaler = StandardScaler().fit(tx.numpy())
    sk = LogisticRegression(C=1.0 / (len(tx) * wd), max_iter=5000, tol=1e-10)
    sk.fit(scaler.transform(tx.numpy()), ty.numpy())
    sk_acc = sk.score(scaler.transform(qx.numpy()), qy.numpy())
    assert abs(res.accuracy - sk_acc) <= 0.01
    assert 0.4 < res.accuracy < 1.0  # a real problem, not trivially separable

    with torch.no_grad():
        proba = torch.softmax(res.classifier(qx), dim=1).numpy()
    sk_proba = sk.predict_proba(scaler.transform(qx.numpy()))
    np.testing.assert_allclose(proba, sk_proba, atol=2e-4)
    assert res.weight_decay == wd
    assert res.converged


def test_float32_features_close_to_sklearn():
    tx, ty, qx, qy = _problem(1200, 16, 4, seed=2, dtype=torch.float32, split=800)
    wd = 1e-3
    res = linear_probe(tx.numpy(), ty.numpy(), qx.numpy(), qy.numpy(), weight_decay=wd)
    scaler = StandardScaler().fit(tx.double().numpy())
    sk = LogisticRegression(C=1.0 / (len(tx) * wd), max_iter=5000, tol=1e-10)
    sk.fit(scaler.transform(tx.double().numpy()), ty.numpy())
    assert abs(res.accuracy - sk.score(scaler.transform(qx.double().numpy()), qy.numpy())) <= 0.01
    with torch.no_grad():
        proba = torch.softmax(res.classifier(qx), dim=1).double().numpy()
    np.testing.assert_allclose(proba, sk.predict_proba(scaler.transform(qx.double().numpy())), atol=2e-3)


def test_classifier_maps_raw_features_and_reports_accuracies():
    tx, ty, qx, qy = _problem(500, 6, 3, seed=4, split=300)
    res = linear_probe(tx, ty, qx, qy, weight_decay=1e-3)
    assert isinstance(res.classifier, LinearProbeClassifier)
    assert not res.classifier.training
    with torch.no_grad():
        test_acc = float((res.classifier(qx).argmax(1) == qy).double().mean())
        train_acc = float((res.classifier(tx).argmax(1) == ty).double().mean())
    assert res.accuracy == pytest.approx(test_acc)
    assert res.train_accuracy == pytest.approx(train_acc)


def test_weight_decay_selection_is_deterministic_and_on_grid():
    tx, ty, qx, qy = _problem(450, 8, 3, seed=6, spread=3.0, split=300)
    a = linear_probe(tx, ty, qx, qy, max_iter=100)
    b = linear_probe(tx, ty, qx, qy, max_iter=100)
    assert a.weight_decay in WD_GRID
    assert a.weight_decay == b.weight_decay and a.accuracy == b.accuracy
    assert set(a.val_accuracy) == set(WD_GRID)
    assert a.val_accuracy[a.weight_decay] == max(a.val_accuracy.values())


def test_does_not_touch_global_rng():
    tx, ty = _problem(100, 4, 2, seed=8)
    state = torch.random.get_rng_state()
    linear_probe(tx, ty, tx, ty, weight_decay=1e-2)
    assert torch.equal(state, torch.random.get_rng_state())


def test_class_absent_from_training_is_never_predicted():
    tx, ty, qx, qy = _problem(400, 6, 3, seed=9, split=300)
    keep = ty != 1
    tx, ty = tx[keep], ty[keep]
    res = linear_probe(tx, ty, qx, qy, weight_decay=1e-3)
    with torch.no_grad():
        pred = res.classifier(qx).argmax(1)
    assert not bool((pred == 1).any())
    assert res.accuracy == pytest.approx(float((pred == qy).double().mean()))


_X, _Y = _problem(40, 4, 2, seed=11)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"train_x": torch.full((40, 4), float("nan"))}, "train_x"),
        ({"test_x": torch.full((40, 4), float("inf"))}, "test_x"),
        ({"train_y": torch.zeros(40, dtype=torch.long)}, "train_y"),  # a single class
        ({"train_y": -torch.ones(40, dtype=torch.long)}, "train_y"),
        ({"train_y": _Y[:30]}, "train_y"),
        ({"test_y": _Y[:30]}, "test_y"),
        ({"test_x": torch.randn(40, 5)}, "test_x"),
        ({"train_x": torch.randn(0, 4), "train_y": torch.zeros(0, dtype=torch.long)}, "train_x"),
        ({"train_x": torch.randn(40, 4, 1)}, "train_x"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"max_iter": 0}, "max_iter"),
    ],
)
def test_bad_inputs_raise(kwargs, match):
    args = {"train_x": _X, "train_y": _Y, "test_x": _X, "test_y": _Y, "weight_decay": 1e-3}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        linear_probe(args.pop("train_x"), args.pop("train_y"), args.pop("test_x"), args.pop("test_y"), **args)


def test_too_few_samples_to_choose_weight_decay():
    x = torch.randn(4, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match="weight_decay"):
        linear_probe(x, y, x, y)
