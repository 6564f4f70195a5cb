"""Retries: finishing an attempt back to pending, with backoff, attempt counting and refunds."""

from __future__ import annotations

from datetime import datetime

from msgspec.structs import replace

from litestar_queues.backend import QueueBackend
from litestar_queues.records import TaskError, TaskStatus
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    LEASE_SECONDS,
    OWNER,
    QUEUE,
    after,
    claim_one,
    claimed_state,
    completed,
    diff,
    enqueue_one,
    make_record,
    retry_at,
    rule,
)

__all__ = ("RetryConformance",)

_ERROR = TaskError(type="builtins.ConnectionError", message="upstream down", traceback="Traceback ...\nConnectionError")
_PENDING_RULE = (
    "pending: set scheduled_at = outcome.scheduled_at and error from the outcome, decrement attempts when "
    "outcome.refund_attempt; started_at keeps the last start; owner and lease_expires_at become None and "
    "cancel_requested becomes false"
)


class RetryConformance(ConformanceBase):
    """``finish`` with a ``pending`` outcome schedules the next attempt; ``claim`` counts attempts."""

    async def test_retry_finish_pending_reschedules_and_keeps_the_error(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await enqueue_one(backend, make_record(now, max_retries=3))
        running = await claim_one(backend, now)
        retrying = await backend.finish(running.lease, retry_at(after(now, 10), error=_ERROR), now=after(now, 1))
        expected = replace(
            running,
            status=TaskStatus.PENDING,
            scheduled_at=after(now, 10),
            error=_ERROR,
            owner=None,
            lease_expires_at=None,
        )
        assert retrying == expected, rule("finish", _PENDING_RULE, diff(expected, retrying))
        assert await backend.get(running.id) == expected, rule("finish", "the retry is stored")

    async def test_retry_is_not_claimed_before_its_scheduled_at(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        retrying = await backend.finish(running.lease, retry_at(after(now, 10), error=_ERROR), now=after(now, 1))
        assert retrying is not None, rule("finish", "a matching fence: the updated record")
        early = await backend.claim([QUEUE], owner=OWNER, limit=5, now=after(now, 9), lease_seconds=LEASE_SECONDS)
        assert early == [], rule("claim", "records not yet due are never returned (a retry waits for its backoff)")
        again = await claim_one(backend, after(now, 10))
        expected = claimed_state(retrying, owner=OWNER, now=after(now, 10), lease_seconds=LEASE_SECONDS)
        assert again == expected, rule("claim", "a retry is claimed like any due record", diff(expected, again))
        assert (again.attempts, again.token) == (2, 2), rule("claim", "attempts + 1 and token + 1 on every claim")

    async def test_retry_refund_attempt_gives_the_attempt_back(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now, attempts=3, token=3))  # neither 0 nor unchanged is right
        running = await claim_one(backend, now)
        handed_back = await backend.finish(running.lease, retry_at(now, refund_attempt=True), now=now)
        assert handed_back is not None and handed_back.attempts == 3, rule(
            "finish", "pending: decrement attempts when outcome.refund_attempt", repr(handed_back)
        )
        assert handed_back.token == running.token, rule("finish", "the token only grows with claims", repr(handed_back))

    async def test_retry_attempts_count_every_claim(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now, max_retries=5))
        moment = now
        for attempt in range(1, 4):
            running = await claim_one(backend, moment)
            assert running.attempts == attempt, rule("claim", "each claim makes attempts + 1", repr(running))
            moment = after(moment, 2)
            await backend.finish(running.lease, retry_at(moment, error=_ERROR), now=moment)

    async def test_retry_keeps_its_dedup_key(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now, key="retry:key"))
        running = await claim_one(backend, now)
        retrying = await backend.finish(running.lease, retry_at(after(now, 60)), now=now)
        assert await backend.get_by_key("retry:key") == retrying, rule("finish", "pending: the key stays held")

    async def test_retry_success_after_a_failure_clears_the_error(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        await backend.finish(running.lease, retry_at(now, error=_ERROR), now=now)
        second = await claim_one(backend, after(now, 1))
        finished = await backend.finish(second.lease, completed(7), now=after(now, 2))
        assert finished is not None and (finished.status, finished.result, finished.error) == (
            TaskStatus.COMPLETED,
            7,
            None,
        ), rule("finish", "completed: set result and error from the outcome", repr(finished))
