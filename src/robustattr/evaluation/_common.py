"""What both evaluation drivers share: the model, the test images, the batches, the progress bar.

Under ``torchrun`` (``robustattr.distributed``) rank 0 reads the checkpoint and hands the weights to
the other ranks, so only rank 0's machine needs the run directory; every machine needs the dataset.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from tqdm import tqdm

logger = logging.getLogger(__name__)


def load_model_and_data(cfg: Any) -> tuple[torch.nn.Module, dict, Any, int, torch.device]:
    """(model in eval mode, checkpoint sidecar, the ``eval_split`` ImageSplit (test by default), number
    of examples, device).

    The model comes first: a run without a checkpoint fails before any data is read.
    """
    from robustattr import distributed as dist

    model, meta = _load_model(cfg) if dist.is_active() else _load_model_here(cfg)
    device = next(model.parameters()).device
    split = dist.once_per_machine_first(lambda: cfg.load_split(cfg.eval_split))
    n = cfg.num_eval_examples
    if n > len(split):
        logger.warning("num_eval_examples=%d exceeds the %d %s images; using all of them", n, len(split), cfg.eval_split)
        n = len(split)
    return model, meta, split, n, device


def _load_model_here(cfg: Any) -> tuple[torch.nn.Module, dict]:
    from robustattr.checkpoints import load_run_model

    return load_run_model(cfg)


def _load_model(cfg: Any) -> tuple[torch.nn.Module, dict]:
    """Rank 0 reads the latest checkpoint; every rank gets the model on its own device."""
    from robustattr import distributed as dist
    from robustattr import models
    from robustattr.checkpoints import load_run_model
    from robustattr.devices import resolve_device

    def read() -> tuple[dict[str, torch.Tensor], dict]:
        model, meta = load_run_model(cfg, device="cpu")
        return model.state_dict(), meta

    state_dict, meta = dist.run_on_main(read)
    info = cfg.dataset_info()
    model = models.create(cfg.model, info.num_classes, info.image_shape)
    model.load_state_dict(state_dict, strict=True)
    return model.to(dist.local_device(resolve_device(cfg.device))).eval(), meta


def saliency_method(cfg: Any, bounds: tuple[float, float]) -> Any:
    """The config's ``SaliencyMethod``: ``saliency_type`` with its settings, SmoothGrad's σ in pixel
    units (``smoothgrad_noise`` × the width of ``bounds``) and its noise seeded by ``random_seed``."""
    from robustattr.attribution import SaliencyMethod

    return SaliencyMethod.from_config(cfg, bounds)


def round_robin(items: list[Any], num_shards: int, shard: int) -> list[tuple[int, Any]]:
    """``(position, item)`` for the items of shard ``shard`` when ``items`` are dealt round-robin."""
    return [(pos, item) for pos, item in enumerate(items) if pos % num_shards == shard]


def checkpoint_settings(cfg: Any, meta: dict) -> dict[str, Any]:
    """Which weights were evaluated: enough to tell two trainings in the same run dir apart."""
    return {
        "dataset": cfg.dataset,
        "model": cfg.model,
        "checkpoint_step": meta.get("step"),
        "checkpoint_sha256": meta.get("weights_sha256"),
    }


def split_setting(cfg: Any) -> dict[str, Any]:
    """``{"eval_split": ...}`` when an evaluation reads other images than the test split, else {}:
    result files record the split only then, so every test-split result stays as it was."""
    return {} if cfg.eval_split == "test" else {"eval_split": cfg.eval_split}


def batches(indices: list[int], size: int) -> Iterator[torch.Tensor]:
    """Consecutive LongTensor slices of ``indices``, ``size`` at a time."""
    for start in range(0, len(indices), size):
        yield torch.tensor(indices[start : start + size], dtype=torch.long)


@contextmanager
def progress(total: int, initial: int, desc: str, enabled: bool = True) -> Iterator[tqdm]:
    """tqdm bar counting images (its rate reads img/s); logs the overall rate at the end.

    ``enabled=False`` (ranks other than 0) shows and logs nothing."""
    start = time.perf_counter()
    bar = tqdm(total=total, initial=initial, unit="img", desc=desc, dynamic_ncols=True, disable=not enabled)
    try:
        yield bar
    finally:
        done = bar.n - initial
        bar.close()
        seconds = time.perf_counter() - start
        if done and enabled:
            logger.info("%s: %d images in %.1f s (%.3g images/s)", desc, done, seconds, done / seconds)
