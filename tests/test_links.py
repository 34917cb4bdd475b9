"""One rule for symbolic links, whatever the command: a link in place of a file robustattr keeps
(a run directory's config.json, metrics.jsonl, eval_* results, checkpoints; the data cache's
manifest, arrays and lock files; a figure's --out) is refused with one line naming the link,
exit 2, and neither the link nor its target changes. The run is the tiny trained and evaluated
run of ``test_bad_input_files``; each case works on a hard-linked copy of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures_training import write_tiny_config
from robustattr import cli
from test_bad_input_files import (  # noqa: F401 - fixtures used by name
    CURVES, EVAL, FIGURE, REPORT, RESUME, SIDECAR, _argv, _cache_copy, _listing, base_config, pristine_run, run,
)


OVERWRITE = ("train", "{base}", "--set", "model_dir={run}", "--overwrite")
EVAL_ATTRIBUTION = ("eval", "attribution", "{run}")
LOCKING = [EVAL, EVAL_ATTRIBUTION, RESUME, OVERWRITE, FIGURE, CURVES]  # every writer of the run directory
LINKED = [  # (file of the run replaced by a link to an identical copy elsewhere, commands that read it unlocked)
    ("config.json", [REPORT]), ("metrics.jsonl", []), ("eval_pgd.json", [REPORT]),
    ("eval_attribution.json", [REPORT]), ("eval_attribution_examples.csv", []), (SIDECAR, []),
    ("checkpoint-00000003.safetensors", []),
]


def _link_to_copy(path: Path, elsewhere: Path) -> Path:
    """Replace ``path`` by a symbolic link to an identical copy at ``elsewhere``; return the copy."""
    elsewhere.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(elsewhere)
    return elsewhere


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


@pytest.mark.parametrize(("name", "readers"), LINKED, ids=[c[0] for c in LINKED])
def test_a_linked_run_file_is_refused_naming_the_link(run, base_config, tmp_path, capsys, name, readers) -> None:
    target = _link_to_copy(run / name, tmp_path / f"elsewhere-{name}")
    before, target_before = _listing(run), _snapshot(target)
    for command in LOCKING + readers:
        capsys.readouterr()
        code = cli.main(_argv(command, run, base_config))
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1] if err.strip() else ""
        assert code == 2 and "Traceback" not in err, (command, err)
        assert last.startswith(f"robustattr: error: {run / name} is a symbolic link"), (command, last)
    assert (run / name).is_symlink() and _snapshot(target) == target_before and _listing(run) == before


def test_a_linked_figure_out_is_refused(run, tmp_path, capsys) -> None:
    target = tmp_path / "precious.png"
    target.write_bytes(b"not a figure")
    out = tmp_path / "figure.png"
    out.symlink_to(target)
    assert cli.main(["figure", str(run), "--curves", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(f"robustattr: error: {out} is a symbolic link"), err
    assert out.is_symlink() and target.read_bytes() == b"not a figure"
    assert not list(tmp_path.glob(".*.partial"))


CACHE_LINKS = [  # (cache file replaced by a link, commands: "info", "fetch", "train")
    ("mnist/manifest.json", ["info", "fetch", "train"]),
    ("mnist/train-labels.npy", ["info", "fetch", "train"]),
    (".mnist.lock", ["fetch"]),
]


@pytest.mark.parametrize(("name", "commands"), CACHE_LINKS, ids=[c[0] for c in CACHE_LINKS])
def test_a_linked_cache_file_is_refused_naming_the_link(mnist_root, tmp_path, capsys, name, commands) -> None:
    root = _cache_copy(mnist_root, tmp_path)
    link = root / name
    if link.exists():
        target = _link_to_copy(link, tmp_path / "elsewhere")
    else:  # the lock file: absent until a fetch, planted here as a link to a file of the user's
        target = tmp_path / "elsewhere"
        target.write_text("precious")
        link.symlink_to(target)
    target_before = _snapshot(target)
    config = write_tiny_config(tmp_path / "tiny.json", root)
    argv = {"info": ["data", "info", "mnist", "--root", str(root)],
            "fetch": ["data", "fetch", "mnist", "--root", str(root)],
            "train": ["train", str(config), "--set", f"model_dir={tmp_path / 'run'}"]}
    for command in commands:
        code = cli.main(argv[command])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err, (command, err)
        assert err.strip().splitlines()[-1] == f"robustattr: error: {link} is a symbolic link; robustattr reads " \
            "and writes its run-directory and data-cache files only as regular files, never through a link (its " \
            "target was not touched): replace the link by a copy of its target, or remove it", (command, err)
    assert link.is_symlink() and _snapshot(target) == target_before
    assert not (tmp_path / "run").exists()


def test_a_fifo_in_place_of_the_cache_lock_is_refused_not_used(mnist_root, tmp_path, capsys) -> None:
    import os

    root = _cache_copy(mnist_root, tmp_path)
    os.mkfifo(root / ".mnist.lock")
    assert cli.main(["data", "fetch", "mnist", "--root", str(root)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"robustattr: error: {root / '.mnist.lock'} is not a regular file (a FIFO, socket or device); remove it")


def test_a_link_in_the_cache_of_your_own_data_is_refused_not_replaced(tmp_path) -> None:
    import numpy as np

    from robustattr import data
    from robustattr.errors import UserInputError

    rng = np.random.default_rng(0)
    npz = tmp_path / "mine.npz"
    np.savez(npz, x_train=rng.integers(0, 256, (6, 1, 8, 8), dtype=np.uint8), y_train=np.array([0, 1, 2, 0, 1, 2]),
             x_test=rng.integers(0, 256, (3, 1, 8, 8), dtype=np.uint8), y_test=np.array([0, 1, 2]))
    root = tmp_path / "cache"
    data.load(f"npz:{npz}", "test", root=root)  # prepares the cache
    (folder,) = root.glob("npz-*")
    target = tmp_path / "elsewhere.npy"
    _link_to_copy(folder / "test-labels.npy", target)
    before = _snapshot(target)
    with pytest.raises(UserInputError, match=f"^{folder / 'test-labels.npy'} is a symbolic link"):
        data.load(f"npz:{npz}", "test", root=root)
    assert (folder / "test-labels.npy").is_symlink() and _snapshot(target) == before
