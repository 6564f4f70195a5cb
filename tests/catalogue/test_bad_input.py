"""The catalogue of bad input: one test per mistake a user (or an attacker) can make, and what they get.

Every case gets a clear error at the point of the mistake (or simply works, where that is the better answer), and
nothing else is lost or stalled. Cases whose outcome could depend on where records are stored run on every backend:
memory, SQLite, PostgreSQL, MariaDB, Redis and Valkey. docs/errors.md lists the same errors for users.

Elsewhere, because they need what lives there: the conformance suite's ``UndecodableConformance`` (a stored record
that cannot be decoded, per backend), ``packages/litestar-queues-sqlspec/tests/test_unreachable.py`` (SQL servers
that never answer or refuse), ``tests/plugin/test_cli_commands.py`` (the CLI's own cases) and
``packages/litestar-queues-litestar/tests/test_subscription.py`` (a websocket reader that falls behind).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from litestar_queues import (
    ConfigurationError,
    QueueConfig,
    QueueService,
    RecordNotFoundError,
    RecordStateError,
    SerializationError,
    TaskRecord,
    TaskRegistry,
    TaskStatus,
    Worker,
    WorkerConfig,
    task,
)
from litestar_queues.backend import QueueBackend
from litestar_queues.clock import utc_now
from litestar_queues.events import QueueEvent
from litestar_queues.limits import MAX_NAME_LENGTH, MAX_NESTING
from litestar_queues.records import new_record_id
from litestar_queues.salvage import UNDECODABLE
from litestar_queues.testing.servers import server_url

pytestmark = pytest.mark.anyio

BACKENDS = ("memory", "sqlite", "postgresql", "mariadb", "redis", "valkey")
STORED = BACKENDS[1:]
"""Backends that store records outside the process (and so decode them)."""

FAST = {"poll_interval": 0.05, "heartbeat_interval": 0.1, "stale_threshold": 1.0, "maintenance_interval": 0.1}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- storage per backend -------------------------------------------------------------------------------------------


_PREFIX = f"lqbad{uuid.uuid4().hex[:8]}"
"""This module's key and table prefix on the shared servers (each test also uses queues of its own)."""
_OPENED: dict[str, Any] = {}


def _backend_config(kind: str, folder: Path) -> Any:
    if kind == "memory":
        from litestar_queues.backends.memory import MemoryBackendConfig

        return MemoryBackendConfig()
    if kind in ("redis", "valkey"):
        from litestar_queues.backends.redis import RedisBackendConfig
        from litestar_queues.backends.valkey import ValkeyBackendConfig

        config_class = RedisBackendConfig if kind == "redis" else ValkeyBackendConfig
        return config_class(server_url(f"LQ_{kind.upper()}_URL"), key_prefix=_PREFIX)
    from litestar_queues.backends.sqlspec import SQLSpecBackendConfig

    url = {
        "sqlite": f"sqlite:///{folder / 'jobs.db'}",
        "postgresql": server_url("LQ_POSTGRES_DSN") if kind == "postgresql" else "",
        "mariadb": server_url("LQ_MARIADB_DSN") if kind == "mariadb" else "",
    }[kind]
    return SQLSpecBackendConfig.from_url(url, table_prefix=f"{_PREFIX}_", version_table=f"{_PREFIX}_ddl")


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Any]]:
    """``storage(kind)``: this module's backend configuration of ``kind``; its keys or tables go at the end."""
    folder = tmp_path_factory.mktemp("bad-input")
    configs: dict[str, Any] = {}

    def config_of(kind: str) -> Any:
        if kind not in configs:
            configs[kind] = _backend_config(kind, folder)
        return configs[kind]

    yield config_of
    for kind, config in configs.items():
        if kind in ("redis", "valkey"):
            asyncio.run(_purge(config))
        elif kind in ("postgresql", "mariadb"):
            asyncio.run(_drop_tables(config))


async def _purge(config: Any) -> None:
    async with config.create_backend() as backend:
        await backend.purge()


