"""The coalescer behind PostgreSQL's batched finishes (no database needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import anyio
import pytest

from litestar_queues.sql.batching import Coalescer

pytestmark = pytest.mark.anyio


async def test_concurrent_submissions_share_batches_and_get_their_own_results() -> None:
    batches: list[list[tuple[str, int]]] = []

    async def run(items: Sequence[tuple[str, int]]) -> list[int]:
        batches.append(list(items))
        await anyio.sleep(0.01)
        return [value * 10 for _, value in items]

    coalescer: Coalescer[tuple[str, int], int] = Coalescer(run, key=lambda item: item[0])
    results: dict[int, int] = {}

    async def submit(value: int) -> None:
        results[value] = await coalescer.submit((f"id-{value}", value))

    async with anyio.create_task_group() as group:
        for value in range(50):
            group.start_soon(submit, value)
    assert results == {value: value * 10 for value in range(50)}
    assert len(batches) < 50  # shared statements
    assert sorted(item for batch in batches for item in batch) == sorted((f"id-{v}", v) for v in range(50))


async def test_items_with_one_key_never_share_a_batch() -> None:
    batches: list[list[tuple[str, int]]] = []

    async def run(items: Sequence[tuple[str, int]]) -> list[int]:
        batches.append(list(items))
        return [value for _, value in items]

    coalescer: Coalescer[tuple[str, int], int] = Coalescer(run, key=lambda item: item[0])

    async def submit(value: int) -> None:
        await coalescer.submit(("same", value))

    async with anyio.create_task_group() as group:
        for value in range(5):
            group.start_soon(submit, value)
    assert len(batches) == 5
    assert all(len(batch) == 1 for batch in batches)


async def test_a_failing_batch_fails_its_callers_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def run(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("connection lost")
        return list(items)

    coalescer: Coalescer[int, int] = Coalescer(run, key=lambda item: item)
    with pytest.raises(RuntimeError, match="connection lost"):
        await coalescer.submit(1)
    assert await coalescer.submit(2) == 2


async def test_with_two_in_flight_a_batch_starts_while_another_runs_and_keys_never_overlap() -> None:
    running: list[list[tuple[str, int]]] = []
    most_at_once = 0
    overlapping_keys = False
    release = anyio.Event()

    async def run(items: Sequence[tuple[str, int]]) -> list[int]:
        nonlocal most_at_once, overlapping_keys
        keys = {key for key, _ in items}
        overlapping_keys |= any(keys & {key for key, _ in other} for other in running)
        running.append(list(items))
        most_at_once = max(most_at_once, len(running))
        await release.wait()
        running.remove(list(items))
        return [value for _, value in items]

    coalescer: Coalescer[tuple[str, int], int] = Coalescer(run, key=lambda item: item[0], max_in_flight=2)
    results: list[int] = []

    async def submit(key: str, value: int) -> None:
        results.append(await coalescer.submit((key, value)))

    async with anyio.create_task_group() as group:
        group.start_soon(submit, "a", 0)
        await anyio.wait_all_tasks_blocked()  # the first batch is running
        for value in range(1, 6):
            group.start_soon(submit, "a" if value == 1 else f"k{value}", value)
        await anyio.wait_all_tasks_blocked()
        assert most_at_once == 2  # a second batch started without waiting for the first
        release.set()
    assert sorted(results) == list(range(6))
    assert not overlapping_keys  # "a" waited for the batch holding the other "a"


async def test_a_cancelled_flusher_cancels_the_callers_no_other_flusher_serves() -> None:
    started = anyio.Event()

    async def run(items: Sequence[int]) -> list[int]:
        started.set()
        await anyio.sleep_forever()
        return list(items)

    coalescer: Coalescer[int, int] = Coalescer(run, key=lambda item: item)
    outcomes: list[str] = []

    async def submit(value: int) -> None:
        try:
            await coalescer.submit(value)
        except asyncio.CancelledError:
            outcomes.append("cancelled")
            raise

    async with anyio.create_task_group() as group:
        group.start_soon(submit, 1)
        await started.wait()
        group.start_soon(submit, 2)  # waits for the next batch
        await anyio.wait_all_tasks_blocked()
        (flusher,) = coalescer._flushers
        flusher.cancel()
    assert outcomes == ["cancelled", "cancelled"]
