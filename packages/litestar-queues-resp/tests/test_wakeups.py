"""Push hints over pub/sub: ``wait_for_work`` and ``wait_for_finish``."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from litestar_queues.backend import Capability
from litestar_queues.backends.resp import RespBackend
from litestar_queues.records import Outcome, TaskStatus
from litestar_queues.testing.conformance.support import QUEUE, make_record

pytestmark = pytest.mark.anyio


async def settled(backend: RespBackend, queues: list[str]) -> None:
    """Subscribe and consume the hint every first subscription leaves."""
    await backend.wait_for_work(queues, timeout=2)


def test_capabilities_are_declared(flavor: str) -> None:
    from litestar_queues.backends.redis import RedisBackend
    from litestar_queues.backends.valkey import ValkeyBackend

    for backend_class in (RedisBackend, ValkeyBackend):
        assert backend_class.capabilities == {
            Capability.PUSH_WAKEUP,
            Capability.FINISH_WAKEUP,
            Capability.TRANSFER,
            Capability.EVENT_HISTORY,
        }


async def test_wait_for_work_times_out_without_work(backend: RespBackend) -> None:
    await settled(backend, [QUEUE])
    started = time.perf_counter()
    await backend.wait_for_work([QUEUE], timeout=0.2)
    assert 0.15 < time.perf_counter() - started < 1.0


async def test_first_wait_returns_once_subscribed(backend: RespBackend) -> None:
    started = time.perf_counter()
    await backend.wait_for_work([QUEUE], timeout=5)
    assert time.perf_counter() - started < 1.0


async def test_enqueue_on_another_connection_wakes_a_waiter(
    backend: RespBackend, open_backend: Any, now: datetime
) -> None:
    await settled(backend, [QUEUE, "other"])
    async with open_backend() as producer:
        waiting = asyncio.ensure_future(backend.wait_for_work(["other", QUEUE], timeout=5))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        started = time.perf_counter()
        await producer.enqueue([make_record(now)])
        await waiting
        assert time.perf_counter() - started < 0.5


async def test_work_published_while_nobody_waits_is_not_lost(backend: RespBackend, now: datetime) -> None:
    await settled(backend, [QUEUE])
    await backend.enqueue([make_record(now)])
    await asyncio.sleep(0.05)  # the hint arrives while no one waits
    started = time.perf_counter()
    await backend.wait_for_work([QUEUE], timeout=5)
    assert time.perf_counter() - started < 0.5


async def test_other_queues_do_not_wake(backend: RespBackend, now: datetime) -> None:
    await settled(backend, [QUEUE])
    waiting = asyncio.ensure_future(backend.wait_for_work([QUEUE], timeout=0.3))
    await asyncio.sleep(0.05)
    await backend.enqueue([make_record(now, queue="elsewhere")])
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await waiting


async def test_retry_and_requeue_wake_the_queue(backend: RespBackend, now: datetime) -> None:
    await backend.enqueue([make_record(now)])
    (claimed,) = await backend.claim([QUEUE], owner="w", limit=1, now=now, lease_seconds=30)
    await settled(backend, [QUEUE])
    waiting = asyncio.ensure_future(backend.wait_for_work([QUEUE], timeout=5))
    await asyncio.sleep(0.05)
    await backend.finish(claimed.lease, Outcome(status=TaskStatus.PENDING, scheduled_at=now), now=now)
    await asyncio.wait_for(waiting, 1)


async def test_wait_for_finish_wakes_on_finish(backend: RespBackend, open_backend: Any, now: datetime) -> None:
    await backend.enqueue([make_record(now)])
    (claimed,) = await backend.claim([QUEUE], owner="w", limit=1, now=now, lease_seconds=30)
    async with open_backend() as watcher:
        waiters = [asyncio.ensure_future(watcher.wait_for_finish(claimed.id, timeout=5)) for _ in range(3)]
        await asyncio.sleep(0.1)
        assert not any(w.done() for w in waiters)
        started = time.perf_counter()
        await backend.finish(claimed.lease, Outcome(status=TaskStatus.COMPLETED), now=now)
        await asyncio.gather(*waiters)
        assert time.perf_counter() - started < 0.5
        # already terminal: returns at once
        started = time.perf_counter()
        await watcher.wait_for_finish(claimed.id, timeout=5)
        assert time.perf_counter() - started < 0.5


async def test_wait_for_finish_times_out_and_a_retry_does_not_wake(backend: RespBackend, now: datetime) -> None:
    await backend.enqueue([make_record(now)])
    (claimed,) = await backend.claim([QUEUE], owner="w", limit=1, now=now, lease_seconds=30)
    waiting = asyncio.ensure_future(backend.wait_for_finish(claimed.id, timeout=0.4))
    await asyncio.sleep(0.1)
    retry = Outcome(status=TaskStatus.PENDING, scheduled_at=now + timedelta(seconds=60))
    await backend.finish(claimed.lease, retry, now=now)
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await waiting


async def test_wait_for_finish_of_a_cancelled_or_missing_record(backend: RespBackend, now: datetime) -> None:
    pending = make_record(now)
    await backend.enqueue([pending])
    waiting = asyncio.ensure_future(backend.wait_for_finish(pending.id, timeout=5))
    await asyncio.sleep(0.1)
    await backend.cancel(pending.id, now=now)
    await asyncio.wait_for(waiting, 1)
    await asyncio.wait_for(backend.wait_for_finish("missing", timeout=5), 1)


async def test_close_releases_waiters(open_backend: Any) -> None:
    async with open_backend() as backend:
        await settled(backend, [QUEUE])
        waiting = asyncio.ensure_future(backend.wait_for_work([QUEUE], timeout=30))
        await asyncio.sleep(0.05)
    await asyncio.wait_for(waiting, 1)