async def _drop_tables(config: Any) -> None:
    backend = config.create_backend()
    names = backend.names
    try:
        async with backend.sqlspec_config.provide_session() as session:
            for table in (names.tasks_raw, names.workers_raw, names.locks_raw, f"{_PREFIX}_ddl"):
                await session.execute_script(f"DROP TABLE IF EXISTS {names.quote(table)}")
    finally:
        await backend.close()


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry()


@pytest.fixture
def queue() -> str:
    """A queue of this test's own, so workers never take another test's records on a shared server."""
    return f"q-{uuid.uuid4().hex[:10]}"


async def _open_service(
    kind: str, storage: Callable[[str], Any], registry: TaskRegistry, queue: str
) -> AsyncIterator[QueueService]:
    config = QueueConfig(queue_backend=storage(kind), worker=WorkerConfig(queues=(queue,), **FAST))
    async with QueueService(config, registry=registry) as opened:
        try:
            yield opened
        finally:  # leave no due work behind: a later test's worker waits for the storage to be idle
            await opened.cancel_many(queue=queue)


@pytest.fixture(params=BACKENDS)
async def service(
    request: pytest.FixtureRequest, storage: Callable[[str], Any], registry: TaskRegistry, queue: str
) -> AsyncIterator[QueueService]:
    async for opened in _open_service(request.param, storage, registry, queue):
        yield opened


@pytest.fixture(params=STORED)
async def stored_service(
    request: pytest.FixtureRequest, storage: Callable[[str], Any], registry: TaskRegistry, queue: str
) -> AsyncIterator[QueueService]:
    async for opened in _open_service(request.param, storage, registry, queue):
        yield opened


async def _count(service: QueueService, queue: str) -> int:
    return len((await service.list_tasks(queue=queue, limit=100)).records)


# -- task options: one check, the same message everywhere -----------------------------------------------------------

BAD_OPTIONS = [
    ({"priority": "high"}, "option 'priority' must be an integer, got 'high' (str)"),
    ({"priority": 1.5}, "option 'priority' must be an integer, got 1.5 (float)"),
    ({"priority": 2**31}, "option 'priority' must be between -2147483648 and 2147483647, got 2147483648"),
    ({"retries": "3"}, "option 'retries' must be an integer, got '3' (str)"),
    ({"retries": -1}, "option 'retries' must be at least 0, got -1"),
    ({"retries": True}, "option 'retries' must be an integer, got True (bool)"),
    ({"timeout": 0}, "option 'timeout' must be positive, got 0"),
    ({"timeout": -1}, "option 'timeout' must be positive, got -1"),
    ({"timeout": float("nan")}, "option 'timeout' must be a finite number of seconds, got nan"),
    ({"timeout": "10"}, "option 'timeout' must be a number of seconds, got '10' (str)"),
    ({"retry_backoff": float("inf")}, "option 'retry_backoff' must be a finite number of seconds, got inf"),
    ({"delay": -5}, "option 'delay' must be at least 0, got -5"),
    ({"expires_in": 0}, "option 'expires_in' must be positive, got 0"),
    ({"queue": ""}, "option 'queue' must not be empty"),
    ({"queue": 7}, "option 'queue' must be a string, got 7 (int)"),
    ({"key": "a\x00b"}, "option 'key' must not contain NUL characters, got 'a\\x00b'"),
    ({"key": "\ud800"}, "option 'key' must be valid Unicode text (no lone surrogates), got '\\ud800'"),
    ({"key": "k" * (MAX_NAME_LENGTH + 1)}, "option 'key' must be at most 255 characters, got 256"),
    ({"queue": "q" * (MAX_NAME_LENGTH + 1)}, "option 'queue' must be at most 255 characters, got 256"),
    ({"execution_profile": "p\x00"}, "option 'execution_profile' must not contain NUL characters"),
    ({"log_level": "loud"}, "option 'log_level' must be one of ['CRITICAL', 'DEBUG', 'ERROR', 'INFO', 'WARNING']"),
    ({"quiet_success": "yes"}, "option 'quiet_success' must be True or False, got 'yes'"),
    ({"scheduled_at": datetime(2030, 1, 1)}, "option 'scheduled_at' must be a timezone-aware datetime"),
    ({"metadata": {"ratio": float("nan")}}, "option 'metadata' at ['ratio'] is nan, which JSON cannot hold"),
    ({"metadata": {"when": object()}}, "option 'metadata' (dict) cannot be encoded as JSON"),
    ({"metadata": ["not", "a", "dict"]}, "option 'metadata' must be a dict, got ['not', 'a', 'dict']"),
]


