"""docs/examples/own_model.py, the worked example, runs end to end at a tiny budget."""

from __future__ import annotations

import pytest

import importlib.util
import json
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "own_model.py"


@pytest.mark.slow
def test_worked_example_runs_at_a_tiny_budget(tmp_path, mnist_root):
    spec = importlib.util.spec_from_file_location("own_model_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    results = example.main(tmp_path / "out", "tiny", str(mnist_root))
    assert set(results) == {"NATURAL", "IG-NORM"}
    for r in results.values():
        assert r["num_examples"] == 6 and 0 <= r["natural_accuracy"] <= 1
        if r["num_attacked"]:
            assert 0 <= r["top_k_intersection"] <= r["lens_top_k_intersection"] <= 1
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["results"]["IG-NORM"]["kendall"] == results["IG-NORM"]["kendall"]
    assert (tmp_path / "out" / "figure.png").stat().st_size > 10_000
    assert "| IG-NORM |" in (tmp_path / "out" / "results.md").read_text()
    assert not (tmp_path / "out" / "mnist-subset.npz").exists()
    # The committed output is the full budget's (docs/own-model.md shows it).
    committed = json.loads((EXAMPLE.parents[1] / "own-model" / "results.json").read_text())
    assert committed["budget"] == example.BUDGETS["full"]
