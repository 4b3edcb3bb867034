"""latent_r2: linear / kernel read-out of synthetic latents with known answers; validation; plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from evaluations.identifiability import KERNEL_GRID, RIDGE_ALPHAS, latent_r2, plot_latent_r2


def _data(n: int = 600, d: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    c1, c2 = rng.integers(0, 2, n), rng.integers(0, 2, n)
    x[:, 3] += 6 * c1  # the class shifts two feature directions: separable with a margin
    x[:, 4] += 6 * c2
    latents = {
        "linear": x @ rng.normal(size=d) + 3.0,  # exactly linear in the features
        "square": x[:, 0] ** 2,  # nonlinear: invisible to a linear read-out
        "noise": rng.normal(size=n),  # unrelated
        "cls": (c1 + 2 * c2).astype(np.int64),  # 4 classes, linearly separable
    }
    return x, latents


def _score(df: pd.DataFrame, name: str) -> float:
    return float(df.set_index("latent").loc[name, "score"])


def test_linear_readout_known_answers():
    x, lat = _data()
    df = latent_r2(torch.as_tensor(x, dtype=torch.float32), lat, kind="linear")
    assert list(df.columns[:6]) == ["latent", "kind", "score", "chance", "role", "model"]
    assert df["latent"].tolist() == ["linear", "square", "noise", "cls"]
    assert _score(df, "linear") > 0.99
    assert _score(df, "noise") < 0.1
    assert _score(df, "square") < 0.1
    row = df.set_index("latent").loc["cls"]
    assert row["kind"] == "accuracy" and row["model"] == "logistic"
    assert row["score"] > 0.95
    assert 0.2 < row["chance"] < 0.4  # 4 roughly balanced classes
    assert df.set_index("latent").loc["linear", "kind"] == "r2"
    assert np.isnan(df.set_index("latent").loc["linear", "chance"])
    assert (df["n_fit"] == 300).all() and (df["n_test"] == 300).all()


def test_kernel_readout_known_answers():
    x, lat = _data()
    df = latent_r2(x[:400], {k: v[:400] for k, v in lat.items()}, kind="kernel")
    assert _score(df, "linear") > 0.99
    assert _score(df, "square") > 0.8  # the kernel sees what the linear read-out misses
    assert _score(df, "noise") < 0.1
    assert _score(df, "cls") > 0.95
    assert set(df["model"]) == {"kernel", "logistic"}
    assert KERNEL_GRID["alpha"] == [1.0, 0.1, 0.01, 0.001]
    assert np.allclose(KERNEL_GRID["gamma"], np.logspace(-2, 2, 4))


def _ridge_oracle(x_fit, y_fit, x_test, y_test):
    """numpy: standardise with the fit part, choose α by the exact leave-one-out error of ridge with an
    intercept (refit n times), then the held-out R² of the closed-form solution at that α."""
    mean, std = x_fit.mean(0), x_fit.std(0)
    xf, xt = (x_fit - mean) / std, (x_test - mean) / std
    mu, sd = y_fit.mean(), y_fit.std()
    yf, yt = (y_fit - mu) / sd, (y_test - mu) / sd

    def solve(x, y, alpha):
        xm, ym = x.mean(0), y.mean()
        w = np.linalg.solve((x - xm).T @ (x - xm) + alpha * np.eye(x.shape[1]), (x - xm).T @ (y - ym))
        return w, ym - xm @ w

    def loo(alpha):
        err = 0.0
        for i in range(len(yf)):
            keep = np.arange(len(yf)) != i
            w, b = solve(xf[keep], yf[keep], alpha)
            err += (yf[i] - xf[i] @ w - b) ** 2
        return err

    best = min(RIDGE_ALPHAS, key=loo)
    w, b = solve(xf, yf, best)
    pred = xt @ w + b
    return 1 - ((yt - pred) ** 2).sum() / ((yt - yt.mean()) ** 2).sum()


def test_ridge_readout_equals_a_numpy_leave_one_out_oracle():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 30))
    y = x[:, :3] @ np.array([1.0, -0.5, 0.25]) + 0.8 * rng.normal(size=120)
    xt = rng.normal(size=(80, 30))
    yt = xt[:, :3] @ np.array([1.0, -0.5, 0.25]) + 0.8 * rng.normal(size=80)
    df = latent_r2(x, {"y": y}, kind="ridge", test_features=xt, test_latents={"y": yt})
    assert df["model"].tolist() == ["ridge"]
    assert _score(df, "y") == pytest.approx(_ridge_oracle(x, y, xt, yt), abs=1e-9)


def test_ridge_keeps_r2_near_zero_where_least_squares_overfits():
    """250 fit samples, 128 features unrelated to the latent (the clips' case): least squares scores far below
    0, ridge near 0; with a real linear signal ridge still finds it."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 128))
    lat = {"noise": rng.normal(size=500), "signal": x[:, 0] + 0.5 * rng.normal(size=500)}
    ols, ridge = (latent_r2(x, lat, kind=kind) for kind in ("linear", "ridge"))
    assert _score(ols, "noise") < -0.5
    assert -0.1 < _score(ridge, "noise") < 0.05
    assert _score(ridge, "signal") > max(0.6, _score(ols, "signal"))  # the best possible R² here is 0.8
    assert np.allclose(RIDGE_ALPHAS, np.logspace(-2, 4, 13))


def test_kernel_n_fit_caps_the_fit_samples():
    x, lat = _data(n=400)
    df = latent_r2(x, {"linear": lat["linear"]}, kind="kernel", n_fit=50)
    assert int(df["n_fit"].iloc[0]) == 50
    assert _score(df, "linear") > 0.9


def test_roles_categorical_dataframe_and_separate_test_set():
    x, lat = _data(n=400)
    xt, latt = _data(n=200, seed=1)
    # the test set must be drawn from the same map: rebuild its linear latent with the train weights
    w = np.linalg.lstsq(np.c_[x, np.ones(len(x))], lat["linear"], rcond=None)[0]
    latt["linear"] = np.c_[xt, np.ones(len(xt))] @ w
    frame = pd.DataFrame({"linear": lat["linear"], "noise": lat["noise"], "bin": (x[:, 0] > 0).astype(float)})
    frame_t = pd.DataFrame({"linear": latt["linear"], "noise": latt["noise"], "bin": (xt[:, 0] > 0).astype(float)})
    df = latent_r2(
        x,
        frame,
        categorical=["bin"],
        roles={"linear": "content", "noise": "style"},
        test_features=xt,
        test_latents=frame_t,
    )
    d = df.set_index("latent")
    assert d.loc["linear", "role"] == "content" and d.loc["noise", "role"] == "style"
    assert d.loc["bin", "role"] is None
    assert d.loc["bin", "kind"] == "accuracy" and d.loc["bin", "score"] > 0.95
    assert d.loc["linear", "score"] > 0.99
    assert (df["n_fit"] == 400).all() and (df["n_test"] == 200).all()


def test_split_is_seeded():
    x, lat = _data(n=200)
    a = latent_r2(x, {"noise": lat["noise"]}, seed=1)
    b = latent_r2(x, {"noise": lat["noise"]}, seed=1)
    c = latent_r2(x, {"noise": lat["noise"]}, seed=2)
    assert a["score"].iloc[0] == b["score"].iloc[0] != c["score"].iloc[0]


def test_constant_latent_gives_nan():
    x, _ = _data(n=100)
    df = latent_r2(x, {"const": np.full(100, 2.5)})
    assert np.isnan(df["score"].iloc[0])


def test_bad_inputs():
    x, lat = _data(n=100)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="features"):
        latent_r2(bad, lat)
    with pytest.raises(ValueError, match="latents"):
        latent_r2(x, {"a": np.zeros(99)})
    with pytest.raises(ValueError, match="latents"):
        latent_r2(x, {})
    with pytest.raises(ValueError, match="latents"):
        latent_r2(x, {"a": np.r_[np.nan, np.zeros(99)]})
    with pytest.raises(ValueError, match="kind"):
        latent_r2(x, lat, kind="rbf")
    with pytest.raises(ValueError, match="roles"):
        latent_r2(x, lat, roles={"linear": "causal"})
    with pytest.raises(ValueError, match="categorical"):
        latent_r2(x, lat, categorical=["colour"])
    with pytest.raises(ValueError, match="test_features"):
        latent_r2(x, lat, test_features=x)


