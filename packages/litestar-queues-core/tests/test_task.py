"""The @task decorator, per-call options, argument checking and typed decoding."""

from __future__ import annotations

import inspect
import typing
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from litestar_queues import (
    ConfigurationError,
    QueueConfig,
    QueueService,
    SerializationError,
    Task,
    TaskOptions,
    TaskRegistry,
    task,
)
from litestar_queues.cron import CronSyntaxError
from litestar_queues.errors import TaskNotFoundError
from litestar_queues.task import _INJECTED


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


# -- plain-call fast paths of check_call and decode_call, against inspect ---------------------------------------------

Parameter = inspect.Parameter
MOMENT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def inspect_check_call(created: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """``Task.check_call`` without the fast path: ``Signature.bind`` for every call."""
    reserved = _INJECTED.intersection(kwargs)
    if reserved:
        raise TypeError(f"task {created.name!r}: {sorted(reserved)} are injected at run time; do not pass them")
    created._check_bound(args, kwargs)


def inspect_decode_call(
    created: Task[Any, Any], args: list[Any], kwargs: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """``Task.decode_call`` without the fast path: ``Signature.bind_partial`` for every call."""
    hints = typing.get_type_hints(created.fn)
    if not hints or not (args or kwargs):
        return args, kwargs
    try:
        return created._decode_bound(hints, args, kwargs)
    except msgspec.ValidationError as exc:
        raise created._decode_error(exc, hints, args, kwargs) from None


def outcome(call: Any, *arguments: Any) -> Any:
    """What a call did, comparable across implementations: values with their exact types, or the exception."""
    try:
        result = call(*arguments)
    except (TypeError, msgspec.ValidationError) as exc:
        return type(exc), str(exc)
    if result is None:
        return None
    args, kwargs = result
    return [(type(v), v) for v in args], [(k, type(v), v) for k, v in kwargs.items()]


def task_with(parameters: list[Parameter], hints: dict[str, Any]) -> Task[Any, Any]:
    """A task whose function has exactly this signature and these annotations."""

    def fn(*args: Any, **kwargs: Any) -> None: ...

    fn.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    fn.__annotations__ = hints
    return Task(fn, name="shape", options=TaskOptions(), schedule=None)


NAMES = ["a", "b", "c", "d", "_job_id", "_task_context"]
PLAIN_KINDS = [Parameter.POSITIONAL_OR_KEYWORD, Parameter.KEYWORD_ONLY]
OTHER_KINDS = [Parameter.POSITIONAL_ONLY, Parameter.VAR_POSITIONAL, Parameter.VAR_KEYWORD]
ANNOTATIONS = [None, Any, int, str, bool, float, datetime, list[int], Point, int | None]
DEFAULTS = [Parameter.empty, 0]
VALUES = [0, 1, True, False, "x", "1", MOMENT.isoformat(), 1.5, None, [1, 2], {"x": 1, "y": 2}, 2**70]


@st.composite
def calls(draw: st.DrawFn) -> tuple[Task[Any, Any], list[Any], dict[str, Any]]:
    """A task of up to five parameters and a call of it.

    Parameters are mostly positional-or-keyword and keyword-only, some injected; half of the calls are likely to fit,
    the others may pass too many positionals or repeated, unknown or injected keywords.
    """
    kinds = st.sampled_from(PLAIN_KINDS * 8 + OTHER_KINDS)
    drawn = sorted((draw(kinds), name) for name in draw(st.lists(st.sampled_from(NAMES), max_size=5, unique=True)))
    parameters: list[Parameter] = []
    hints: dict[str, Any] = {}
    for kind, name in drawn:
        if kind in {Parameter.VAR_POSITIONAL, Parameter.VAR_KEYWORD}:
            if all(p.kind is not kind for p in parameters):
                parameters.append(Parameter(name, kind))
        else:  # a positional parameter after one with a default needs a default too
            positional = [p for p in parameters if p.kind <= Parameter.POSITIONAL_OR_KEYWORD]
            after_default = kind <= Parameter.POSITIONAL_OR_KEYWORD and any(p.default == 0 for p in positional)
            parameters.append(Parameter(name, kind, default=0 if after_default else draw(st.sampled_from(DEFAULTS))))
        if (annotation := draw(st.sampled_from(ANNOTATIONS))) is not None:
            hints[name] = annotation
    names = [p.name for p in parameters]
    if draw(st.booleans()):  # a call likely to fit: positionals for positional parameters, the rest as keywords
        positional = [p.name for p in parameters if p.kind <= Parameter.POSITIONAL_OR_KEYWORD]
        args = draw(st.lists(st.sampled_from(VALUES), max_size=len(positional)))
        keywords = [name for name in names[len(args) :] if name not in _INJECTED]
        keys = draw(st.permutations(keywords))[: draw(st.integers(0, len(keywords)))]
    else:
        args = draw(st.lists(st.sampled_from(VALUES), max_size=len(names) + 1))
        keys = draw(st.lists(st.sampled_from([*names, "zzz", "_job_id"]), unique=True))
    return task_with(parameters, hints), args, {key: draw(st.sampled_from(VALUES)) for key in keys}


@settings(max_examples=1500, deadline=None, database=None)
@given(call=calls())
def test_check_and_decode_call_match_inspect(call: tuple[Task[Any, Any], list[Any], dict[str, Any]]) -> None:
    created, args, kwargs = call
    assert outcome(created.check_call, tuple(args), kwargs) == outcome(inspect_check_call, created, tuple(args), kwargs)
    assert outcome(created.decode_call, args, kwargs) == outcome(inspect_decode_call, created, args, kwargs)


def test_plain_calls_do_not_use_inspect(registry: TaskRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    @task("plain", registry=registry)
    async def plain(n: int, when: datetime, label: str = "", *, ratio: float = 1.0, _job_id: str = "") -> None: ...

    def unexpected(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a plain call went through inspect")

    monkeypatch.setattr(inspect.Signature, "bind", unexpected)
    monkeypatch.setattr(inspect.Signature, "bind_partial", unexpected)
    plain.check_call((1, MOMENT), {"ratio": 2.0})
    plain.check_call((), {"when": MOMENT, "n": 1})
    iso = MOMENT.isoformat()
    assert outcome(plain.decode_call, [1, iso], {"ratio": 2}) == (
        [(int, 1), (datetime, MOMENT)],
        [("ratio", float, 2.0)],
    )
    # keyword-passed positional-or-keyword parameters join the positional arguments up to the first one missing,
    # and the keywords keep the parameters' order, as BoundArguments.args and .kwargs do
    assert outcome(plain.decode_call, [], {"ratio": 2, "when": iso, "n": 1}) == (
        [(int, 1), (datetime, MOMENT)],
        [("ratio", float, 2.0)],
    )
    assert outcome(plain.decode_call, [], {"ratio": 2, "label": "x", "n": 1}) == (
        [(int, 1)],
        [("label", str, "x"), ("ratio", float, 2.0)],
    )
    with pytest.raises(msgspec.ValidationError, match="Expected `int`, got `bool`"):
        plain.decode_call([True, iso], {})  # an exact str, int or bool skips conversion, a bool for int does not
    assert plain.using(priority=1).decode_call([1, iso], {}) == ([1, MOMENT], {})


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "missing a required argument: 'n'"),
        ((), {"label": "x"}, "missing a required argument: 'n'"),
        ((1, "x", 3), {}, "too many positional arguments"),
        ((1,), {"colour": "red"}, "got an unexpected keyword argument 'colour'"),
        ((1,), {"n": 2}, "multiple values for argument 'n'"),
        ((1,), {"_job_id": "x"}, r"\['_job_id'\] are injected at run time; do not pass them"),
    ],
)
def test_check_call_errors_name_the_task(
    registry: TaskRegistry, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    @task("shaped", registry=registry)
    async def shaped(n: int, label: str = "", *, flag: bool = False, _job_id: str = "") -> None: ...

    with pytest.raises(TypeError, match=rf"^task 'shaped': {message}$"):
        shaped.check_call(args, kwargs)


def test_check_call_keeps_positionals_off_an_injected_parameter(registry: TaskRegistry) -> None:
    @task("injected", registry=registry)
    async def injected(n: int, _job_id: str, label: str = "") -> None: ...

    injected.check_call((1,), {"label": "x"})
    with pytest.raises(TypeError, match=r"^task 'injected': multiple values for argument '_job_id'$"):
        injected.check_call((1, "x"), {})
    with pytest.raises(TypeError, match=r"^task 'injected': missing a required argument: 'n'$"):
        injected.check_call((), {"label": "x"})
