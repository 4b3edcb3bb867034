"""The probe chart carries the random encoder's line and the chance line."""

import matplotlib.pyplot as plt

from causalcl.diagnostics.plots import probe_bars


def test_probe_chart_has_random_encoder_and_chance_lines():
    results = {"linear_probe": {"accuracy": 0.35, "confounded_fit_accuracy": 0.15},
               "baselines": {"random_encoder": {"linear_probe": {"accuracy": 0.18, "confounded_fit_accuracy": 0.16}},
                             "raw_pixels": {"linear_probe": {"accuracy": 0.12, "confounded_fit_accuracy": 0.11}}}}
    fig = probe_bars(results, chance=0.125)
    ax = fig.axes[0]
    levels = sorted(round(line.get_ydata()[0], 3) for line in ax.lines)
    assert levels == [12.5, 18.0]
    labels = ax.get_legend_handles_labels()[1]
    assert "random encoder, fit on probe (18.0%)" in labels and "chance (12.5%)" in labels
    plt.close(fig)
    fig = probe_bars(results)  # no chance known: the random encoder's line alone
    assert len(fig.axes[0].lines) == 1
    plt.close(fig)


def test_corruption_heatmap_is_one_readable_grid():
    import numpy as np
    import pandas as pd

    from causalcl.diagnostics.robustness import corruption_heatmap
    from evaluations.robustness import CorruptionResult

    table = pd.DataFrame(np.linspace(0.1, 0.9, 19 * 5).reshape(19, 5), index=[f"c{i}" for i in range(19)],
                         columns=[1, 2, 3, 4, 5])
    result = CorruptionResult(table=table, clean_error=0.5, mean_error=0.5, preset="cifar", n_images=32,
                              renditions={"pencil": 0.7})
    fig = corruption_heatmap(result)
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and len(ax.get_yticklabels()) == 19 and len(ax.texts) == 19 * 5
    assert ax.texts[0].get_text() == "10" and ax.get_title().endswith("clean 50.0%")
    width, height = fig.get_size_inches()
    assert width < 10 and height < 10  # one grid, not a six-panel strip
    plt.close(fig)
