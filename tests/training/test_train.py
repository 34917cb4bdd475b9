"""The training loop end to end on real MNIST through the CLI, with tiny budgets.

Every objective trains, writes plain-data checkpoints and metrics, and resumes to exactly the weights
of an uninterrupted run; a real SIGKILL and a Ctrl-C leave resumable checkpoints; an existing run
is refused without --overwrite; a NaN loss stops the run naming the last good checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from robustattr import cli
from robustattr.checkpoints import latest_checkpoint, list_checkpoints, load_checkpoint, load_optimizer_state
from robustattr.config import load_config
from robustattr.errors import TrainingError
from robustattr.training import OBJECTIVES, LossOut, train
from robustattr.training.objectives import REGISTRY
from fixtures_training import wait_for_checkpoint

TINY = ["device=cpu", "training_batch_size=10", "m=4", "approx_factor=2", "num_steps=3", "step_size=0.05",
        "num_output_steps=2", "num_checkpoint_steps=3", "keep_checkpoints=5"]
LOSS_FUNC = {"nat": "xent", "adv": "xent", "ar": "ar_approx", "adv_ar": "adv_ar_approx"}


@pytest.fixture()
def config_file(tmp_path: Path, mnist_root: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"dataset": "mnist", "data_root": str(mnist_root)}))
    return path


def _argv(config_file: Path, run_dir: Path, objective: str, steps: int, *extra: str) -> list[str]:
    sets = [*TINY, f"model_dir={run_dir}", f"training_objective={objective}", f"loss_func={LOSS_FUNC[objective]}",
            f"max_num_training_steps={steps}", *extra]
    return ["train", str(config_file), *[a for s in sets for a in ("--set", s)]]


def _train(config_file: Path, run_dir: Path, objective: str, steps: int, *extra: str) -> int:
    return cli.main(_argv(config_file, run_dir, objective, steps, *extra))


def _assert_same_weights(a: Path, b: Path) -> None:
    weights_a, meta_a = load_checkpoint(a)
    weights_b, meta_b = load_checkpoint(b)
    assert meta_a["step"] == meta_b["step"]
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), key


def _metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "examples_per_s"} for line in lines]


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["nat", "adv", "ar", "adv_ar"])
def test_objective_trains_checkpoints_and_resumes_exactly(objective, config_file, tmp_path, capsys) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert _train(config_file, straight, objective, 6) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 6 and summary["final_checkpoint"].endswith("checkpoint-00000006.safetensors")
    assert {"nat_acc", "nat_loss", "lr", "examples_per_s"} <= summary["metrics"].keys()
    if objective != "nat":
        assert {"adv_acc", "adv_loss"} <= summary["metrics"].keys()
    if objective in ("ar", "adv_ar"):
        assert summary["metrics"]["ig"] > 0
    names = sorted(p.name for p in straight.iterdir())
    assert names == ["checkpoint-00000003.json", "checkpoint-00000003.safetensors", "checkpoint-00000006.json",
                     "checkpoint-00000006.safetensors", "config.json", "metrics.jsonl"]
    assert [m["step"] for m in _metrics(straight)] == [0, 2, 4]
    assert json.loads((straight / "config.json").read_text())["training_objective"] == objective

    assert _train(config_file, resumed, objective, 3) == 0
    capsys.readouterr()
    assert _train(config_file, resumed, objective, 6, "continue_train=true") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["resumed_from"], summary["steps_this_run"], summary["steps"]) == (3, 3, 6)
    _assert_same_weights(straight / "checkpoint-00000006.safetensors", resumed / "checkpoint-00000006.safetensors")
    assert _metrics(resumed) == _metrics(straight)
    optim_a = load_optimizer_state(straight / "checkpoint-00000006.safetensors")["state"]
    optim_b = load_optimizer_state(resumed / "checkpoint-00000006.safetensors")["state"]
    assert all(torch.equal(optim_a[i]["exp_avg_sq"], optim_b[i]["exp_avg_sq"]) for i in optim_a)


def test_existing_run_is_refused_without_overwrite(config_file, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert _train(config_file, run, "nat", 3) == 0
    (run / "eval_pgd.json").write_text("{}")  # results of the old weights go with them
    (run / "notes.txt").write_text("mine")    # files the run does not own stay
    capsys.readouterr()
    assert _train(config_file, run, "nat", 3) == 2
    assert "already holds a run; pass --overwrite" in capsys.readouterr().err
    assert _train(config_file, run, "nat", 3, "continue_train=true", "m=5") == 2
    assert "trained with different settings (m: 4 -> 5)" in capsys.readouterr().err
    assert cli.main([*_argv(config_file, run, "nat", 2), "--overwrite"]) == 0
    assert list_checkpoints(run) == [2] and not (run / "eval_pgd.json").exists() and (run / "notes.txt").exists()


def test_nan_loss_stops_naming_the_last_good_checkpoint(config_file, tmp_path, monkeypatch) -> None:
    calls = []
    real = OBJECTIVES["nat"]

    def diverging(model, x, y, params):
        calls.append(1)
        out = real(model, x, y, params)
        return out if len(calls) <= 4 else LossOut(out.loss * float("nan"), out.logs)

    monkeypatch.setitem(REGISTRY, "nat", dataclasses.replace(REGISTRY["nat"], function=diverging))
    run = tmp_path / "run"
    cfg = load_config(config_file, [*TINY, f"model_dir={run}", "max_num_training_steps=9"])
    with pytest.raises(TrainingError, match=r"loss is nan at step 4 .*last good checkpoint: .*checkpoint-00000003"):
        train(cfg, progress=False)
    assert list_checkpoints(run) == [3]
    assert cli.main(_argv(config_file, tmp_path / "run2", "nat", 9)) == 1


def _spawn(config_file: Path, run_dir: Path, steps: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # same kernels as in-process
    # A shell that starts pytest in the background leaves SIGINT ignored, and children inherit
    # that; restore the default so the Ctrl-C test sends what a terminal would.
    return subprocess.Popen([sys.executable, "-m", "robustattr", *_argv(config_file, run_dir, "nat", steps)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(config_file, tmp_path) -> None:
    run, straight = tmp_path / "killed", tmp_path / "straight"
    proc = _spawn(config_file, run, 100_000)
    wait_for_checkpoint(proc, run)
    proc.kill()
    proc.communicate()
    last = list_checkpoints(run)[-1]
    target = last + 4
    assert _train(config_file, run, "nat", target, "continue_train=true") == 0
    assert _train(config_file, straight, "nat", target) == 0
    _assert_same_weights(latest_checkpoint(run), latest_checkpoint(straight))


@pytest.mark.slow
def test_ctrl_c_leaves_a_resumable_checkpoint_and_exits_130(config_file, tmp_path) -> None:
    run, straight = tmp_path / "interrupted", tmp_path / "straight"
    proc = _spawn(config_file, run, 100_000)
    wait_for_checkpoint(proc, run)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    last = list_checkpoints(run)[-1]
    assert load_checkpoint(latest_checkpoint(run))[1]["step"] == last
    assert _train(config_file, run, "nat", last + 2, "continue_train=true") == 0
    assert _train(config_file, straight, "nat", last + 2) == 0
    _assert_same_weights(latest_checkpoint(run), latest_checkpoint(straight))


def test_memory_budget_chunks_the_regulariser_with_the_same_values(config_file, tmp_path, caplog) -> None:
    records = {}
    for name, extra in (("whole", []), ("chunked", ["memory_budget_mb=10"])):  # ≈4.6 MB per example here
        cfg = load_config(config_file, [*TINY, f"model_dir={tmp_path / name}", "training_objective=ar",
                                        "loss_func=ar_approx", "max_num_training_steps=1", "num_steps=1", *extra])
        caplog.set_level("INFO", logger="robustattr.training.loop")
        records[name] = train(cfg, progress=False)["metrics"]
    # Without a budget a CPU pass holds ~128 path points; the budget cuts it to 2 examples.
    assert re.search(r"2 examples per regulariser pass, [2-9] per PGD pass \(memory_budget_mb=10,", caplog.text)
    for key in ("loss", "ig", "nat_loss", "adv_loss"):
        assert records["chunked"][key] == pytest.approx(records["whole"][key], rel=1e-5), key


def test_summaries_go_to_tensorboard_when_available(config_file, tmp_path, monkeypatch) -> None:
    calls = []

    class FakeWriter:
        def add_scalar(self, tag, value, step):
            calls.append((tag, step))

        def close(self):
            calls.append(("closed", None))

    monkeypatch.setattr("robustattr.training.loop.optional_summary_writer", lambda run_dir: FakeWriter())
    cfg = load_config(config_file, [*TINY, f"model_dir={tmp_path / 'run'}", "max_num_training_steps=2",
                                    "num_summary_steps=1", "num_output_steps=5"])
    train(cfg, progress=False)
    assert ("nat_acc", 0) in calls and ("nat_acc", 1) in calls and ("lr", 1) in calls and calls[-1][0] == "closed"
    assert [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()] == [0]


def test_init_from_must_exist(config_file, tmp_path, capsys) -> None:
    assert _train(config_file, tmp_path / "run", "nat", 1, f"init_from={tmp_path / 'nowhere'}") == 2
    assert "init_from" in capsys.readouterr().err


@pytest.mark.slow
def test_epsilon_ramp_changes_training_and_resumes_exactly(config_file, tmp_path, capsys) -> None:
    plain, straight, resumed = tmp_path / "plain", tmp_path / "straight", tmp_path / "resumed"
    ramp = "epsilon_ramp_steps=100"
    assert _train(config_file, plain, "adv", 4) == 0
    assert _train(config_file, straight, "adv", 4, ramp) == 0
    a, _ = load_checkpoint(plain / "checkpoint-00000003.safetensors")
    b, _ = load_checkpoint(straight / "checkpoint-00000003.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a), "a smaller PGD radius must change the updates"
    assert [m["epsilon"] for m in _metrics(straight)] == pytest.approx([0.003, 0.009])  # steps 0 and 2
    assert all("epsilon" not in m for m in _metrics(plain))
    assert _train(config_file, resumed, "adv", 3, ramp) == 0
    assert _train(config_file, resumed, "adv", 6, ramp, "continue_train=true") == 0
    assert _train(config_file, straight, "adv", 6, ramp, "continue_train=true") == 0
    capsys.readouterr()
    _assert_same_weights(straight / "checkpoint-00000006.safetensors", resumed / "checkpoint-00000006.safetensors")


def test_learning_rate_schedule_is_followed_logged_and_resumed_exactly(config_file, tmp_path, capsys) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    schedule = "learning_rate_schedule=[[0, 0.001], [2, 0.0001]]"
    assert _train(config_file, straight, "nat", 6, schedule) == 0
    # Steps 0, 2, 4 logged; step 2 is still in the first piece (s == boundary stays there, as in TF).
    assert [m["lr"] for m in _metrics(straight)] == pytest.approx([1e-3, 1e-3, 1e-4])
    assert _train(config_file, resumed, "nat", 3, schedule) == 0
    assert _train(config_file, resumed, "nat", 6, schedule, "continue_train=true") == 0
    capsys.readouterr()
    _assert_same_weights(straight / "checkpoint-00000006.safetensors", resumed / "checkpoint-00000006.safetensors")
    # Changing the schedule of a run that is being resumed changes its weights: refused.
    assert _train(config_file, resumed, "nat", 8, "continue_train=true") == 2
    assert "learning_rate_schedule" in capsys.readouterr().err
