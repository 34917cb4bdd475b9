"""Data order: the TF reader's straddling epochs, drop-remainder epochs, and an exact resumable state."""

from __future__ import annotations

import json

import pytest
import torch

from robustattr.training import BatchOrder, order_for_dataset


def _take(order: BatchOrder, n: int) -> list[list[int]]:
    return [order.next().tolist() for _ in range(n)]


def test_straddling_batch_is_old_tail_then_new_head() -> None:
    order = BatchOrder(10, 4, seed=3)
    first_perm = order._perm.tolist()
    batches = _take(order, 5)  # 20 examples = exactly two epochs
    assert batches[0] + batches[1] == first_perm[:8]
    assert batches[2][:2] == first_perm[8:]  # tail of epoch 0 ...
    second_perm = order._perm.tolist()
    assert batches[2][2:] == second_perm[:2] and batches[3] + batches[4] == second_perm[2:]  # ... head of epoch 1
    assert order.epoch == 1 and sorted(sum(batches, [])) == sorted(list(range(10)) * 2)  # nothing skipped
    assert all(len(b) == 4 for b in batches)


def test_drop_remainder_skips_the_leftover() -> None:
    order = BatchOrder(10, 4, seed=3, drop_remainder=True)
    first_perm = order._perm.tolist()
    batches = _take(order, 3)
    assert batches[:2] == [first_perm[:4], first_perm[4:8]]
    assert batches[2] == order._perm.tolist()[:4] and order.epoch == 1


@pytest.mark.parametrize("drop", [False, True])
def test_state_round_trip_continues_exactly(drop: bool) -> None:
    order = BatchOrder(10, 4, seed=11, drop_remainder=drop)
    _take(order, 4)
    state = json.loads(json.dumps(order.state_dict()))  # must survive the JSON sidecar
    expected = _take(order, 7)
    resumed = BatchOrder(10, 4, seed=999, drop_remainder=drop)
    resumed.load_state_dict(state)
    assert _take(resumed, 7) == expected


def test_seed_and_dataset_rule() -> None:
    assert _take(BatchOrder(50, 5, seed=1), 3) == _take(BatchOrder(50, 5, seed=1), 3)
    assert _take(BatchOrder(50, 5, seed=1), 3) != _take(BatchOrder(50, 5, seed=2), 3)
    assert not order_for_dataset("mnist", 10, 2, 0).drop_remainder
    assert order_for_dataset("gtsrb", 10, 2, 0).drop_remainder
    assert order_for_dataset("mnist", 10, 2, 0).next().dtype == torch.int64
    with pytest.raises(ValueError, match="batch_size=11"):
        BatchOrder(10, 11, seed=0)
