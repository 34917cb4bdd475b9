"""docs/extending.md's worked examples, built as the page shows them and run through the CLI.

The package is copied into a scratch folder, each code block of the page whose first line is a
``# file: PATH`` comment is written to (or, for "append", appended to) that path of the copy, and
the CLI of the copy trains on them for a few steps. So the page's claim — a new objective is one
module, a new dataset one module and one catalog entry, a new strong member one module — is
checked on the page's own text, with the number of files each example touches.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "extending.md"
BLOCK = re.compile(r"```python\n# file: (?P<path>\S+)(?P<note>[^\n]*)\n(?P<code>.*?)```", re.S)


def _blocks() -> list[tuple[str, bool, str]]:
    """(path, append, code) of every ``# file:`` block of the page, in order."""
    return [(m["path"], "append" in m["note"], m["code"]) for m in BLOCK.finditer(PAGE.read_text())]


def _scratch_copy(tmp_path: Path, paths: list[str]) -> Path:
    """A copy of src/robustattr with the page's blocks for ``paths`` written in; returns its src folder."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "robustattr", src / "robustattr", ignore=shutil.ignore_patterns("__pycache__"))
    touched = set()
    for path, append, code in _blocks():
        if path not in paths:
            continue
        target = tmp_path / path
        assert target.parent.is_dir(), f"{path}: the page names a folder that does not exist"
        if append:
            assert target.is_file(), f"{path}: the page appends to a file that does not exist"
            target.write_text(target.read_text() + "\n\n" + code)
        else:
            assert not target.exists(), f"{path}: the page's new module would replace an existing file"
            target.write_text(code)
        touched.add(path)
    assert touched == set(paths), f"the page has no block for {set(paths) - touched}"
    return src


def _cli(src: Path, *args: str, data_root: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src), "ROBUSTATTR_DATA": str(data_root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "robustattr", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_the_page_has_one_block_per_file_it_names() -> None:
    paths = [p for p, _, _ in _blocks()]
    assert len(paths) == len(set(paths))
    assert "src/robustattr/training/objectives/input_gradient.py" in paths


@pytest.mark.slow
def test_new_objective_is_one_module(tmp_path: Path, mnist_root: Path) -> None:
    module = "src/robustattr/training/objectives/input_gradient.py"
    src = _scratch_copy(tmp_path, [module])
    run = tmp_path / "run"
    common = ["--set", f"data_root={mnist_root}", "--set", f"model_dir={run}", "--set", "max_num_training_steps=12",
              "--set", "num_output_steps=1", "--set", "num_checkpoint_steps=6", "--set", "device=cpu"]
    _cli(src, "train", "configs/mnist/natural-quick.json", "--set", "training_objective=InputGrad",
         "--set", "lam_grad=0.5", *common, data_root=mnist_root)
    saved = json.loads((run / "config.json").read_text())
    assert saved["training_objective"] == "input-gradient" and saved["lam_grad"] == 0.5
    losses = _losses(run)
    assert len(losses) == 12 and all(np.isfinite(losses)) and np.mean(losses[-3:]) < np.mean(losses[:3])
    # Its own key belongs to it alone: given to another objective it is one line, exit 2.
    refused = _cli(src, "config", "check", "configs/mnist/natural-quick.json", "--set", "lam_grad=0.5",
                   data_root=mnist_root, check=False)
    assert refused.returncode == 2 and "lam_grad" in refused.stderr and "input-gradient" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    # A resumed run keeps it: the key is among the ones a resumption must agree on.
    changed = _cli(src, "train", "configs/mnist/natural-quick.json", "--set", "training_objective=input-gradient",
                   "--set", "lam_grad=0.25", "--set", "continue_train=true", *common, "--set",
                   "max_num_training_steps=14", data_root=mnist_root, check=False)
    assert changed.returncode == 2 and "lam_grad" in changed.stderr


@pytest.mark.slow
def test_new_dataset_is_one_module_and_one_catalog_entry(tmp_path: Path, mnist_root: Path) -> None:
    from robustattr import data

    paths = ["src/robustattr/data/digits_npz.py", "src/robustattr/data/catalog.py"]
    src = _scratch_copy(tmp_path, paths)
    train, test = data.load("mnist", "train", root=mnist_root), data.load("mnist", "test", root=mnist_root)
    raw = tmp_path / "raw"
    raw.mkdir()
    np.savez(raw / "digits.npz", x_train=train.images[:1000, 0].numpy(), y_train=train.labels[:1000].numpy(),
             x_test=test.images[:200, 0].numpy(), y_test=test.labels[:200].numpy())
    cache = tmp_path / "cache"
    fetched = json.loads(_cli(src, "data", "fetch", "digits-npz", "--root", str(cache), "--source-dir", str(raw),
                              data_root=cache).stdout)
    assert fetched["splits"] == {"train": 1000, "test": 200}
    minimal = tmp_path / "digits.json"
    minimal.write_text(json.dumps({"dataset": "digits-npz"}))
    checked = json.loads(_cli(src, "config", "check", str(minimal), data_root=cache).stdout)
    assert checked["epsilon"] == 0.2 and checked["num_eval_examples"] == 200  # the entry's defaults
    run = tmp_path / "run"
    _cli(src, "train", "configs/mnist/natural-quick.json", "--set", "dataset=digits-npz", "--set", f"data_root={cache}",
         "--set", f"model_dir={run}", "--set", "max_num_training_steps=16", "--set", "num_output_steps=1",
         "--set", "device=cpu", data_root=cache)
    losses = _losses(run)
    assert np.mean(losses[-4:]) < np.mean(losses[:4])
    result = json.loads(_cli(src, "eval", "pgd", str(run), "--set", "num_steps=3", data_root=cache).stdout)
    assert result["num_examples"] == 200 and 0.0 <= result["adversarial_accuracy"] <= result["natural_accuracy"]


@pytest.mark.slow
def test_new_strong_member_is_one_module(tmp_path: Path, natural_mnist_run: Path, mnist_root: Path) -> None:
    import csv

    module = "src/robustattr/attacks/members/map_entropy.py"
    src = _scratch_copy(tmp_path, [module])
    run = Path(shutil.copytree(natural_mnist_run, tmp_path / "run"))
    tiny = ["num_attribution_examples=4", "attribution_attack_steps=2", "num_IG_steps=4", "k_top=100",
            "attribution_attack_method=strong"]
    result = json.loads(_cli(src, "eval", "attribution", str(run), *[a for s in tiny for a in ("--set", s)],
                             data_root=mnist_root).stdout)
    members = result["members"]
    assert members[-1] == "map_entropy" and members[0] == "topK" and len(members) == 13
    assert result["member_breakdown"]["map_entropy"]["kendall"] >= result["kendall"]
    with open(run / "eval_attribution_strong_examples.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["correct"] == "1"]
    assert rows and all(float(r["kendall"]) <= float(r["map_entropy.kendall"]) for r in rows)

