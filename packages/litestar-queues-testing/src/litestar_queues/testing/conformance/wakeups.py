"""Push wakeups: ``wait_for_work`` and ``wait_for_finish`` (only when the capability is declared).

A wakeup test first lets the wait stand still for a moment (so a listener subscribes, and a wait that
returns without cause shows itself), then makes exactly one transition, and expects the wait to end well
before its timeout. A backend that forgets the transition keeps waiting and fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ClassVar

import anyio
import pytest
from anyio.abc import TaskStatus as StartedStatus

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.records import Outcome, TaskError, TaskRecord, TaskStatus, new_record_id
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    LEASE_SECONDS,
    QUEUE,
    after,
    completed,
    enqueue_one,
    make_record,
    require,
    retry_at,
    rule,
)

__all__ = ("WakeupConformance",)

_STILL = 0.25
"""How long a wait must go on with nothing happening before the test makes its transition."""
_RESTARTS = 4
"""Waits that may end with nothing happening (a first wait after subscribing) before the test gives up."""
_WINDOW = 1.0
"""How long the no-busy-loop tests keep waiting with short timeouts."""
_SHORT = 0.2
_MOST_WAITS = 2 * round(_WINDOW / _SHORT)
"""Waits of ``_SHORT`` seconds that fit in ``_WINDOW``, twice over: a first early return is fine, a loop is not."""
_OTHER = "conformance.other"
"""A second queue every work waiter also listens on (listed first, so listening to the first queue only fails)."""

_WORK_RULE = (
    "return promptly after every transition that makes a record of any one of queues pending (an enqueue that "
    "creates it, a finish with a pending outcome: a retry, a stale recovery, a shutdown hand-back; a requeue), and "
    "after a resume_queue of one of queues"
)
_FINISH_RULE = (
    "return promptly after every transition that makes the record terminal (a finish with a terminal outcome, "
    "a cancel of the pending record, an expire)"
)
_BUSY_RULE = "not at once again and again: with nothing due and nothing happening, a wait lasts about timeout"


async def _wakes(
    given: float, wait: Callable[[float], Awaitable[None]], transition: Callable[[], Awaitable[object]]
) -> bool:
    """Start ``wait``; once it has gone on for a moment, make ``transition``; return whether the wait ended early.

    Early: within half of ``given``, the timeout the wait is given.
    """
    for _ in range(_RESTARTS):
        returned = anyio.Event()

        async def waiter(*, task_status: StartedStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            await wait(given)
            returned.set()  # noqa: B023 - the waiter runs within this iteration

        async with anyio.create_task_group() as group:
            await group.start(waiter)
            with anyio.move_on_after(_STILL):
                await returned.wait()
            if returned.is_set():
                continue  # it ended with nothing happening (a first wait after subscribing may): wait again
            await transition()
            with anyio.move_on_after(given / 2):
                await returned.wait()
            group.cancel_scope.cancel()
        return returned.is_set()
    pytest.fail(
        rule(
            "wait_for_work / wait_for_finish",
            _BUSY_RULE,
            f"{_RESTARTS} waits in a row with a {given}s timeout ended within {_STILL}s while nothing happened",
        )
    )


async def _count_waits(wait: Callable[[float], Awaitable[None]]) -> int:
    """Return how many waits of ``_SHORT`` seconds end, one after another, within ``_WINDOW`` seconds.

    It stops counting above ``_MOST_WAITS``: a wait that returns without ever yielding would never let the window
    end.
    """
    waits = 0
    with anyio.move_on_after(_WINDOW):
        while waits <= _MOST_WAITS:
            await wait(_SHORT)
            waits += 1
    return waits


async def _running(backend: QueueBackend, now: datetime, **changes: Any) -> TaskRecord:
    """Enqueue a record of ``QUEUE`` and claim it; return the running record."""
    record = await enqueue_one(backend, make_record(now, **changes))
    running = await backend.claim_record(record.id, owner="worker-a", now=now, lease_seconds=LEASE_SECONDS)
    assert running is not None, rule("claim_record", "claim one specific pending record")
    return running


async def _work_transition(backend: QueueBackend, now: datetime, transition: str) -> Callable[[], Awaitable[object]]:
    """Prepare ``transition`` (nothing due on ``QUEUE`` yet) and return the call that makes it."""
    if transition == "enqueue":
        return lambda: backend.enqueue([make_record(now)])
    if transition == "requeue":
        record = await enqueue_one(backend, make_record(now))
        await backend.cancel(record.id, now=now)
        return lambda: backend.requeue(record.id, now=now)
    if transition == "resume":
        await backend.pause_queue(QUEUE, now=now)
        await enqueue_one(backend, make_record(now))
        return lambda: backend.resume_queue(QUEUE)
    if transition == "stale recovery":
        stale = await _running(backend, after(now, -2 * LEASE_SECONDS))  # its lease expired LEASE_SECONDS ago
        outcome = retry_at(now, only_if_lease_expired=True)
        return lambda: backend.finish(stale.lease, outcome, now=now)
    running = await _running(backend, now)
    if transition == "retry":
        outcome = retry_at(now, error=TaskError(type="builtins.ConnectionError", message="retry"))
    else:  # a shutdown hand-back
        outcome = retry_at(now, refund_attempt=True)
    return lambda: backend.finish(running.lease, outcome, now=now)


async def _finish_transition(
    backend: QueueBackend, now: datetime, transition: str
) -> tuple[str, Callable[[], Awaitable[object]]]:
    """Prepare ``transition`` of an active record; return its id and the call that makes it terminal."""
    if transition == "cancel pending":
        record = await enqueue_one(backend, make_record(now, scheduled_at=after(now, 3600)))
        return record.id, lambda: backend.cancel(record.id, now=now)
    if transition == "expire":
        record = await enqueue_one(backend, make_record(now, scheduled_at=after(now, 3600), expires_at=now))
        return record.id, lambda: backend.expire(now=now, limit=10)
    running = await _running(backend, now)
    if transition == "retry after a cancel request":  # a cancel request wins over a retry: it ends cancelled
        await backend.cancel(running.id, now=now)
        retry = retry_at(now, error=TaskError(type="builtins.ConnectionError", message="retry"))
        return running.id, lambda: backend.finish(running.lease, retry, now=now)
    status = TaskStatus(transition.removeprefix("finish "))
    error = None if status is TaskStatus.COMPLETED else TaskError(type="builtins.RuntimeError", message="ended")
    return running.id, lambda: backend.finish(running.lease, Outcome(status=status, error=error), now=now)


class WakeupConformance(ConformanceBase):
    """Declared wakeups end early after every transition they announce, and never loop while nothing happens."""

    wakeup_timeout: ClassVar[float] = 20.0
    """What the waits are given; ending within half of it counts as early (a backend that forgets a transition
    fails only after that half: lower it to fail sooner, keeping it well above your wakeup latency)."""

    def _still_waiting(self) -> str:
        return f"still waiting {self.wakeup_timeout / 2}s into a {self.wakeup_timeout}s timeout"

    @pytest.mark.parametrize("transition", ["enqueue", "retry", "stale recovery", "hand-back", "requeue", "resume"])
    async def test_wakeup_wait_for_work_returns_early_after_a_transition_to_pending(
        self, backend: QueueBackend, now: datetime, transition: str
    ) -> None:
        require(backend, Capability.PUSH_WAKEUP)
        make = await _work_transition(backend, now, transition)
        woken = await _wakes(
            self.wakeup_timeout, lambda timeout: backend.wait_for_work([_OTHER, QUEUE], timeout=timeout), make
        )
        assert woken, rule(
            "wait_for_work",
            _WORK_RULE,
            f"{self._still_waiting()} on [{_OTHER!r}, {QUEUE!r}] after a {transition} of a record of {QUEUE!r}",
        )

    @pytest.mark.parametrize("position", [0, 1, 2], ids=["first queue", "middle queue", "last queue"])
    async def test_wakeup_wait_for_work_listens_on_every_queue(
        self, backend: QueueBackend, now: datetime, position: int
    ) -> None:
        require(backend, Capability.PUSH_WAKEUP)
        queues = ["conformance.a", "conformance.b", "conformance.c"]
        woken = await _wakes(
            self.wakeup_timeout,
            lambda timeout: backend.wait_for_work(queues, timeout=timeout),
            lambda: backend.enqueue([make_record(now, queue=queues[position])]),
        )
        assert woken, rule(
            "wait_for_work",
            "return when work may be available on queues: any one of them",
            f"an enqueue on {queues[position]!r} did not end a wait on {queues}",
        )

    async def test_wakeup_wait_for_work_returns_early_after_an_enqueue_on_another_connection(
        self, backend: QueueBackend, cross_connection_backend: QueueBackend, now: datetime
    ) -> None:
        require(backend, Capability.PUSH_WAKEUP)
        woken = await _wakes(
            self.wakeup_timeout,
            lambda timeout: backend.wait_for_work([QUEUE], timeout=timeout),
            lambda: cross_connection_backend.enqueue([make_record(now)]),
        )
        assert woken, rule(
            "wait_for_work", _WORK_RULE + ", made through another backend over the same storage", "still waiting"
        )

    async def test_wakeup_wait_for_work_with_nothing_due_lasts_its_timeout(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        require(backend, Capability.PUSH_WAKEUP)
        # Everything here is no work for QUEUE: running, finished, delayed, expired, or due on another queue.
        await backend.enqueue(
            [
                make_record(now, scheduled_at=after(now, 3600)),
                make_record(now, scheduled_at=after(now, -60), expires_at=after(now, -30)),
                make_record(now, queue=_OTHER),
            ]
        )
        await _running(backend, now)
        finished = await _running(backend, now)
        await backend.finish(finished.lease, completed(), now=now)
        waits = await _count_waits(lambda timeout: backend.wait_for_work([QUEUE], timeout=timeout))
        assert waits <= _MOST_WAITS, rule(
            "wait_for_work",
            _BUSY_RULE,
            f"{waits} waits with a {_SHORT}s timeout ended within {_WINDOW}s (at most {_MOST_WAITS} expected)",
        )

    async def test_wakeup_wait_for_work_on_a_paused_queue_with_due_work_lasts_its_timeout(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        require(backend, Capability.PUSH_WAKEUP)
        await backend.enqueue([make_record(now, scheduled_at=after(now, -60)) for _ in range(3)])
        await backend.pause_queue(QUEUE, now=now)
        waits = await _count_waits(lambda timeout: backend.wait_for_work([QUEUE], timeout=timeout))
        assert waits <= _MOST_WAITS, rule(
            "wait_for_work",
            "records of a paused queue are no work: whatever they are, they never end a wait at once (nor again and "
            "again)",
            f"{waits} waits with a {_SHORT}s timeout ended within {_WINDOW}s (at most {_MOST_WAITS} expected)",
        )

    async def test_wakeup_wait_for_work_ignores_new_work_of_a_paused_queue(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        require(backend, Capability.PUSH_WAKEUP)
        await backend.pause_queue(QUEUE, now=now)
        woken = await _wakes(
            2.0,
            lambda timeout: backend.wait_for_work([QUEUE], timeout=timeout),
            lambda: backend.enqueue([make_record(now, scheduled_at=after(now, -1))]),
        )
        assert not woken, rule(
            "wait_for_work",
            "records of a paused queue are no work: a transition that makes one pending does not end a wait either",
            "an enqueue into the paused queue ended a wait on it",
        )

    async def test_wakeup_wait_for_work_returns_after_its_timeout(self, backend: QueueBackend) -> None:
        require(backend, Capability.PUSH_WAKEUP)
        with anyio.move_on_after(self.wakeup_timeout / 2) as scope:
            await backend.wait_for_work([QUEUE], timeout=0.05)
        assert not scope.cancelled_caught, rule("wait_for_work", "return after timeout seconds")

    @pytest.mark.parametrize(
        "transition",
        [
            "finish completed",
            "finish failed",
            "finish cancelled",
            "cancel pending",
            "expire",
            "retry after a cancel request",
        ],
    )
    async def test_wakeup_wait_for_finish_returns_early_after_a_transition_to_terminal(
        self, backend: QueueBackend, now: datetime, transition: str
    ) -> None:
        require(backend, Capability.FINISH_WAKEUP)
        record_id, make = await _finish_transition(backend, now, transition)
        woken = await _wakes(
            self.wakeup_timeout, lambda timeout: backend.wait_for_finish(record_id, timeout=timeout), make
        )
        assert woken, rule(
            "wait_for_finish",
            _FINISH_RULE + ". Check the record after subscribing, or a transition racing the subscription is missed",
            f"{self._still_waiting()} after {transition}",
        )

    async def test_wakeup_wait_for_finish_returns_early_after_a_finish_on_another_connection(
        self, backend: QueueBackend, cross_connection_backend: QueueBackend, now: datetime
    ) -> None:
        require(backend, Capability.FINISH_WAKEUP)
        running = await _running(backend, now)
        woken = await _wakes(
            self.wakeup_timeout,
            lambda timeout: backend.wait_for_finish(running.id, timeout=timeout),
            lambda: cross_connection_backend.finish(running.lease, completed(), now=now),
        )
        assert woken, rule(
            "wait_for_finish", _FINISH_RULE + ", made through another backend over the same storage", "still waiting"
        )

    @pytest.mark.parametrize("state", ["terminal", "unknown"])
    async def test_wakeup_wait_for_finish_of_a_terminal_or_unknown_record_returns_at_once(
        self, backend: QueueBackend, now: datetime, state: str
    ) -> None:
        require(backend, Capability.FINISH_WAKEUP)
        record_id = new_record_id()
        if state == "terminal":
            record_id = (await enqueue_one(backend, make_record(now))).id
            await backend.cancel(record_id, now=now)
        with anyio.move_on_after(self.wakeup_timeout / 2) as scope:
            await backend.wait_for_finish(record_id, timeout=self.wakeup_timeout)
        assert not scope.cancelled_caught, rule(
            "wait_for_finish", "return at once when the record is already terminal or does not exist", state
        )

    async def test_wakeup_wait_for_finish_of_an_active_record_lasts_its_timeout(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        require(backend, Capability.FINISH_WAKEUP)
        running = await _running(backend, now)
        waits = await _count_waits(lambda timeout: backend.wait_for_finish(running.id, timeout=timeout))
        assert waits <= _MOST_WAITS, rule(
            "wait_for_finish",
            _BUSY_RULE.replace("nothing due", "the record active"),
            f"{waits} waits with a {_SHORT}s timeout ended within {_WINDOW}s (at most {_MOST_WAITS} expected)",
        )

    async def test_wakeup_wait_for_finish_returns_after_its_timeout(self, backend: QueueBackend, now: datetime) -> None:
        require(backend, Capability.FINISH_WAKEUP)
        running = await _running(backend, now)
        with anyio.move_on_after(self.wakeup_timeout / 2) as scope:
            await backend.wait_for_finish(running.id, timeout=0.05)
        assert not scope.cancelled_caught, rule("wait_for_finish", "return after timeout seconds")
