"""Running under ``torchrun``: the process group and the few collectives the drivers need.

``torchrun`` (``python -m torch.distributed.run``) starts one process per rank and tells each, in
the environment, its ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` and the rendezvous address. A process
started without them is an ordinary single process: :func:`init_from_env` does nothing, every helper
below answers as rank 0 of 1, and no collective is ever called, so the single-process code path is
the one it always was.

Backend: NCCL when CUDA is available (each rank on ``cuda:LOCAL_RANK``), Gloo on CPU. Collectives
time out after :data:`COLLECTIVE_TIMEOUT`: a rank whose peer died on another machine gives up with
an error instead of waiting forever (on one machine torchrun already stops the survivors).

Everything here moves plain tensors or small picklable Python objects *between our own ranks*;
nothing is read from a file.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from robustattr.errors import BAD_PATH_ERRNOS, FileSystemError, LinkRefusedError, TrainingError, UserInputError

__all__ = [
    "DistError", "COLLECTIVE_TIMEOUT", "collective_timeout", "launched_by_torchrun", "init_from_env", "shutdown",
    "session", "is_active",
    "rank", "world_size", "is_main", "local_device", "barrier", "broadcast_object", "all_gather_object",
    "all_reduce_sum", "broadcast_parameters", "shard_bounds", "run_on_main", "once_per_machine_first",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What a collective raises when a peer is gone (connection closed, timeout).
DistError = getattr(dist, "DistError", RuntimeError)

#: How long a collective waits for the other ranks by default (checkpoint writes on rank 0 happen
#: while the others wait, so this must exceed the slowest checkpoint write). ``$ROBUSTATTR_DIST_TIMEOUT_MIN``
#: overrides it.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)
TIMEOUT_ENV = "ROBUSTATTR_DIST_TIMEOUT_MIN"

_ENV_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def collective_timeout() -> datetime.timedelta:
    """:data:`COLLECTIVE_TIMEOUT`, or ``$ROBUSTATTR_DIST_TIMEOUT_MIN`` minutes when that is set."""
    text = os.environ.get(TIMEOUT_ENV)
    if text is None:
        return COLLECTIVE_TIMEOUT
    try:
        minutes = float(text)
    except ValueError:
        minutes = -1.0
    if not minutes > 0:
        raise UserInputError(f"{TIMEOUT_ENV}={text!r} must be a positive number of minutes")
    return datetime.timedelta(minutes=minutes)


def launched_by_torchrun() -> bool:
    """True when the environment holds torchrun's rank variables (``WORLD_SIZE``, ``RANK``, ...)."""
    return all(key in os.environ for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"))


def init_from_env() -> bool:
    """Join the process group torchrun set up; return True when this process is one of several ranks.

    Without torchrun's variables this does nothing and returns False. Under torchrun with
    ``WORLD_SIZE=1`` it also does nothing (one rank is a single process). Idempotent.

    Raises:
        UserInputError: torchrun's variables are incomplete (e.g. ``RANK`` set by hand without
            ``MASTER_ADDR``), or CUDA has fewer devices than ``LOCAL_RANK`` needs.
    """
    if is_active():
        return True
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) <= 1:
        return False
    missing = [key for key in _ENV_KEYS if key not in os.environ]
    if missing:
        raise UserInputError(f"distributed launch: environment lacks {', '.join(missing)}; start with "
                             "torchrun (python -m torch.distributed.run), which sets them")
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        if local_rank >= torch.cuda.device_count():
            raise UserInputError(
                f"LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} CUDA device(s); "
                "give torchrun --nproc_per_node at most the number of GPUs")
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, timeout=collective_timeout())
    log.debug("rank %d of %d joined the %s process group", rank(), world_size(), backend)
    return True


def shutdown() -> None:
    """Leave the process group (a no-op when none was joined)."""
    if is_active():
        dist.destroy_process_group()


@contextmanager
def session() -> Iterator[bool]:
    """``with session() as distributed:`` joins the group for the block and always leaves it."""
    active = init_from_env()
    try:
        yield active
    finally:
        shutdown()


