"""Push wakeups: ``wait_for_work`` and ``wait_for_finish`` (only when the capability is declared)."""

from __future__ import annotations

from datetime import datetime

import anyio
from anyio.abc import TaskStatus as StartedStatus

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    QUEUE,
    claim_one,
    completed,
    enqueue_one,
    make_record,
    require,
    rule,
)

__all__ = ("WakeupConformance",)

_TIMEOUT = 20.0
"""What the waits are given; returning in less than half of it counts as returning early."""
_EARLY = _TIMEOUT / 2


class WakeupConformance(ConformanceBase):
    """Declared wakeups return well before their timeout when the awaited thing happens."""

    async def test_wakeup_wait_for_work_returns_early_after_an_enqueue(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        require(backend, Capability.PUSH_WAKEUP)
        returned = anyio.Event()

        async def waiter(*, task_status: StartedStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            await backend.wait_for_work([QUEUE], timeout=_TIMEOUT)
            returned.set()

        async with anyio.create_task_group() as group:
            await group.start(waiter)
            # A listener may need a moment to subscribe; a wakeup is a hint, so keep offering work.
            with anyio.move_on_after(_EARLY):
                while not returned.is_set():
                    await backend.enqueue([make_record(now)])
                    with anyio.move_on_after(0.05):
                        await returned.wait()
            group.cancel_scope.cancel()
        assert returned.is_set(), rule(
            "wait_for_work",
            "return when work may be available on queues (PUSH_WAKEUP: promptly, not just on timeout)",
            f"still waiting {_EARLY}s into a {_TIMEOUT}s timeout while records were being enqueued",
        )

    async def test_wakeup_wait_for_work_returns_after_its_timeout(self, backend: QueueBackend) -> None:
        require(backend, Capability.PUSH_WAKEUP)
        with anyio.move_on_after(_EARLY) as scope:
            await backend.wait_for_work([QUEUE], timeout=0.05)
        assert not scope.cancelled_caught, rule("wait_for_work", "return after timeout seconds")

    async def test_wakeup_wait_for_finish_returns_early_after_finish(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        require(backend, Capability.FINISH_WAKEUP)
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        returned = anyio.Event()

        async def waiter(*, task_status: StartedStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            await backend.wait_for_finish(running.id, timeout=_TIMEOUT)
            returned.set()

        async with anyio.create_task_group() as group:
            await group.start(waiter)
            await backend.finish(running.lease, completed(), now=now)
            with anyio.move_on_after(_EARLY):
                await returned.wait()
            group.cancel_scope.cancel()
        assert returned.is_set(), rule(
            "wait_for_finish",
            "return when record_id may have become terminal (FINISH_WAKEUP: promptly). Check the record after "
            "subscribing, or a finish racing the subscription is missed",
            f"still waiting {_EARLY}s after the record was finished",
        )

    async def test_wakeup_wait_for_finish_of_a_terminal_record_returns_at_once(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        require(backend, Capability.FINISH_WAKEUP)
        record = await enqueue_one(backend, make_record(now))
        await backend.cancel(record.id, now=now)
        with anyio.move_on_after(_EARLY) as scope:
            await backend.wait_for_finish(record.id, timeout=_TIMEOUT)
        assert not scope.cancelled_caught, rule(
            "wait_for_finish", "return when record_id may have become terminal: it already is"
        )

    async def test_wakeup_wait_for_finish_returns_after_its_timeout(self, backend: QueueBackend, now: datetime) -> None:
        require(backend, Capability.FINISH_WAKEUP)
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        with anyio.move_on_after(_EARLY) as scope:
            await backend.wait_for_finish(running.id, timeout=0.05)
        assert not scope.cancelled_caught, rule("wait_for_finish", "return after timeout seconds")