def test_plot_latent_r2_groups_by_role():
    x, lat = _data(n=200)
    df = latent_r2(x, lat, roles={"linear": "content", "cls": "content", "noise": "style", "square": "style"})
    fig = plot_latent_r2(df)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    ticks = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()], strict=True), reverse=True)
    assert [t for _, t in ticks] == ["linear", "cls (acc)", "square", "noise"]  # content on top, then style
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["content", "style"]
    with pytest.raises(ValueError, match="df"):
        plot_latent_r2(pd.DataFrame())


def _circular_oracle(x_fit, z_fit, x_test, z_test, period):
    """numpy least squares on (cos, sin) of the angle, R² of the 2-D target on the circle's scale."""
    def circle(z):
        a = 2 * np.pi * z / period
        return np.stack([np.cos(a), np.sin(a)], 1)

    mean, std = x_fit.mean(0), x_fit.std(0)
    xf, xt = (x_fit - mean) / std, (x_test - mean) / std
    design = np.c_[xf, np.ones(len(xf))]
    coef, *_ = np.linalg.lstsq(design, circle(z_fit), rcond=None)
    pred, u = np.c_[xt, np.ones(len(xt))] @ coef, circle(z_test)
    return 1 - ((u - pred) ** 2).sum() / ((u - u.mean(0)) ** 2).sum()