@pytest.mark.parametrize(("option", "message"), BAD_OPTIONS, ids=[str(case[0])[:40] for case in BAD_OPTIONS])
async def test_a_bad_option_is_refused_the_same_way_by_task_using_and_enqueue(
    option: dict[str, Any], message: str, registry: TaskRegistry
) -> None:
    expected = f"task 'reports.build': {message}"

    async def build(report_id: int) -> int:
        return report_id

    raised = []
    if option.keys() <= inspect.signature(task).parameters.keys():  # delay, scheduled_at, metadata: per call only
        with pytest.raises(ConfigurationError) as at_decoration:
            task("reports.build", registry=registry, **option)(build)  # type: ignore[call-overload]
        raised.append(at_decoration)
    built = task("reports.build", registry=registry)(build)
    with pytest.raises(ConfigurationError) as at_using:
        built.using(**option)
    async with QueueService(QueueConfig(), registry=registry) as service:
        with pytest.raises(ConfigurationError) as at_enqueue:
            await service.enqueue(built, 1, **option)
        with pytest.raises(ConfigurationError) as by_name:
            await service.enqueue_by_name("reports.build", [1], **option)  # what the CLI calls
        assert await _count(service, "default") == 0
    messages = {str(error.value) for error in (*raised, at_using, at_enqueue, by_name)}
    assert len(messages) == 1, messages
    assert messages.pop().startswith(expected)


async def test_an_unknown_option_name_is_a_type_error(registry: TaskRegistry) -> None:
    @task("reports.build", registry=registry)
    async def build() -> None: ...

    with pytest.raises(TypeError, match=r"task 'reports.build': unknown task option\(s\) \['colour'\]; valid options"):
        build.using(colour="red")


async def test_durations_may_be_timedeltas_and_are_stored_as_seconds(registry: TaskRegistry) -> None:
    @task("reports.build", timeout=timedelta(minutes=2), registry=registry)
    async def build() -> None: ...

    assert build.options.timeout == 120.0
    assert build.using(delay=timedelta(seconds=90), retries=2).options.delay == 90.0


# -- values every backend stores the same way -------------------------------------------------------------------------


async def test_names_at_the_limit_round_trip_on_every_backend(
    service: QueueService, registry: TaskRegistry, queue: str
) -> None:
    long_name = "t" * MAX_NAME_LENGTH
    wide_key = "🙂" * MAX_NAME_LENGTH  # four UTF-8 bytes each: 1020 bytes

    @task(long_name, queue=queue, registry=registry)
    async def long_named() -> None: ...

    outcome = await service.enqueue(long_named.using(key=wide_key))
    stored = await service.get_task(outcome.id)
    assert stored is not None and (stored.task_name, stored.key) == (long_name, wide_key)
    assert (await service.enqueue(long_named.using(key=wide_key))).id == outcome.id, "the key deduplicates"


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (float("nan"), "argument 'value' of task 'calc' is nan, which JSON cannot hold"),
        ([1.0, float("inf")], "argument 'value' of task 'calc' at [1] is inf, which JSON cannot hold"),
        ({"a": {"b": -float("inf")}}, "argument 'value' of task 'calc' at ['a']['b'] is -inf"),
        ([[[]]] * 2 + [json.loads("[" * 70 + "]" * 70)], "argument 'value' of task 'calc' is nested deeper than 64"),
        (json.loads("[" * 900 + "]" * 900), "argument 'value' of task 'calc' is nested deeper than 64 levels"),
    ],
    ids=["nan", "inf-in-list", "minus-inf-in-dict", "nested-70", "nested-900"],
)
async def test_a_value_no_backend_stores_faithfully_is_refused_on_every_backend(
    service: QueueService, registry: TaskRegistry, queue: str, argument: Any, message: str
) -> None:
    @task("calc", queue=queue, registry=registry)
    async def calc(value: Any) -> None: ...

    with pytest.raises(SerializationError) as refused:
        await service.enqueue(calc, value=argument)
    assert message in str(refused.value)
    assert await _count(service, queue) == 0, "nothing was stored"


