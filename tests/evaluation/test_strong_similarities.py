"""The strong evaluation's map similarities: the LENS recall of the worst-case map against the clean one."""

from __future__ import annotations

import math

import torch

from robustattr.evaluation.attribution_robustness import (
    SIMILARITY_FIELDS, STRONG_SIMILARITY_FIELDS, _summary, map_similarities,
)
from robustattr.metrics import lens_recall


def test_recall_is_the_metrics_lens_recall_and_nan_where_not_attacked():
    g = torch.Generator().manual_seed(0)
    s0, s_adv = torch.rand(4, 8, 8, generator=g), torch.rand(4, 8, 8, generator=g)
    attacked = torch.tensor([True, True, False, True])
    three = map_similarities(s0, s_adv, attacked, 10, 3)
    four = map_similarities(s0, s_adv, attacked, 10, 3, recall=True)
    assert len(three) == 3 and len(four) == 4  # the faithful files keep their columns
    for a, b in zip(three, four):
        torch.testing.assert_close(a, b, equal_nan=True)
    expected = lens_recall(s0, s_adv, 10, 3)
    torch.testing.assert_close(four[3][attacked], expected[attacked].to(four[3].dtype))
    assert math.isnan(float(four[3][2]))
    # Recall and precision differ in general: one map's top k near the other's, both ways.
    assert not torch.equal(four[3][attacked], four[1][attacked])
    assert "lens_recall" in STRONG_SIMILARITY_FIELDS and "lens_recall" not in SIMILARITY_FIELDS


def test_summary_means_lens_recall_over_attacked_rows_only_when_recorded():
    base = {"intersection": 0.5, "kendall": 0.5, "spearman": 0.5, "cosine": 0.9, "lens_intersection": 0.6,
            "neighbourhood_kendall": 0.4, "found": 1, "flat_rule_steps": 0, "label_kept": 1}
    rows = [{**base, "correct": 1, "lens_recall": 0.2}, {**base, "correct": 1, "lens_recall": 0.4},
            {**base, "correct": 0, "lens_recall": float("nan")}]
    assert math.isclose(_summary(rows)["lens_recall"], 0.3)
    assert "lens_recall" not in _summary([{k: v for k, v in r.items() if k != "lens_recall"} for r in rows])
