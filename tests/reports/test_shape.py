"""The shape judgement and the reproduction's aims, on rows whose numbers are set by hand."""

from __future__ import annotations

from robustattr.reports import RunRow, format_criteria, judge_aims, judge_shape
from robustattr.reports.paper import paper_result


def _row(method: str, na: float, aa: float, in_: float, co: float, evaluation: str = "faithful",
         dataset: str = "mnist") -> RunRow:
    paper = paper_result(dataset, method)
    return RunRow(run=f"runs/{method}", dataset=dataset, method=method, natural_accuracy=na, adversarial_accuracy=aa,
                  top_k_intersection=in_, kendall=co, paper=dict(zip(("NA", "AA", "IN", "CO"), paper)) if paper else None,
                  evaluation=evaluation)


def _met(criteria, statement: str, evaluation: str = "faithful") -> bool | None:
    (c,) = [c for c in criteria if c.statement == statement and c.evaluation == evaluation]
    return c.met


def test_the_paper_s_own_numbers_show_its_shape() -> None:
    rows = [_row(m, *paper_result("mnist", m)) for m in ("NATURAL", "Madry", "IG-NORM", "IG-SUM-NORM")]
    criteria = judge_shape(rows)
    assert len(criteria) == 8 and all(c.met for c in criteria)
    assert "8 of 8 judged criteria met" in format_criteria(criteria)


def test_each_criterion_can_fail_on_its_own() -> None:
    rows = [_row("NATURAL", 0.99, 0.0, 0.50, 0.20), _row("Madry", 0.98, 0.9, 0.80, 0.25),
            _row("IG-NORM", 0.92, 0.7, 0.64, 0.30), _row("IG-SUM-NORM", 0.98, 0.8, 0.70, 0.27)]
    criteria = judge_shape(rows)
    assert _met(criteria, "IG-NORM IN − NATURAL IN") is False  # +14 < +15
    assert _met(criteria, "IG-NORM CO − NATURAL CO") is True
    assert _met(criteria, "NATURAL NA − IG-NORM NA") is False  # 7 points > 6
    assert _met(criteria, "IG-SUM-NORM IN − NATURAL IN") is True
    assert _met(criteria, "IG-SUM-NORM CO − NATURAL CO") is False  # +0.07 < +0.08
    assert _met(criteria, "Madry IN between NATURAL and the robust objectives") is False  # above both
    assert _met(criteria, "Madry CO between NATURAL and the robust objectives") is True


def test_evaluations_are_judged_apart_and_missing_numbers_are_not_judged() -> None:
    rows = [_row("NATURAL", 0.99, 0.0, 0.50, 0.20), _row("IG-NORM", 0.98, 0.7, 0.70, 0.30),
            _row("NATURAL", 0.99, 0.0, 0.40, 0.15, "strong"), _row("IG-NORM", 0.98, 0.7, None, 0.25, "strong")]
    criteria = judge_shape(rows)
    assert _met(criteria, "IG-NORM IN − NATURAL IN") is True
    assert _met(criteria, "IG-NORM IN − NATURAL IN", "strong") is None
    assert _met(criteria, "IG-NORM CO − NATURAL CO", "strong") is True
    assert "not judged" in format_criteria(criteria)


def test_aims_use_the_dataset_s_aa_target_and_the_paper_s_na_cost() -> None:
    rows = [_row("NATURAL", 0.99, 0.0, 0.5, 0.2), _row("Madry", 0.98, 0.79, 0.6, 0.2),
            _row("IG-NORM", 0.95, 0.61, 0.7, 0.3),  # cost 4.0 points; allowed 0.43 + 3 = 3.43
            _row("NATURAL", 0.90, 0.0, 0.4, 0.4, dataset="fashion-mnist"),
            _row("Madry", 0.80, 0.71, 0.6, 0.5, dataset="fashion-mnist")]
    aims = {(c.dataset, c.statement): c.met for c in judge_aims(rows)}
    assert aims[("mnist", "Madry AA")] is False and aims[("fashion-mnist", "Madry AA")] is True
    assert aims[("mnist", "IG-NORM AA")] is True
    assert aims[("mnist", "NATURAL NA − IG-NORM NA")] is False
