"""The event history and progress on the record, through the service and the worker (memory backend).

The backends' side is the conformance suite's (``EventHistoryConformance``, ``ProgressConformance``); here: what the
core does with it: store every event before any sink sees it, in shared batches; keep progress on the record;
query with ``list_events``; prune by retention in bounded batches; refuse a backend that cannot store history.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import msgspec
import pytest

from litestar_queues import QueueConfig, QueueService, TaskRegistry, Worker, task
from litestar_queues import service as service_module
from litestar_queues import worker as worker_module
from litestar_queues.backend import Capability
from litestar_queues.backends.memory import MemoryBackend
from litestar_queues.batching import WriteBatcher
from litestar_queues.errors import ConfigurationError, SerializationError, UnsupportedOperation
from litestar_queues.events import InMemoryQueueEventSink, QueueEvent, QueueEventConfig, publish_task_progress
from litestar_queues.events.history import EventFilter, EventPage, dump_stored_event, load_stored_event
from litestar_queues.records import TaskStatus

pytestmark = pytest.mark.anyio

HISTORY = QueueEventConfig(enabled=True, history=True)


def _log_event(**fields: Any) -> QueueEvent:
    task_id = str(uuid.uuid4())
    return QueueEvent(**{"type": "task.log", "scope_key": task_id, "task_id": task_id, **fields})


class _RecordingSink(InMemoryQueueEventSink):
    """Remembers, for each event it gets, whether the history already held it."""

    def __init__(self, backend: Callable[[], MemoryBackend]) -> None:
        super().__init__()
        self._backend = backend
        self.stored_first: list[bool] = []

    async def publish(self, event: QueueEvent, channels: Sequence[str]) -> None:
        page = await self._backend().query_events(EventFilter(task_id=event.task_id), limit=1000)
        self.stored_first.append(event.id in {stored.id for stored in page.events})
        await super().publish(event, channels)


class _NoHistoryBackend(MemoryBackend):
    capabilities: ClassVar[frozenset[Capability]] = MemoryBackend.capabilities - {Capability.EVENT_HISTORY}


# -- configuration -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("retention", [0, -1.0, math.nan, math.inf, "7d", True])
def test_history_retention_must_be_a_positive_number_of_seconds(retention: Any) -> None:
    with pytest.raises(ConfigurationError, match="history_retention"):
        QueueEventConfig(enabled=True, history=True, history_retention=retention)


def test_history_needs_the_events_on() -> None:
    with pytest.raises(ConfigurationError, match="enabled=True"):
        QueueEventConfig(history=True)
    assert QueueEventConfig(enabled=True, history=True, history_retention=None).history_retention is None


async def test_opening_with_history_on_a_backend_without_it_fails_at_once(registry: TaskRegistry) -> None:
    service = QueueService(QueueConfig(queue_backend=_NoHistoryBackend(), event_config=HISTORY), registry=registry)
    with pytest.raises(ConfigurationError, match="EVENT_HISTORY"):
        await service.open()
    async with QueueService(QueueConfig(queue_backend=_NoHistoryBackend()), registry=registry) as without:
        with pytest.raises(UnsupportedOperation, match="no event history"):
            await without.list_events()


# -- storing -----------------------------------------------------------------------------------------------------


STORED_FIELDS = [
    "id",
    "type",
    "scope",
    "scope_key",
    "task_id",
    "task_name",
    "queue",
    "worker_id",
    "execution_backend",
    "execution_profile",
    "attempt",
    "sequence",
    "level",
    "message",
    "progress_current",
    "progress_total",
    "progress_percent",
    "actor",
    "entity",
    "payload",
    "occurred_at",
    "event_key",
    "schema_version",
]


def test_stored_events_keep_their_fields_by_position_so_only_appending_a_field_is_safe() -> None:
    # Histories hold events as arrays of field values (dump_stored_event): reordering, renaming or removing a
    # QueueEvent field would misread every stored event, so this list may only grow at its end.
    assert [field.name for field in msgspec.structs.fields(QueueEvent)][: len(STORED_FIELDS)] == STORED_FIELDS


def test_a_stored_event_loads_back_equal_and_without_field_names() -> None:
    every_field = QueueEvent(
        type="task.progress",
        scope="worker",
        scope_key="w",
        task_id="t",
        task_name="n",
        queue="q",
        worker_id="w",
        execution_backend="local",
        execution_profile="p",
        attempt=2,
        sequence=-7,
        level="info",
        message="m\u0000\u2603",
        progress_current=1.5,
        progress_total=3,
        progress_percent=50.0,
        actor="a",
        entity="e",
        payload={"nested": [1, 2.5, None, {"x": "y"}], "big": 2**62},
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc),
        event_key="k",
    )
    for event in (every_field, _log_event()):
        data = dump_stored_event(event)
        assert load_stored_event(data) == event
        assert b"taskId" not in data and b"task_id" not in data
        assert len(data) < len(event.to_json())
    # a field added at the end with a default loads from an array stored before it existed
    assert load_stored_event(dump_stored_event(every_field)[: -len(b",1]")] + b"]") == every_field
    # histories written before the array held the wire JSON object: those rows still load (bytes and text)
    assert load_stored_event(every_field.to_json()) == every_field
    assert load_stored_event(every_field.to_json().decode()) == every_field


async def test_every_event_of_a_job_is_stored_before_any_sink_gets_it(registry: TaskRegistry) -> None:
    backend = MemoryBackend()
    sink = _RecordingSink(lambda: backend)
    config = QueueConfig(queue_backend=backend, event_config=QueueEventConfig(enabled=True, sink=sink, history=True))

    @task("steps", registry=registry)
    async def steps(count: int) -> int:
        for done in range(1, count + 1):
            await publish_task_progress(current=done, total=count, message=f"step {done}")
        return count

    async with QueueService(config, registry=registry) as service:
        outcome = await service.enqueue(steps, 4)
        await Worker(service).run_until_idle()
        page = await service.list_events(task_id=outcome.id)
        record = await service.get_task(outcome.id)
    assert [event.type for event in page.events] == ["task.started", *["task.progress"] * 4, "task.completed"]
    assert page.events == [event for event in sink.events if event.task_id == outcome.id]
    assert sink.stored_first == [True] * len(sink.events)
    assert record is not None and record.status is TaskStatus.COMPLETED
    assert record.progress is not None
    assert (record.progress.current, record.progress.total, record.progress.percent) == (4, 4, 100.0)
    assert (record.progress.message, record.progress.attempt) == ("step 4", 1)


async def test_progress_that_is_not_a_finite_number_fails_the_call_and_stores_nothing(registry: TaskRegistry) -> None:
    seen: list[str] = []

    @task("bad.progress", registry=registry)
    async def bad_progress() -> None:
        await publish_task_progress(current=1, total=2)
        for current in (math.nan, math.inf, True):
            try:
                await publish_task_progress(current=current, total=2)
            except SerializationError as error:
                seen.append(str(error))

    async with QueueService(QueueConfig(queue_backend="memory", event_config=HISTORY), registry=registry) as service:
        outcome = await service.enqueue(bad_progress)
        await Worker(service).run_until_idle()
        record = await service.get_task(outcome.id)
        types = [event.type for event in (await service.list_events(task_id=outcome.id)).events]
    assert len(seen) == 3 and all("finite number" in message for message in seen)
    assert record is not None and record.status is TaskStatus.COMPLETED
    assert record.progress is not None and (record.progress.current, record.progress.percent) == (1, 50.0)
    assert types == ["task.started", "task.progress", "task.completed"]


async def test_a_failing_history_write_is_logged_and_the_job_goes_on(
    registry: TaskRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    backend = MemoryBackend()
    sink = InMemoryQueueEventSink()

    async def broken(events: Sequence[QueueEvent]) -> None:
        raise ConnectionError("history down")

    backend.append_events = broken  # type: ignore[method-assign]

    @task("works", registry=registry)
    async def works() -> str:
        return "done"

    config = QueueConfig(queue_backend=backend, event_config=QueueEventConfig(enabled=True, sink=sink, history=True))
    async with QueueService(config, registry=registry) as service:
        outcome = await service.enqueue(works)
        with caplog.at_level(logging.WARNING, logger="litestar_queues"):
            await Worker(service).run_until_idle()
        assert await service.result(outcome.id) == "done"
    assert [event.type for event in sink.events] == ["task.started", "task.completed"]  # the sinks still got them
    assert "in the event history failed" in caplog.text


async def test_a_failing_history_write_fails_the_publish_when_strict(registry: TaskRegistry) -> None:
    backend = MemoryBackend()

    async def broken(events: Sequence[QueueEvent]) -> None:
        raise ConnectionError("history down")

    backend.append_events = broken  # type: ignore[method-assign]
    config = QueueConfig(queue_backend=backend, event_config=QueueEventConfig(enabled=True, history=True, strict=True))
    async with QueueService(config, registry=registry) as service:
        with pytest.raises(ConnectionError, match="history down"):
            await service.publisher.publish(_log_event())


class _GatedBackend(MemoryBackend):
    """Stores events only once ``gate`` is set (each call of ``append_events`` is recorded in ``batches``)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.batches: list[list[str]] = []

    async def append_events(self, events: Sequence[QueueEvent]) -> None:
        self.batches.append([event.id for event in events])
        await self.gate.wait()
        await super().append_events(events)