async def test_nesting_up_to_the_limit_and_big_integers_round_trip_on_every_backend(
    service: QueueService, registry: TaskRegistry, queue: str
) -> None:
    deep = json.loads("[" * MAX_NESTING + "]" * MAX_NESTING)

    @task("calc", queue=queue, registry=registry)
    async def calc(value: Any, big: int) -> None: ...

    outcome = await service.enqueue(calc, deep, 2**70)
    stored = await service.get_task(outcome.id)
    assert stored is not None and stored.args == [deep, 2**70]


async def test_a_result_with_nan_fails_the_attempt_with_a_clear_error_on_every_backend(
    service: QueueService, registry: TaskRegistry, queue: str
) -> None:
    @task("calc", queue=queue, registry=registry)
    async def calc() -> dict[str, float]:
        return {"ratio": float("nan")}

    outcome = await service.enqueue(calc)
    await Worker(service).run_until_idle(timeout=30)
    record = await service.get_task(outcome.id)
    assert record is not None and record.status is TaskStatus.FAILED
    assert record.error is not None and record.error.type == "litestar_queues.errors.SerializationError"
    assert "the return value of task 'calc' at ['ratio'] is nan" in record.error.message


# -- ids -------------------------------------------------------------------------------------------------------------


async def test_ids_are_accepted_as_str_or_uuid_on_every_backend(
    service: QueueService, registry: TaskRegistry, queue: str
) -> None:
    @task("later", queue=queue, registry=registry)
    async def later() -> None: ...

    record_id = uuid.UUID((await service.enqueue(later.using(delay=3600))).id)
    assert (found := await service.get_task(record_id)) is not None and found.id == str(record_id)
    assert (await service.cancel(record_id)).status is TaskStatus.CANCELLED
    assert (await service.retry(record_id)).status is TaskStatus.PENDING


@pytest.mark.parametrize("record_id", ["", "x" * (MAX_NAME_LENGTH + 1), "a\x00b", "\ud800", "no-such-record"])
async def test_an_id_no_record_can_have_is_simply_not_found_on_every_backend(
    service: QueueService, record_id: str
) -> None:
    assert await service.get_task(record_id) is None
    for operation in (service.cancel, service.retry, service.wait_for):
        with pytest.raises(RecordNotFoundError):
            await operation(record_id)


@pytest.mark.parametrize("record_id", [42, b"01a2", None])
async def test_an_id_of_another_type_is_a_type_error(service: QueueService, record_id: Any) -> None:
    for operation in (service.get_task, service.cancel, service.retry, service.wait_for):
        with pytest.raises(TypeError, match="a record id must be a str or uuid.UUID"):
            await operation(record_id)


async def test_retrying_a_record_that_cannot_be_retried_raises_on_every_backend(
    service: QueueService, registry: TaskRegistry, queue: str
) -> None:
    @task("quick", queue=queue, registry=registry)
    async def quick() -> int:
        return 1

    done = await service.enqueue(quick)
    waiting = await service.enqueue(quick.using(delay=3600))
    await Worker(service).run_until_idle(timeout=30)
    for record_id, status in ((done.id, "completed"), (waiting.id, "pending")):
        with pytest.raises(RecordStateError, match=f"cannot retry {record_id}: it is {status}; only failed"):
            await service.retry(record_id)
    assert (await service.get_task(waiting.id)).status is TaskStatus.PENDING  # type: ignore[union-attr]


# -- a record that cannot be decoded, end to end ----------------------------------------------------------------------