def test_circular_readout_equals_a_numpy_oracle_and_follows_the_wrap_around():
    """A hue stored as the features' angle: the circular read-out is (near) perfect, the raw one is not, because
    hue 0.99 sits next to 0.01 on the circle but at the other end of a line."""
    rng = np.random.default_rng(5)
    n = 800
    hue = rng.uniform(0, 1, n)
    x = np.c_[np.cos(2 * np.pi * hue), np.sin(2 * np.pi * hue), rng.normal(size=(n, 3))]
    x[:, :2] += 0.05 * rng.normal(size=(n, 2))
    lat = {"hue": hue, "noise": rng.uniform(0, 1, n)}
    raw = latent_r2(x, lat)
    circ = latent_r2(x, lat, circular={"hue": 1.0, "noise": 1.0})
    assert _score(circ, "hue") > 0.99 and _score(raw, "hue") < 0.8
    assert abs(_score(circ, "noise")) < 0.05
    fit, test = x[:400], x[400:]
    df = latent_r2(fit, {"hue": hue[:400]}, circular={"hue": 1.0}, test_features=test,
                   test_latents={"hue": hue[400:]})
    assert _score(df, "hue") == pytest.approx(_circular_oracle(fit, hue[:400], test, hue[400:], 1.0), abs=1e-10)
    # the period sets the scale: an angle in radians with period 2π reads the same as the hue with period 1
    radians = latent_r2(x, {"hue": 2 * np.pi * hue}, circular={"hue": 2 * np.pi})
    assert _score(radians, "hue") == pytest.approx(_score(circ, "hue"), abs=1e-12)
    for kind in ("ridge", "kernel"):  # the other regressors take the 2-D target too
        assert _score(latent_r2(x, lat, kind=kind, circular={"hue": 1.0}, n_fit=200), "hue") > 0.9


def test_circular_bad_inputs():
    x, lat = _data(n=100)
    for bad, match in [({"colour": 1.0}, "unknown latent"), ({"cls": 1.0}, "categorical"),
                       ({"linear": 0.0}, "positive number"), ({"linear": "1"}, "positive number"),
                       ([("linear", 1.0)], "dict")]:
        with pytest.raises(ValueError, match=f"circular: .*{match}"):
            latent_r2(x, lat, circular=bad)


def _symmetric_data(n, rng):
    """Three shapes: 0 a disc (rotation invisible), 1 a square (order 4), 2 a crescent (order 1); each shape
    shows its orientation in its own pair of feature columns, the square's only modulo a quarter turn."""
    cls = rng.integers(0, 3, n)
    rot = rng.uniform(0, 2 * np.pi, n)
    x = 0.05 * rng.normal(size=(n, 6))
    sq, cr = cls == 1, cls == 2
    x[sq, 0:2] += np.c_[np.cos(4 * rot[sq]), np.sin(4 * rot[sq])]
    x[cr, 2:4] += np.c_[np.cos(rot[cr]), np.sin(rot[cr])]
    return x, {"cls": cls, "rotation": rot}


def _symmetric_oracle(x_fit, lat_fit, x_test, lat_test, orders):
    """Per shape: numpy least squares on (cos kθ, sin kθ); the shapes' R² averaged, weighted by scored samples."""
    scores, weights = [], []
    for level, order in orders.items():
        if order == 0:
            continue
        f, t = lat_fit["cls"] == level, lat_test["cls"] == level
        scores.append(_circular_oracle(x_fit[f], order * lat_fit["rotation"][f], x_test[t],
                                       order * lat_test["rotation"][t], 2 * np.pi))
        weights.append(t.sum())
    return np.average(scores, weights=weights)