async def test_a_publish_returns_at_once_and_the_sinks_get_the_event_once_it_is_stored(registry: TaskRegistry) -> None:
    backend = _GatedBackend()
    sink = _RecordingSink(lambda: backend)
    config = QueueConfig(queue_backend=backend, event_config=QueueEventConfig(enabled=True, sink=sink, history=True))
    async with QueueService(config, registry=registry) as service:
        events = [_log_event(message=str(number)) for number in range(3)]
        for event in events:
            await asyncio.wait_for(service.publisher.publish(event), 5)  # queued: no write has finished
        assert sink.events == []
        assert (await service.list_events()).events == []
        backend.gate.set()
        await service.publisher.flush()
        assert sink.events == events  # in publish order
        assert sink.stored_first == [True, True, True]
        assert backend.batches == [[events[0].id], [events[1].id, events[2].id]]  # one write in flight at a time


async def test_a_strict_publish_waits_for_its_event_and_raises_only_its_own_sink_failure(
    registry: TaskRegistry,
) -> None:
    backend = _GatedBackend()
    refused = _log_event(message="refused")

    class _Refusing(InMemoryQueueEventSink):
        async def publish(self, event: QueueEvent, channels: Sequence[str]) -> None:
            if event.id == refused.id:
                raise ConnectionError("sink down")
            await super().publish(event, channels)

    sink = _Refusing()
    config = QueueConfig(
        queue_backend=backend, event_config=QueueEventConfig(enabled=True, sink=sink, history=True, strict=True)
    )
    async with QueueService(config, registry=registry) as service:
        first = asyncio.ensure_future(service.publisher.publish(_log_event()))
        await asyncio.sleep(0.05)
        assert not first.done()  # strict: waits until stored and handed to the sinks
        accepted = _log_event(message="accepted")
        publishes = [asyncio.ensure_future(service.publisher.publish(event)) for event in (refused, accepted)]
        backend.gate.set()
        await first
        results = await asyncio.gather(*publishes, return_exceptions=True)
    assert backend.batches[1] == [refused.id, accepted.id]  # one batch, two outcomes
    assert isinstance(results[0], ConnectionError) and results[1] is None
    assert [event.message for event in sink.events] == [None, "accepted"]


