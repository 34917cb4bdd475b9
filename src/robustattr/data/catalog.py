"""Static facts about the four datasets: shapes, pixel ranges, sizes, default model.

Imports nothing of robustattr beyond ``errors`` so that ``config`` can validate keys such as
``eval_k_top`` (which must not exceed H·W) without loading any data.
"""

from __future__ import annotations

from dataclasses import dataclass

from robustattr.errors import UserInputError, did_you_mean

__all__ = ["DatasetInfo", "DATASETS", "get_info"]


@dataclass(frozen=True)
class DatasetInfo:
    """Metadata of one dataset.

    Attributes:
        name: registry key, also the CLI name.
        num_classes: number of labels.
        image_shape: (C, H, W) of one image, NCHW order as used by the models.
        value_range: (low, high) pixel bounds of the model input; attacks clip to it.
        default_model: key in ``robustattr.models.MODELS``.
        split_sizes: number of images per split, as the original code uses them.
    """

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    value_range: tuple[float, float]
    default_model: str
    split_sizes: dict[str, int]

    @property
    def num_pixels(self) -> int:
        """H·W: the length of a saliency map, the upper bound for ``k_top``."""
        return self.image_shape[1] * self.image_shape[2]


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", 10, (1, 28, 28), (0.0, 1.0), "mnist_cnn",
        {"train": 55_000, "validation": 5_000, "test": 10_000},
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", 10, (1, 28, 28), (0.0, 1.0), "mnist_cnn",
        {"train": 55_000, "validation": 5_000, "test": 10_000},
    ),
    "gtsrb": DatasetInfo(
        "gtsrb", 43, (3, 32, 32), (0.0, 255.0), "gtsrb_resnet",
        {"train": 430_000, "validation": 4_410, "test": 12_630},
    ),
    "flower17": DatasetInfo(
        "flower17", 17, (3, 128, 128), (0.0, 255.0), "flower_resnet",
        {"train": 17_000, "test": 136},
    ),
}


def get_info(name: str) -> DatasetInfo:
    """Look a dataset up by name; unknown names raise ``UserInputError`` listing the valid ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UserInputError(
            f"unknown dataset '{name}'{did_you_mean(name, DATASETS)}; "
            f"choose from {', '.join(DATASETS)}"
        ) from None
