"""Every file robustattr reads, damaged each way, through the command line: exit 2 and one line
naming the file and what was wrong, never a traceback, and nothing created or changed.

One tiny trained and evaluated MNIST run is made per module; each case works on a copy whose
unchanged files are hard links (cheap), and a damaged file is always a new file, never written
through a link into the shared original.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from fixtures_training import write_tiny_config
from robustattr import cli
from robustattr.checkpoints import save_checkpoint

SIDECAR = "checkpoint-00000003.json"
DEEP = b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}"


@pytest.fixture(scope="module")
def base_config(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> Path:
    return write_tiny_config(tmp_path_factory.mktemp("bad-files") / "base.json", mnist_root)


@pytest.fixture(scope="module")
def pristine_run(base_config: Path) -> Path:
    """A 3-step run with its evaluation files and metrics."""
    run = base_config.parent / "pristine"
    sets = ["--set", f"model_dir={run}"]
    for argv in (["train", base_config, *sets], ["eval", "pgd", run], ["eval", "attribution", run]):
        assert cli.main([str(a) for a in argv]) == 0
    return run


@pytest.fixture
def run(pristine_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine_run, tmp_path / "run", copy_function=os.link))


def _replace(path: Path, content: bytes) -> None:
    path.unlink()  # never write through the hard link into the shared run
    path.write_bytes(content)


def _edit_json(name: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    def mutate(run: Path) -> None:
        data = json.loads((run / name).read_text())
        change(data)
        _replace(run / name, json.dumps(data).encode())
    return mutate


def _write(name: str, content: bytes) -> Callable[[Path], None]:
    return lambda run: _replace(run / name, content)


def _append(name: str, content: bytes) -> Callable[[Path], None]:
    return lambda run: _replace(run / name, (run / name).read_bytes() + content)


def _fifo(name: str) -> Callable[[Path], None]:
    def mutate(run: Path) -> None:
        (run / name).unlink()
        os.mkfifo(run / name)
    return mutate


def _other_run_config(data: dict) -> None:
    data["config_digest"] = "0" * 64
    data["config"]["random_seed"] += 1


def _wrong_shape_weights(run: Path) -> None:
    """A checkpoint of another architecture whose sidecar matches its weights."""
    meta = json.loads((run / SIDECAR).read_text())
    extra = {k: meta[k] for k in ("data_order", "config_digest", "config", "model")}
    for suffix in (".json", ".safetensors"):
        (run / SIDECAR).with_suffix(suffix).unlink()
    save_checkpoint(run, 3, nn.Linear(2, 2), torch.optim.Adam(nn.Linear(2, 2).parameters()), state=extra)


EVAL = ("eval", "pgd", "{run}")
RESUME = ("train", "{base}", "--set", "model_dir={run}", "--set", "continue_train=true",
          "--set", "max_num_training_steps=4")
REPORT = ("report", "{run}")
CURVES = ("figure", "{run}", "--curves")
FIGURE = ("figure", "{run}", "--index", "0")

CASES = [  # (id, damage, commands, the words the error must contain)
    ("sidecar is a list", _write(SIDECAR, b"[]"), [EVAL, RESUME, FIGURE], "it must be an object, found a list"),
    ("sidecar lacks rng", _edit_json(SIDECAR, lambda d: d.pop("rng")), [EVAL, RESUME], "lacks the key 'rng'"),
    ("sidecar lacks data_order", _edit_json(SIDECAR, lambda d: d.pop("data_order")), [RESUME],
     "lacks the key 'data_order'"),
    ("sidecar step is text", _edit_json(SIDECAR, lambda d: d.update(step="3")), [EVAL, RESUME],
     "'step' must be an integer"),
    ("sidecar step disagrees with its name", _edit_json(SIDECAR, lambda d: d.update(step=900)), [EVAL, RESUME],
     "says step 900, its file name step 3"),
    ("sidecar bad base64", _edit_json(SIDECAR, lambda d: d["rng"].update(torch_cpu="!!not base64")),
     [EVAL, RESUME], "'rng.torch_cpu' must be base64 text"),
    ("sidecar rng of the wrong size", _edit_json(SIDECAR, lambda d: d["rng"]["numpy"].update(keys="QUJD")),
     [RESUME], "its RNG state is damaged"),
    ("sidecar data order outside the set", _edit_json(SIDECAR, lambda d: d["data_order"].update(pos=10**9)),
     [RESUME], "its data order does not fit"),
    ("sidecar undecodable", _write(SIDECAR, b'{"step": 3, "x": "\xff"}'), [EVAL, RESUME], "not UTF-8 text"),
    ("sidecar nested too deep", _write(SIDECAR, DEEP), [EVAL], "nested deeper than"),
    ("sidecar huge integer", _write(SIDECAR, b'{"step": ' + b"1" * 5000 + b"}"), [EVAL],
     "an integer of 5000 digits (at most 1000 are accepted)"),
    ("sidecar of another config", _edit_json(SIDECAR, _other_run_config), [EVAL, RESUME, FIGURE],
     "does not describe checkpoint"),
    ("weights of the wrong shape", _wrong_shape_weights, [EVAL, RESUME], "not fit model 'mnist_cnn'"),
    ("config.json is a list", _write("config.json", b"[1]"), [EVAL, REPORT, RESUME], "found a list"),
    ("config.json undecodable", _write("config.json", b'{"dataset": "\xff"}'), [EVAL, REPORT], "not UTF-8 text"),
    ("config.json nested too deep", _write("config.json", DEEP), [EVAL, REPORT], "nested deeper than"),
    ("config.json huge integer", _write("config.json", b'{"m": ' + b"7" * 4400 + b"}"), [EVAL, REPORT],
     "4400 digits"),
    ("config.json lacks dataset", _edit_json("config.json", lambda d: d.pop("dataset")), [REPORT],
     "lacks the key 'dataset'"),
    ("config.json of another run", _edit_json("config.json", lambda d: d.update(random_seed=1)), [EVAL, FIGURE],
     "does not describe checkpoint"),
    ("config.json is a FIFO", _fifo("config.json"), [REPORT], "not a regular file"),
    ("eval_pgd.json is a list", _write("eval_pgd.json", b"[]"), [REPORT], "eval_pgd.json is corrupt"),
    ("eval_pgd.json undecodable", _write("eval_pgd.json", b'{"natural_accuracy": "\xff"}'), [REPORT],
     "eval_pgd.json is corrupt: not UTF-8"),
    ("eval_pgd.json wrong type", _edit_json("eval_pgd.json", lambda d: d.update(natural_accuracy="0.9")),
     [REPORT], "'natural_accuracy' must be a number or null"),
    ("eval_attribution.json lacks kendall", _edit_json("eval_attribution.json", lambda d: d.pop("kendall")),
     [REPORT], "lacks the key 'kendall'"),
    ("metrics.jsonl undecodable line", _append("metrics.jsonl", b"\xff\n"), [CURVES, RESUME],
     "metrics log"),
    ("metrics.jsonl line not an object", _append("metrics.jsonl", b"[3]\n"), [CURVES, RESUME],
     "it must be an object, found a list"),
]


@contextlib.contextmanager
def _no_hang(seconds: int = 60) -> Iterator[None]:
    """Fail, rather than wait forever, when a command blocks (reading a FIFO would)."""
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"blocked for {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _listing(run: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in run.iterdir()}


def _argv(command: tuple[str, ...], run: Path, base: Path) -> list[str]:
    return [part.format(run=run, base=base) for part in command]


@pytest.mark.parametrize(("damage", "commands", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_damaged_run_file_is_one_line_exit_2(run, base_config, capsys, damage, commands, needle) -> None:
    damage(run)
    before = _listing(run)
    for command in commands:
        capsys.readouterr()
        with _no_hang():
            code = cli.main(_argv(command, run, base_config))
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1] if err.strip() else ""
        assert code == 2, (command, err)
        assert "Traceback" not in err and last.startswith("robustattr: error: "), err
        assert needle in last and str(run) in last, (command, last)
    assert _listing(run) == before  # nothing written, nothing removed


CONFIGS = [  # (id, config file bytes, words of the error); test_config.py has the schema's own cases
    ("nested 5000 deep", b'{"dataset": "mnist", "_comment": ' + b"[" * 5000 + b"]" * 5000 + b"}",
     "nested deeper than 32 levels"),
    ("nested 40 deep", b'{"dataset": "mnist", "_comment": ' + b"[" * 40 + b"]" * 40 + b"}",
     "nested deeper than 32 levels"),
    ("integer of 4301 digits", b'{"dataset": "mnist", "m": ' + b"1" * 4301 + b"}", "an integer of 4301 digits"),
    ("integer of 1001 digits", b'{"dataset": "mnist", "m": ' + b"1" * 1001 + b"}", "an integer of 1001 digits"),
]


@pytest.mark.parametrize(("content", "needle"), [c[1:] for c in CONFIGS], ids=[c[0] for c in CONFIGS])
def test_bad_config_is_refused_before_anything_is_created(tmp_path, capsys, content, needle) -> None:
    config = tmp_path / "config.json"
    config.write_bytes(content)
    for argv in (["config", "check", config], ["train", config, "--set", f"model_dir={tmp_path / 'run'}"]):
        assert cli.main([str(a) for a in argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err and str(config) in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["[" * 5000 + "]" * 5000, "9" * 5000], ids=["nested", "long integer"])
def test_absurd_set_values_are_one_line(tmp_path, capsys, value) -> None:
    (tmp_path / "config.json").write_text('{"dataset": "mnist"}')
    assert cli.main(["config", "check", str(tmp_path / "config.json"), "--set", f"m={value}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config key 'm' = " in err and "characters) (from --set): must be an integer" in err


def test_fifo_config_is_refused_not_waited_on(tmp_path, capsys) -> None:
    os.mkfifo(tmp_path / "config.json")
    with _no_hang():  # a read would wait for a writer forever
        assert cli.main(["config", "check", str(tmp_path / "config.json")]) == 2
    assert "is not a regular file" in capsys.readouterr().err


def _cache_copy(mnist_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "cache"
    shutil.copytree(mnist_root / "mnist", root / "mnist", copy_function=os.link)
    return root


MANIFESTS = [  # (id, damage of the manifest, words of the error)
    ("list", lambda m: [], "it must be an object, found a list"),
    ("no files", lambda m: {k: v for k, v in m.items() if k != "files"}, "lacks the key 'files'"),
    ("file outside the folder", lambda m: {**m, "files": {**m["files"], "../../x.npy": m["files"]["test-labels.npy"]}},
     "has the key \"../../x.npy\", which must be a file name inside its folder"),
    ("split outside the folder", lambda m: {**m, "splits": {**m["splits"], "test": {**m["splits"]["test"],
                                                                                  "labels": "/etc/passwd"}}},
     "'splits.test.labels' must be a file name inside its folder"),
    ("split file not listed", lambda m: {**m, "splits": {**m["splits"], "test": {**m["splits"]["test"],
                                                                               "labels": "other.npy"}}},
     "which 'files' does not list"),
    ("other format", lambda m: {**m, "format_version": 7}, "cache format 7 is not 1"),
]


@pytest.mark.parametrize(("damage", "needle"), [c[1:] for c in MANIFESTS], ids=[c[0] for c in MANIFESTS])
def test_damaged_manifest_is_flagged(mnist_root, tmp_path, capsys, damage, needle) -> None:
    root = _cache_copy(mnist_root, tmp_path)
    manifest = root / "mnist" / "manifest.json"
    _replace(manifest, json.dumps(damage(json.loads(manifest.read_text()))).encode())
    info = ["data", "info", "mnist", "--root", str(root)]
    config = write_tiny_config(tmp_path / "tiny.json", root)
    train = ["train", str(config), "--set", f"model_dir={tmp_path / 'run'}"]
    for argv in (info, train):
        code = cli.main(argv)
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err, err
        assert needle in err and str(manifest) in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("damage", [lambda m: [], lambda m: {k: v for k, v in m.items() if k != "files"}],
                         ids=["list", "no files"])
@pytest.mark.slow
def test_data_fetch_repairs_a_damaged_manifest(mnist_root, tmp_path, capsys, damage) -> None:
    root = _cache_copy(mnist_root, tmp_path)
    manifest = root / "mnist" / "manifest.json"
    good = json.loads(manifest.read_text())
    _replace(manifest, json.dumps(damage(good)).encode())
    assert cli.main(["data", "fetch", "mnist", "--root", str(root)]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "prepared"
    assert json.loads(manifest.read_text())["files"] == good["files"]
    assert cli.main(["data", "info", "mnist", "--root", str(root)]) == 0


# --- sizes no machine could honour: refused by `config check` already --------------------------------

BOUNDS = [  # (key, value, words of the error)
    ("max_num_training_steps", int("9" * 400), "must be <= 1000000000 (10**9 steps would take years"),
    ("training_batch_size", 10**12, "must be <= 1048576 (2**20 images in one batch exceed"),
    ("eval_batch_size", 2**20 + 1, "must be <= 1048576"),
    ("attribution_batch_size", 10**7, "must be <= 1048576"),
    ("num_eval_examples", 10**10, "must be <= 1000000000 (more images than any dataset holds)"),
    ("num_adversarial_examples", 10**10, "must be <= 1000000000"),
    ("num_attribution_examples", 10**10, "must be <= 1000000000"),
    ("num_steps", 10**10, "must be <= 1000000000"),
    ("attribution_attack_steps", 10**10, "must be <= 1000000000"),
    ("num_checkpoint_steps", 10**10, "must be <= 1000000000"),
    ("m", 10**7, "must be <= 1000000 (10**6 points per image"),
    ("num_IG_steps", 10**7, "must be <= 1000000"),
    ("memory_budget_mb", 2**31, "must be <= 1073741824"),
]


@pytest.mark.parametrize(("key", "value", "needle"), BOUNDS, ids=[c[0] for c in BOUNDS])
def test_absurd_sizes_are_refused_by_config_check(tmp_path, capsys, key, value, needle) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"dataset": "mnist", key: value}))
    for argv in (["config", "check", config], ["train", config, "--set", f"model_dir={tmp_path / 'run'}"]):
        assert cli.main([str(a) for a in argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"config key '{key}' = " in err and needle in err, err
    assert not (tmp_path / "run").exists()
