"""The registry of live workers."""

from __future__ import annotations

from datetime import datetime

from msgspec.structs import replace

from litestar_queues.backend import QueueBackend
from litestar_queues.records import WorkerInfo
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import after, rule

__all__ = ("WorkerRegistryConformance",)


def _worker(worker_id: str, heartbeat: datetime) -> WorkerInfo:
    return WorkerInfo(
        id=worker_id,
        host="host-1",
        pid=4242,
        queues=["default", "emails"],
        concurrency=8,
        started_at=after(heartbeat, -60),
        last_heartbeat_at=heartbeat,
        metadata={"version": "1.2.3", "labels": ["blue"]},
    )


class WorkerRegistryConformance(ConformanceBase):
    """``register_worker``/``list_workers``/``remove_worker`` track live workers by heartbeat and ttl."""

    async def test_workers_are_listed_by_id_as_registered(self, backend: QueueBackend, now: datetime) -> None:
        workers = [_worker(worker_id, now) for worker_id in ("w-3", "w-1", "w-2")]
        for info in workers:
            await backend.register_worker(info, ttl_seconds=30)
        listed = await backend.list_workers(now=now)
        assert listed == sorted(workers, key=lambda info: info.id), rule(
            "list_workers", "return live workers (registered, within their ttl at now), ordered by id", repr(listed)
        )

    async def test_workers_disappear_after_their_ttl(self, backend: QueueBackend, now: datetime) -> None:
        await backend.register_worker(_worker("w-1", now), ttl_seconds=30)
        assert [info.id for info in await backend.list_workers(now=after(now, 29))] == ["w-1"], rule(
            "list_workers", "a worker is live within ttl_seconds of its last_heartbeat_at"
        )
        assert await backend.list_workers(now=after(now, 31)) == [], rule(
            "register_worker", "a worker not registered again within ttl_seconds of its last_heartbeat_at is gone"
        )

    async def test_workers_registered_again_are_replaced(self, backend: QueueBackend, now: datetime) -> None:
        await backend.register_worker(_worker("w-1", now), ttl_seconds=30)
        beat = replace(_worker("w-1", after(now, 25)), concurrency=4)
        await backend.register_worker(beat, ttl_seconds=30)
        assert await backend.list_workers(now=after(now, 50)) == [beat], rule(
            "register_worker", "insert or replace info (the ttl counts from the new last_heartbeat_at)"
        )

    async def test_workers_removed_are_gone(self, backend: QueueBackend, now: datetime) -> None:
        await backend.register_worker(_worker("w-1", now), ttl_seconds=30)
        await backend.register_worker(_worker("w-2", now), ttl_seconds=30)
        await backend.remove_worker("w-1")
        await backend.remove_worker("never-registered")
        assert [info.id for info in await backend.list_workers(now=now)] == ["w-2"], rule(
            "remove_worker", "forget a worker"
        )