async def test_a_publish_waits_for_its_event_when_the_writer_is_far_behind(registry: TaskRegistry) -> None:
    backend = _GatedBackend()
    async with QueueService(QueueConfig(queue_backend=backend, event_config=HISTORY), registry=registry) as service:
        # far behind: more than 4 x 2 queued
        service.publisher.store_with(backend.append_events_with_progress, max_batch=2)
        for _ in range(9):  # one in flight, eight queued
            await asyncio.wait_for(service.publisher.publish(_log_event()), 5)
        blocked = asyncio.ensure_future(service.publisher.publish(_log_event()))
        await asyncio.sleep(0.05)
        assert not blocked.done()
        backend.gate.set()
        await asyncio.wait_for(blocked, 5)
        await service.publisher.flush()
        assert len((await service.list_events()).events) == 10


async def test_an_event_the_history_cannot_store_is_refused_before_anything_is_published(
    registry: TaskRegistry,
) -> None:
    sink = InMemoryQueueEventSink()
    config = QueueConfig(queue_backend="memory", event_config=QueueEventConfig(enabled=True, sink=sink, history=True))
    async with QueueService(config, registry=registry) as service:
        with pytest.raises(ConfigurationError, match=r"QueueEvent\.type"):
            await service.publisher.publish(_log_event(type="x" * 256))
        with pytest.raises(SerializationError, match="progress_current"):
            await service.publisher.publish(_log_event(type="task.progress", progress_current=math.nan))
        assert (await service.list_events()).events == []
    assert sink.events == []


