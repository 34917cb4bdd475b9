"""Data parallelism inside the training loop (``robustattr.distributed`` holds the process group).

Every rank draws the same global batch and takes its shard; after ``backward`` the ranks' gradients
(and loss shares, and stop requests) are summed with one all-reduce, so the update is the single
process's. These are the loop's pieces that talk to the other ranks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustattr import distributed as dist
from robustattr.errors import UserInputError
from robustattr.training.objectives import resume_keys

__all__ = ["check_world", "combine_gradients", "global_logs"]


def check_world(cfg_dict: dict[str, Any], batch: int) -> None:
    """Every rank must optimise the same thing, and every rank needs at least one example per step.

    Only the optimisation keys are compared: paths (``data_root``, ``model_dir``) and ``device``
    may differ from machine to machine.
    """
    keys = resume_keys(cfg_dict["training_objective"])
    mine = {key: cfg_dict.get(key) for key in keys}
    differing = sorted({key for other in dist.all_gather_object(mine) for key in keys
                        if other[key] != mine[key]})
    if differing:
        raise UserInputError(f"the ranks of this launch were given different values for {', '.join(differing)}; "
                             "start every machine with the same CONFIG and --set")
    if batch < dist.world_size():
        raise UserInputError(f"config key 'training_batch_size': {batch} is smaller than the {dist.world_size()} "
                             "processes of this launch; each process needs at least one example per step")


def combine_gradients(model: nn.Module, loss_share: torch.Tensor, stop_requested: bool) -> tuple[float, bool]:
    """Sum the ranks' parameter gradients (and loss shares, and stop requests) in one all-reduce.

    Returns the global loss and whether any rank asked to stop (Ctrl-C), the same on every rank.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads]
                     + [loss_share.detach().reshape(1).to(grads[0].dtype),
                        torch.tensor([float(stop_requested)], dtype=grads[0].dtype, device=grads[0].device)])
    dist.all_reduce_sum(flat)
    offset = 0
    for param, grad in zip(params, grads):
        size = grad.numel()
        param.grad = flat[offset:offset + size].view_as(grad).clone()
        offset += size
    global_loss, stops = flat[offset:].tolist()
    return global_loss, stops > 0


#: Logged values that are sums over the batch (the shares add up); the rest are means per example.
_ADDITIVE_LOGS = ("loss", "ig")


def global_logs(logs: dict[str, torch.Tensor], shard: int, batch: int) -> dict[str, torch.Tensor]:
    """The logs of the whole global batch from every rank's logs of its shard of ``shard`` examples."""
    keys = list(logs)  # the objective's order, the same on every rank
    values = torch.stack([logs[k].detach().double().reshape(()) * (1 if k in _ADDITIVE_LOGS else shard)
                          for k in keys])
    dist.all_reduce_sum(values)
    return {k: v if k in _ADDITIVE_LOGS else v / batch for k, v in zip(keys, values)}
