"""The run directory under hostile conditions: everything checkable is refused before model_dir is
created, nothing is written through a symbolic link, and a full disk is one line naming the file
while the last good checkpoint stays."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from robustattr import cli
from robustattr.checkpoints import list_checkpoints, load_checkpoint

@pytest.fixture
def config_file(tiny_config) -> Path:
    return tiny_config()


def _train(config_file: Path, run: Path, *sets: str) -> int:
    return cli.main(["train", str(config_file), "--set", f"model_dir={run}", *[a for s in sets for a in ("--set", s)]])


@pytest.mark.parametrize(("sets", "needle"), [
    (["training_batch_size=60000"], "'training_batch_size' = 60000: larger than the 55000 training images"),
    (["init_from=no/such/run"], "init_from no/such/run does not exist"),
    (["data_root={file}"], "'data_root' = \"{file}\": a file, not a folder"),
    (["model_dir={file}"], "model_dir {file} is a file, not a directory"),
    (["model_dir={file}/run"], "model_dir {file}/run: {file} is a file, not a directory"),
], ids=["batch", "init_from", "data_root", "model_dir", "model_dir parent"])
def test_checkable_mistakes_are_refused_before_model_dir_exists(config_file, tmp_path, capsys, sets, needle) -> None:
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    run = tmp_path / "runs" / "new"
    assert _train(config_file, run, *[s.format(file=file) for s in sets]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle.format(file=file) in err
    assert not (tmp_path / "runs").exists()


def test_a_run_that_fails_early_leaves_no_empty_run_directory(config_file, tmp_path, capsys) -> None:
    # A damaged data cache is found only when the data is loaded, after model_dir was made.
    cache = tmp_path / "cache"
    (cache / "mnist").mkdir(parents=True)
    (cache / "mnist" / "manifest.json").write_text("[]")
    assert _train(config_file, tmp_path / "runs" / "new", f"data_root={cache}") == 2
    assert "cache manifest" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_nothing_is_written_through_a_symlink(config_file, tmp_path, capsys) -> None:
    target = tmp_path / "outside.txt"
    target.write_text("precious")
    run = tmp_path / "run"
    assert _train(config_file, run) == 0
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(target)
    capsys.readouterr()
    assert _train(config_file, run, "continue_train=true", "max_num_training_steps=6") == 2
    assert "metrics.jsonl is a symbolic link" in capsys.readouterr().err
    assert target.read_text() == "precious" and list_checkpoints(run) == [3]
    (run / "metrics.jsonl").unlink()
    (run / "config.json").unlink()
    (run / "config.json").symlink_to(target)  # a whole-file write refuses the link alike
    capsys.readouterr()
    assert _train(config_file, run, "continue_train=true", "max_num_training_steps=6") == 2
    assert "config.json is a symbolic link" in capsys.readouterr().err
    assert target.read_text() == "precious" and (run / "config.json").is_symlink()


@pytest.mark.slow
def test_a_full_disk_is_one_line_naming_the_file_and_the_last_checkpoint_stays(config_file, tmp_path) -> None:
    run = tmp_path / "run"
    assert _train(config_file, run) == 0
    weights_before = (run / "checkpoint-00000003.safetensors").read_bytes()

    def small_files() -> None:  # a checkpoint is ~39 MB; config.json and metrics lines fit
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    child = subprocess.run(
        [sys.executable, "-m", "robustattr", "train", str(config_file), "--set", f"model_dir={run}",
         "--set", "continue_train=true", "--set", "max_num_training_steps=6"],
        capture_output=True, text=True, timeout=300, preexec_fn=small_files,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert child.returncode == 1 and "Traceback" not in child.stderr, child.stderr
    assert child.stderr.strip().splitlines()[-1] == (
        f"robustattr: error: cannot write {run}/checkpoint-00000006.safetensors: File too large")
    assert list_checkpoints(run) == [3] and not list(run.glob(".*.partial"))
    assert (run / "checkpoint-00000003.safetensors").read_bytes() == weights_before
    load_checkpoint(run)  # still loads, sidecar and all
