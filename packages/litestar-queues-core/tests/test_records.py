"""Record ids and the status transition table."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from litestar_queues.records import TERMINAL_STATUSES, TRANSITIONS, TaskStatus, can_transition, new_record_id


def test_ids_are_uuid7_and_sort_in_creation_order() -> None:
    ids = [new_record_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(value).version == 7 for value in ids[:10])


def stamp(record_id: str) -> int:
    """``unix_ts_ms << 12 | rand_a`` of an id: the part that orders ids made by one process."""
    high = uuid.UUID(record_id).int >> 64
    return high >> 16 << 12 | high & 0xFFF


def test_ids_are_canonical_uuid7_text_with_the_creation_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_record_id() for _ in range(200)]
    after = time.time_ns() // 1_000_000
    for value in ids:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, value)
    assert before <= stamp(ids[0]) >> 12 <= stamp(ids[-1]) >> 12 <= after + 1  # + 1: a full counter borrows
    assert len({uuid.UUID(value).int & (1 << 62) - 1 for value in ids}) == len(ids)  # rand_b is random


def test_ids_within_one_millisecond_count_on_and_borrow_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = (time.time_ns() // 1_000_000 + 20) * 1_000_000  # ahead of every id made so far
    monkeypatch.setattr(time, "time_ns", lambda: frozen)
    stamps = [stamp(new_record_id()) for _ in range(5000)]
    assert stamps == list(range(stamps[0], stamps[0] + 5000))
    assert stamps[0] == frozen // 1_000_000 << 12  # counter 0 in a new millisecond
    assert stamps[4096] == (frozen // 1_000_000 + 1) << 12  # the 12-bit counter ran out: next millisecond


def test_ids_stay_ordered_when_the_clock_goes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    second_ago = time.time_ns() - 1_000_000_000
    last = stamp(new_record_id())
    monkeypatch.setattr(time, "time_ns", lambda: second_ago)
    assert [stamp(new_record_id()) for _ in range(3)] == [last + 1, last + 2, last + 3]


def test_ids_made_by_threads_are_unique_and_ordered_per_thread() -> None:
    made: list[list[str]] = []

    def make() -> None:
        made.append([new_record_id() for _ in range(2000)])

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(ids == sorted(ids) for ids in made)
    assert len({value for ids in made for value in ids}) == 8000


def test_transition_table() -> None:
    assert set(TRANSITIONS) == set(TaskStatus)
    assert can_transition(TaskStatus.PENDING, TaskStatus.RUNNING)
    assert can_transition(TaskStatus.RUNNING, TaskStatus.PENDING)
    assert not can_transition(TaskStatus.COMPLETED, TaskStatus.PENDING)
    assert not can_transition(TaskStatus.PENDING, TaskStatus.COMPLETED)
    for status in TERMINAL_STATUSES - {TaskStatus.COMPLETED}:
        assert TRANSITIONS[status] == frozenset({TaskStatus.PENDING})  # only a manual retry leaves them
