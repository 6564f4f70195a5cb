"""QueueService over the memory backend: enqueue, dedup, read, results, control, immediate execution."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import msgspec
import pytest

from litestar_queues import (
    DuplicateTaskError,
    QueueConfig,
    QueueService,
    RecordNotFoundError,
    SerializationError,
    TaskFailedError,
    TaskRegistry,
    TaskStatus,
    Worker,
    task,
)
from litestar_queues.backends.memory import MemoryBackend
from litestar_queues.errors import UnsupportedOperation
from litestar_queues.events import InMemoryQueueEventSink
from litestar_queues.records import TaskRecord, is_record_id, new_record_id

pytestmark = pytest.mark.anyio


class Summary(msgspec.Struct):
    total: int
    names: list[str]


async def test_enqueue_dedup_and_reads(service: QueueService, registry: TaskRegistry) -> None:
    @task("reports.build", queue="reports", registry=registry)
    async def build(report_id: int) -> None: ...

    first = await service.enqueue(build.using(key="report:1"), 1)
    again = await service.enqueue(build.using(key="report:1"), 2)
    assert first.created and not again.created
    assert again.id == first.id and again.status is TaskStatus.PENDING
    assert (await service.get_task(first.id)) == first.record
    assert (await service.get_task_by_key("report:1")) == first.record
    other = await service.enqueue(build, 3)
    page = await service.list_tasks(queue="reports", limit=1)
    assert [r.id for r in page.records] == [other.id]  # newest first
    rest = await service.list_tasks(queue="reports", limit=5, cursor=page.next_cursor)
    assert [r.id for r in rest.records] == [first.id]
    stats = await service.get_statistics(queue="reports")
    assert stats.counts[TaskStatus.PENDING] == 2
    assert stats.oldest_pending_at == first.record.scheduled_at


async def test_enqueue_many_in_order(service: QueueService, registry: TaskRegistry) -> None:
    @task("bulk.item", registry=registry)
    async def item(n: int) -> int:
        return n

    outcomes = await service.enqueue_many([service.request(item, n) for n in range(50)])
    assert [o.record.args for o in outcomes] == [[n] for n in range(50)]
    assert all(o.created for o in outcomes)


async def test_enqueue_many_of_mixed_calls_gives_each_record_its_own_values(
    service: QueueService, registry: TaskRegistry
) -> None:
    """A bulk call mixing plain calls with per-call options, ``using`` variants and another task: records made
    from one call's record (same task and options) must not carry another call's values."""

    @task("bulk.mixed", queue="mixed", description="mixed", registry=registry)
    async def mixed(n: float) -> None: ...

    @task("bulk.other", registry=registry)
    async def other(name: str) -> None: ...

    later = mixed.using(queue="later", delay=60)
    requests = [
        service.request(mixed, 1),
        service.request(mixed, 2, priority=5, key="mixed:2"),
        service.request(later, 3),
        service.request(other, "x"),
        service.request(mixed, 4),
        service.request(later, 5),
        service.request(mixed, 6, key="mixed:2"),  # the second call's key: resolves to it
    ]
    outcomes = await service.enqueue_many(requests)
    records = [outcome.record for outcome in outcomes]
    assert [outcome.created for outcome in outcomes] == [True] * 6 + [False]
    assert records[6].id == records[1].id
    assert [(r.task_name, r.queue, r.args, r.priority, r.key) for r in records[:6]] == [
        ("bulk.mixed", "mixed", [1], 0, None),
        ("bulk.mixed", "mixed", [2], 5, "mixed:2"),
        ("bulk.mixed", "later", [3], 0, None),
        ("bulk.other", "default", ["x"], 0, None),
        ("bulk.mixed", "mixed", [4], 0, None),
        ("bulk.mixed", "later", [5], 0, None),
    ]
    assert len({r.id for r in records[:6]}) == 6
    assert records[2].scheduled_at == records[5].scheduled_at > records[0].scheduled_at == records[4].scheduled_at
    assert records[4].metadata == records[0].metadata == {"description": "mixed"}
    assert records[4].metadata is not records[0].metadata  # each record's own (instrumentation adds to it)
    for record in records[:6]:
        assert await service.get_task(record.id) == record
    with pytest.raises(SerializationError, match="positional argument 0"):  # checked in every call, not the first only
        await service.enqueue_many([service.request(mixed, 1.5), service.request(mixed, float("nan"))])


async def test_unencodable_argument_stores_nothing(service: QueueService, registry: TaskRegistry) -> None:
    @task("bad", registry=registry)
    async def bad(value: object) -> None: ...

    with pytest.raises(SerializationError, match="argument 0|positional argument 0"):
        await service.enqueue(bad, object())
    assert (await service.list_tasks()).records == []


async def test_results_are_typed_and_failures_raise(service: QueueService, registry: TaskRegistry) -> None:
    @task("summarise", registry=registry)
    async def summarise(names: list[str]) -> Summary:
        return Summary(total=len(names), names=sorted(names))

    @task("explode", registry=registry)
    async def explode() -> None:
        raise ValueError("bad input file")

    ok = await service.enqueue(summarise, ["b", "a"])
    boom = await service.enqueue(explode)
    assert await Worker(service).run_until_idle() == 2
    assert await service.result(ok.id, timeout=1) == Summary(total=2, names=["a", "b"])
    with pytest.raises(TaskFailedError, match="builtins.ValueError: bad input file") as info:
        await service.result(boom.id, timeout=1)
    record = info.value.record
    assert record.error is not None and "Traceback" in (record.error.traceback or "")


async def test_wait_for_times_out_and_unknown_ids(service: QueueService, registry: TaskRegistry) -> None:
    @task("idle", registry=registry)
    async def idle() -> None: ...

    outcome = await service.enqueue(idle)
    with pytest.raises(TimeoutError):
        await service.wait_for(outcome.id, timeout=0.05)
    with pytest.raises(RecordNotFoundError):
        await service.wait_for("missing", timeout=0.05)
    with pytest.raises(RecordNotFoundError):
        await service.cancel("missing")


@pytest.mark.parametrize("record_id", ["missing", "0192F3A4-7B1C-7D2E-8F90-A1B2C3D4E5F6", ""])
async def test_a_malformed_record_id_is_not_found_without_asking_the_backend(record_id: str) -> None:
    # Backends may store ids in a native UUID column, which would raise on anything else.
    class UUIDColumnBackend(MemoryBackend):
        async def get(self, record_id: str) -> TaskRecord | None:
            assert is_record_id(record_id), f"the backend was asked for {record_id!r}"
            return await super().get(record_id)

        async def cancel(self, record_id: str, *, now: datetime) -> TaskRecord | None:
            assert is_record_id(record_id), f"the backend was asked to cancel {record_id!r}"
            return await super().cancel(record_id, now=now)

        async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
            assert is_record_id(record_id), f"the backend was asked to requeue {record_id!r}"
            return await super().requeue(record_id, now=now)

    async with QueueService(QueueConfig(queue_backend=UUIDColumnBackend())) as service:
        assert await service.get_task(record_id) is None
        assert await service.get_task(new_record_id()) is None
        for call in (service.wait_for, service.result, service.cancel, service.retry):
            with pytest.raises(RecordNotFoundError, match="record ids are UUID strings"):
                await call(record_id)


async def test_cancel_and_retry(service: QueueService, registry: TaskRegistry) -> None:
    @task("job", registry=registry)
    async def job() -> str:
        return "done"

    outcome = await service.enqueue(job.using(key="only-one"))
    cancelled = await service.cancel(outcome.id)
    assert cancelled.status is TaskStatus.CANCELLED and cancelled.finished_at is not None
    assert (await service.enqueue(job.using(key="only-one"))).created  # the key is free again
    with pytest.raises(DuplicateTaskError):
        await service.retry(outcome.id)  # another active record holds the key now
    await service.cancel_many(task_name="job")
    retried = await service.retry(outcome.id)
    assert retried.status is TaskStatus.PENDING and retried.attempts == 0
    await Worker(service).run_until_idle()
    assert await service.result(outcome.id) == "done"


async def test_cancel_many_by_filter(service: QueueService, registry: TaskRegistry) -> None:
    @task("sweep", registry=registry)
    async def sweep(n: int) -> None: ...

    await service.enqueue_many([service.request(sweep, n) for n in range(7)])
    assert await service.cancel_many(task_name="sweep") == 7
    assert (await service.get_statistics()).counts[TaskStatus.CANCELLED] == 7


async def test_immediate_runs_inline_through_the_same_path(
    registry: TaskRegistry, make_config: Callable[..., QueueConfig], sink: InMemoryQueueEventSink
) -> None:
    calls: list[int] = []

    @task("inline", retries=2, retry_backoff=0, registry=registry)
    async def inline(n: int, _job_id: str = "") -> dict[str, object]:
        calls.append(n)
        if len(calls) < 2:
            raise RuntimeError("flaky")
        return {"n": n, "job": _job_id}

    async with QueueService(make_config(execution_backend="immediate"), registry=registry) as service:
        outcome = await service.enqueue(inline, 5)
    assert outcome.status is TaskStatus.COMPLETED and outcome.record.attempts == 2
    assert outcome.record.result == {"n": 5, "job": outcome.id}
    assert [e.type for e in sink.events] == ["task.started", "task.retrying", "task.started", "task.completed"]
    assert all(e.worker_id is None for e in sink.events)  # not worker-driven


async def test_a_backend_without_transactions_refuses_a_session(service: QueueService, registry: TaskRegistry) -> None:
    @task("needs.transaction", registry=registry)
    async def work() -> None:
        pass

    with pytest.raises(UnsupportedOperation, match="cannot enqueue inside the caller's transaction"):
        await service.enqueue(work.using(session=object()))
    with pytest.raises(UnsupportedOperation):
        await service.enqueue_many([service.request(work)], session=object())
    assert (await service.list_tasks()).records == [], "nothing was stored"


async def _stuck() -> None:
    """A call on a connection stuck half-open, under a client that swallows a cancel racing its reply."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await asyncio.Event().wait()  # swallowed: only a second cancel ends it