async def _corrupt(service: QueueService, record_id: str) -> None:
    """Damage the stored ``args`` of ``record_id`` with the backend's conformance hook."""
    backend: Any = service.backend
    if backend.name in ("redis", "valkey"):
        from litestar_queues.backends.resp.testing import corrupt_args
    else:
        from litestar_queues.backends.sqlspec.testing import corrupt_args
    await corrupt_args(backend, record_id)


async def test_an_undecodable_record_fails_alone_and_can_still_be_found_and_cancelled(
    stored_service: QueueService, registry: TaskRegistry, queue: str
) -> None:
    service = stored_service
    ran: list[int] = []

    @task("work", queue=queue, registry=registry)
    async def work(number: int) -> None:
        ran.append(number)

    batch = [await service.enqueue(work, number) for number in range(3)]
    waiting = await service.enqueue(work.using(delay=3600), 99)
    await _corrupt(service, batch[1].id)
    await _corrupt(service, waiting.id)

    assert await Worker(service).run_until_idle(timeout=30) == 2
    assert sorted(ran) == [0, 2], "the rest of the batch ran"
    broken = await service.get_task(batch[1].id)
    assert broken is not None and broken.status is TaskStatus.FAILED
    assert broken.error is not None and broken.error.type == UNDECODABLE
    assert f"record {batch[1].id} cannot be decoded: stored field 'args'" in broken.error.message

    listed = {record.id: record for record in (await service.list_tasks(queue=queue)).records}
    assert set(listed) == {record.id for record in [*batch, waiting]}
    assert listed[waiting.id].status is TaskStatus.PENDING and listed[waiting.id].error is not None
    with pytest.raises(RecordStateError, match=f"cannot retry: record {batch[1].id} cannot be decoded"):
        await service.retry(batch[1].id)
    assert (await service.cancel(waiting.id)).status is TaskStatus.CANCELLED


async def test_a_result_that_cannot_be_decoded_is_an_error_not_none(
    stored_service: QueueService, registry: TaskRegistry, queue: str
) -> None:
    service = stored_service

    @task("work", queue=queue, registry=registry)
    async def work() -> int:
        return 7

    outcome = await service.enqueue(work)
    await Worker(service).run_until_idle(timeout=30)
    assert await service.result(outcome.id) == 7
    await _corrupt(service, outcome.id)
    with pytest.raises(Exception, match="cannot be decoded: stored field 'args'") as failed:
        await service.result(outcome.id)
    assert type(failed.value).__name__ == "TaskFailedError"


@pytest.mark.parametrize(
    ("field", "value"),
    [("priority", "high"), ("priority", True), ("attempts", 1.5), ("token", "2"), ("status", "done")],
)
async def test_a_redis_enqueue_of_an_invalid_record_writes_nothing(
    storage: Callable[[str], Any], field: str, value: Any
) -> None:
    """Below the core's checks (a third party calling the backend directly): a value a script command would refuse
    fails the whole call before anything is written (a script cannot undo its writes)."""
    for kind in ("redis", "valkey"):
        async with storage(kind).create_backend() as backend:
            now = utc_now()
            good = TaskRecord(id=new_record_id(), task_name="t", queue="bad-enqueue", created_at=now, scheduled_at=now)
            bad = msgspec.structs.replace(good, id=new_record_id(), **{field: value})
            with pytest.raises(SerializationError, match=f"invalid record {bad.id}: {field} cannot be stored"):
                await backend.enqueue([good, bad])
            assert await backend.get(good.id) is None and await backend.get(bad.id) is None
            assert await _keys(backend) == [], "not even the valid record of the call was written"


async def _keys(backend: QueueBackend) -> list[str]:
    client: Any = backend._client  # type: ignore[attr-defined]
    prefix = backend.config.key_prefix  # type: ignore[attr-defined]
    return [key async for key in client.scan_iter(match=f"{prefix}:*bad-enqueue*")]


