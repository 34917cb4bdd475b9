"""``robustattr repro``: units run, leave their artifacts, are skipped when finished and redone
when their recipe changes; a fine-tuned unit retrains the run it starts from when it is missing.
Real MNIST, tiny budgets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from robustattr.cli import main
from robustattr.pipelines.repro import RUN_FILES, UNIT_FILE, run_repro

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

TINY_EVAL = {"num_eval_examples": 100, "num_adversarial_examples": 20, "num_steps": 2, "step_size": 0.1,
             "num_attribution_examples": 4, "num_IG_steps": 4, "attribution_attack_steps": 2,
             "attribution_attack_step_size": 0.05, "attribution_attack_times": 1}


def _write_recipes(root: Path, runs: Path) -> Path:
    recipes = root / "recipes"
    (recipes / "mnist").mkdir(parents=True)
    units = {
        "natural": {"max_num_training_steps": 3, "learning_rate": 1e-3},
        "ig-norm": {"init_from": str(runs / "natural"), "max_num_training_steps": 2, "m": 2, "approx_factor": 2,
                    "num_steps": 1, "step_size": 0.1, "training_batch_size": 10},
    }
    for method, train in units.items():
        recipe = {"_comment": "test recipe", "preset": str(CONFIGS / "mnist" / f"{method}.json"),
                  "train": {"model_dir": str(runs / method), "num_checkpoint_steps": 2, "num_output_steps": 1, **train},
                  "evaluate": TINY_EVAL, "strong": {"num_attribution_examples": 3}}
        (recipes / "mnist" / f"{method}.json").write_text(json.dumps(recipe))
    return recipes


def _unit(results: Path, method: str) -> dict:
    return json.loads((results / "mnist" / method / UNIT_FILE).read_text())


@pytest.mark.slow
def test_repro_runs_skips_and_redoes_units(mnist_root, tmp_path) -> None:
    runs, results = tmp_path / "runs", tmp_path / "results"
    recipes = _write_recipes(tmp_path, runs)
    kwargs = {"recipes": recipes, "results": results, "data_root": str(mnist_root)}

    text = run_repro("mnist", **kwargs)
    assert "| mnist | NATURAL |" in text and "| mnist | IG-NORM |" in text and "strong" in text
    for method in ("natural", "ig-norm"):
        out = results / "mnist" / method
        assert {p.name for p in out.iterdir()} >= {*RUN_FILES, UNIT_FILE}
        assert not list(out.glob("*.safetensors")), "checkpoints must stay in the run directory"
        unit = _unit(results, method)
        assert set(unit["phases"]) == {"train", "eval_pgd", "eval_attribution", "eval_attribution_strong", "figure"}
        assert all(p["seconds"] >= 0 for p in unit["phases"].values())
        assert unit["train_steps"] == {"natural": 3, "ig-norm": 2}[method]
        strong = json.loads((out / "eval_attribution_strong.json").read_text())
        assert strong["attribution_attack_method"] == "strong" and strong["num_examples"] == 3
        assert unit["results"]["strong"]["kendall"] == strong["kendall"]
        assert json.loads((out / "eval_attribution.json").read_text())["num_examples"] == 4
    assert (results / "mnist" / "report.md").read_text() == text
    assert (results / "mnist" / "training-curves.png").is_file()

    # Finished units are skipped: nothing is retrained or re-evaluated.
    before = {p: p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()}
    first_unit = _unit(results, "ig-norm")
    text = run_repro("mnist", **kwargs)
    assert "finished before" in text
    assert {p: p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()} == before
    assert _unit(results, "ig-norm") == first_unit

    # A changed recipe redoes its unit; the training it did not change is reused.
    recipe_file = recipes / "mnist" / "ig-norm.json"
    recipe = json.loads(recipe_file.read_text())
    recipe["evaluate"]["attribution_attack_steps"] = 3
    recipe_file.write_text(json.dumps(recipe))
    run_repro("mnist", methods=["ig-norm"], **kwargs)
    redone = _unit(results, "ig-norm")
    assert redone["recipe_sha256"] != first_unit["recipe_sha256"]
    assert redone["phases"]["train"]["status"] == "reused"
    assert redone["phases"]["eval_attribution"]["status"] == "evaluated"
    assert redone["phases"]["eval_attribution_strong"]["status"] == "evaluated"  # shares the evaluate section

    # A change in the strong section redoes the strong evaluation only.
    recipe["strong"]["strong_random_starts"] = 1
    recipe_file.write_text(json.dumps(recipe))
    run_repro("mnist", methods=["ig-norm"], **kwargs)
    phases = _unit(results, "ig-norm")["phases"]
    assert phases["eval_attribution"]["status"] == "reused"
    assert phases["eval_attribution_strong"]["status"] == "evaluated"
    assert json.loads((results / "mnist" / "ig-norm" / "eval_attribution.json").read_text())[
        "attribution_attack_steps"] == 3

    # In a fresh checkout the checkpoints are absent: the fine-tuned unit retrains NATURAL first.
    shutil.rmtree(runs)
    shutil.rmtree(results / "mnist" / "ig-norm")
    run_repro("mnist", methods=["ig-norm"], **kwargs)
    assert (runs / "natural" / "config.json").is_file() and _unit(results, "ig-norm")["train_steps"] == 2


@pytest.mark.parametrize("change, expected", [
    ({"evaluation": {}}, "unknown: evaluation"),
    ({"train": {"epsilonn": 0.3}}, "epsilonn"),
    ({"preset": "nowhere.json"}, "nowhere.json"),
    ({"strong": {"attribution_attack_method": "topK"}}, "strong.attribution_attack_method"),
])
def test_bad_recipe_is_a_one_line_error(tmp_path, capsys, change, expected) -> None:
    recipes = _write_recipes(tmp_path, tmp_path / "runs")
    recipe_file = recipes / "mnist" / "natural.json"
    recipe = {**json.loads(recipe_file.read_text()), **change}
    recipe_file.write_text(json.dumps(recipe))
    assert main(["repro", "mnist", "--recipes", str(recipes), "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_unknown_dataset_names_the_recipe_folders(tmp_path, capsys) -> None:
    recipes = _write_recipes(tmp_path, tmp_path / "runs")
    assert main(["repro", "mnsit", "--recipes", str(recipes)]) == 2
    assert "datasets with recipes in" in capsys.readouterr().err


def test_shipped_recipes_load(monkeypatch) -> None:
    """Every committed recipe resolves to valid configs keeping the paper's ε, λ/β, attack and k."""
    from robustattr.config import load_config
    from robustattr.pipelines.repro import METHODS, _recipe

    monkeypatch.chdir(CONFIGS.parent)  # presets are paths relative to the working directory
    recipes = CONFIGS / "repro"
    for dataset in ("mnist", "fashion-mnist"):
        with_recipes = [m for m in METHODS if (recipes / dataset / f"{m}.json").is_file()]
        assert with_recipes[:4] == ["natural", "madry", "ig-norm", "ig-sum-norm"]  # the paper's, NATURAL first
        for method in with_recipes:
            unit = _recipe(recipes, dataset, method, None)
            paper = load_config(CONFIGS / dataset / f"{method}.json")
            for cfg in (unit.train, unit.evaluate, unit.strong):
                for key in ("epsilon", "lambda_", "k_top", "eval_k_top", "attribution_attack_method",
                            "attribution_attack_measure", "training_objective"):
                    if not (key == "attribution_attack_method" and cfg is unit.strong):
                        assert getattr(cfg, key) == getattr(paper, key), (dataset, method, key)
            # NA on the full test set, AA on at least 2,000 images, with the paper's PGD.
            assert unit.evaluate.num_eval_examples == 10_000
            assert (unit.evaluate.num_adversarial_examples or 10_000) >= 2_000
            assert unit.evaluate.num_steps == paper.num_steps and unit.evaluate.step_size == paper.step_size
            # The faithful attack at the paper's steps on >= 300 images (before misclassified ones are
            # dropped); the strong evaluation on >= 200, with the same attack steps.
            assert unit.evaluate.num_attribution_examples >= 300
            assert (unit.evaluate.attribution_attack_steps, unit.evaluate.attribution_attack_step_size) == (
                paper.attribution_attack_steps, paper.attribution_attack_step_size)
            assert unit.strong.attribution_attack_method == "strong" and unit.strong.num_attribution_examples >= 200
            assert unit.strong.attribution_attack_steps == paper.attribution_attack_steps
