"""The benchmark report: intervals against a direct numpy computation, the Pareto set, the verdict,
and the table and frontier from fixture unit folders written here (no model involved)."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from robustattr.reports.benchmark import (
    train_cost_seconds,
    BenchmarkRow, Estimate, binomial_estimate, bootstrap_estimate, collect_at_cost_rows, collect_rows, draw_frontier,
    format_at_cost_table, format_paired_table, format_report, paired_difference, pareto_optimal, verdict,
)


def test_binomial_standard_error():
    e = binomial_estimate(0.9, 10_000)
    assert e.se == pytest.approx(math.sqrt(0.9 * 0.1 / 10_000))
    assert (e.low, e.high) == pytest.approx((0.9 - 1.96 * e.se, 0.9 + 1.96 * e.se))
    assert e.format(100, 2) == "90.00 ± 0.30"
    assert binomial_estimate(0.5, 0).n == 0


def test_bootstrap_matches_numpy_and_is_seeded():
    values = [0.1, 0.5, 0.9, 0.3, float("nan"), 0.7, 0.2]
    e = bootstrap_estimate(values, seed=3, resamples=500)
    x = np.array([v for v in values if not math.isnan(v)])
    means = x[np.random.default_rng(3).integers(0, x.size, size=(500, x.size))].mean(axis=1)
    assert e.value == pytest.approx(x.mean()) and e.n == 6
    assert (e.low, e.high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    assert bootstrap_estimate(values, seed=3, resamples=500) == e
    assert bootstrap_estimate([float("nan")]).n == 0


def test_pareto_on_a_hand_made_example():
    # cost, score: A (1, .2) B (2, .5) C (3, .4: dominated by B) D (4, .5: dominated by B) E (8, .9) F (None)
    costs = [1, 2, 3, 4, 8, None]
    scores = [0.2, 0.5, 0.4, 0.5, 0.9, 1.0]
    assert pareto_optimal(costs, scores) == [True, True, False, False, True, False]
    assert pareto_optimal([1, 1], [0.5, 0.5]) == [True, True]  # equal points do not dominate each other


def _est(v, half=0.02, n=100):
    return Estimate(v, v - half, v + half, n)


def _row(method, cost, strong_in, strong_co):
    na = binomial_estimate(0.99, 10_000)
    return BenchmarkRow(method, method.upper(), na, na, _est(strong_in), _est(strong_in), _est(strong_co),
                        _est(strong_co), _est(0.9), _est(0.5), _est(0.4), cost, 0.1, 0.5, 1000, None)


def test_verdict_match_and_closest():
    ref = _row("ig-sum-norm", 4.0, 0.60, 0.30)
    cheap_good = _row("lga", 0.9, 0.59, 0.29)  # within the interval (low 0.58, 0.28), at 22.5 % of the cost
    cheap_bad = _row("ssr", 0.5, 0.50, 0.25)
    costly = _row("igr", 2.0, 0.70, 0.40)  # better, but at 50 % of the cost
    v = verdict([ref, cheap_good, cheap_bad, costly])
    assert v.matches == ("lga",) and v.closest is None
    assert set(v.pareto_co) == {"ssr", "lga", "igr"} and set(v.pareto_in) == {"ssr", "lga", "igr"}
    v = verdict([ref, cheap_bad, costly])
    assert v.matches == () and v.closest == ("ssr", pytest.approx(0.08), pytest.approx(0.03))
    assert verdict([ref, costly]).closest is None
    assert verdict([cheap_bad]).reference is None
    assert v.pareto_co_with_at_cost == v.pareto_in_with_at_cost == ()


def test_verdict_counts_cost_matched_units_in_their_own_pareto_sets():
    ref = _row("ig-sum-norm", 4.0, 0.60, 0.30)
    full = _row("lga", 4.5, 0.62, 0.28)  # dominated on CO by the reference
    cut = _row("lga@900", 0.9, 0.61, 0.27)  # cheap: on both frontiers once counted
    v = verdict([ref, full], at_cost=[cut])
    assert set(v.pareto_co) == {"ig-sum-norm"} and set(v.pareto_in) == {"ig-sum-norm", "lga"}
    assert set(v.pareto_co_with_at_cost) == {"lga@900", "ig-sum-norm"}
    assert set(v.pareto_in_with_at_cost) == {"lga@900", "lga"}


def _write_unit(folder: Path, method: str, *, cost: float | None, rows: list[tuple], certified: list[float]) -> None:
    folder.mkdir(parents=True)
    unit = {"method": method, "init_from": None,
            "cost": {"total_train_core_seconds": cost, "train_steps": 100, "seconds_per_step": 0.5,
                     "eval_core_seconds": {"eval_pgd": 36.0, "eval_attribution_strong": 360.0, "eval_certify": 3.6}}}
    (folder / "unit.json").write_text(json.dumps(unit))
    (folder / "eval_pgd.json").write_text(json.dumps({"natural_accuracy": 0.98, "adversarial_accuracy": 0.5,
                                                      "num_examples": 10_000}))
    with open(folder / "eval_attribution_strong_examples.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "correct", "intersection", "kendall", "label_kept", "cosine", "lens_recall"])
        w.writerows(rows)
    with open(folder / "eval_certify_examples.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "correct", "certified_top_k_intersection"])
        w.writerows([(i, 1, c) for i, c in enumerate(certified)] + [(len(certified), 0, "nan")])


def test_report_from_unit_folders(tmp_path):
    rows = [(0, 1, 0.4, 0.2, 1, 0.9, 0.5), (1, 1, 1.0, 1.0, 0, 1.0, 1.0), (2, 0, "nan", "nan", 0, "nan", "nan"),
            (3, 1, 0.6, 0.4, 1, 0.8, 0.7)]
    _write_unit(tmp_path / "natural", "natural", cost=360.0, rows=rows, certified=[0.3, 0.5])
    _write_unit(tmp_path / "ig-sum-norm", "ig-sum-norm", cost=36_000.0, rows=rows, certified=[0.6])
    (tmp_path / "madry").mkdir()  # not finished: no unit.json, left out
    table = collect_rows([tmp_path / m for m in ("natural", "madry", "ig-sum-norm")])
    assert [r.method for r in table] == ["natural", "ig-sum-norm"]
    nat = table[0]
    assert nat.strong_in.value == pytest.approx((0.4 + 1.0 + 0.6) / 3)  # failures scored as 1
    assert nat.strong_in_dropped.value == pytest.approx(0.5)  # the label-keeping failure dropped
    assert nat.strong_co_dropped.value == pytest.approx(0.3) and nat.lens_recall.n == 3
    assert nat.certified_in.value == pytest.approx(0.4) and nat.train_core_hours == pytest.approx(0.1)
    assert nat.natural_accuracy.se == pytest.approx(math.sqrt(0.98 * 0.02 / 10_000))
    text = format_report(table, "mnist", notes=["- a note"])
    assert "| NATURAL | 98.00 ± 0.14 | 50.00 ± 0.50 |" in text
    assert "| IG-SUM-NORM |" in text and "10.000 |" in text and "- a note" in text
    assert "Closest: NATURAL" in text or "Reaches IG-SUM-NORM" in text
    assert draw_frontier(table, tmp_path / "frontier.png").stat().st_size > 1000


def test_cost_axis_is_cpu_time_not_wall_time_under_load(tmp_path):
    # A unit that shared its core with a third process: 3,473 s of wall × threads, 3,088 s of CPU time.
    loaded = {"train_core_seconds": 3473.1, "train_cpu_seconds": 3088.3, "init_from_train_core_seconds": 72.2,
              "total_train_core_seconds": 3545.3}
    assert train_cost_seconds(loaded) == pytest.approx(3088.3 + 72.2)  # before init's CPU time was recorded
    assert train_cost_seconds({**loaded, "init_from_train_cpu_seconds": 72.1}) == pytest.approx(3160.4)
    assert train_cost_seconds({**loaded, "total_train_cpu_seconds": 3160.0}) == 3160.0
    assert train_cost_seconds({"total_train_core_seconds": 360.0}) == 360.0  # only wall time recorded
    assert train_cost_seconds({}) is None
    rows = [(0, 1, 0.4, 0.2, 1, 0.9, 0.5)]
    _write_unit(tmp_path / "madry", "madry", cost=3545.3, rows=rows, certified=[0.3])
    unit = json.loads((tmp_path / "madry" / "unit.json").read_text())
    unit["cost"].update(loaded, init_from_train_cpu_seconds=72.1, total_train_cpu_seconds=3160.4)
    (tmp_path / "madry" / "unit.json").write_text(json.dumps(unit))
    (row,) = collect_rows([tmp_path / "madry"])
    assert row.train_core_hours == pytest.approx(3160.4 / 3600)
    assert row.train_wall_core_hours == pytest.approx(3545.3 / 3600)
    assert "training wall × threads 0.985 core-h" in format_report([row], "mnist")


def test_at_cost_rows_carry_the_step_count_apart_from_the_method_name(tmp_path):
    rows = [(0, 1, 0.4, 0.2, 1, 0.9, 0.5)]
    _write_unit(tmp_path / "lga", "lga", cost=700.0, rows=rows, certified=[0.3])
    (row,) = collect_at_cost_rows([tmp_path / "lga"])
    assert (row.method, row.display, row.method_display) == ("lga@100", "LGA (100 steps)", "LGA")
    # The method column names the method only, also when its display name has a comma in it.
    table = format_at_cost_table([row, replace(row, method_display="LGA, both gradients")])
    assert "| LGA | 100 | 0.194 |" in table and "| LGA, both gradients | 100 |" in table
    # Outside the Pareto sets of the full units, but named among the points when they are counted.
    _write_unit(tmp_path / "madry", "madry", cost=3600.0, rows=[(0, 1, 0.3, 0.1, 1, 0.9, 0.5)], certified=[0.3])
    full = collect_rows([tmp_path / "madry"])
    text = format_report(full, "mnist", at_cost=[row])
    assert "- Pareto-optimal for (training cost, strong CO): Madry\n" in text
    assert "Counting the cost-matched units as points too: Pareto-optimal for (cost, strong CO): LGA (100 steps);" in text


def test_paired_difference_sees_a_shift_the_unpaired_intervals_hide(tmp_path):
    # Two units on the same 40 images: B is A lowered by 0.01 in CO on every image, the images themselves
    # spread widely. The units' own intervals overlap; the paired difference's does not hold 0.
    rng = np.random.default_rng(3)
    base = rng.uniform(0.1, 0.9, size=(40, 2))
    rows_a = [(i, 1, base[i, 0], base[i, 1], 1, 0.9, 0.5) for i in range(40)]
    rows_b = [(i, 1, base[i, 0], base[i, 1] - 0.01, 1, 0.9, 0.5) for i in range(40)] + [(40, 1, 0.5, 0.5, 1, 0.9, 0.5)]
    _write_unit(tmp_path / "ig-sum-norm", "ig-sum-norm", cost=3600.0, rows=rows_a, certified=[0.3])
    _write_unit(tmp_path / "lga", "lga", cost=800.0, rows=rows_b, certified=[0.3])
    ref, lga = collect_rows([tmp_path / "ig-sum-norm", tmp_path / "lga"])
    assert lga.strong_co.low < ref.strong_co.value < lga.strong_co.high  # unpaired: the intervals overlap
    d_in, d_co = paired_difference(lga, ref)
    assert d_in.n == d_co.n == 40  # image 40 is lga's only: left out
    assert d_in.value == pytest.approx(0.0) and d_in.low == pytest.approx(0.0) and d_in.high == pytest.approx(0.0)
    assert d_co.value == pytest.approx(-0.01) and d_co.high < 0.0
    table = format_paired_table([ref, lga], ref)
    assert "| LGA | 40 |" in table and "IG-SUM-NORM |" not in table.splitlines()[2]
    report = format_report([ref, lga], "mnist")
    assert "## Against IG-SUM-NORM, image by image" in report and "paired over the 40 images" in report