def test_symmetric_readout_equals_a_per_shape_numpy_oracle():
    """Rotation read on the plain circle misses the square (it repeats every quarter turn) and mixes the shapes'
    feature columns; read within each shape modulo its symmetry it is (near) perfect, equal to the oracle."""
    rng = np.random.default_rng(11)
    x, lat = _symmetric_data(1200, rng)
    orders = {0: 0, 1: 4, 2: 1}
    plain = latent_r2(x, lat, circular={"rotation": 2 * np.pi})
    sym = latent_r2(x, lat, circular={"rotation": 2 * np.pi}, symmetry={"rotation": ("cls", orders)})
    assert _score(plain, "rotation") < 0.5 < 0.95 < _score(sym, "rotation")
    assert _score(sym, "cls") == _score(plain, "cls")  # the other rows are untouched
    fit, test = slice(0, 600), slice(600, None)
    lat_fit, lat_test = ({k: v[s] for k, v in lat.items()} for s in (fit, test))
    df = latent_r2(x[fit], lat_fit, circular={"rotation": 2 * np.pi}, symmetry={"rotation": ("cls", orders)},
                   test_features=x[test], test_latents=lat_test)
    assert _score(df, "rotation") == pytest.approx(_symmetric_oracle(x[fit], lat_fit, x[test], lat_test, orders),
                                                   abs=1e-10)
    # a wrong order (the square taken as order 1) loses the square's share of the score
    wrong = latent_r2(x, lat, circular={"rotation": 2 * np.pi}, symmetry={"rotation": ("cls", {0: 0, 1: 1, 2: 1})})
    assert _score(wrong, "rotation") < 0.7
    only_discs = {"cls": np.zeros(100, dtype=int), "rotation": lat["rotation"][:100], "other": lat["cls"][:100]}
    nan = latent_r2(x[:100], only_discs, circular={"rotation": 2 * np.pi}, symmetry={"rotation": ("other", {
        0: 0, 1: 0, 2: 0})})
    assert np.isnan(_score(nan, "rotation"))  # every sample invisible: no score


def test_symmetric_bad_inputs():
    rng = np.random.default_rng(0)
    x, lat = _symmetric_data(100, rng)
    lat["angle"] = rng.uniform(0, 1, 100)
    circ = {"rotation": 2 * np.pi}
    for circular, bad, match in [
        (None, {"rotation": ("cls", {0: 0, 1: 4, 2: 1})}, "must also be circular"),
        (circ, {"rotation": ("angle", {0: 1})}, "not a categorical latent"),
        (circ, {"rotation": ("cls", {0: 0, 1: -4, 2: 1})}, "integer >= 0"),
        (circ, {"rotation": ("cls", {0: 0, 1: 4.0, 2: 1})}, "integer >= 0"),
        (circ, {"rotation": ("cls", {0: 0, 1: 4})}, r"levels \[2\]"),
        (circ, {"rotation": "cls"}, "expected \\(by"),
        (circ, [("rotation", "cls")], "dict"),
    ]:
        with pytest.raises(ValueError, match=f"symmetry: .*{match}"):
            latent_r2(x, lat, circular=circular, symmetry=bad)


def test_scored_latents_get_the_same_rows_and_only_they():
    """``scored`` leaves out the other latents' read-outs (a symmetry's ``by`` still groups the rows) and changes
    no score: the rotation read per shape equals the row of the call that scores every latent."""
    rng = np.random.default_rng(5)
    x, lat = _symmetric_data(600, rng)
    lat["hue"] = rng.uniform(0, 1, 600)
    kw = dict(circular={"rotation": 2 * np.pi, "hue": 1.0}, symmetry={"rotation": ("cls", {0: 0, 1: 4, 2: 1})},
              roles={"rotation": "content", "cls": "content"}, seed=3)
    every = latent_r2(x, lat, **kw)
    only = latent_r2(x, lat, scored=["rotation"], **kw)
    assert only.latent.tolist() == ["rotation"] and only.role.tolist() == ["content"]
    assert _score(only, "rotation") == _score(every, "rotation")
    two = latent_r2(x, lat, scored=("hue", "cls"), **kw)
    assert two.latent.tolist() == ["cls", "hue"]  # in the latents' order
    assert two.score.tolist() == every.set_index("latent").loc[["cls", "hue"], "score"].tolist()


def test_scored_bad_inputs():
    rng = np.random.default_rng(0)
    x, lat = _symmetric_data(100, rng)
    for bad, match in [(["angle"], "subset"), ([], "subset"), ("cls", "string")]:
        with pytest.raises(ValueError, match=f"scored: .*{match}"):
            latent_r2(x, lat, scored=bad)
