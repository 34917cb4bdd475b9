"""``robustattr benchmark``: units run, record their cost, leave their artefacts, are skipped when
finished, and the report is written from whatever is finished; bad recipes are one-line errors.
Real MNIST, tiny budgets; the shipped recipes load and keep the one evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from robustattr.cli import main
from robustattr.pipelines.benchmark import CONVERGENCE_FIGURE, FIGURE_PANEL_FILE, PHASES_FILE, RUN_FILES, UNIT_FILE

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

TINY_EVAL = {"num_eval_examples": 20, "num_adversarial_examples": 10, "num_steps": 1, "step_size": 0.1,
             "num_attribution_examples": 3, "num_IG_steps": 4, "attribution_attack_steps": 2,
             "attribution_attack_step_size": 0.05, "attribution_attack_times": 1}
TINY_CERTIFY = {"num_attribution_examples": 2, "certify_samples": 8, "certify_attack_samples": 4,
                "certify_attack_steps": 1}


def _write_recipes(root: Path, runs: Path) -> Path:
    recipes = root / "recipes"
    (recipes / "mnist").mkdir(parents=True)
    units = {
        "natural": {"max_num_training_steps": 40, "learning_rate": 1e-3},
        "lga": {"init_from": str(runs / "natural"), "max_num_training_steps": 2, "training_batch_size": 10},
    }
    for method, train in units.items():
        recipe = {"_comment": "test recipe", "preset": str(CONFIGS / "mnist" / f"{method}.json"),
                  "train": {"model_dir": str(runs / method), "num_checkpoint_steps": 2, "num_output_steps": 1, **train},
                  "evaluate": TINY_EVAL, "strong": {"num_attribution_examples": 3}, "certify": TINY_CERTIFY}
        (recipes / "mnist" / f"{method}.json").write_text(json.dumps(recipe))
    return recipes


def _unit(results: Path, method: str) -> dict:
    return json.loads((results / "mnist" / method / UNIT_FILE).read_text())


@pytest.mark.slow
def test_benchmark_runs_records_cost_and_skips_finished_units(mnist_root, tmp_path, capsys) -> None:
    runs, results = tmp_path / "runs", tmp_path / "results"
    recipes = _write_recipes(tmp_path, runs)
    args = ["benchmark", "mnist", "--recipes", str(recipes), "--results", str(results), "--root", str(mnist_root)]

    # Only the fine-tuned unit asked for: NATURAL is trained first, in its own phase.
    assert main([*args, "--methods", "lga"]) == 0
    lga = _unit(results, "lga")
    assert lga["phases"]["train_init"]["status"] == "trained"
    assert lga["cost"]["init_from_train_core_seconds"] > 0  # from NATURAL's phase file
    assert (runs / "natural" / PHASES_FILE).is_file()

    capsys.readouterr()
    assert main(args) == 0
    text = capsys.readouterr().out
    assert (results / "mnist" / "report.md").read_text() == text
    assert "| NATURAL |" in text and "| LGA |" in text and "## Verdict" in text
    assert "ig-sum-norm unit is not finished" in text
    assert (results / "mnist" / "frontier.png").is_file() and (results / "mnist" / "figure-methods.png").is_file()
    # Every finished unit's strong evaluation drawn converging (issue 22, item 2), named in the report.
    assert all((results / "mnist" / m / CONVERGENCE_FIGURE).stat().st_size > 0 for m in ("natural", "lga"))
    assert f"<method>/{CONVERGENCE_FIGURE} for natural, lga" in text
    for method in ("natural", "lga"):
        out = results / "mnist" / method
        assert {p.name for p in out.iterdir()} >= {*RUN_FILES, UNIT_FILE}
        assert not list(out.glob("*.safetensors")), "checkpoints stay in the run directory"
        unit = _unit(results, method)
        assert {"train", "eval_pgd", "eval_attribution_strong", "eval_certify"} <= set(unit["phases"])
        cost = unit["cost"]
        assert cost["torch_threads"] >= 1 and cost["train_steps"] == {"natural": 40, "lga": 2}[method]
        assert cost["train_core_seconds"] == pytest.approx(unit["phases"]["train"]["seconds"] * cost["torch_threads"], abs=0.2)
        assert cost["seconds_per_step"] > 0 and cost["loop_seconds_per_step"] > 0
        assert all(cost["eval_core_seconds"][p] >= 0 for p in ("eval_pgd", "eval_attribution_strong", "eval_certify"))
        strong = json.loads((out / "eval_attribution_strong.json").read_text())
        assert strong["attribution_attack_method"] == "strong" and strong["num_examples"] == 3
        assert "lens_recall" in strong and unit["results"]["strong"]["lens_recall"] == strong["lens_recall"]
        certify = json.loads((out / "eval_certify.json").read_text())
        assert certify["num_examples"] == 2 and certify["certify_samples"] == 8
        assert unit["results"]["natural_accuracy"] is not None
    natural_cost = _unit(results, "natural")["cost"]["train_core_seconds"]
    assert lga["cost"]["total_train_core_seconds"] == pytest.approx(lga["cost"]["train_core_seconds"] + natural_cost, abs=0.2)
    natural_cpu = _unit(results, "natural")["cost"]["train_cpu_seconds"]
    assert lga["cost"]["init_from_train_cpu_seconds"] == pytest.approx(natural_cpu, abs=0.2)
    assert lga["cost"]["total_train_cpu_seconds"] == pytest.approx(lga["cost"]["train_cpu_seconds"] + natural_cpu, abs=0.2)
    assert all(lga["cost"]["eval_cpu_seconds"][p] >= 0 for p in ("eval_pgd", "eval_attribution_strong", "eval_certify"))

    # Each unit keeps its row of the figure, so the figure is drawn again when the checkpoints are gone.
    for method in ("natural", "lga"):
        assert _unit(results, method)["phases"]["figure_panel"]["status"].startswith("drawn (test image")
    (results / "mnist" / "figure-methods.png").unlink()
    stashed = shutil.move(str(runs), str(tmp_path / "runs-elsewhere"))
    capsys.readouterr()
    assert main(args) == 0
    assert "from the kept panels" in capsys.readouterr().out
    assert (results / "mnist" / "figure-methods.png").is_file()
    shutil.move(stashed, str(runs))
    # A unit finished before panels were kept gets its panel while its checkpoint is at hand.
    (results / "mnist" / "lga" / FIGURE_PANEL_FILE).unlink()
    assert main([*args, "--methods", "lga"]) == 0
    assert (results / "mnist" / "lga" / FIGURE_PANEL_FILE).is_file()

    # Finished units are skipped: nothing in the run directories changes.
    before = {p: p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()}
    first = _unit(results, "lga")
    assert main(args) == 0
    assert "finished before" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()} == before
    assert _unit(results, "lga") == first
    assert "stale" not in (results / "mnist" / "report.md").read_text()

    # A unit whose strong result came from another portfolio (an older robustattr) is named stale.
    kept = results / "mnist" / "lga" / "eval_attribution_strong.json"
    strong = json.loads(kept.read_text())
    kept.write_text(json.dumps({**strong, "members": strong["members"][:-2]}))
    assert main(args) == 0
    assert "**stale**: the strong results of lga were computed" in capsys.readouterr().out


@pytest.mark.parametrize("change, expected", [
    ({"evaluation": {}}, "unknown: evaluation"),
    ({"certify": {"certify_samples": 0}}, "certify_samples"),
    ({"preset": "nowhere.json"}, "nowhere.json"),
])
def test_bad_recipe_is_a_one_line_error(tmp_path, capsys, change, expected) -> None:
    recipes = _write_recipes(tmp_path, tmp_path / "runs")
    recipe_file = recipes / "mnist" / "lga.json"
    recipe_file.write_text(json.dumps({**json.loads(recipe_file.read_text()), **change}))
    assert main(["benchmark", "mnist", "--recipes", str(recipes), "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()


def test_unknown_method_is_refused(tmp_path, capsys) -> None:
    recipes = _write_recipes(tmp_path, tmp_path / "runs")
    assert main(["benchmark", "mnist", "--recipes", str(recipes), "--methods", "igg"]) == 2
    assert "unknown method igg" in capsys.readouterr().err


def test_shipped_recipes_load(monkeypatch) -> None:
    """Every committed benchmark recipe resolves; each dataset has one per registered method; the
    evaluation is the same for all: NA/AA on 10,000 test images with the preset's PGD, the strong
    evaluation at standard on the first 100 with IG n 10 and 100 steps, the certificate on 50."""
    from robustattr.config import load_config
    from robustattr.pipelines.benchmark import read_benchmark_recipe
    from robustattr.pipelines.units import METHODS

    monkeypatch.chdir(CONFIGS.parent)  # presets are paths relative to the working directory
    recipes = CONFIGS / "benchmark"
    for dataset in ("mnist", "fashion-mnist"):
        assert sorted(p.stem for p in (recipes / dataset).glob("*.json")) == sorted(METHODS)
        certify = None
        for method in METHODS:
            unit = read_benchmark_recipe(recipes, dataset, method, None)
            paper = load_config(CONFIGS / dataset / f"{method}.json")
            assert json.loads(unit.path.read_text())["_comment"]
            for key in ("epsilon", "lambda_", "k_top", "eval_k_top", "training_objective"):
                assert getattr(unit.train, key) == getattr(paper, key), (dataset, method, key)
            assert unit.train.model_dir == f"runs/benchmark/{dataset}/{method}"
            assert unit.evaluate.num_eval_examples == 10_000 and unit.evaluate.num_adversarial_examples is None
            assert (unit.evaluate.num_steps, unit.evaluate.step_size, unit.evaluate.epsilon) == (
                paper.num_steps, paper.step_size, paper.epsilon)
            strong = unit.strong
            assert strong.attribution_attack_method == "strong" and strong.attribution_attack_budget == "standard"
            assert (strong.num_attribution_examples, strong.num_IG_steps, strong.attribution_attack_steps) == (100, 10, 100)
            assert unit.certify is not None and unit.certify.num_attribution_examples == 50
            settings = {k: v for k, v in unit.certify.to_dict().items() if k.startswith("certify_")}
            assert certify in (None, settings), "every unit gets the same certificate"
            certify = settings
            if unit.train.init_from:
                assert unit.train.init_from == f"runs/benchmark/{dataset}/natural"