async def test_close_leaves_a_hanging_history_write_behind(
    registry: TaskRegistry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(service_module, "_CLOSE_FLUSH_SECONDS", 0.05)
    backend = MemoryBackend()
    writing = asyncio.Event()

    async def hangs(events: Sequence[QueueEvent]) -> None:
        writing.set()
        await asyncio.Event().wait()

    backend.append_events = hangs  # type: ignore[method-assign]
    service = QueueService(QueueConfig(queue_backend=backend, event_config=HISTORY), registry=registry)
    await service.open()
    publishing = asyncio.ensure_future(service.publisher.publish(_log_event()))
    await asyncio.wait_for(writing.wait(), 5)
    closing = asyncio.ensure_future(service.close())
    done, _ = await asyncio.wait((closing,), timeout=30)
    assert closing in done, "close() hung on a history write that never returns"
    closing.result()
    assert "did not return within" in caplog.text
    publishing.cancel()


# -- reading -----------------------------------------------------------------------------------------------------


async def test_list_events_filters_pages_and_checks_its_arguments(registry: TaskRegistry) -> None:
    now = datetime.now(timezone.utc)
    task_id = uuid.uuid4()
    events = [
        QueueEvent(
            type="task.progress" if number % 2 else "task.log",
            task_id=str(task_id) if number < 6 else None,
            queue="reports",
            occurred_at=now + timedelta(seconds=number),
            sequence=number,
        )
        for number in range(8)
    ]
    async with QueueService(QueueConfig(queue_backend="memory", event_config=HISTORY), registry=registry) as service:
        await service.backend.append_events(events)
        first = await service.list_events(task_id=task_id, limit=4)
        assert first.events == events[:4] and first.next_cursor is not None
        rest = await service.list_events(task_id=str(task_id), limit=4, cursor=first.next_cursor)
        assert (rest.events, rest.next_cursor) == (events[4:6], None)
        newest = await service.list_events(event_type="task.log", newest_first=True)
        assert newest.events == events[6::-2]
        window = await service.list_events(queue="reports", since=events[2].occurred_at, before=events[5].occurred_at)
        assert window.events == events[2:5]
        assert (await service.list_events(task_id="x" * 300)).events == []  # no stored event can have it
        with pytest.raises(ValueError, match="malformed event cursor"):
            await service.list_events(cursor="not-a-cursor")
        with pytest.raises(ValueError, match="timezone-aware"):
            await service.list_events(since=datetime(2026, 1, 1))
        with pytest.raises(TypeError, match="str or uuid.UUID"):
            await service.list_events(task_id=42)  # type: ignore[arg-type]


class _ShortPagesBackend(MemoryBackend):
    """Answers every query with at most two events (as a backend that bounds one query's work may), and counts calls."""

    calls = 0

    async def query_events(
        self, where: EventFilter, *, limit: int, cursor: str | None = None, newest_first: bool = False
    ) -> EventPage:
        self.calls += 1
        return await super().query_events(where, limit=min(limit, 2), cursor=cursor, newest_first=newest_first)


@pytest.mark.parametrize("newest_first", [False, True])
async def test_list_events_fills_a_page_from_a_backend_that_returns_short_pages(
    registry: TaskRegistry, newest_first: bool
) -> None:
    now = datetime.now(timezone.utc)
    events = [
        _log_event(queue="a" if number % 3 else "b", occurred_at=now + timedelta(seconds=number))
        for number in range(12)
    ]
    wanted = [event for event in events if event.queue == "a"]  # 8 events
    if newest_first:
        wanted.reverse()
    backend = _ShortPagesBackend()
    async with QueueService(QueueConfig(queue_backend=backend, event_config=HISTORY), registry=registry) as service:
        await backend.append_events(events)
        first = await service.list_events(queue="a", limit=5, newest_first=newest_first)
        assert first.events == wanted[:5] and first.next_cursor is not None
        assert backend.calls == 3  # 2 + 2 + 1
        rest = await service.list_events(queue="a", limit=5, cursor=first.next_cursor, newest_first=newest_first)
        assert (rest.events, rest.next_cursor) == (wanted[5:], None)


# -- retention ---------------------------------------------------------------------------------------------------


async def test_maintenance_prunes_history_past_its_retention_oldest_first_in_bounded_batches(
    registry: TaskRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "_MAINTENANCE_BATCH", 2)
    monkeypatch.setattr(worker_module, "_PRUNE_BATCHES", 3)
    now = datetime.now(timezone.utc)
    old = [QueueEvent(type="task.log", occurred_at=now - timedelta(hours=2, seconds=number)) for number in range(9)]
    recent = [QueueEvent(type="task.log", occurred_at=now - timedelta(minutes=30))]
    events = QueueEventConfig(enabled=True, history=True, history_retention=3600)
    async with QueueService(QueueConfig(queue_backend="memory", event_config=events), registry=registry) as service:
        await service.backend.append_events([*old, *recent])
        worker = Worker(service)
        await worker._maintenance()  # one run deletes at most 3 batches of 2, the oldest first
        assert (await service.list_events()).events == [*old[:3][::-1], *recent]
        await worker._maintenance()
        assert (await service.list_events()).events == recent


async def test_maintenance_keeps_the_history_without_a_retention(registry: TaskRegistry) -> None:
    old = QueueEvent(type="task.log", occurred_at=datetime(2000, 1, 1, tzinfo=timezone.utc))
    events = QueueEventConfig(enabled=True, history=True, history_retention=None)
    async with QueueService(QueueConfig(queue_backend="memory", event_config=events), registry=registry) as service:
        await service.backend.append_events([old])
        await Worker(service)._maintenance()
        assert (await service.list_events()).events == [old]


# -- the batcher -------------------------------------------------------------------------------------------------


async def test_writes_submitted_while_one_is_in_flight_go_out_together_in_order() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def write(batch: list[int]) -> None:
        batches.append(batch)
        if len(batches) == 1:
            await release.wait()

    batcher: WriteBatcher[int] = WriteBatcher(write, max_batch=3)
    first = batcher.submit(0)
    await asyncio.sleep(0)  # the flusher takes the lone item at once: no timer
    assert batches == [[0]]
    later = [batcher.submit(number) for number in range(1, 6)]
    release.set()
    await asyncio.gather(first, *later)
    assert batches == [[0], [1, 2, 3], [4, 5]]
    await batcher.flush()


async def test_a_failed_write_fails_every_item_of_its_batch_only() -> None:
    async def write(batch: list[int]) -> None:
        if 2 in batch:
            raise ConnectionError("lost")

    batcher: WriteBatcher[int] = WriteBatcher(write, max_batch=2)
    futures = [batcher.submit(number) for number in range(4)]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert [type(result).__name__ for result in results] == [
        "NoneType",
        "NoneType",
        "ConnectionError",
        "ConnectionError",
    ]


async def test_added_items_share_the_batches_of_submitted_ones_and_their_failures_reach_only_the_write() -> None:
    batches: list[list[int]] = []

    async def write(batch: list[int]) -> list[BaseException | None]:
        batches.append(batch)
        return [ConnectionError("lost") if number % 2 else None for number in batch]

    batcher: WriteBatcher[int] = WriteBatcher(write, max_batch=3)
    batcher.add(0)
    batcher.add(1)  # fails with nothing waiting for it: nothing to report as unretrieved
    waited = batcher.submit(2)
    failed = batcher.submit(3)
    batcher.add(4)
    await batcher.flush()
    assert batches == [[0, 1, 2], [3, 4]]  # in order, sharing batches with the submitted items
    assert waited.result() is None
    assert isinstance(failed.exception(), ConnectionError)
