"""The write plumbing: atomic writes and appends refuse a symbolic link (never follow it),
and a write the system refuses (file size limit, disk full) names the file and keeps the old one."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from robustattr.files import atomic_write_bytes, open_regular, remove_stale_partials
from robustattr.errors import FileWriteError, UserInputError


def test_atomic_write_refuses_a_symlink_and_leaves_its_target(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious")
    link = tmp_path / "run" / "config.json"
    link.parent.mkdir()
    link.symlink_to(target)
    with pytest.raises(UserInputError, match=r"config\.json is a symbolic link"):
        atomic_write_bytes(link, b"{}")
    assert link.is_symlink() and target.read_text() == "precious" and remove_stale_partials(link.parent) == []


@pytest.mark.parametrize("mode", ["a", "w", "r+b"])
def test_open_regular_refuses_a_symlink(tmp_path: Path, mode: str) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious")
    (tmp_path / "metrics.jsonl").symlink_to(target)
    with pytest.raises(UserInputError, match=r"metrics\.jsonl is a symbolic link"):
        open_regular(tmp_path / "metrics.jsonl", mode)
    assert target.read_text() == "precious"


def _limited(limit_bytes: int, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a child whose files may not grow past ``limit_bytes`` (RLIMIT_FSIZE; Python
    ignores SIGXFSZ, so a write past it fails with EFBIG, as a full disk fails with ENOSPC)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          preexec_fn=limit)


def test_a_refused_write_names_the_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    dest = tmp_path / "eval_pgd.json"
    dest.write_text("old")
    code = ("import sys; from robustattr.files import atomic_write_bytes\n"
            "from robustattr.errors import FileWriteError\n"
            f"try: atomic_write_bytes({str(dest)!r}, b'x' * 100_000)\n"
            "except FileWriteError as exc: print(exc); sys.exit(3)")
    child = _limited(10_000, code)
    assert child.returncode == 3, child.stderr
    assert child.stdout.strip() == f"cannot write {dest}: File too large"
    assert dest.read_text() == "old" and remove_stale_partials(tmp_path) == []  # temp file removed


@pytest.mark.slow
def test_an_append_the_system_refuses_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    code = ("import sys; from robustattr.training.run_dir import MetricsLog\n"
            "from robustattr.errors import FileWriteError\n"
            f"log = MetricsLog(__import__('pathlib').Path({str(path)!r}))\n"
            "try: log.write({'step': 0, 'pad': 'x' * 100_000})\n"
            "except FileWriteError as exc: print(exc); sys.exit(3)")
    child = _limited(10_000, code)
    assert child.returncode == 3, child.stderr
    assert child.stdout.strip() == f"cannot write {path}: File too large"


def test_remove_stale_partials_only_touches_partials(tmp_path: Path) -> None:
    keep = [tmp_path / "checkpoint-00000003.json", tmp_path / "notes.partial.txt"]
    gone = [tmp_path / ".checkpoint-00000003.safetensors.abc.partial", tmp_path / ".metrics.jsonl.q.partial"]
    for path in keep + gone:
        path.write_text("x")
    assert sorted(remove_stale_partials(tmp_path)) == sorted(gone)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in gone)


def test_file_write_error_is_not_an_os_error() -> None:
    # Data sources treat OSError as "this source failed, try the next"; a full disk must stop instead.
    assert not issubclass(FileWriteError, OSError)
