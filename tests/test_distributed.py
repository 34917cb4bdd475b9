"""Data-parallel training and sharded evaluation under a real ``torchrun`` launch (2 Gloo processes).

The launches run ``python -m torch.distributed.run --standalone --nproc_per_node=2 -m robustattr``
on real MNIST with tiny budgets, and are compared with one process running the same config: the
weights after a few IG-NORM steps within float tolerance (the shards' gradients are summed in
another order), the evaluation files byte for byte. A rank killed mid-launch fails the launch and
leaves no result file that looks complete.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from robustattr import cli, distributed
from robustattr.config import load_config
from robustattr.training import OBJECTIVES, ObjectiveParams, train

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")

LAUNCH_TIMEOUT_S = 300


def _torchrun(*args: str, nproc: int = 2) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--standalone",
               "-m", "robustattr", *[str(a) for a in args]]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=LAUNCH_TIMEOUT_S)
    return proc.returncode, out, err


def _sets(items: dict) -> list[str]:
    return [arg for key, value in items.items() for arg in ("--set", f"{key}={json.dumps(value)}")]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if k.startswith("model.")}


# ---------------------------------------------------------------------------------------------
# The arithmetic, in one process: the ranks' shares add up to the whole batch's loss and gradient.


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 8), nn.ReLU(), nn.Linear(8, 3)
    ).double()


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_shard_losses_and_gradients_add_up_to_the_whole_batch(name: str, reduction: str) -> None:
    params = ObjectiveParams(reduction=reduction, weight_decay=0.05, m=4, approx_factor=2, epsilon=0.2,
                             num_steps=2, step_size=0.05, lam=0.5, loss_func="ar_approx")
    g = torch.Generator().manual_seed(5)
    x = torch.rand(7, 1, 6, 6, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 2, 1, 0, 1])
    noise = torch.empty_like(x).uniform_(-params.epsilon, params.epsilon, generator=g)

    model = _tiny_model()
    whole = OBJECTIVES[name](model, x, y, ObjectiveParams(**{**params.__dict__, "start_noise": noise}))
    whole.loss.backward()
    expected = [p.grad.clone() for p in model.parameters()]

    model = _tiny_model()
    loss_sum = torch.zeros((), dtype=torch.float64)
    for rank in range(2):  # uneven shards: 3 and 4 examples
        part = slice(*distributed.shard_bounds(7, 2, rank))
        shard_params = ObjectiveParams(**{**params.__dict__, "global_batch_size": 7, "start_noise": noise[part]})
        out = OBJECTIVES[name](model, x[part], y[part], shard_params)
        out.loss.backward()  # gradients accumulate: the sum over the ranks
        loss_sum += out.loss.detach()
    torch.testing.assert_close(loss_sum, whole.loss.detach())
    for got, want in zip((p.grad for p in model.parameters()), expected):
        torch.testing.assert_close(got, want)


def test_shard_bounds_cover_the_batch_once() -> None:
    for total in (1, 7, 8, 50):
        bounds = [distributed.shard_bounds(total, 3, r) for r in range(3)]
        assert bounds[0][0] == 0 and bounds[-1][1] == total
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert max(hi - lo for lo, hi in bounds) - min(hi - lo for lo, hi in bounds) <= 1


@pytest.mark.skipif(distributed.launched_by_torchrun(), reason="this test runs outside torchrun")
def test_single_process_has_no_process_group() -> None:
    assert distributed.init_from_env() is False and not distributed.is_active()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.run_on_main(lambda: 3) == 3 and distributed.all_gather_object("a") == ["a"]


# ---------------------------------------------------------------------------------------------
# Real launches.


def _train_config(mnist_root: Path, run_dir: Path, steps: int) -> dict:
    """IG-NORM with PGD random starts, weight decay and an odd batch (shards of 3 and 4)."""
    return {
        "dataset": "mnist", "training_objective": "ar", "data_root": str(mnist_root), "model_dir": str(run_dir),
        "device": "cpu", "max_num_training_steps": steps, "num_checkpoint_steps": 1, "keep_checkpoints": 10,
        "num_output_steps": 1, "num_summary_steps": 1000, "training_batch_size": 7, "m": 4, "approx_factor": 2,
        "num_steps": 2, "step_size": 0.1, "epsilon": 0.3, "loss_func": "ar_approx", "random_start": True,
        "optimizer": "momentum", "learning_rate": 0.01, "weight_decay": 0.001,
    }


@pytest.mark.slow
def test_two_ranks_train_like_one_process_and_resume_with_one(mnist_root: Path, tmp_path: Path) -> None:
    two = tmp_path / "two"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_train_config(mnist_root, two, steps=2)))
    launch = _torchrun("train", config)  # runs while the reference trains here

    reference = tmp_path / "one"
    train(load_config(None, base=_train_config(mnist_root, reference, steps=3)), progress=False)
    code, out, err = _finish(launch)
    assert code == 0, err[-3000:]
    assert json.loads(out)["steps"] == 2  # one JSON result: only rank 0 prints

    for step in (1, 2):
        got = _weights(two / f"checkpoint-{step:08d}.safetensors")
        want = _weights(reference / f"checkpoint-{step:08d}.safetensors")
        assert got.keys() == want.keys()
        for key in want:
            torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-6, msg=lambda detail, key=key: f"{key}: {detail}")
    # The logged metrics are those of the global batch, not of rank 0's shard.
    lines = [[json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (two, reference)]
    assert [r["step"] for r in lines[0]] == [0, 1]
    for got, want in zip(lines[0], lines[1]):
        for key in ("loss", "nat_acc", "nat_loss", "adv_acc", "adv_loss", "ig"):
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key
    sidecars = [json.loads((d / "checkpoint-00000002.json").read_text()) for d in (two, reference)]
    assert sidecars[0]["data_order"] == sidecars[1]["data_order"] and sidecars[0]["rng"] == sidecars[1]["rng"]

    # The checkpoint is the single-process state: one process continues where the two ranks stopped.
    # One step only: PGD's sign steps turn a float-order difference of 1e-7 into a step-sized change
    # of the adversarial input once some pixel's gradient crosses zero, and from then on the runs
    # part by about the learning rate (measured between two ranks and one process: 3e-7 after step 3,
    # 1e-3 after step 4). One process resuming its own checkpoint is exact (tests/training).
    resumed = _train_config(mnist_root, two, steps=3)
    train(load_config(None, base={**resumed, "continue_train": True}), progress=False)
    got, want = (_weights(d / "checkpoint-00000003.safetensors") for d in (two, reference))
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-6, msg=lambda detail, key=key: f"{key}: {detail}")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> Path:
    """A NATURAL MNIST run, 60 steps: accurate enough that most test images get attacked."""
    run_dir = tmp_path_factory.mktemp("distributed-eval-run")
    train(load_config(None, base={
        "dataset": "mnist", "training_objective": "nat", "data_root": str(mnist_root), "model_dir": str(run_dir),
        "device": "cpu", "max_num_training_steps": 60, "num_checkpoint_steps": 60, "num_output_steps": 60,
        "training_batch_size": 50, "optimizer": "adam", "learning_rate": 1e-3,
    }), progress=False)
    return run_dir


def _copies(run: Path, tmp_path: Path) -> tuple[Path, Path]:
    return Path(shutil.copytree(run, tmp_path / "one")), Path(shutil.copytree(run, tmp_path / "two"))


ATTRIBUTION = {"num_attribution_examples": 9, "attribution_batch_size": 2, "attribution_attack_steps": 2,
               "num_IG_steps": 4, "attribution_attack_times": 2, "attribution_attack_step_size": 0.05,
               "attribution_attack_method": "random"}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["random", "strong"])
def test_sharded_attribution_evaluation_writes_the_single_process_files(trained_run, tmp_path, capsys, method) -> None:
    one, two = _copies(trained_run, tmp_path)
    settings = {**ATTRIBUTION, "attribution_attack_method": method}
    stem = "eval_attribution_strong" if method == "strong" else "eval_attribution"
    launch = _torchrun("eval", "attribution", two, *_sets({**settings, "model_dir": str(two)}))
    assert cli.main(["eval", "attribution", str(one), *_sets({**settings, "model_dir": str(one)})]) == 0
    code, out, err = _finish(launch)
    assert code == 0, err[-3000:]
    for name in (f"{stem}_examples.csv", f"{stem}.json", f"{stem}_examples.settings.json"):
        assert (two / name).read_bytes() == (one / name).read_bytes(), name
    assert json.loads(out) == json.loads((one / f"{stem}.json").read_text())
    with open(two / f"{stem}_examples.csv", newline="") as fh:
        assert [int(r["index"]) for r in csv.DictReader(fh)] == list(range(9))


@pytest.mark.slow
def test_sharded_pgd_evaluation_writes_the_single_process_file(trained_run, tmp_path, capsys) -> None:
    one, two = _copies(trained_run, tmp_path)
    settings = {"num_eval_examples": 21, "num_adversarial_examples": 13, "eval_batch_size": 4, "num_steps": 2,
                "epsilon": 0.1, "step_size": 0.03, "random_start": True}
    launch = _torchrun("eval", "pgd", two, *_sets({**settings, "model_dir": str(two)}))
    assert cli.main(["eval", "pgd", str(one), *_sets({**settings, "model_dir": str(one)})]) == 0
    code, _, err = _finish(launch)
    assert code == 0, err[-3000:]
    assert (two / "eval_pgd.json").read_bytes() == (one / "eval_pgd.json").read_bytes()
    result = json.loads((two / "eval_pgd.json").read_text())
    assert 0 < result["adversarial_accuracy"] < 1  # the random starts matter, and they agree


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _worker_of_rank(launcher: int, rank: int) -> int | None:
    for pid in _descendants(launcher):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env and b"LOCAL_RANK=" + str(rank).encode() in env:
            return pid
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the worker through /proc")
def test_a_killed_rank_fails_the_launch_and_leaves_no_complete_result(trained_run, tmp_path) -> None:
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    slow = {**ATTRIBUTION, "num_attribution_examples": 400, "attribution_batch_size": 1, "model_dir": str(run)}
    launch = _torchrun("eval", "attribution", run, *_sets(slow))
    rows_file = run / "eval_attribution_examples.csv"
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    # Wait until the ranks are inside the evaluation (rank 0 appended a first round of rows) ...
    while time.monotonic() < deadline and launch.poll() is None:
        if rows_file.exists() and len(rows_file.read_text().splitlines()) >= 3:
            break
        time.sleep(0.2)
    assert launch.poll() is None, "the launch ended before a rank could be killed"
    victim = _worker_of_rank(launch.pid, 1)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)  # ... then rank 1 dies, as under the OOM killer
    code, _, err = _finish(launch)

    assert code != 0
    assert "rank" in err and ("SIGKILL" in err or "Signal 9" in err), err[-3000:]
    assert not (run / "eval_attribution.json").exists()  # the summary only exists once complete
    assert not list(run.glob(".*tmp*"))
    with open(rows_file, newline="") as fh:  # rows written so far are whole, and a rerun resumes from them
        rows = list(csv.DictReader(fh))
    assert rows and len(rows) < 400
    assert [int(r["index"]) for r in rows] == list(range(len(rows)))


@pytest.mark.slow
def test_a_lock_refusal_stops_every_rank_with_the_same_one_line(mnist_root: Path, tmp_path: Path) -> None:
    """Rank 0 is refused the run directory's lock: every rank prints that one reason and nothing else of
    robustattr's (no "no checkpoint ... yet; starting from scratch" before it), and nothing is written."""
    run = tmp_path / "run"
    run.mkdir()
    settings = {**_train_config(mnist_root, run, steps=2), "continue_train": True}
    config = tmp_path / "config.json"
    config.write_text(json.dumps(settings))
    (run / "config.json").write_text(json.dumps(load_config(config).to_dict(), indent=2))
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)", str(run)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = _finish(_torchrun("train", config))
    finally:
        holder.kill()
        holder.communicate()
    reason = (f"run directory {run} is in use by process {holder.pid} (another robustattr train, eval or figure); "
              "one writer per run directory: wait for it to finish, or stop it")
    # robustattr writes errors as "robustattr [rank r/2]: error: ..." and logs as "WARNING [rank r] robustattr.x: ...";
    # torchrun adds its own report of the failed workers. The ranks share one stderr, so their lines may
    # arrive run together: count the messages, not the lines.
    assert code != 0
    assert err.count("robustattr [rank ") == 2 and "] robustattr." not in err, err[-3000:]
    assert all(f"robustattr [rank {r}/2]: error: {reason}" in err for r in (0, 1)), err[-3000:]
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]
