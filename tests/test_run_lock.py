"""One writer per run directory: a second train/eval/figure is refused naming the holder's PID,
the lock dies with its process, concurrent evaluations never duplicate rows, and the ``.partial``
files of killed writers are removed by the next writer."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_training import wait_for_checkpoint

from robustattr import cli
from robustattr.checkpoints import list_checkpoints
from robustattr.errors import UserInputError
from robustattr.run_lock import run_dir_lock

@pytest.fixture
def config_file(tiny_config) -> Path:
    return tiny_config()


def _robustattr(*args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "robustattr", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_second_writer_is_refused_and_the_lock_dies_with_its_holder(config_file, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    holder = _robustattr("train", config_file, "--set", f"model_dir={run}", "--set", "max_num_training_steps=100000")
    try:
        wait_for_checkpoint(holder, run)
        seed_before = json.loads((run / "config.json").read_text())["random_seed"]
        for argv in (["train", config_file, "--set", f"model_dir={run}", "--set", "random_seed=7", "--overwrite"],
                     ["eval", "pgd", run], ["eval", "attribution", run], ["figure", run, "--curves"]):
            assert cli.main([str(a) for a in argv]) == 2
            err = capsys.readouterr().err.strip().splitlines()[-1]
            assert err == (f"robustattr: error: run directory {run} is in use by process {holder.pid} (another "
                           "robustattr train, eval or figure); one writer per run directory: wait for it to "
                           "finish, or stop it")
        assert json.loads((run / "config.json").read_text())["random_seed"] == seed_before
    finally:
        holder.kill()
        holder.communicate()
    last = list_checkpoints(run)[-1]
    assert cli.main(["train", str(config_file), "--set", f"model_dir={run}", "--set", "continue_train=true",
                     "--set", f"max_num_training_steps={last + 1}"]) == 0  # the kill released the lock
    assert cli.main(["eval", "pgd", str(run)]) == 0


@pytest.mark.slow
def test_concurrent_attribution_evaluations_write_each_example_once(natural_mnist_run, tmp_path) -> None:
    run = Path(shutil.copytree(natural_mnist_run, tmp_path / "run", copy_function=os.link))
    sets = ["--set", "num_attribution_examples=24", "--set", "attribution_batch_size=1", "--set",
            "attribution_attack_steps=2", "--set", "num_IG_steps=4", "--set", "attribution_attack_times=1"]
    evaluations = [_robustattr("eval", "attribution", run, *sets) for _ in range(2)]
    outcomes = [(proc.wait(timeout=300), proc.communicate()[1]) for proc in evaluations]
    codes = sorted(code for code, _ in outcomes)
    assert codes in ([0, 0], [0, 2]), outcomes  # [0, 2]: they overlapped, the second was refused
    assert all("Traceback" not in err for _, err in outcomes)
    with open(run / "eval_attribution_examples.csv", newline="") as fh:
        indices = [int(row["index"]) for row in csv.DictReader(fh)]
    assert sorted(indices) == list(range(24))


@pytest.mark.slow
def test_lock_is_reentrant_refuses_others_and_removes_what_it_created(tmp_path) -> None:
    run = tmp_path / "new" / "run"
    probe = [sys.executable, "-c", "import sys; from robustattr.run_lock import run_dir_lock\n"
             "with run_dir_lock(sys.argv[1], 'probe'): pass", str(run)]
    with run_dir_lock(run, "train", create=True):
        with run_dir_lock(run, "eval pgd"):  # the same process: repro trains, then evaluates
            pass
        refused = subprocess.run(probe, capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and f"is in use by process {os.getpid()}" in refused.stderr
    assert subprocess.run(probe, capture_output=True, timeout=60).returncode == 0
    assert not (tmp_path / "new").exists()  # created for a run that wrote nothing: removed again
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserInputError, match="is a file, not a directory"):
        with run_dir_lock(tmp_path / "file", "train", create=True):
            pass


def test_partial_files_of_killed_writers_are_removed_at_the_next_start(natural_mnist_run, tmp_path) -> None:
    run = Path(shutil.copytree(natural_mnist_run, tmp_path / "run", copy_function=os.link))
    stale = [run / ".checkpoint-00000600.safetensors.k2j4.partial", run / ".config.json.x8a1.partial"]
    for path in stale:
        path.write_bytes(b"half a file")
    assert cli.main(["eval", "pgd", str(run), "--set", "num_eval_examples=4", "--set", "num_steps=1"]) == 0
    assert not any(path.exists() for path in stale)


@pytest.mark.slow
def test_the_refusal_is_the_only_line_a_refused_process_prints(config_file, tmp_path) -> None:
    """A run with a config.json and no checkpoint yet: continue_train would log "no checkpoint ... yet;
    starting from scratch", but a process the lock refuses must print the refusal and nothing else."""
    from robustattr.config import load_config

    run = tmp_path / "run"
    run.mkdir()
    cfg = load_config(config_file, [f"model_dir={run}", "continue_train=true"])
    (run / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)", str(run)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = subprocess.run([sys.executable, "-m", "robustattr", "train", str(config_file), "--set",
                                  f"model_dir={run}", "--set", "continue_train=true"],
                                 capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        holder.kill()
        holder.communicate()
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"robustattr: error: run directory {run} is in use by process {holder.pid} (another robustattr train, eval "
        "or figure); one writer per run directory: wait for it to finish, or stop it"]
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]


def test_eval_pgd_holds_the_lock_and_reading_its_settings_does_not(natural_mnist_run, tmp_path, monkeypatch) -> None:
    """evaluate_pgd runs under the run directory's lock (a second writer is refused); result_settings,
    which the pipelines call to judge staleness, only reads the config and takes no lock."""
    import shutil

    from robustattr import run_lock
    from robustattr.config import load_run_or_config
    from robustattr.evaluation import accuracy

    run = shutil.copytree(natural_mnist_run, tmp_path / "run")  # the shared run stays without results
    cfg = load_run_or_config(str(run), ["num_eval_examples=20", "num_adversarial_examples=4", "num_steps=1",
                                        f"model_dir={run}"])
    taken: list[str] = []
    original = run_lock.run_dir_lock

    def recording(run_dir, command, **kw):
        taken.append(command)
        return original(run_dir, command, **kw)

    monkeypatch.setattr(run_lock, "run_dir_lock", recording)
    accuracy.result_settings(cfg)
    assert taken == []
    accuracy.evaluate_pgd(cfg)
    assert taken == ["eval pgd"]
