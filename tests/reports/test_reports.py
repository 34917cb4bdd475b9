"""``robustattr report`` and ``robustattr figure`` on real (briefly trained) MNIST runs."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from robustattr import cli
from robustattr.reports import paper_result
from robustattr.reports.figures import Panel, draw_attack_panels

TINY = ["num_eval_examples=40", "num_adversarial_examples=10", "num_steps=3", "num_attribution_examples=3",
        "attribution_attack_steps=2", "num_IG_steps=4", "attribution_attack_times=1",
        "attribution_attack_step_size=0.05", "k_top=100"]


def _sets(items):
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def evaluated_run(natural_mnist_run: Path, tmp_path_factory) -> Path:
    run = Path(shutil.copytree(natural_mnist_run, tmp_path_factory.mktemp("reports") / "natural"))
    assert cli.main(["eval", "pgd", str(run), *_sets(TINY)]) == 0
    assert cli.main(["eval", "attribution", str(run), *_sets(TINY)]) == 0
    assert cli.main(["eval", "attribution", str(run), *_sets(TINY + ["attribution_attack_method=strong"])]) == 0
    return run


def _report(capsys, *args: str) -> str:
    capsys.readouterr()
    assert cli.main(["report", *args]) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_markdown_table_has_ours_beside_the_papers_and_flags_reduced_budgets(evaluated_run, capsys):
    text = _report(capsys, str(evaluated_run))
    pgd = json.loads((evaluated_run / "eval_pgd.json").read_text())
    attr = json.loads((evaluated_run / "eval_attribution.json").read_text())
    row = next(line for line in text.splitlines() if line.startswith("| mnist | NATURAL | faithful"))
    assert f"{100 * pgd['natural_accuracy']:.2f}%" in row
    assert f"{attr['kendall']:.4f}" in row
    assert f"| {attr['num_not_found']}/{attr['num_attacked']} |" in row  # images the walk left unmoved
    assert "99.17%" in row and "0.1758" in row  # the paper's NATURAL MNIST NA and CO
    strong = json.loads((evaluated_run / "eval_attribution_strong.json").read_text())
    row = next(line for line in text.splitlines() if line.startswith("| mnist | NATURAL | strong"))
    assert f"{strong['kendall']:.4f}" in row and f"{100 * pgd['natural_accuracy']:.2f}%" in row
    assert strong["kendall"] <= attr["kendall"]
    assert "REDUCED" in text and "training 300 of 25000 steps" in text
    assert "AA on 10 of 10000 test images" in text


def test_csv_and_json_formats_carry_the_same_numbers(evaluated_run, capsys):
    rows = list(csv.DictReader(io.StringIO(_report(capsys, str(evaluated_run), "--format", "csv"))))
    data = json.loads(_report(capsys, str(evaluated_run), "--format", "json"))
    assert len(rows) == len(data) == 2  # the faithful and the strong evaluation
    assert [r["evaluation"] for r in rows] == [d["evaluation"] for d in data] == ["faithful", "strong"]
    assert float(rows[1]["CO"]) == pytest.approx(data[1]["kendall"])
    assert int(rows[0]["unmoved"]) == data[0]["num_unmoved"]
    assert float(rows[0]["NA"]) == pytest.approx(data[0]["natural_accuracy"])
    assert float(rows[0]["paper_IN"]) == pytest.approx(paper_result("mnist", "NATURAL")[2])
    assert data[0]["budget"]["attribution_attack"]["steps"] == 2


def test_report_on_a_folder_that_is_not_a_run_exits_2(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a run directory" in err and "Traceback" not in err


@pytest.mark.slow
def test_figure_draws_one_row_per_run(evaluated_run, tmp_path, capsys):
    other = Path(shutil.copytree(evaluated_run, tmp_path / "second"))
    out = tmp_path / "panel.png"
    capsys.readouterr()
    assert cli.main(["figure", str(evaluated_run), str(other), "--index", "0", "--out", str(out),
                     *_sets(TINY)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    from PIL import Image

    with Image.open(out) as img:
        width, height = img.size
    assert width > 800 and height > 500  # two rows of four panels


def test_figure_of_a_misclassified_or_missing_index_exits_2(evaluated_run, capsys):
    assert cli.main(["figure", str(evaluated_run), "--index", "123456"]) == 2
    assert "outside the test split (0..9999)" in capsys.readouterr().err


def test_training_curves(evaluated_run, tmp_path):
    out = tmp_path / "curves.png"
    assert cli.main(["figure", str(evaluated_run), "--curves", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_panel_drawing_is_atomic_and_readable(tmp_path):
    import numpy as np

    panel = Panel("x", np.zeros((4, 4)), np.ones((4, 4)), np.zeros((4, 4)), np.ones((4, 4)), 0.5, 0.1, 3, 3)
    out = draw_attack_panels([panel], tmp_path / "a" / "p.png")
    assert out.exists() and not list(out.parent.glob(".*"))  # no temp file left behind


def test_figure_never_shows_an_unmoved_image_as_attacked(evaluated_run, tmp_path):
    """A walk of 0 steps moves nothing: the panel must say so instead of showing τ = 1 as robustness.
    Test image 0 at k_top 200 has a flat topK objective; the strong evaluation moves it."""
    from robustattr.config import load_run_or_config
    from robustattr.pipelines.figure import compute_panel

    tiny = [s for s in TINY if not s.startswith("k_top")] + ["k_top=200"]
    for attack in ("faithful", "strong"):
        still = compute_panel(load_run_or_config(str(evaluated_run), tiny + ["attribution_attack_steps=0"]), 0, attack)
        assert not still.moved and still.kendall == 1.0 and (still.image_adv == still.image).all()
    out = draw_attack_panels([still], tmp_path / "still.png")
    assert out.stat().st_size > 5_000
    moved = compute_panel(load_run_or_config(str(evaluated_run), tiny), 0, "strong")
    assert moved.moved and moved.kendall < 1 and "lowest τ by" in moved.attack
    assert (moved.image_adv != moved.image).any()


def test_budgets_name_the_short_budget_optimisation(evaluated_run, tmp_path, capsys):
    """A fine-tuned run with a larger rate, a decay and an ε warm-up says so beside its numbers."""
    run = Path(shutil.copytree(evaluated_run, tmp_path / "tuned"))
    config = json.loads((run / "config.json").read_text())
    config.update(init_from="runs/natural", learning_rate_schedule=[[0, 0.001], [3000, 0.0001]], epsilon_ramp_steps=1000)
    (run / "config.json").write_text(json.dumps(config))
    text = _report(capsys, str(run))
    assert "fine-tuned from runs/natural (paper: from scratch)" in text
    assert "Adam learning rate 0.001 from step 0, 0.0001 from step 3000 (paper 0.0001 throughout)" in text
    assert "training PGD radius ramped up over the first 1000 steps (paper: constant)" in text
    assert "fine-tuned" not in _report(capsys, str(evaluated_run))


def test_strong_row_shows_both_label_conventions_and_the_convergence_flag(evaluated_run, tmp_path, capsys):
    strong = json.loads((evaluated_run / "eval_attribution_strong.json").read_text())
    text = _report(capsys, str(evaluated_run))
    row = next(line for line in text.splitlines() if line.startswith("| mnist | NATURAL | strong"))
    cells = [c.strip() for c in row.split("|")]
    header = [c.strip() for c in text.splitlines()[0].split("|")]
    assert cells[header.index("IN dropped")] == f"{100 * strong['top_k_intersection_dropped']:.2f}%"
    assert cells[header.index("CO dropped")] == f"{strong['kendall_dropped']:.4f}"
    assert cells[header.index("no label kept")] == f"{strong['num_no_label_keeping']}/{strong['num_attacked']}"
    faithful = next(line for line in text.splitlines() if line.startswith("| mnist | NATURAL | faithful"))
    assert [c.strip() for c in faithful.split("|")][header.index("no label kept")] == "—"
    # A run whose last doubling still lowered the mean CO by more than 0.01 is flagged; one that did not is not.
    run = Path(shutil.copytree(evaluated_run, tmp_path / "run"))
    for falling in (True, False):
        doctored = {**strong, "convergence": {**strong["convergence"], "still_falling": falling}}
        (run / "eval_attribution_strong.json").write_text(json.dumps(doctored))
        text = _report(capsys, str(run))
        assert ("| strong (still falling) |" in text) is falling and ("still falling:" in text) is falling


def test_convergence_plot_is_drawn_from_the_result_and_an_old_result_is_refused(evaluated_run, tmp_path):
    from robustattr.errors import UserInputError
    from robustattr.reports.figures import draw_convergence

    strong = json.loads((evaluated_run / "eval_attribution_strong.json").read_text())
    out = draw_convergence(strong, tmp_path / "conv.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UserInputError, match="no convergence"):
        draw_convergence({k: v for k, v in strong.items() if k != "convergence"}, tmp_path / "old.png")


def test_figure_convergence_draws_it_from_the_cli_and_a_run_without_one_exits_2(evaluated_run, tmp_path, capsys):
    run = Path(shutil.copytree(evaluated_run, tmp_path / "run"))
    assert cli.main(["figure", str(run), "--convergence"]) == 0
    assert capsys.readouterr().out.strip() == str(run / "figure_convergence.png")
    assert (run / "figure_convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (run / "eval_attribution_strong.json").unlink()
    assert cli.main(["figure", str(run), "--convergence"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "eval_attribution_strong.json" in err and "Traceback" not in err


def test_the_report_shows_the_certificate_beside_the_attack_on_the_smoothed_map(tmp_path) -> None:
    from robustattr.reports import collect_rows, format_rows

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"dataset": "mnist", "training_objective": "nat"}))
    (run / "eval_certify.json").write_text(json.dumps({"certified_top_k_intersection": 0.399,
                                                       "attacked_top_k_intersection": 0.987}))
    rows = collect_rows([run])
    assert rows[0].certified_top_k_intersection == 0.399 and rows[0].attacked_smoothed_top_k_intersection == 0.987
    text = format_rows(rows, "md")
    assert "| NATURAL | 39.90% | 98.70% |" in text
    assert "39.9" not in format_rows(collect_rows([run]), "md").split("Certified")[0]  # not in the main table
