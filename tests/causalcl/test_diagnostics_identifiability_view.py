"""How identifiability is shown: one latent × (role, read-out, trained, random, chance) table, and a plot with
accuracy and R² on separate axes, chance ticks, and negative R² visible."""

import matplotlib.pyplot as plt
import pandas as pd

from causalcl.diagnostics.identifiability import R2_FLOOR, _plot, regression_kind, table_html


def _tables():
    trained = pd.DataFrame({"latent": ["cls", "scale", "bg_texture", "rotation"],
                            "kind": ["accuracy", "r2", "accuracy", "r2"], "score": [0.5, 0.3, 0.2, -0.4],
                            "chance": [0.13, float("nan"), 0.16, float("nan")],
                            "role": ["content", "content", "style", "content"], "model": ["linear"] * 4})
    random = trained.copy()
    random["score"] = [0.2, -346.0, 0.25, -0.2]
    return {"trained": trained, "random": random}


def test_table_has_one_row_per_latent_with_units():
    values = {"trained": {"cls": {"score": 0.5, "metric": "accuracy", "role": "content", "chance": 0.13},
                          "scale": {"score": -0.4, "metric": "r2", "role": "content"}},
              "random": {"cls": {"score": 0.2, "metric": "accuracy"}, "scale": {"score": -346.0, "metric": "r2"}}}
    page = table_html(values)
    assert "<th>latent</th><th>role</th><th>read-out</th><th>trained</th><th>random encoder</th><th>chance</th>" in page
    assert ("<tr><td>cls</td><td>content</td><td>accuracy</td><td class='num'>50.0%</td><td class='num'>20.0%</td>"
            "<td class='num'>13.0%</td></tr>") in page
    assert "<td>R²</td><td class='num'>-0.400</td><td class='num'>-346.000</td><td class='num'>0.000</td>" in page


def test_plot_separates_accuracy_and_r2_and_shows_negative_r2():
    fig = _plot(_tables())
    acc, r2 = fig.axes[:2]
    assert acc.get_title() == "Categorical latents: accuracy" and r2.get_title() == "Continuous latents: R²"
    assert acc.get_xlim() == (0.0, 1.0)
    assert r2.get_xlim()[0] == R2_FLOOR  # negative R² visible down to the floor
    widths = sorted(round(p.get_width(), 3) for p in r2.patches)
    assert widths[0] == R2_FLOOR and -0.4 in widths and -0.2 in widths  # not clipped at 0
    assert any(t.get_text() == "-346" for t in r2.texts)  # past the floor: labelled with its value
    assert len(acc.lines) == 2  # a chance tick per categorical latent
    plt.close(fig)


def test_auto_read_out_is_least_squares_with_enough_rows_per_feature_else_ridge():
    assert regression_kind(2000, 128) == "linear"  # shapes' test split: 1000 fit rows for 128 features
    assert regression_kind(500, 128) == "ridge"  # moving_shapes' clips: 250 fit rows
    assert regression_kind(1280, 128) == "linear" and regression_kind(1278, 128) == "ridge"  # the 5-per-feature edge
    assert regression_kind(500, 128, "linear") == "linear" and regression_kind(2000, 128, "kernel") == "kernel"


def test_table_names_the_ridge_read_out():
    values = {"kind": "ridge", "trained": {"speed": {"score": 0.1, "metric": "r2", "role": "style"}},
              "random": {"speed": {"score": -0.01, "metric": "r2"}}}
    assert "<td>R² (ridge)</td><td class='num'>0.100</td><td class='num'>-0.010</td>" in table_html(values)


def test_table_marks_the_latents_read_on_the_circle():
    values = {"kind": "linear", "circular": ["fg_hue"],
              "trained": {"fg_hue": {"score": 0.9, "metric": "r2", "role": "style"},
                          "scale": {"score": 0.5, "metric": "r2", "role": "content"}},
              "random": {}}
    page = table_html(values)
    assert "<td>fg_hue</td><td>style</td><td>R², on the circle</td>" in page
    assert "<td>scale</td><td>content</td><td>R²</td>" in page


def test_every_scm_dataset_names_periods_of_its_own_continuous_latents():
    import math

    from causalcl.data.digits import DigitsDataset
    from causalcl.data.moving_shapes import MovingShapesDataset
    from causalcl.data.shapes import ShapesDataset

    for cls in (ShapesDataset, DigitsDataset, MovingShapesDataset):
        assert set(cls.latent_periods) <= set(cls.latent_roles), cls.__name__
        assert {"fg_hue", "bg_hue"} <= set(cls.latent_periods)
        assert all(p in (1.0, 2 * math.pi) for p in cls.latent_periods.values())


def test_table_marks_the_latents_read_up_to_a_symmetry():
    values = {"kind": "linear", "circular": ["rotation", "fg_hue"], "symmetric": {"rotation": "cls"},
              "kinds": {"rotation": "ridge"},
              "trained": {"rotation": {"score": 0.7, "metric": "r2", "role": "content"},
                          "fg_hue": {"score": 0.9, "metric": "r2", "role": "style"}},
              "random": {}}
    page = table_html(values)
    assert "<td>rotation</td><td>content</td><td>R² (ridge), on the circle, per cls up to its symmetry</td>" in page
    assert "<td>fg_hue</td><td>style</td><td>R², on the circle</td>" in page


def test_symmetric_latent_with_fewer_fit_rows_is_read_out_apart_with_its_own_kind():
    """Per class there are fewer fit rows: the symmetric latent gets ridge while the others keep least squares,
    and its score is the one ``latent_r2`` gives it alone with ridge."""
    import numpy as np

    from causalcl.diagnostics.identifiability import _read_out
    from evaluations.identifiability import latent_r2

    rng = np.random.default_rng(3)
    n = 600
    cls, rot = rng.integers(0, 4, n), rng.uniform(0, 2 * np.pi, n)
    x = np.c_[np.cos(2 * rot), np.sin(2 * rot), cls, rng.normal(size=(n, 3))] + 0.05 * rng.normal(size=(n, 6))
    latents = {"cls": cls, "rotation": rot, "scale": x[:, 3] + 0.1 * rng.normal(size=n)}
    symmetries = {"rotation": ("cls", {0: 2, 1: 2, 2: 2, 3: 2})}
    kinds = {"all": "linear", "rotation": "ridge"}
    table = _read_out(x, latents, kinds, None, {"rotation": 2 * np.pi}, symmetries, 0).set_index("latent")
    alone = latent_r2(x, {"rotation": rot, "cls": cls}, kind="ridge", circular={"rotation": 2 * np.pi},
                      symmetry=symmetries).set_index("latent")
    assert table.loc["rotation", "model"] == "ridge" and table.loc["scale", "model"] == "linear"
    assert table.loc["rotation", "score"] == alone.loc["rotation", "score"] > 0.9
    same = _read_out(x, latents, {"all": "ridge", "rotation": "ridge"}, None, {"rotation": 2 * np.pi}, symmetries,
                     0).set_index("latent")
    assert same.loc["rotation", "score"] == alone.loc["rotation", "score"]  # one call when the kinds agree


def test_shape_datasets_name_the_symmetry_of_the_rotation():
    from causalcl.data.moving_shapes import MovingShapesDataset
    from causalcl.data.shapes import SHAPE_SYMMETRY, ShapesDataset

    for cls in (ShapesDataset, MovingShapesDataset):
        assert cls.latent_symmetries == {"rotation": ("cls", SHAPE_SYMMETRY)}
        assert set(cls.latent_symmetries) <= set(cls.latent_periods)