def is_active() -> bool:
    """True inside a process group of several ranks."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank (0 outside a process group)."""
    return dist.get_rank() if is_active() else 0


def world_size() -> int:
    """Number of ranks (1 outside a process group)."""
    return dist.get_world_size() if is_active() else 1


def is_main() -> bool:
    """True on rank 0, the only rank that writes files and prints results."""
    return rank() == 0


def local_device(configured: torch.device) -> torch.device:
    """The device this rank computes on: ``cuda:LOCAL_RANK`` for a CUDA config under a process
    group (one GPU per rank), else ``configured`` unchanged."""
    if is_active() and configured.type == "cuda":
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return configured


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_active():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def broadcast_object(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (pickled over the process group; identity in one process)."""
    if not is_active():
        return obj
    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(obj: T) -> list[T]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` in one process)."""
    if not is_active():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over the ranks, in place; returns it (unchanged in one process)."""
    if is_active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers into every rank's ``module``, in place.

    The ranks build the model from the same seed, so this normally changes nothing; it guarantees
    that data-parallel replicas start equal (as DistributedDataParallel's constructor does).
    """
    if not is_active():
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def shard_bounds(total: int, num_shards: int | None = None, shard: int | None = None) -> tuple[int, int]:
    """``[lo, hi)`` of shard ``shard`` when ``total`` items are cut into ``num_shards`` contiguous,
    near-equal parts (sizes differ by at most one; default: this rank's part of the world)."""
    num_shards = world_size() if num_shards is None else num_shards
    shard = rank() if shard is None else shard
    return total * shard // num_shards, total * (shard + 1) // num_shards


def run_on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and hand its result to every rank.

    For file work that must happen once (clearing a run directory, reading a checkpoint). When
    ``fn`` raises a :class:`UserInputError` (bad path or config, a refused lock: exit 2) or a
    :class:`FileSystemError` / :class:`TrainingError` (exit 1) on rank 0, every rank raises the same
    class with the same one-line message, so all ranks stop alike instead of leaving the others
    waiting. Any other exception on rank 0 still reaches the others, as a :data:`DistError` naming
    it (the CLI's one line "another rank of this launch failed"), and rank 0 re-raises its own.
    """
    if not is_active():
        return fn()
    outcome: tuple[str, Any] = ("ok", None)
    failure: BaseException | None = None
    if is_main():
        try:
            outcome = ("ok", fn())
        except OSError as exc:  # as the CLI words it: "PATH: reason", exit 2 for a wrong path, else 1
            failure = exc
            kind = "user_error" if exc.errno in BAD_PATH_ERRNOS else "file_system"
            outcome = (kind, f"{exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc.strerror or exc))
        except Exception as exc:  # noqa: BLE001 - told to every rank, then re-raised here
            failure = exc
            kind = next((name for name, cls in _SHARED_ERRORS.items() if isinstance(exc, cls)), "other")
            outcome = (kind, str(exc) if kind != "other" else f"rank 0 failed: {type(exc).__name__}: {exc}")
    outcome = broadcast_object(outcome)
    if outcome[0] == "ok":
        return outcome[1]
    if failure is not None:
        raise failure  # rank 0 keeps its own exception; the others raise its class and message
    raise _SHARED_ERRORS.get(outcome[0], DistError)(outcome[1])  # DistError: the CLI's "another rank failed"


#: Errors :func:`run_on_main` re-raises with the same class on every rank (the CLI's exit codes).
_SHARED_ERRORS: dict[str, type[Exception]] = {
    "link_refused": LinkRefusedError, "user_error": UserInputError,
    "file_system": FileSystemError, "training": TrainingError,
}


def once_per_machine_first(fn: Callable[[], T]) -> T:
    """Run ``fn`` on every rank, the first rank of each machine (``LOCAL_RANK`` 0) before the others.

    For loading a dataset: the first load may prepare the machine's dataset cache, which the other
    ranks of that machine then only read instead of racing to write it.
    """
    if not is_active():
        return fn()
    first = int(os.environ.get("LOCAL_RANK", "0")) == 0
    result = fn() if first else None
    barrier()
    return fn() if not first else result
