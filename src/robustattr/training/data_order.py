"""Which training examples each step sees, with a state that can be checkpointed exactly.

Two orders (spec §1):

* ``straddle`` (MNIST / Fashion-MNIST): TF's tutorial reader ``next_batch``: a new permutation at
  the start of every epoch; a batch that runs past the end of an epoch is the tail of the old
  order followed by the head of a new permutation. No example is skipped.
* ``drop_remainder`` (GTSRB / Flower): full batches of a permutation; the leftover examples of
  an epoch are skipped and the next batch starts a new permutation.

Permutations come from a private ``numpy.random.Generator(PCG64(np_random_seed))``. The TF
reader's own seeding (NumPy's global RNG re-seeded from TF's graph and op seeds) cannot be
reproduced, so the order is the reader's in law, not element for element.

The state is JSON: the generator's state *before* the current permutation was drawn, the epoch
and the position in it. Restoring redraws the same permutation, so a resumed run sees exactly
the batches an uninterrupted one would.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from robustattr.data.catalog import DATASETS
from robustattr.json_files import BOOL, INT, STR, at_least_int, dict_of, record

__all__ = ["BatchOrder", "order_for_dataset", "ORDER_STATE"]

#: The shape of :meth:`BatchOrder.state_dict` as a checkpoint sidecar holds it.
ORDER_STATE = record({
    "num_examples": INT, "batch_size": INT, "drop_remainder": BOOL, "epoch": at_least_int(0),
    "pos": at_least_int(0), "epoch_start_rng": record({"bit_generator": STR, "state": dict_of(INT)}),
})


class BatchOrder:
    """Infinite sequence of index batches over ``num_examples`` examples.

    Args:
        num_examples: N, the training-set size.
        batch_size: B ≤ N.
        seed: ``np_random_seed``.
        drop_remainder: False for the straddling reader, True for full batches only.

    Example:
        >>> order = BatchOrder(55_000, 50, seed=4557077)
        >>> idx = order.next()            # LongTensor (50,)
        >>> saved = order.state_dict()    # JSON-able; BatchOrder.from_state(saved) continues identically
    """

    def __init__(self, num_examples: int, batch_size: int, seed: int, drop_remainder: bool = False) -> None:
        if not 1 <= batch_size <= num_examples:
            raise ValueError(f"batch_size={batch_size} must be in [1, {num_examples}] (the training-set size)")
        self.num_examples = int(num_examples)
        self.batch_size = int(batch_size)
        self.drop_remainder = bool(drop_remainder)
        self._rng = np.random.Generator(np.random.PCG64(int(seed)))
        self.epoch = 0
        self._new_permutation()

    def _new_permutation(self) -> None:
        self._epoch_start_state = copy.deepcopy(self._rng.bit_generator.state)
        self._perm = self._rng.permutation(self.num_examples)
        self.pos = 0

    def next(self) -> torch.Tensor:
        """Indices of the next batch: LongTensor (B,) in [0, N)."""
        end = self.pos + self.batch_size
        if end <= self.num_examples:
            out = self._perm[self.pos:end]
            self.pos = end
        elif self.drop_remainder:
            self.epoch += 1
            self._new_permutation()
            return self.next()
        else:
            tail = self._perm[self.pos:]
            self.epoch += 1
            self._new_permutation()
            self.pos = self.batch_size - len(tail)
            out = np.concatenate([tail, self._perm[: self.pos]])
        return torch.from_numpy(out.astype(np.int64))

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state (PCG64 state ints are arbitrary-precision, which JSON keeps)."""
        return {
            "num_examples": self.num_examples, "batch_size": self.batch_size,
            "drop_remainder": self.drop_remainder, "epoch": self.epoch, "pos": self.pos,
            "epoch_start_rng": copy.deepcopy(self._epoch_start_state),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where ``state`` was taken (same N, B and remainder rule required)."""
        for key in ("num_examples", "batch_size", "drop_remainder"):
            if state[key] != getattr(self, key):
                raise ValueError(f"data order was saved with {key}={state[key]}, now {getattr(self, key)}")
        if not 0 <= state["pos"] <= self.num_examples:
            raise ValueError(f"data order position {state['pos']} lies outside [0, {self.num_examples}]")
        self._rng.bit_generator.state = copy.deepcopy(state["epoch_start_rng"])
        self._new_permutation()
        self.epoch = int(state["epoch"])
        self.pos = int(state["pos"])


def order_for_dataset(dataset: str, num_examples: int, batch_size: int, seed: int) -> BatchOrder:
    """The original's order for ``dataset``: straddling for the datasets of its MNIST scripts (the catalog's
    ``mnist_scripts``), drop-remainder otherwise (users' data too)."""
    info = DATASETS.get(dataset)
    return BatchOrder(num_examples, batch_size, seed, drop_remainder=not (info is not None and info.mnist_scripts))
