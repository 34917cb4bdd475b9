"""The paired script takes each unit's per-image worst case over strong and the independent attack,
on the images both units attacked, and its interval is the report's paired bootstrap."""
import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from robustattr.reports.benchmark import bootstrap_estimate

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "paired_with_independent.py"


def _write(folder: Path, name: str, header: list[str], rows: list[list]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return folder


def test_worst_case_over_both_attacks_on_the_common_images(tmp_path):
    strong_header = ["index", "correct", "intersection", "kendall"]
    independent_header = ["index", "intersection", "kendall", "label_kept"]
    # unit: image 3 misclassified (not attacked), so images 0-2 are common; the independent attack
    # is lower on image 1's Kendall only.
    unit_s = _write(tmp_path / "unit_s", "eval_attribution_strong_examples.csv", strong_header,
                    [[0, 1, 0.6, 0.30], [1, 1, 0.5, 0.20], [2, 1, 0.7, 0.25], [3, 0, 1.0, 1.0]])
    unit_i = _write(tmp_path / "unit_i", "independent_topk_walks.csv", independent_header,
                    [[0, 0.7, 0.35, 1], [1, 0.6, 0.10, 1], [2, 0.8, 0.30, 1]])
    ref_s = _write(tmp_path / "ref_s", "eval_attribution_strong_examples.csv", strong_header,
                   [[0, 1, 0.5, 0.20], [1, 1, 0.4, 0.20], [2, 1, 0.6, 0.20], [3, 1, 0.6, 0.20]])
    ref_i = _write(tmp_path / "ref_i", "independent_topk_walks.csv", independent_header,
                   [[0, 0.4, 0.25, 1], [1, 0.5, 0.25, 1], [2, 0.6, 0.25, 1], [3, 0.6, 0.25, 1]])
    out = subprocess.run([sys.executable, str(SCRIPT), str(unit_s), str(unit_i), str(ref_s), str(ref_i)],
                         capture_output=True, text=True, check=True).stdout
    assert "common images 3" in out
    lines = {tuple(line.split()[:3]): line for line in out.splitlines()[1:]}
    kendall_both = next(v for k, v in lines.items() if k[0] == "kendall" and k[1] == "min(strong,")
    unit_mean, ref_mean, diff = map(float, re.findall(r"unit (\S+) reference (\S+) diff (\S+)", kendall_both)[0])
    assert np.isclose(unit_mean, (0.30 + 0.10 + 0.25) / 3, atol=1e-4)
    assert np.isclose(ref_mean, 0.20, atol=1e-4)
    expected = bootstrap_estimate(np.array([0.30, 0.10, 0.25]) - 0.20)
    assert f"[{expected.low:+.4f}, {expected.high:+.4f}]" in kendall_both
    intersection_strong = next(v for k, v in lines.items() if k[0] == "intersection" and k[1] == "strong")
    assert "unit 0.6000 reference 0.5000 diff +0.1000" in intersection_strong


def test_a_missing_file_is_one_line_and_exit_2(tmp_path):
    strong = _write(tmp_path / "unit_s", "eval_attribution_strong_examples.csv",
                    ["index", "correct", "intersection", "kendall"], [[0, 1, 0.5, 0.2]])
    proc = subprocess.run([sys.executable, str(SCRIPT), str(strong), str(tmp_path / "nowhere"), str(strong),
                           str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "no such file" in proc.stderr and "independent_topk_walks.csv" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_file_without_the_columns_is_refused(tmp_path):
    strong = _write(tmp_path / "unit_s", "eval_attribution_strong_examples.csv",
                    ["index", "correct", "intersection", "kendall"], [[0, 1, 0.5, 0.2]])
    independent = _write(tmp_path / "unit_i", "independent_topk_walks.csv", ["index", "top_k"], [[0, 0.5]])
    proc = subprocess.run([sys.executable, str(SCRIPT), str(strong), str(independent), str(strong), str(independent)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "no column intersection, kendall" in proc.stderr and "Traceback" not in proc.stderr
