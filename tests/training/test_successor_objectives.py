"""TRADES, IGR, LGA, SSR and ART from the CLI: their presets, their config keys, training and resume.

Each trains 20 MNIST steps from its quick preset by its name with a finite, falling loss, and a run
stopped at step 10 and resumed ends with the uninterrupted run's weights and logs, bit for bit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from robustattr import cli, losses
from robustattr.checkpoints import load_checkpoint
from robustattr.config import load_config
from robustattr.training.objectives import objective_info, objective_keys

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SLUGS = ("trades", "igr", "lga", "ssr", "art")
KEYS = {"trades": {"beta", "trades_start_std"}, "igr": {"igr_base", "beta", "trades_start_std"},
        "lga": {"lga_variant", "lam_l2", "lam_cos", "lam_hessian", "lga_detach_source_grad"}, "ssr": {"ssr_alpha", "ssr_scale"},
        "art": {"gamma", "art_top_k", "art_steps", "art_step_size"}}
# A CPU-sized step: the quick preset's settings on a batch of 20.
SMALL = ["device=cpu", "training_batch_size=10", "num_steps=4", "num_output_steps=1", "num_checkpoint_steps=10", "keep_checkpoints=5"]


@pytest.mark.parametrize("slug", SLUGS)
def test_registered_with_presets_keys_and_a_loss_class(slug):
    info = objective_info(slug)
    assert info.name == slug and objective_info(info.display) is info and info.order >= 10
    assert set(objective_keys(slug)) == KEYS[slug]
    assert hasattr(losses, info.loss_class)
    for dataset in ("mnist", "fashion-mnist"):
        for suffix in ("", "-quick"):
            preset = CONFIGS / dataset / f"{slug}{suffix}.json"
            cfg = load_config(preset, ["dataset=" + dataset])
            assert cfg.training_objective == slug and cfg.model_dir == f"runs/{dataset}/{slug}{suffix}"


def _check(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(["config", "check", *argv])
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("slug", SLUGS)
def test_another_objectives_key_is_refused_in_one_line(slug, capsys):
    for key in sorted(KEYS[slug]):
        for other in SLUGS:
            if key in KEYS[other]:
                continue
            code, err = _check(capsys, f"{CONFIGS}/mnist/{other}.json", "--set", f"{key}=1")
            assert code == 2 and len(err.splitlines()) == 1, err
            assert f"config key '{key}'" in err and "belongs to training_objective" in err
    code, err = _check(capsys, f"{CONFIGS}/mnist/madry.json", "--set", f"{sorted(KEYS[slug])[0]}=1")
    assert code == 2 and "belongs to training_objective" in err


@pytest.mark.parametrize("preset,setting,message", [
    ("trades", "beta=-0.5", "'beta' = -0.5 (from --set): must be >= 0"),
    ("igr", "lambda=-1", "'lambda' = -1 (from --set): must be >= 0"),
    ("igr", "m=0", "'m' = 0 (from --set): must be "),
    ("igr", "igr_base=pgd", "'igr_base' = \"pgd\" (from --set): must be one of trades, madry"),
    ("lga", "lam_cos=-1", "'lam_cos' = -1 (from --set): must be >= 0"),
    ("lga", "lga_variant=hessain", "did you mean 'hessian'"),
    ("ssr", "ssr_alpha=1.5", "'ssr_alpha' = 1.5 (from --set): must be in [0, 1]"),
    ("ssr", "ssr_scale=-2", "'ssr_scale' = -2 (from --set): must be >= 0"),
    ("art", "art_top_k=0", "'art_top_k' = 0 (from --set): must be >= 1"),
    ("art", "gamma=\"x\"", "'gamma' = \"x\" (from --set): must be a finite number"),
    ("art", "art_step_size=0", "'art_step_size' = 0 (from --set): must be > 0"),
])
def test_bad_values_are_refused_in_one_line(preset, setting, message, capsys):
    code, err = _check(capsys, f"{CONFIGS}/mnist/{preset}.json", "--set", setting)
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def _train(slug: str, run: Path, root: Path, steps: int, *extra: str) -> int:
    sets = [*SMALL, f"model_dir={run}", f"data_root={root}", f"max_num_training_steps={steps}", *extra]
    return cli.main(["train", f"{CONFIGS}/mnist/{slug}-quick.json", *[a for s in sets for a in ("--set", s)]])


def _metrics(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "examples_per_s"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("slug", SLUGS)
def test_trains_twenty_steps_with_a_falling_loss_and_resumes_exactly(slug, mnist_root, tmp_path, capsys):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert _train(slug, straight, mnist_root, 20) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 20 and json.loads((straight / "config.json").read_text())["training_objective"] == slug
    logged = _metrics(straight)
    loss = [m["loss"] for m in logged]
    assert len(loss) == 20 and all(math.isfinite(v) for v in loss)
    assert sum(loss[-5:]) < 0.8 * sum(loss[:5]), loss  # falling: the last five well below the first five
    assert all(math.isfinite(m["reg"]) and m["reg"] > 0 for m in logged)

    assert _train(slug, resumed, mnist_root, 10) == 0
    assert _train(slug, resumed, mnist_root, 20, "continue_train=true") == 0
    capsys.readouterr()
    (weights_a, meta_a), (weights_b, meta_b) = load_checkpoint(straight), load_checkpoint(resumed)
    assert meta_a["step"] == meta_b["step"] == 20
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert _metrics(resumed) == logged


@pytest.mark.slow
def test_a_resumed_run_must_keep_the_objectives_keys(mnist_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train("lga", run, mnist_root, 1, "num_checkpoint_steps=1") == 0
    capsys.readouterr()
    assert _train("lga", run, mnist_root, 2, "num_checkpoint_steps=1", "continue_train=true", "lam_cos=0.5") == 2
    assert "lam_cos: 1.0 -> 0.5" in capsys.readouterr().err
