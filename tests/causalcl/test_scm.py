"""causalcl.causal.SCM: sampling, do() semantics, counterfactuals, graph checks, repr."""

from __future__ import annotations

import numpy as np
import pytest

from causalcl.causal import SCM, Variable, uniform_choice


def _normal(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=n)


def chain() -> SCM:
    """z -> x -> y, z -> y, plus an isolated w."""
    return (
        SCM()
        .add("z", noise=_normal)
        .add("x", parents=["z"], mechanism=lambda p, u: 2 * p["z"] + u, noise=_normal)
        .add("y", parents=["x", "z"], mechanism=lambda p, u: p["x"] - p["z"] + 0.1 * u, noise=_normal)
        .add("w", noise=_normal)
    )


def test_sample_shapes_and_determinism():
    scm = chain()
    a, b = scm.sample(100, seed=3), scm.sample(100, seed=3)
    assert set(a) == {"z", "x", "y", "w"}
    for k in a:
        assert a[k].shape == (100,)
        np.testing.assert_array_equal(a[k], b[k])
    c = scm.sample(100, seed=4)
    assert not np.allclose(a["z"], c["z"])
    u = scm.sample_noise(100, seed=3)
    np.testing.assert_allclose(a["x"], 2 * u["z"] + u["x"])


def test_do_returns_new_scm_and_original_is_untouched():
    scm = chain()
    before = scm.sample(50, seed=0)
    ivd = scm.do(x=1.5)
    assert ivd is not scm
    assert scm.interventions == {}
    after = scm.sample(50, seed=0)
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
    assert ("z", "x") in scm.graph()


def test_do_semantics_same_noise():
    scm = chain()
    u = scm.sample_noise(200, seed=1)
    factual = scm.evaluate(u)
    cf = scm.do(x=1.5).evaluate(u)
    np.testing.assert_array_equal(cf["x"], np.full(200, 1.5))  # intervened: constant
    np.testing.assert_array_equal(cf["z"], factual["z"])  # non-descendants keep their values
    np.testing.assert_array_equal(cf["w"], factual["w"])
    assert not np.allclose(cf["y"], factual["y"])  # descendant changes
    np.testing.assert_allclose(cf["y"], 1.5 - factual["z"] + 0.1 * u["y"])
    # evaluate(interventions=...) is the same as do(...).evaluate
    cf2 = scm.evaluate(u, interventions={"x": 1.5})
    for k in cf:
        np.testing.assert_array_equal(cf[k], cf2[k])
    assert scm.descendants("x") == {"y"}
    assert scm.descendants("z") == {"x", "y"}


def test_do_with_same_seed_keeps_non_descendants():
    scm = chain()
    a = scm.sample(64, seed=7)
    b = scm.do(x=0.0).sample(64, seed=7)
    np.testing.assert_array_equal(a["z"], b["z"])
    np.testing.assert_array_equal(a["w"], b["w"])


def test_do_array_and_random_interventions():
    scm = chain()
    vals = np.arange(10.0)
    out = scm.do(x=vals).sample(10, seed=0)
    np.testing.assert_array_equal(out["x"], vals)
    with pytest.raises(ValueError, match="expected shape"):
        scm.do(x=vals).sample(11, seed=0)
    rnd = scm.do(z=uniform_choice(4)).sample(1000, seed=0)
    assert set(np.unique(rnd["z"])) == {0, 1, 2, 3}
    with pytest.raises(TypeError, match="stochastic"):
        scm.evaluate(scm.sample_noise(5), interventions={"z": uniform_choice(3)})


def test_graph_edges_removed_by_do():
    scm = chain()
    edges = scm.graph()
    assert set(edges) == {("z", "x"), ("x", "y"), ("z", "y")}
    assert set(scm.do(y=0.0).graph()) == {("z", "x")}
    assert scm.do(y=0.0).parents("y") == ()
    assert scm.topological_order().index("z") < scm.topological_order().index("x")


def test_cycle_and_unknown_parent_errors():
    cyc = (
        SCM()
        .add("a", parents=["c"], mechanism=lambda p, u: p["c"])
        .add("b", parents=["a"], mechanism=lambda p, u: p["a"])
        .add("c", parents=["b"], mechanism=lambda p, u: p["b"])
    )
    with pytest.raises(ValueError, match="cycle"):
        cyc.sample(3)
    with pytest.raises(ValueError, match="cycle"):
        SCM([Variable("a", ("b",), lambda p, u: p["b"]), Variable("b", ("a",), lambda p, u: p["a"])])
    # do() on a cycle member breaks the cycle
    ok = cyc.do(a=1.0)
    assert ok.sample(3)["c"].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="unknown parent"):
        SCM().add("x", parents=["nope"], mechanism=lambda p, u: u, noise=_normal).sample(2)
    with pytest.raises(ValueError, match="duplicate"):
        SCM().add("x", noise=_normal).add("x", noise=_normal)
    with pytest.raises(ValueError, match="no parents and no noise"):
        SCM().add("x", mechanism=lambda p, u: 1.0)
    with pytest.raises(KeyError, match="unknown variable"):
        chain().do(q=1)


def test_repr_lists_variables_parents_interventions():
    text = repr(chain().do(x=2.0, z=uniform_choice(3)))
    assert "SCM(4 variables, 2 interventions)" in text
    assert "y" in text and "<- x, z" in text
    assert "x" in text and "do(2.0)" in text and "cut: z" in text
    assert "uniform{0..2}" in text
    assert "(root)" in repr(chain())


def test_mechanism_shape_checked():
    bad = SCM().add("x", mechanism=lambda p, u: u[:2], noise=_normal)
    with pytest.raises(ValueError, match="expected shape"):
        bad.sample(5)
