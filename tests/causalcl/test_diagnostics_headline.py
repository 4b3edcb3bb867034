"""The first card of a single run (``causalcl.diagnostics.headline``): rows, verdict and the under-trained note."""

import torch

from causalcl.diagnostics.headline import build_card, majority_rate, verdict

RESULTS = {
    "linear_probe": {"accuracy": 0.35, "confounded_fit_accuracy": 0.15, "spurious_gap": 0.20},
    "baselines": {"random_encoder": {"linear_probe": {"accuracy": 0.18, "confounded_fit_accuracy": 0.16,
                                                      "spurious_gap": 0.02}},
                  "raw_pixels": {"linear_probe": {"accuracy": 0.12, "confounded_fit_accuracy": 0.11,
                                                  "spurious_gap": 0.01}, "what": "raw pixels"}},
    "knn": {"accuracy": 0.3},
    "grounding": {"probe": {"energy_in_mask": 0.4, "energy_baseline": 0.2}},
    "identifiability": {"trained": {"cls": {"score": 0.5, "metric": "accuracy", "chance": 0.13},
                                    "scale": {"score": -0.3, "metric": "r2"}},
                        "random": {"cls": {"score": 0.2, "metric": "accuracy"}}},
}
RUN = {"method": "simclr", "dataset": "shapes", "steps": 450, "total_steps": 450, "stopped_early": False}


def test_rows_put_each_metric_against_its_baselines():
    card = build_card(RESULTS, RUN, chance=0.125)
    rows = {r.label: r for r in card.rows}
    content = rows["content probe accuracy"]
    assert (content.trained, content.random, content.raw, content.chance, content.unit) == (0.35, 0.18, 0.12, 0.125,
                                                                                            "%")
    assert rows["spurious gap"].unit == "points" and rows["spurious gap"].chance == 0.0
    assert rows["kNN accuracy"].random is None and rows["kNN accuracy"].chance == 0.125
    assert rows["Grad-CAM energy in the object mask"].chance == 0.2
    assert (rows["class read-out"].trained, rows["class read-out"].random, rows["class read-out"].chance) == (
        0.5, 0.2, 0.13)
    assert "BG-gap (mixed-same − mixed-rand)" not in rows  # not diagnosed
    assert card.plots == ("loss_curve",) and card.findings_section == "run" and card.warning is None


def test_verdict_reads_against_the_random_encoder():
    text = verdict(RESULTS, "simclr", "shapes", 450)
    assert text.startswith("simclr, trained for 450 steps on shapes, reaches 35.0% on the content probe, 17.0 points "
                           "above a random encoder")
    assert "spurious gap is 20.0 points (random encoder: 2.0)" in text
    worse = {**RESULTS, "linear_probe": {"accuracy": 0.14, "confounded_fit_accuracy": 0.13, "spurious_gap": 0.01}}
    text = verdict(worse, "byol", "shapes", 450)
    assert "4.0 points below a random encoder" in text and "Training added no linearly decodable content" in text
    assert "no linear probe was run" in verdict({}, "byol", "shapes", 3)


def test_a_run_cut_by_the_time_limit_is_marked_under_trained():
    card = build_card(RESULTS, {**RUN, "steps": 72, "stopped_early": True}, chance=0.125, time_limit_s=330)
    assert card.warning.startswith("The time limit of 330 s stopped training at step 72 of 450 planned")
    assert card.findings_title == "Findings (from an under-trained encoder)"


def test_majority_rate():
    class Labelled:
        labels = torch.tensor([0, 0, 1, 2])

    assert majority_rate(Labelled()) == 0.5
    assert majority_rate(object()) is None
