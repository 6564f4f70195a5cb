"""Record ids and the status transition table."""

from __future__ import annotations

import uuid

from litestar_queues.records import TERMINAL_STATUSES, TRANSITIONS, TaskStatus, can_transition, new_record_id


def test_ids_are_uuid7_and_sort_in_creation_order() -> None:
    ids = [new_record_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(value).version == 7 for value in ids[:10])


def test_transition_table() -> None:
    assert set(TRANSITIONS) == set(TaskStatus)
    assert can_transition(TaskStatus.PENDING, TaskStatus.RUNNING)
    assert can_transition(TaskStatus.RUNNING, TaskStatus.PENDING)
    assert not can_transition(TaskStatus.COMPLETED, TaskStatus.PENDING)
    assert not can_transition(TaskStatus.PENDING, TaskStatus.COMPLETED)
    for status in TERMINAL_STATUSES - {TaskStatus.COMPLETED}:
        assert TRANSITIONS[status] == frozenset({TaskStatus.PENDING})  # only a manual retry leaves them
