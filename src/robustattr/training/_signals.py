"""Ctrl-C during training: finish the current step, checkpoint, then stop.

A KeyboardInterrupt raised in the middle of ``optimizer.step()`` would leave half-updated weights;
one raised mid-forward would leave the data order and RNG already advanced past the batch. So the
first SIGINT only sets a flag that the loop checks between steps; a second one interrupts at once.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["deferred_sigint", "optional_summary_writer"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def deferred_sigint() -> Iterator[Callable[[], bool]]:
    """Yield ``requested()``: True once SIGINT arrived. Outside the main thread, or when SIGINT is
    ignored, nothing is installed and ``requested()`` stays False."""
    hit = [False]
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        yield lambda: False
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if hit[0]:
            raise KeyboardInterrupt
        hit[0] = True
        log.warning("interrupted: finishing this step and saving a checkpoint (Ctrl-C again to stop now)")

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: hit[0]
    finally:
        signal.signal(signal.SIGINT, previous)


def optional_summary_writer(run_dir: object) -> object | None:
    """A TensorBoard ``SummaryWriter`` on ``run_dir`` when ``tensorboard`` is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(run_dir))
