"""What both evaluation drivers share: the model, the test images, the batches, the progress bar."""

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
    """(model in eval mode, checkpoint sidecar, test ImageSplit, number of examples, device).

    The model comes first: a run without a checkpoint fails before any data is read.
    """
    from robustattr import data
    from robustattr.checkpoints import load_run_model

    model, meta = load_run_model(cfg)
    device = next(model.parameters()).device
    split = data.load(cfg.dataset, "test", root=cfg.data_root, source_dir=cfg.data_path,
                      label_order=cfg.flower_label_order)
    n = cfg.num_eval_examples
    if n > len(split):
        logger.warning("num_eval_examples=%d exceeds the %d test images; using all of them", n, len(split))
        n = len(split)
    return model, meta, split, n, device


def checkpoint_settings(cfg: Any, meta: dict) -> dict[str, Any]:
    """Which weights were evaluated: enough to tell two trainings in the same run dir apart."""
    return {
        "dataset": cfg.dataset,
        "model": cfg.model,
        "checkpoint_step": meta.get("step"),
        "checkpoint_sha256": meta.get("weights_sha256"),
    }


def batches(indices: list[int], size: int) -> Iterator[torch.Tensor]:
    """Consecutive LongTensor slices of ``indices``, ``size`` at a time."""
    for start in range(0, len(indices), size):
        yield torch.tensor(indices[start : start + size], dtype=torch.long)


@contextmanager
def progress(total: int, initial: int, desc: str) -> Iterator[tqdm]:
    """tqdm bar counting images (its rate reads img/s); logs the overall rate at the end."""
    start = time.perf_counter()
    bar = tqdm(total=total, initial=initial, unit="img", desc=desc, dynamic_ncols=True)
    try:
        yield bar
    finally:
        done = bar.n - initial
        bar.close()
        seconds = time.perf_counter() - start
        if done:
            logger.info("%s: %d images in %.1f s (%.3g images/s)", desc, done, seconds, done / seconds)
