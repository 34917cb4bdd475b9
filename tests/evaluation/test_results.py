"""The resumable per-example CSV and the atomic JSON writer (no model involved)."""

from __future__ import annotations

import json
import math

from robustattr.evaluation.results import ExampleLog, settings_digest, write_json_atomic

SETTINGS = {"attribution_attack_method": "topK", "epsilon": 0.3}


def test_rows_round_trip_exactly(tmp_path):
    log = ExampleLog(tmp_path / "ex.csv", SETTINGS)
    assert log.open() == {}
    log.append([(0, 7, True, 0.1 + 0.2, 1 / 3, -0.0, True, 3), (1, 2, False, math.nan, math.nan, math.nan, False, 0)])
    rows = ExampleLog(tmp_path / "ex.csv", SETTINGS).open()
    assert rows[0] == {"index": 0, "label": 7, "correct": 1, "intersection": 0.1 + 0.2,
                       "spearman": 1 / 3, "kendall": -0.0, "found": 1, "flat_rule_steps": 3}
    assert rows[1]["correct"] == 0 and math.isnan(rows[1]["kendall"])


def test_a_line_cut_by_a_crash_is_dropped_and_recomputed(tmp_path):
    path = tmp_path / "ex.csv"
    log = ExampleLog(path, SETTINGS)
    log.open()
    log.append([(0, 1, 1, 0.5, 0.5, 0.5, 1, 0)])
    with open(path, "a") as fh:
        fh.write("1,3,1,0.2")  # the process died mid-write
    again = ExampleLog(path, SETTINGS)
    assert set(again.open()) == {0}
    again.append([(1, 3, 1, 0.25, 0.5, 0.75, 0, 0)])
    assert path.read_text().splitlines()[-1] == "1,3,1,0.25,0.5,0.75,0,0"
    assert set(ExampleLog(path, SETTINGS).open()) == {0, 1}


def test_other_settings_move_the_old_file_aside(tmp_path):
    path = tmp_path / "ex.csv"
    ExampleLog(path, SETTINGS).open()
    ExampleLog(path, SETTINGS).append([(0, 1, 1, 0.5, 0.5, 0.5, 1, 0)])
    other = SETTINGS | {"epsilon": 0.1}
    assert ExampleLog(path, other).open() == {}
    stale = tmp_path / f"ex.stale-{settings_digest(SETTINGS)[:12]}.csv"
    assert stale.exists() and "0,1,1,0.5" in stale.read_text()
    assert json.loads(stale.with_suffix(".settings.json").read_text())["settings"] == SETTINGS
    assert json.loads(path.with_suffix(".settings.json").read_text())["settings"] == other


def test_json_is_atomic_and_nan_becomes_null(tmp_path):
    write_json_atomic(tmp_path / "r.json", {"kendall": math.nan, "box": (1, 2)})
    assert json.loads((tmp_path / "r.json").read_text()) == {"kendall": None, "box": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_strong_rows_keep_the_label_flag_as_an_integer_and_old_results_stay_readable(tmp_path):
    from robustattr.evaluation.results import ATTRIBUTION_RESULT, EXAMPLE_FIELDS, read_result

    fields = EXAMPLE_FIELDS + ("neighbourhood_kendall", "label_kept", "worst_kendall_member", "at_step_1.kendall")
    log = ExampleLog(tmp_path / "s.csv", SETTINGS, fields)
    log.open()
    log.append([(0, 7, True, 0.5, 0.4, 0.3, True, 0, 0.2, False, "topK", 0.35)])
    row = ExampleLog(tmp_path / "s.csv", SETTINGS, fields).open()[0]
    assert row["label_kept"] == 0 and row["worst_kendall_member"] == "topK" and row["at_step_1.kendall"] == 0.35
    # A strong result written before issue 22 (lens_kendall, no label-keeping keys) is still read.
    old = {"top_k_intersection": 0.5, "kendall": 0.3, "lens_kendall": 0.4, "num_examples": 2,
           "attribution_attack_method": "strong", "dataset": "mnist"}
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert read_result(tmp_path / "old.json", ATTRIBUTION_RESULT)["lens_kendall"] == 0.4
    new = {**old, "num_no_label_keeping": 1, "top_k_intersection_dropped": 0.4, "kendall_dropped": 0.2}
    (tmp_path / "new.json").write_text(json.dumps(new))
    assert read_result(tmp_path / "new.json", ATTRIBUTION_RESULT)["kendall_dropped"] == 0.2


def test_same_settings_but_new_columns_start_over(tmp_path):
    """A file written before a column was added (same settings digest, old header) is moved aside:
    rows appended under the old header could never be read back."""
    path = tmp_path / "ex.csv"
    old = ExampleLog(path, SETTINGS)
    old.open()
    old.append([(0, 1, 1, 0.5, 0.5, 0.5, 1, 0)])
    from robustattr.evaluation.results import EXAMPLE_FIELDS

    wider = ExampleLog(path, SETTINGS, EXAMPLE_FIELDS + ("lens_recall",))
    assert wider.open() == {}
    assert path.read_text().splitlines() == [",".join(EXAMPLE_FIELDS + ("lens_recall",))]
    wider.append([(0, 1, 1, 0.5, 0.5, 0.5, 1, 0, 0.75)])
    assert ExampleLog(path, SETTINGS, EXAMPLE_FIELDS + ("lens_recall",)).open()[0]["lens_recall"] == 0.75
