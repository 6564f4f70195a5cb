"""Named maintenance locks with an owner and a ttl."""

from __future__ import annotations

from datetime import datetime

import anyio

from litestar_queues.backend import QueueBackend
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import after, rule

__all__ = ("LockConformance",)

_LOCK = "conformance-maintenance"


class LockConformance(ConformanceBase):
    """``acquire_lock`` gives a lock to one owner at a time until it expires or is released."""

    async def test_lock_is_taken_and_renewed_by_its_owner(self, backend: QueueBackend, now: datetime) -> None:
        assert await backend.acquire_lock(_LOCK, owner="a", ttl_seconds=30, now=now), rule(
            "acquire_lock", "take the named lock; True if owner holds it afterwards"
        )
        assert await backend.acquire_lock(_LOCK, owner="a", ttl_seconds=30, now=after(now, 20)), rule(
            "acquire_lock", "take or renew: the owner renews its own lock"
        )
        assert not await backend.acquire_lock(_LOCK, owner="b", ttl_seconds=30, now=after(now, 40)), rule(
            "acquire_lock", "renewing extends the lock to now + ttl_seconds, so another owner is refused"
        )

    async def test_lock_held_by_another_owner_is_refused_until_it_expires(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await backend.acquire_lock(_LOCK, owner="a", ttl_seconds=30, now=now)
        assert not await backend.acquire_lock(_LOCK, owner="b", ttl_seconds=30, now=after(now, 29)), rule(
            "acquire_lock", "a lock held by another owner and not expired at now is not taken"
        )
        assert await backend.acquire_lock(_LOCK, owner="b", ttl_seconds=30, now=after(now, 31)), rule(
            "acquire_lock", "an expired lock is taken by another owner"
        )
        assert not await backend.acquire_lock(_LOCK, owner="a", ttl_seconds=30, now=after(now, 32)), rule(
            "acquire_lock", "the previous owner lost an expired lock that someone else took"
        )

    async def test_lock_is_released_only_by_its_owner(self, backend: QueueBackend, now: datetime) -> None:
        await backend.acquire_lock(_LOCK, owner="a", ttl_seconds=30, now=now)
        await backend.release_lock(_LOCK, owner="b")
        assert not await backend.acquire_lock(_LOCK, owner="b", ttl_seconds=30, now=now), rule(
            "release_lock", "release the named lock only if owner holds it"
        )
        await backend.release_lock(_LOCK, owner="a")
        assert await backend.acquire_lock(_LOCK, owner="b", ttl_seconds=30, now=now), rule(
            "release_lock", "a released lock is free"
        )
        await backend.release_lock("never-taken", owner="a")

    async def test_lock_names_are_independent(self, backend: QueueBackend, now: datetime) -> None:
        await backend.acquire_lock(_LOCK, owner="a", ttl_seconds=30, now=now)
        assert await backend.acquire_lock(_LOCK + "-other", owner="b", ttl_seconds=30, now=now), rule(
            "acquire_lock", "each name is its own lock"
        )

    async def test_lock_concurrent_acquires_have_one_winner(self, backend: QueueBackend, now: datetime) -> None:
        winners: list[str] = []

        async def contender(owner: str) -> None:
            if await backend.acquire_lock(_LOCK, owner=owner, ttl_seconds=30, now=now):
                winners.append(owner)

        async with anyio.create_task_group() as group:
            for number in range(10):
                group.start_soon(contender, f"owner-{number}")
        assert len(winners) == 1, rule("acquire_lock", "one owner at a time", f"winners: {winners}")
