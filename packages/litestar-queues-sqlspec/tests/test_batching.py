"""The coalescer behind PostgreSQL's batched finishes (no database needed)."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from litestar_queues.backends.sqlspec.batching import Coalescer

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
    async with anyio.create_task_group() as group:
        for value in range(5):
            group.start_soon(coalescer.submit, ("same", value))
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
