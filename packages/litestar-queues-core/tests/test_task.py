"""The @task decorator, per-call options, argument checking and typed decoding."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import msgspec
import pytest

from litestar_queues import ConfigurationError, QueueConfig, QueueService, SerializationError, TaskRegistry, task
from litestar_queues.cron import CronSyntaxError
from litestar_queues.errors import TaskNotFoundError


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry()


class Point(msgspec.Struct):
    x: int
    y: int


@dataclass
class Box:
    label: str


def test_bare_decorator_names_task_after_function(registry: TaskRegistry) -> None:
    async def resize(width: int) -> int:
        return width

    created = task(registry=registry)(resize)
    assert created.name.endswith("test_bare_decorator_names_task_after_function.<locals>.resize")
    assert registry.get(created.name) is created


def test_options_and_using_return_a_configured_copy(registry: TaskRegistry) -> None:
    @task("files.process", queue="files", retries=3, timeout=600, priority=2, registry=registry)
    async def process(file_id: str) -> None: ...

    configured = process.using(key="file:1", priority=10)
    assert (configured.options.key, configured.options.priority, configured.options.queue) == ("file:1", 10, "files")
    assert process.options.key is None  # the original is unchanged
    with pytest.raises(TypeError, match="unknown task option"):
        process.using(colour="red")


def test_duplicate_name_for_another_function_is_rejected(registry: TaskRegistry) -> None:
    @task("dup", registry=registry)
    async def first() -> None: ...

    with pytest.raises(ConfigurationError, match="used by both"):

        @task("dup", registry=registry)
        async def second() -> None: ...


def test_bad_options_fail_at_decoration(registry: TaskRegistry) -> None:
    with pytest.raises(ConfigurationError, match="retries"):
        task("a", retries=-1, registry=registry)(lambda: None)
    with pytest.raises(ConfigurationError, match="either cron= or interval="):
        task("b", cron="* * * * *", interval=5, registry=registry)(lambda: None)
    with pytest.raises(ConfigurationError, match="unknown timezone"):
        task("c", cron="* * * * *", timezone="Mars/Olympus", registry=registry)(lambda: None)
    with pytest.raises(CronSyntaxError):
        task("d", cron="0 0 * * * *", registry=registry)(lambda: None)


def test_unknown_task_name_is_a_clear_error(registry: TaskRegistry) -> None:
    with pytest.raises(TaskNotFoundError, match="task_modules"):
        registry.get("nope")


def test_request_checks_signature_and_separates_options(registry: TaskRegistry) -> None:
    @task("mail.send", registry=registry)
    async def send(to: str, *, queue: str = "inbox", _job_id: str = "") -> None: ...

    service = QueueService(QueueConfig(), registry=registry)
    request = service.request(send, "a@example.com", queue="outbox", priority=5)  # type: ignore[call-arg]
    assert request.kwargs == {"queue": "outbox"}  # the task's own parameter wins
    assert request.options.priority == 5  # not a parameter: an enqueue option
    with pytest.raises(TypeError, match="mail.send"):
        service.request(send)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="injected at run time"):
        service.request(send, "a", _job_id="x")


def test_unencodable_argument_names_the_argument(registry: TaskRegistry) -> None:
    @task("bad.args", registry=registry)
    async def handle(payload: object, other: object = None) -> None: ...

    service = QueueService(QueueConfig(), registry=registry)
    with pytest.raises(SerializationError, match="argument 'other' of task 'bad.args'"):
        service.request(handle, 1, other=object())
    with pytest.raises(TypeError, match="positional argument 0"):
        service.request(handle, {1, object()})


def test_arguments_decode_to_annotated_types(registry: TaskRegistry) -> None:
    @task("typed", registry=registry)
    async def typed(when: datetime, ident: uuid.UUID, point: Point, box: Box, *rest: int) -> Point:
        return point

    service = QueueService(QueueConfig(), registry=registry)
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    ident = uuid.uuid4()
    request = service.request(typed, moment, ident, Point(x=1, y=2), Box("b"), 7, 8)
    assert request.args[:2] == ["2026-01-02T03:04:05Z", str(ident)]  # stored as JSON types
    stored = msgspec.json.decode(msgspec.json.encode(request.args))
    args, _ = typed.decode_call(stored, {})
    assert args == [moment, ident, Point(x=1, y=2), Box("b"), 7, 8]
    assert typed.decode_result({"x": 3, "y": 4}) == Point(x=3, y=4)


def test_task_with_string_task_modules_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="tuple of module names"):
        QueueConfig(task_modules="app.tasks")  # type: ignore[arg-type]
