"""Training: the objectives (a registry, one module each), the loop with checkpoints and resume, data
order and schedules.

``train(cfg, overwrite=False)`` is the entry point the CLI calls (imported on first use: the loop
needs ``robustattr.checkpoints``, which reads the objectives' registry for the keys a resumed run
must keep); ``OBJECTIVES`` maps the config's ``training_objective`` to a ``(model, x, y, params) ->
LossOut`` function.
"""

from typing import Any

from robustattr.training.data_order import BatchOrder, order_for_dataset
from robustattr.training.objectives import OBJECTIVES, LossOut, ObjectiveParams, get_objective
from robustattr.training.schedules import PiecewiseConstant, build_optimizer, epsilon_at, learning_rate_at

__all__ = [
    "train",
    "OBJECTIVES",
    "LossOut",
    "ObjectiveParams",
    "get_objective",
    "BatchOrder",
    "order_for_dataset",
    "PiecewiseConstant",
    "build_optimizer",
    "epsilon_at",
    "learning_rate_at",
]


def __getattr__(name: str) -> Any:
    if name == "train":
        from robustattr.training.loop import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
