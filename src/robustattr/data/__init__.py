"""Datasets as uint8 tensors: MNIST, Fashion-MNIST, GTSRB, Flower-17 (spec §1).

Raw files come from an ordered list of sources per dataset, each verified by SHA-256 (pinned, or
recorded on first use where none is published); prepared splits are cached as ``.npy`` files with a
manifest of their digests under ``$ROBUSTATTR_DATA`` (default ``~/.cache/robustattr``).

    >>> from robustattr import data
    >>> test = data.load("mnist", "test")          # fetches and prepares on first use
    >>> x, y = test.batch(slice(0, 50))            # float32 (50, 1, 28, 28) in [0, 1], int64 (50,)
    >>> mine = data.load("npz:my.npz", "train", pixel_range=(0, 1))   # your own arrays (data.user)
"""

from robustattr.data.api import ImageSplit, dataset_info, describe, fetch, load
from robustattr.data.catalog import DATASETS, DatasetInfo, get_info

__all__ = ["load", "fetch", "describe", "dataset_info", "ImageSplit", "DATASETS", "DatasetInfo", "get_info"]
