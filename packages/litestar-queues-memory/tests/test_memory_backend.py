"""Behaviour of the memory backend beyond the conformance suite: wakeup timing, its clock handling, its config."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from functools import partial
from typing import Any

import anyio
import pytest

from litestar_queues.backend import BackendConfig, Capability
from litestar_queues.backends.memory import MemoryBackend, MemoryBackendConfig
from litestar_queues.clock import utc_now
from litestar_queues.records import Outcome, RecordFilter, TaskRecord, TaskStatus, WorkerInfo, new_record_id

pytestmark = pytest.mark.anyio


def _record(queue: str = "default", **changes: Any) -> TaskRecord:
    now = utc_now()
    values: dict[str, Any] = {"id": new_record_id(), "task_name": "t", "queue": queue, "created_at": now}
    values.update(changes)
    values.setdefault("scheduled_at", now)
    return TaskRecord(**values)


async def _elapsed(awaitable: Awaitable[None]) -> float:
    start = anyio.current_time()
    await awaitable
    return anyio.current_time() - start


def test_config_builds_an_unopened_memory_backend() -> None:
    config = MemoryBackendConfig()
    backend = config.create_backend()
    assert isinstance(config, BackendConfig)
    assert isinstance(backend, MemoryBackend)
    assert backend.config is config


def test_declares_both_wakeups_transfer_history_and_its_name() -> None:
    assert MemoryBackend.capabilities == {
        Capability.PUSH_WAKEUP,
        Capability.FINISH_WAKEUP,
        Capability.TRANSFER,
        Capability.EVENT_HISTORY,
    }
    assert MemoryBackend.name == "memory"
    assert MemoryBackend().local_only  # remote execution targets refuse it


async def test_wait_for_work_ends_when_a_delayed_record_falls_due(memory: MemoryBackend) -> None:
    await memory.enqueue([_record(scheduled_at=utc_now() + timedelta(seconds=0.3))])
    elapsed = await _elapsed(memory.wait_for_work(["default"], timeout=10))
    assert 0.2 < elapsed < 5


async def test_wait_for_work_returns_at_once_when_work_is_due(memory: MemoryBackend) -> None:
    await memory.enqueue([_record()])
    assert await _elapsed(memory.wait_for_work(["default"], timeout=10)) < 1


async def test_wait_for_work_ignores_other_queues(memory: MemoryBackend) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(memory.enqueue, [_record("other")])
        elapsed = await _elapsed(memory.wait_for_work(["default"], timeout=0.3))
    assert elapsed >= 0.25


async def test_wait_for_work_wakes_on_a_retry(memory: MemoryBackend) -> None:
    await memory.enqueue([_record()])
    (running,) = await memory.claim(["default"], owner="w", limit=1, now=utc_now(), lease_seconds=30)

    async def retry_soon() -> None:
        await anyio.sleep(0.05)
        later = utc_now() + timedelta(hours=1)
        await memory.finish(running.lease, Outcome(status=TaskStatus.PENDING, scheduled_at=later), now=utc_now())

    async with anyio.create_task_group() as group:
        group.start_soon(retry_soon)
        assert await _elapsed(memory.wait_for_work(["default"], timeout=10)) < 5


async def test_close_wakes_every_waiter(memory: MemoryBackend) -> None:
    await memory.enqueue([_record()])
    (running,) = await memory.claim(["default"], owner="w", limit=1, now=utc_now(), lease_seconds=30)
    async with anyio.create_task_group() as group:
        group.start_soon(partial(memory.wait_for_work, ["default"], timeout=10))
        group.start_soon(partial(memory.wait_for_finish, running.id, timeout=10))
        await anyio.sleep(0.05)
        with anyio.fail_after(5):
            await memory.close()


async def test_wait_for_finish_of_an_unknown_record_returns_at_once(memory: MemoryBackend) -> None:
    assert await _elapsed(memory.wait_for_finish("nope", timeout=10)) < 1


async def test_a_record_expired_at_a_later_now_is_claimable_at_an_earlier_one(memory: MemoryBackend) -> None:
    now = utc_now()
    record = _record(scheduled_at=now, expires_at=now + timedelta(seconds=10))
    await memory.enqueue([record])
    assert await memory.claim(["default"], owner="w", limit=5, now=now + timedelta(seconds=20), lease_seconds=30) == []
    stats = await memory.statistics(now=now + timedelta(seconds=20))
    assert stats.oldest_pending_at is None
    assert (await memory.statistics(now=now)).oldest_pending_at == record.scheduled_at
    claimed = await memory.claim(["default"], owner="w", limit=5, now=now, lease_seconds=30)
    assert [item.id for item in claimed] == [record.id]


async def test_finish_rejects_outcomes_that_cannot_end_an_attempt(memory: MemoryBackend) -> None:
    await memory.enqueue([_record()])
    (running,) = await memory.claim(["default"], owner="w", limit=1, now=utc_now(), lease_seconds=30)
    for outcome in (
        Outcome(status=TaskStatus.RUNNING),
        Outcome(status=TaskStatus.EXPIRED),
        Outcome(status=TaskStatus.PENDING),
    ):
        with pytest.raises(ValueError, match="finish"):
            await memory.finish(running.lease, outcome, now=utc_now())
    assert await memory.get(running.id) == running


async def test_a_pruned_id_enqueued_again_is_listed_once(memory: MemoryBackend) -> None:
    now = utc_now()
    record = _record()
    await memory.enqueue([record])
    await memory.cancel(record.id, now=now)
    assert await memory.prune(finished_before=now + timedelta(seconds=1), limit=10) == 1
    await memory.enqueue([record])
    page = await memory.query(RecordFilter(), limit=10)
    assert [item.id for item in page.records] == [record.id]


async def test_get_by_key_falls_back_to_an_older_record_once_the_newest_is_pruned(memory: MemoryBackend) -> None:
    now = utc_now()
    older, newer = _record(key="k", created_at=now), _record(key="k", created_at=now + timedelta(seconds=1))
    await memory.enqueue([older])
    await memory.cancel(older.id, now=now + timedelta(seconds=5))
    await memory.enqueue([newer])
    await memory.cancel(newer.id, now=now)
    assert await memory.get_by_key("k") == await memory.get(newer.id)
    await memory.prune(finished_before=now + timedelta(seconds=1), limit=10)
    assert await memory.get_by_key("k") == await memory.get(older.id)


async def test_registered_workers_are_copies(memory: MemoryBackend) -> None:
    now = utc_now()
    info = WorkerInfo(
        id="w", host="h", pid=1, queues=["a"], concurrency=1, started_at=now, last_heartbeat_at=now, metadata={}
    )
    await memory.register_worker(info, ttl_seconds=30)
    info.queues.append("b")
    info.metadata["x"] = 1
    (listed,) = await memory.list_workers(now=now)
    assert (listed.queues, listed.metadata) == (["a"], {})
    listed.queues.append("c")
    assert (await memory.list_workers(now=now))[0].queues == ["a"]