class StuckWakeups(MemoryBackend):
    """A backend whose finish wakeup never comes back."""

    async def wait_for_finish(self, record_id: str, *, timeout: float) -> None:
        await _stuck()


@pytest.mark.parametrize("stuck", ["wakeup", "read"])
async def test_a_wait_with_a_timeout_returns_on_time_whatever_the_backend_does(
    registry: TaskRegistry, make_config: Callable[..., QueueConfig], stuck: str
) -> None:
    @task("never.runs", registry=registry)
    async def never_runs() -> None: ...

    backend = StuckWakeups()
    async with QueueService(make_config(queue_backend=backend), registry=registry) as service:
        outcome = await service.enqueue(never_runs)
        if stuck == "read":
            backend.get = lambda record_id: _stuck()  # type: ignore[assignment,method-assign,return-value]
        loop = asyncio.get_running_loop()
        started = loop.time()
        waiting = asyncio.ensure_future(service.wait_for(outcome.id, timeout=0.3))
        done, _ = await asyncio.wait((waiting,), timeout=10)  # never awaits a hung wait: the test fails instead
        if waiting not in done:
            for _ in range(3):  # end it, so that the failure does not hang the test's teardown too
                waiting.cancel()
                await asyncio.sleep(0)
            pytest.fail("wait_for(timeout=0.3) still waiting after 10s")
        with pytest.raises(TimeoutError):
            waiting.result()
        assert loop.time() - started < 5


class FlakyOpen(MemoryBackend):
    """A backend whose server answers from the third try on."""

    tries = 0

    async def open(self) -> None:
        FlakyOpen.tries += 1
        if FlakyOpen.tries < 3:
            raise ConnectionError("connection refused")
        await super().open()


async def test_open_waits_for_an_unreachable_backend_only_when_asked(
    registry: TaskRegistry, make_config: Callable[..., QueueConfig], caplog: pytest.LogCaptureFixture
) -> None:
    FlakyOpen.tries = 0
    with pytest.raises(ConnectionError):
        await QueueService(make_config(queue_backend=FlakyOpen()), registry=registry).open()
    service = QueueService(make_config(queue_backend=FlakyOpen()), registry=registry)
    await service.open(wait_for_backend=True)
    try:
        assert FlakyOpen.tries == 3 and service.backend is not None
    finally:
        await service.close()
    assert "cannot be opened (ConnectionError: connection refused); trying again" in caplog.text
    assert "is reachable after" in caplog.text
