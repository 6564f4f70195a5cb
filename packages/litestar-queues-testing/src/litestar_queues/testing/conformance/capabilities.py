"""Capability gating, both ways: declared operations work, undeclared ones raise ``UnsupportedOperation``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import anyio
import pytest

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.errors import UnsupportedOperation
from litestar_queues.events.envelope import QueueEvent
from litestar_queues.events.history import EventFilter
from litestar_queues.records import new_record_id
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import QUEUE, enqueue_one, make_record, raising

__all__ = ("CapabilityConformance",)


async def _use(
    capability: Capability, backend: QueueBackend, now: datetime, request: pytest.FixtureRequest
) -> Callable[[], Awaitable[None]]:
    """Return a call that exercises ``capability`` briefly."""
    if capability is Capability.TRANSACTIONAL_ENQUEUE:
        if capability not in backend.capabilities:
            return lambda: _discard(backend.enqueue_within(object(), [make_record(now)]))
        transactions = request.getfixturevalue("caller_transaction")

        async def within() -> None:
            async with transactions() as transaction:
                await backend.enqueue_within(transaction.session, [make_record(now)])
                await transaction.rollback()

        return within
    if capability is Capability.PUSH_WAKEUP:
        return lambda: backend.wait_for_work([QUEUE], timeout=0.01)
    if capability is Capability.FINISH_WAKEUP:
        record = await enqueue_one(backend, make_record(now))
        return lambda: backend.wait_for_finish(record.id, timeout=0.01)
    if capability is Capability.TRANSFER:
        await enqueue_one(backend, make_record(now))
        (running,) = await backend.claim([QUEUE], owner="worker-a", limit=1, now=now, lease_seconds=30)

        async def transfer() -> None:
            await backend.transfer(running.lease, owner="worker-b", now=now, lease_seconds=30)

        return transfer
    if capability is Capability.EVENT_HISTORY:

        async def keep_history() -> None:
            await backend.append_events([QueueEvent(type="task.log", task_id=record_id, occurred_at=now)])
            await backend.query_events(EventFilter(task_id=record_id), limit=10)
            await backend.prune_events(occurred_before=now, limit=10)

        record_id = new_record_id()
        return keep_history
    pytest.fail(f"the conformance suite does not know how to exercise {capability!r} yet")


async def _discard(call: Awaitable[object]) -> None:
    await call


class CapabilityConformance(ConformanceBase):
    """``capabilities`` tells the truth about every optional operation."""

    async def test_capabilities_are_a_frozenset_of_capability(self, backend: QueueBackend) -> None:
        assert isinstance(backend.capabilities, frozenset), "QueueBackend.capabilities must be a frozenset"
        assert all(isinstance(item, Capability) for item in backend.capabilities), (
            f"QueueBackend.capabilities holds only Capability members, got {set(backend.capabilities)!r}"
        )
        assert isinstance(backend.name, str) and backend.name, "QueueBackend.name is a short non-empty name"

    @pytest.mark.parametrize("capability", list(Capability), ids=[capability.value for capability in Capability])
    async def test_capability_is_honoured_both_ways(
        self, backend: QueueBackend, now: datetime, capability: Capability, request: pytest.FixtureRequest
    ) -> None:
        call = await _use(capability, backend, now, request)
        if capability in backend.capabilities:
            try:
                with anyio.fail_after(10):
                    await call()
            except UnsupportedOperation as error:
                pytest.fail(f"{type(backend).__name__} declares {capability.value} but raised {error!r}")
        else:
            with raising(
                UnsupportedOperation, "capabilities", f"undeclared: {capability.value} raises UnsupportedOperation"
            ):
                await call()  # undeclared: must say so, not half-work
