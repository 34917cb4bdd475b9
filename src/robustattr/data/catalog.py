"""The dataset registry: one :class:`DatasetInfo` per dataset, carrying every fact others derive.

A dataset is one module in this folder (its raw sources and its preparation, the protocol below)
plus one entry here: its shape, pixel range, sizes, default model, traits and the per-dataset
defaults of the config keys (spec §6). The config, the data order, the loss reduction, the attacks'
integer pixels, the figure's notebook image and the CLI's choices all read these entries; nothing
else keeps a list of dataset names (``docs/extending.md`` adds one).

The module protocol (``module`` names it):

- ``sources(name, root, source_dir) -> (list[Source], hint)``: the ordered raw sources for cache
  root ``root`` (``robustattr.data.sources``), and the line shown when all fail; the raw value a
  source loads may carry ``files`` (raw file name → sha256), recorded in the manifest;
- ``prepare(raw, staging, **params) -> dict``: write the splits into ``staging``
  (``data.cache.Staging``) and return the manifest's extra fields;
- ``PREPARE_DEFAULTS``: the preparation parameters (``seed``, ``per_class``) and their defaults, ``{}``
  for none; ``HOW_TO``: what ``data info`` tells a user whose cache lacks it (a str, or a dict by
  dataset name, with ``{drop}`` for the cache's drop folder).

Imports nothing of robustattr beyond ``errors`` so that ``config`` can validate keys such as
``eval_k_top`` (which must not exceed H·W) without loading any data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from robustattr.errors import UserInputError, did_you_mean

__all__ = ["DatasetInfo", "DATASETS", "MNIST_DEFAULTS", "get_info", "register_dataset", "mnist_defaults_for"]

#: The config defaults of the original's MNIST scripts (spec §6); users' own data start from these.
MNIST_DEFAULTS: dict[str, Any] = {
    "random_seed": 4557077, "np_random_seed": None, "max_num_training_steps": None,
    "num_checkpoint_steps": 300, "training_batch_size": 50, "optimizer": "adam", "weight_decay": 0.0,
    "epsilon": 0.3, "num_steps": 40, "step_size": 0.01, "k_top": 200, "eval_k_top": 100,
    "attribution_attack_step_size": 0.01, "attribution_attack_steps": 100,
}
#: The original's GTSRB/Flower-17 (ResNet) scripts.
_RESNET_DEFAULTS: dict[str, Any] = {
    "random_seed": 451760341, "np_random_seed": 216105420, "max_num_training_steps": 70001,
    "num_checkpoint_steps": 1000, "training_batch_size": 64, "optimizer": "momentum", "weight_decay": 2e-4,
    "epsilon": 8.0, "num_steps": 7, "step_size": 2.0, "k_top": 100, "eval_k_top": 100,
    "attribution_attack_step_size": 1.0, "attribution_attack_steps": 100,
}


@dataclass(frozen=True)
class DatasetInfo:
    """Metadata of one dataset.

    Attributes:
        name: registry key, also the CLI name.
        num_classes: number of labels.
        image_shape: (C, H, W) of one image, NCHW order as used by the models.
        value_range: (low, high) pixel bounds of the model input; attacks clip to it.
        default_model: key in ``robustattr.models.MODELS`` ("" where no built-in model fits).
        split_sizes: number of images per split, as the original code uses them.
        module: the ``robustattr.data`` module that fetches and prepares it (protocol above).
        mnist_scripts: trained like the original's MNIST scripts: summed losses (spec §3.2) and the
            TF tutorial reader's batches that straddle epochs (``training.data_order``).
        integer_pixels: stored as 0..255 integers, so attacked images are cast to integers after
            each step, as the original does (spec §4.2).
        figure_index: the test image the original's notebooks show.
        defaults: config key → default for this dataset (:data:`MNIST_DEFAULTS`'s keys); a
            ``max_num_training_steps`` or ``np_random_seed`` of None means the objective's paper
            steps and ``random_seed``.
    """

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    value_range: tuple[float, float]
    default_model: str
    split_sizes: dict[str, int]
    module: str = ""
    mnist_scripts: bool = True
    integer_pixels: bool = False
    figure_index: int = 0
    defaults: Mapping[str, Any] = field(default_factory=lambda: dict(MNIST_DEFAULTS))

    @property
    def num_pixels(self) -> int:
        """H·W: the length of a saliency map, the upper bound for ``k_top``."""
        return self.image_shape[1] * self.image_shape[2]


#: name → info; built-ins in the paper's order.
DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Add a catalog entry (its ``defaults`` completed from :data:`MNIST_DEFAULTS`)."""
    if info.name in DATASETS or ":" in info.name:
        raise ValueError(f"dataset name {info.name!r} is taken or contains ':'")
    missing = {k: v for k, v in MNIST_DEFAULTS.items() if k not in info.defaults}
    if missing:
        object.__setattr__(info, "defaults", {**MNIST_DEFAULTS, **info.defaults})
    DATASETS[info.name] = info
    return info


register_dataset(DatasetInfo(
    "mnist", 10, (1, 28, 28), (0.0, 1.0), "mnist_cnn", {"train": 55_000, "validation": 5_000, "test": 10_000},
    module="robustattr.data.mnist", figure_index=50, defaults=MNIST_DEFAULTS,
))
register_dataset(DatasetInfo(
    "fashion-mnist", 10, (1, 28, 28), (0.0, 1.0), "mnist_cnn", {"train": 55_000, "validation": 5_000, "test": 10_000},
    module="robustattr.data.mnist", figure_index=8,
    defaults={**MNIST_DEFAULTS, "epsilon": 0.1, "num_steps": 20, "k_top": 100},
))
register_dataset(DatasetInfo(
    "gtsrb", 43, (3, 32, 32), (0.0, 255.0), "gtsrb_resnet", {"train": 430_000, "validation": 4_410, "test": 12_630},
    module="robustattr.data.gtsrb", mnist_scripts=False, integer_pixels=True, figure_index=1000,
    defaults={**_RESNET_DEFAULTS, "attribution_attack_steps": 50},
))
register_dataset(DatasetInfo(
    "flower17", 17, (3, 128, 128), (0.0, 255.0), "flower_resnet", {"train": 17_000, "test": 136},
    module="robustattr.data.flower17", mnist_scripts=False, integer_pixels=True, figure_index=28,
    defaults={**_RESNET_DEFAULTS, "training_batch_size": 16, "k_top": 1000, "eval_k_top": 1000},
))


_PIXEL_LENGTHS = ("epsilon", "step_size", "attribution_attack_step_size")
_PIXEL_COUNTS = ("k_top", "eval_k_top")


def mnist_defaults_for(value_range: tuple[float, float], num_pixels: int) -> dict[str, Any]:
    """:data:`MNIST_DEFAULTS` for a user's data: lengths scaled from [0, 1] to ``value_range``, pixel
    counts to MNIST's fraction of its 784 pixels."""
    span = value_range[1] - value_range[0]
    out = dict(MNIST_DEFAULTS)
    out.update({k: MNIST_DEFAULTS[k] * span for k in _PIXEL_LENGTHS})
    out.update({k: max(1, round(MNIST_DEFAULTS[k] * num_pixels / 784)) for k in _PIXEL_COUNTS})
    return out


def get_info(name: str) -> DatasetInfo:
    """Look a dataset up by name; unknown names raise ``UserInputError`` listing the valid ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UserInputError(
            f"unknown dataset '{name}'{did_you_mean(name, DATASETS)}; "
            f"choose from {', '.join(DATASETS)}"
        ) from None
