"""Training: the four objectives, the loop with checkpoints and resume, data order and schedules.

``train(cfg, overwrite=False)`` is the entry point the CLI calls; ``OBJECTIVES`` maps the config's
``training_objective`` (nat, adv, ar, adv_ar) to a ``(model, x, y, params) -> LossOut`` function.
"""

from robustattr.training.data_order import BatchOrder, order_for_dataset
from robustattr.training.loop import train
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
