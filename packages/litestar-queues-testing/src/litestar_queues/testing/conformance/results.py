"""Finishing attempts, and JSON values round-tripping through results, arguments and metadata."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from msgspec.structs import replace

from litestar_queues.backend import QueueBackend
from litestar_queues.records import Outcome, TaskError, TaskRecord, TaskStatus
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    QUEUE,
    after,
    claim_one,
    completed,
    diff,
    enqueue_one,
    make_record,
    rule,
)

__all__ = ("ResultConformance",)

_VALUES: dict[str, Any] = {
    "none": None,
    "true": True,
    "false": False,
    "zero": 0,
    "int64 max": 2**63 - 1,
    "int64 min": -(2**63),
    "float": 0.1,
    "negative float": -2.5,
    "whole float": 1.0,
    "huge float": 1.5e300,
    "tiny float": 1e-7,
    "empty string": "",
    "unicode": "ünïcödé 漢字 🎉 \u2028",
    "escapes": "quotes \" ' \\ tab\t newline\n end",
    "nul character": "before\x00after",
    "long string": "x" * 100_000,
    "empty list": [],
    "empty dict": {},
    "mixed list": [1, "a", None, True, 2.5, [], {}],
    "nested": {"a": {"b": [{"c": [1, [2, [3, {"d": None}]]]}]}, "empty": {}, "list": []},
    "unicode keys": {"ключ": 1, "鍵": [2], "🔑": {"": 3}},
    "deep": [[[[[[[[[[[[[[[[[[[["bottom"]]]]]]]]]]]]]]]]]]]],
    "big list": list(range(1000)),
}

_TRACEBACK = 'Traceback (most recent call last):\n  File "task.py", line 1, in <module>\nValueError: naïve ☃\n'


def _same(actual: Any, expected: Any, path: str = "value") -> str | None:
    """Return where ``actual`` differs from ``expected`` in value or JSON type (``True`` is not ``1``), or None."""
    if type(actual) is not type(expected):
        return (
            f"{path}: expected {type(expected).__name__} {expected!r:.80}, got {type(actual).__name__} {actual!r:.80}"
        )
    if isinstance(expected, list):
        if len(actual) != len(expected):
            return f"{path}: expected {len(expected)} items, got {len(actual)}"
        for index, (item, expected_item) in enumerate(zip(actual, expected, strict=True)):
            if problem := _same(item, expected_item, f"{path}[{index}]"):
                return problem
        return None
    if isinstance(expected, dict):
        if set(actual) != set(expected):
            return f"{path}: expected keys {sorted(expected)!r:.80}, got {sorted(actual)!r:.80}"
        for key, expected_item in expected.items():
            if problem := _same(actual[key], expected_item, f"{path}[{key!r}]"):
                return problem
        return None
    return None if actual == expected else f"{path}: expected {expected!r:.80}, got {actual!r:.80}"


class ResultConformance(ConformanceBase):
    """``finish`` stores outcomes; JSON values come back with the same value and type wherever they are stored."""

    @pytest.mark.parametrize("value", list(_VALUES.values()), ids=list(_VALUES))
    async def test_result_json_values_round_trip_everywhere(
        self, backend: QueueBackend, now: datetime, value: Any
    ) -> None:
        await enqueue_one(backend, make_record(now, args=[value], kwargs={"value": value}, metadata={"value": value}))
        running = await claim_one(backend, now)
        finished = await backend.finish(running.lease, completed(value), now=now)
        stored = await backend.get(running.id)
        assert finished is not None and stored is not None, rule("finish", "the fence matches: the updated record")
        for where, actual, expected in [
            ("args", stored.args, [value]),
            ("kwargs", stored.kwargs, {"value": value}),
            ("metadata", stored.metadata, {"value": value}),
            ("result (returned by finish)", finished.result, value),
            ("result", stored.result, value),
        ]:
            problem = _same(actual, expected)
            assert problem is None, rule(
                "enqueue" if where in {"args", "kwargs", "metadata"} else "finish",
                f"store {where} exactly as given (msgspec builtins: same value, same JSON type)",
                problem,
            )

    async def test_result_json_values_round_trip_through_one_bulk_enqueue(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        records = [
            make_record(now, args=[value], kwargs={"value": value}, metadata={"value": value})
            for value in _VALUES.values()
        ]
        outcomes = await backend.enqueue(records)
        assert all(outcome.created for outcome in outcomes), rule("enqueue", "new records are created=True")
        for name, record in zip(_VALUES, records, strict=True):
            stored = await backend.get(record.id)
            assert stored is not None, rule("get", "return the record with record_id")
            for where in ("args", "kwargs", "metadata"):
                problem = _same(getattr(stored, where), getattr(record, where), f"{name}: {where}")
                assert problem is None, rule(
                    "enqueue", f"store {where} exactly as given, in a bulk enqueue too", problem
                )

    async def test_result_finish_completed_stores_status_result_and_finished_at(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await enqueue_one(backend, make_record(now, key="done:key"))
        running = await claim_one(backend, now)
        finished = await backend.finish(running.lease, completed({"rows": 3}), now=after(now, 2))
        expected = replace(
            running,
            status=TaskStatus.COMPLETED,
            finished_at=after(now, 2),
            result={"rows": 3},
            owner=None,
            lease_expires_at=None,
        )
        assert finished == expected, rule(
            "finish",
            "completed: set the status, finished_at = now, result and error from the outcome; owner and "
            "lease_expires_at become None",
            diff(expected, finished),
        )
        assert await backend.get(running.id) == expected, rule("finish", "the outcome is stored")

    @pytest.mark.parametrize("status", [TaskStatus.FAILED, TaskStatus.CANCELLED])
    async def test_result_finish_failed_or_cancelled_stores_the_error_with_its_traceback(
        self, backend: QueueBackend, now: datetime, status: TaskStatus
    ) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        error = TaskError(type="builtins.ValueError", message="naïve ☃ input", traceback=_TRACEBACK)
        finished = await backend.finish(running.lease, Outcome(status=status, error=error), now=after(now, 3))
        expected = replace(
            running, status=status, finished_at=after(now, 3), error=error, owner=None, lease_expires_at=None
        )
        assert finished == expected, rule(
            "finish", f"{status.value}: set the status, finished_at = now, result and error", diff(expected, finished)
        )
        stored = await backend.get(running.id)
        assert stored is not None and stored.error == error, rule(
            "finish", "the error is stored exactly (type, message, traceback)", diff(expected, stored)
        )

    @pytest.mark.parametrize(
        "outcome",
        [
            completed({"rows": 3}),
            Outcome(status=TaskStatus.FAILED, error=TaskError(type="builtins.ValueError", message="bad")),
            Outcome(status=TaskStatus.CANCELLED, error=TaskError(type="cancelled", message="cancelled while running")),
            Outcome(status=TaskStatus.PENDING, scheduled_at=None, error=TaskError(type="boom", message="retry")),
            Outcome(status=TaskStatus.PENDING, scheduled_at=None, refund_attempt=True),
        ],
        ids=["completed", "failed", "cancelled", "retry", "hand-back"],
    )
    async def test_result_finish_given_the_claimed_record_returns_what_is_stored(
        self, backend: QueueBackend, now: datetime, outcome: Outcome
    ) -> None:
        await enqueue_one(backend, make_record(now, key="claimed:key"))
        running = await claim_one(backend, now)
        # The stored row moves on while the attempt runs (lease renewed, cancellation requested);
        # ``claimed`` is the snapshot from the claim.
        await backend.renew([running.lease], now=after(now, 5), lease_seconds=60)
        await backend.cancel(running.id, now=after(now, 6))
        if outcome.status is TaskStatus.PENDING:
            outcome = replace(outcome, scheduled_at=after(now, 30))
        finished = await backend.finish(running.lease, outcome, now=after(now, 7), claimed=running)
        stored = await backend.get(running.id)
        assert finished is not None and finished == stored, rule(
            "finish",
            "with claimed=, return the same record as without it (the record as stored)",
            diff(stored, finished),
        )

    async def test_result_concurrent_finishes_with_and_without_claimed_return_their_records(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        records = [make_record(now) for _ in range(12)]
        await backend.enqueue(records)
        running = await backend.claim([QUEUE], owner="w", limit=12, now=now, lease_seconds=30)
        assert len(running) == 12, rule("claim", "claim up to limit due records", f"got {len(running)} of 12")

        async def finish(index: int, record: TaskRecord) -> TaskRecord | None:
            claimed = record if index % 2 else None
            return await backend.finish(record.lease, completed(index), now=after(now, 1), claimed=claimed)

        finished = await asyncio.gather(*(finish(index, record) for index, record in enumerate(running)))
        for index, (record, result) in enumerate(zip(running, finished, strict=True)):
            stored = await backend.get(record.id)
            assert result is not None and result == stored and result.result == index, rule(
                "finish", "each concurrent caller gets its own finished record", diff(stored, result)
            )

    async def test_result_error_without_traceback_round_trips(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        error = TaskError(type="litestar_queues.errors.TaskTimeoutError", message="")
        await backend.finish(running.lease, Outcome(status=TaskStatus.FAILED, error=error), now=now)
        stored = await backend.get(running.id)
        assert stored is not None and stored.error == error, rule("finish", "the error is stored exactly", repr(stored))
