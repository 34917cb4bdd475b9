"""End to end from the command line: an npz made here, a model factory in a module of this test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from robustattr import cli

FACTORY_MODULE = '''
import torch.nn as nn


class Net(nn.Module):
    """A small CNN with nn.ReLU modules and its own layer layout (not one of robustattr's)."""

    def __init__(self, num_classes, input_shape):
        super().__init__()
        c, h, w = input_shape
        self.features = nn.Sequential(nn.Conv2d(c, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.classifier = nn.Linear(8 * (h // 2) * (w // 2), num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def small_cnn(num_classes, input_shape):
    return Net(num_classes, input_shape)


def broken(num_classes, input_shape):
    return "a string"


def wrong_signature(num_classes):
    return Net(num_classes, (1, 12, 12))
'''


def _stripes(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """12x12 grey NHWC uint8 images; the class is the row of a bright stripe."""
    y = rng.integers(0, 3, n)
    x = rng.integers(0, 60, (n, 12, 12, 1)).astype(np.uint8)
    for i in range(n):
        x[i, 2 + 3 * y[i] : 5 + 3 * y[i], 2:10, 0] = 230
    return x, y


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's project folder: data.npz, usermodels_e2e.py, config.json; the current directory."""
    rng = np.random.default_rng(0)
    (x_train, y_train), (x_test, y_test) = _stripes(200, rng), _stripes(40, rng)
    np.savez(tmp_path / "data.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    (tmp_path / "usermodels_e2e.py").write_text(FACTORY_MODULE)
    config = {
        "dataset": "npz:data.npz", "model": "usermodels_e2e:small_cnn", "pixel_range": [0, 1],
        "training_objective": "ar", "loss_func": "ar_approx", "m": 4, "approx_factor": 2, "num_steps": 2,
        "epsilon": 0.1, "step_size": 0.05, "max_num_training_steps": 40, "training_batch_size": 20,
        "learning_rate": 0.003, "num_checkpoint_steps": 40, "num_eval_examples": 40, "device": "cpu",
        "data_root": str(tmp_path / "cache"), "model_dir": str(tmp_path / "run"),
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the factory import adds the cwd; undo it after
    sys.modules.pop("usermodels_e2e", None)
    return tmp_path


def _run(*args: str) -> int:
    return cli.main(list(args))


@pytest.mark.slow
def test_train_then_eval_pgd_and_attribution(project: Path, capsys: pytest.CaptureFixture[str]):
    assert _run("train", "config.json") == 0
    assert _run("eval", "pgd", "run") == 0
    result = json.loads((project / "run" / "eval_pgd.json").read_text())
    assert result["model"] == "usermodels_e2e:small_cnn" and result["num_examples"] == 40
    assert result["natural_accuracy"] >= 0.8  # the stripes are easy: the IG-NORM training learned them
    assert 0 <= result["adversarial_accuracy"] <= result["natural_accuracy"]
    assert _run("eval", "attribution", "run", "--set", "num_attribution_examples=6",
                "--set", "attribution_attack_steps=3", "--set", "num_IG_steps=5", "--set", "k_top=20",
                "--set", "eval_k_top=10") == 0
    attr = json.loads((project / "run" / "eval_attribution.json").read_text())
    assert attr["num_attacked"] >= 4 and 0 <= attr["top_k_intersection"] <= 1
    assert attr["kendall"] < 1  # the surrogate (the factory's nn.ReLU swapped) moved the maps
    _check_similarities(project / "run" / "eval_attribution_examples.csv", attr)
    # The strong evaluation (worst case over a portfolio of walks) on the same model.
    assert _run("eval", "attribution", "run", "--set", "attribution_attack_method=strong",
                "--set", "num_attribution_examples=4", "--set", "attribution_attack_steps=2",
                "--set", "num_IG_steps=4", "--set", "k_top=20", "--set", "eval_k_top=10") == 0
    strong = json.loads((project / "run" / "eval_attribution_strong.json").read_text())
    assert strong["num_attacked"] >= 3 and strong["kendall"] < 1 and "member_breakdown" in strong
    _check_similarities(project / "run" / "eval_attribution_strong_examples.csv", strong)


def _check_similarities(csv_path: Path, result: dict) -> None:
    """LENS forgives shifts, so its intersection is never below the plain one; cosine lies in [0, 1]."""
    import csv

    rows = [r for r in csv.DictReader(csv_path.open()) if r["correct"] == "1"]
    assert rows and all(float(r["lens_intersection"]) >= float(r["intersection"]) for r in rows)
    ours = "neighbourhood_kendall" if "neighbourhood_kendall" in rows[0] else "lens_kendall"  # strong: renamed
    assert all(0 <= float(r["cosine"]) <= 1 + 1e-6 and -1 <= float(r[ours]) <= 1 for r in rows)
    mean = sum(float(r["cosine"]) for r in rows) / len(rows)
    assert result["cosine"] == pytest.approx(mean) and result["lens_window"] == 3
    assert result["lens_top_k_intersection"] >= result["top_k_intersection"]


@pytest.mark.parametrize("override,message", [
    ("model=usermodels_e2e:broken", "usermodels_e2e:broken': broken(num_classes, input_shape) returned a str, "
                                    "not a torch.nn.Module"),
    ("model=usermodels_e2e:wrong_signature", "wrong_signature(num_classes) cannot be called as "
                                             "wrong_signature(num_classes, input_shape)"),
    ("model=usermodels_e2e:missing", "module 'usermodels_e2e' has no function 'missing'"),
    ("dataset=npz:nothing.npz", "dataset file nothing.npz not found"),
])
def test_bad_factory_or_data_is_one_line_and_exit_2(project: Path, capsys: pytest.CaptureFixture[str],
                                                   override: str, message: str):
    assert _run("train", "config.json", "--set", override, "--set", "max_num_training_steps=1") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robustattr: error: ") and message in err and "\n" not in err and "Traceback" not in err


def test_bad_npz_contents_exit_2(project: Path, capsys: pytest.CaptureFixture[str]):
    np.savez(project / "bad.npz", x_train=np.zeros((4, 12, 12), np.uint8), y_train=np.array([0, 1, 2, 9]),
             x_test=np.zeros((2, 12, 12), np.uint8), y_test=np.array([0, 12]))
    assert _run("config", "check", "config.json", "--set", "dataset=npz:bad.npz") == 2
    err = capsys.readouterr().err.strip()
    assert "bad.npz: y_test holds the label 12 but y_train's labels are 0..9" in err and "\n" not in err