# -- configuration ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"queues": "default"}, "WorkerConfig.queues must be a tuple of queue names, not a string: use ('default',)"),
        ({"queues": ()}, "WorkerConfig.queues must be a non-empty tuple of queue names (or None), got ()"),
        ({"queues": ("a", "")}, "a queue name in WorkerConfig.queues must not be empty"),
        ({"concurrency": 2.5}, "WorkerConfig.concurrency must be an integer, got 2.5 (float)"),
        ({"concurrency": "5"}, "WorkerConfig.concurrency must be an integer, got '5' (str)"),
        ({"concurrency": 0}, "WorkerConfig.concurrency must be at least 1, got 0"),
        ({"batch_size": None}, "WorkerConfig.batch_size must be an integer, got None (NoneType)"),
        ({"poll_interval": float("nan")}, "WorkerConfig.poll_interval must be a finite number of seconds, got nan"),
        ({"maintenance_interval": float("inf")}, "WorkerConfig.maintenance_interval must be a finite number"),
        ({"stale_threshold": 0}, "WorkerConfig.stale_threshold must be positive, got 0"),
        ({"retention": -1}, "WorkerConfig.retention (None keeps finished records) must be at least 0, got -1"),
        ({"retention": float("inf")}, "WorkerConfig.retention (None keeps finished records) must be a finite"),
        ({"drain_timeout": -1}, "WorkerConfig.drain_timeout must be at least 0, got -1"),
        ({"crash_retries": -1}, "WorkerConfig.crash_retries must be at least 0, got -1"),
        ({"queue_concurrency": {"a": 0}}, "WorkerConfig.queue_concurrency['a'] must be at least 1, got 0"),
        ({"queue_concurrency": [("a", 1)]}, "WorkerConfig.queue_concurrency must be a dict of queue name to cap"),
        ({"worker_id": "w" * 300}, "WorkerConfig.worker_id must be at most 255 characters, got 300"),
        ({"heartbeat_interval": 30, "stale_threshold": 30}, "WorkerConfig.heartbeat_interval (30.0s) must be shorter"),
    ],
)
def test_a_bad_worker_setting_is_refused_when_the_config_is_made(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        WorkerConfig(**settings)
    assert str(refused.value).startswith(message)


def test_worker_queues_given_as_a_list_are_kept_in_order_without_repeats() -> None:
    assert WorkerConfig(queues=["b", "a", "b"]).queues == ("b", "a")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"worker": {"concurrency": 5}}, "QueueConfig.worker must be WorkerConfig(...), got {'concurrency': 5}"),
        ({"event_config": {"enabled": True}}, "QueueConfig.event_config must be QueueEventConfig(...)"),
        ({"task_modules": "app.tasks"}, "QueueConfig.task_modules must be a tuple of module names, not a string"),
        ({"task_modules": ("app", 3)}, "QueueConfig.task_modules must be a tuple of module names, got ('app', 3)"),
        ({"in_app_worker": "no"}, "QueueConfig.in_app_worker must be True or False, got 'no'"),
        ({"queue_backend": "redis://h:notaport/0"}, "'redis://h:notaport/0': the port must be a number"),
        ({"queue_backend": "redis://u:pw@h:1/zero"}, "'redis://u:***@h:1/zero': the database after the host must"),
        ({"queue_backend": "nosuch://x"}, "unknown queue backend 'nosuch://x'; use one of"),
        ({"queue_backend": "postgresql:/x"}, "unknown queue backend 'postgresql:/x'"),
        ({"queue_backend": 42}, "QueueConfig.queue_backend must be a backend name, a URL or a typed backend config"),
        ({"execution_backend": "remote"}, "unknown execution_backend 'remote'; use one of immediate, local"),
        ({"clock": object()}, "QueueConfig.clock must have a now() method"),
    ],
)
def test_a_bad_queue_setting_is_refused_when_the_config_is_made(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        QueueConfig(**settings)
    assert str(refused.value).startswith(message), str(refused.value)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"interval": float("nan")}, "task 'tick': interval must be a finite number of seconds, got nan"),
        ({"interval": float("inf")}, "task 'tick': interval must be a finite number of seconds, got inf"),
        ({"interval": 0}, "task 'tick': interval must be positive, got 0"),
        ({"interval": 60, "jitter": -1}, "task 'tick': jitter must be at least 0, got -1"),
        ({"interval": 60, "max_instances": 1.5}, "task 'tick': max_instances must be an integer, got 1.5"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "task 'tick': unknown timezone 'Mars/Olympus'"),
        ({"cron": "* * * * *", "interval": 60}, "task 'tick': give either cron= or interval=, not both"),
    ],
)
def test_a_bad_schedule_is_refused_at_decoration(
    schedule: dict[str, Any], message: str, registry: TaskRegistry
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        task("tick", registry=registry, **schedule)(lambda: None)  # type: ignore[call-overload]
    assert str(refused.value).startswith(message)


def test_task_names_are_checked(registry: TaskRegistry) -> None:
    for name, message in [("", "task name must not be empty"), ("n" * 256, "task name must be at most 255")]:
        with pytest.raises(ConfigurationError, match=message):
            task(name, registry=registry)(lambda: None)
    with pytest.raises(ConfigurationError, match="task name must be a string, got 42"):
        task(42, registry=registry)(lambda: None)  # type: ignore[call-overload]


# -- task names of different functions ---------------------------------------------------------------------------------


def test_two_lambdas_cannot_share_their_default_name(registry: TaskRegistry) -> None:
    first = task(registry=registry)(lambda: 1)
    with pytest.raises(ConfigurationError) as collided:
        task(registry=registry)(lambda: 2)
    assert f"task name {first.name!r} is used by both" in str(collided.value)
    assert "lambdas and functions defined inside other functions share their default name" in str(collided.value)
    assert registry.get(first.name) is first, "the first one was not replaced"


def test_two_closures_of_one_factory_cannot_share_their_default_name(registry: TaskRegistry) -> None:
    def make(factor: int) -> Any:
        @task(registry=registry)
        async def scale(value: int) -> int:
            return value * factor

        return scale

    first = make(2)
    with pytest.raises(ConfigurationError, match="share their default name"):
        make(3)
    assert registry.get(first.name) is first


def test_a_factory_running_again_may_redefine_a_task_it_names(registry: TaskRegistry) -> None:
    def make() -> Any:
        @task("jobs.scale", registry=registry)
        async def scale(value: int) -> int:
            return value

        return scale

    make()
    second = make()  # e.g. an app factory called once per test
    assert registry.get("jobs.scale") is second


def test_different_functions_cannot_share_a_name(registry: TaskRegistry) -> None:
    task("jobs.same", registry=registry)(lambda: 1)

    async def other() -> None: ...

    with pytest.raises(ConfigurationError, match="give one of them another name"):
        task("jobs.same", registry=registry)(other)


# -- events ------------------------------------------------------------------------------------------------------------


def test_an_event_needs_only_its_type() -> None:
    event = QueueEvent(type="report.ready", task_id="t-1", payload={"pages": 3})
    wire = json.loads(event.to_json())
    assert wire["id"] and wire["occurredAt"].endswith("Z")
    assert abs(event.occurred_at - utc_now()) < timedelta(minutes=1)
    assert QueueEvent(type="x").id != QueueEvent(type="x").id
    with pytest.raises(ValueError, match="occurred_at must be timezone-aware"):
        QueueEvent(type="x", occurred_at=datetime(2030, 1, 1))


@pytest.mark.parametrize("name", ["", "x" * (MAX_NAME_LENGTH + 1), "a\x00b", "\ud800"])
async def test_a_lookup_by_a_name_no_record_can_hold_finds_nothing_on_every_backend(
    service: QueueService, name: str
) -> None:
    assert await service.get_task_by_key(name) is None
    assert (await service.list_tasks(queue=name)).records == []
    assert (await service.list_tasks(task_name=name)).records == []
    assert (await service.list_tasks(cursor=name)).records == []
    assert sum((await service.get_statistics(queue=name)).counts.values()) == 0
    assert await service.cancel_many(queue=name) == 0
