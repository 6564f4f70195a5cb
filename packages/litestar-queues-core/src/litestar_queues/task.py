"""Tasks: the ``@task`` decorator, per-call options, schedules and the registry."""

from __future__ import annotations

import inspect
import threading
import typing
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from litestar_queues.cron import CronExpression, parse_cron
from litestar_queues.errors import ConfigurationError, SerializationError, TaskNotFoundError
from litestar_queues.limits import check_int, check_json_value, check_name, check_seconds
from litestar_queues.serialization import convert_value, encode_value

if TYPE_CHECKING:
    from litestar_queues.context import TaskDependency

__all__ = (
    "ENQUEUE_OPTION_NAMES",
    "check_dependency_names",
    "Schedule",
    "Task",
    "TaskOptions",
    "TaskRegistry",
    "changed_options",
    "default_registry",
    "task",
)

P = ParamSpec("P")
R = TypeVar("R")

JOB_ID_PARAMETER = "_job_id"
CONTEXT_PARAMETER = "_task_context"
_INJECTED = frozenset({JOB_ID_PARAMETER, CONTEXT_PARAMETER})
_NOTHING: frozenset[str] = frozenset()
_PLAIN_KINDS = frozenset({inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY})


class TaskOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How a task's records are created; set on ``@task`` and overridden per call with ``Task.using``.

    Every way of setting options (``@task``, ``Task.using``, option names passed to ``enqueue``, the CLI) builds
    one of these, and building one checks every option (:meth:`__post_init__`), so a bad value fails where it
    is given, with the same message everywhere. Durations may be given as ``timedelta``.
    """

    queue: str = "default"
    priority: int = 0
    """Higher runs first among due records."""
    retries: int = 0
    """Retries after the first attempt."""
    retry_backoff: float = 1.0
    """Base delay in seconds of the exponential backoff between attempts (``0`` retries at once)."""
    timeout: float | None = None
    """Seconds one attempt may run."""
    execution_backend: str | None = None
    """Where attempts run (``"local"``, ``"immediate"``, ...); ``None`` uses ``QueueConfig.execution_backend``."""
    execution_profile: str | None = None
    key: str | None = None
    """Dedup key: while a record with this key is pending or running, enqueueing another returns it."""
    description: str | None = None
    log_level: str | None = None
    quiet_success: bool = False
    """Log successful runs at DEBUG instead of INFO."""
    delay: float | None = None
    """Seconds from enqueue until the record is due."""
    scheduled_at: datetime | None = None
    """Absolute due time (aware); wins over ``delay``."""
    expires_in: float | None = None
    """Seconds after which a record that has not started becomes ``expired``."""
    requeue_stale: bool = True
    """Requeue the attempt when its worker dies (lease expires); ``False`` fails it instead."""
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    session: Any = None
    """Per call only: the caller's own database session (or connection) whose open transaction the record joins
    (backends declaring ``TRANSACTIONAL_ENQUEUE``). It is written there, never committed by the queue, becomes
    claimable when the caller commits and vanishes with a rollback."""

    def __post_init__(self) -> None:
        """Check every option and store durations as float seconds.

        Raises:
            ConfigurationError: an option has a wrong type or value; the message names it and the value.
        """
        check_name(self.queue, "option 'queue'")
        check_int(self.priority, "option 'priority'")
        check_int(self.retries, "option 'retries'", minimum=0)
        _set_seconds(self, "retry_backoff", positive=False)
        _set_seconds(self, "timeout", positive=True)
        _set_seconds(self, "delay", positive=False)
        _set_seconds(self, "expires_in", positive=True)
        for name in ("execution_backend", "execution_profile", "key"):
            if getattr(self, name) is not None:
                check_name(getattr(self, name), f"option {name!r}")
        if self.description is not None and not isinstance(self.description, str):
            raise ConfigurationError(f"option 'description' must be a string, got {self.description!r}")
        if self.log_level is not None and (
            not isinstance(self.log_level, str) or self.log_level.upper() not in _LOG_LEVELS
        ):
            raise ConfigurationError(
                f"option 'log_level' must be one of {sorted(_LOG_LEVELS)} (any case), got {self.log_level!r}"
            )
        for name in ("quiet_success", "requeue_stale"):
            if type(getattr(self, name)) is not bool:
                raise ConfigurationError(f"option {name!r} must be True or False, got {getattr(self, name)!r}")
        if self.scheduled_at is not None and (
            not isinstance(self.scheduled_at, datetime) or self.scheduled_at.utcoffset() is None
        ):
            raise ConfigurationError(
                f"option 'scheduled_at' must be a timezone-aware datetime, got {self.scheduled_at!r}"
            )
        if not isinstance(self.metadata, dict):
            raise ConfigurationError(f"option 'metadata' must be a dict, got {self.metadata!r}")
        if self.metadata:
            try:
                metadata = encode_value(self.metadata, "option 'metadata'")
                check_json_value(metadata, "option 'metadata'")
            except SerializationError as exc:
                raise ConfigurationError(str(exc)) from None
            msgspec.structs.force_setattr(self, "metadata", metadata)


_LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})


def _set_seconds(options: TaskOptions, name: str, *, positive: bool) -> None:
    value = getattr(options, name)
    if value is not None:
        seconds = check_seconds(value, f"option {name!r}", positive=positive)
        if type(value) is not float:  # an int or a timedelta: stored as float seconds
            msgspec.structs.force_setattr(options, name, seconds)


ENQUEUE_OPTION_NAMES: frozenset[str] = frozenset(TaskOptions.__struct_fields__)
"""Per-call option names, accepted by ``Task.using`` (and by ``QueueService.enqueue`` when not task parameters)."""
_DEFAULT_OPTIONS = TaskOptions()


def changed_options(task_name: str, options: TaskOptions, changes: Mapping[str, Any]) -> TaskOptions:
    """Return ``options`` with ``changes`` applied and checked: how ``@task``, ``Task.using``, enqueue keywords and
    the CLI all set options.

    Raises:
        TypeError: an option name is unknown.
        ConfigurationError: an option value is invalid; the message names the task, the option and the value.
    """
    unknown = changes.keys() - ENQUEUE_OPTION_NAMES
    if unknown:
        valid = ", ".join(sorted(ENQUEUE_OPTION_NAMES))
        raise TypeError(f"task {task_name!r}: unknown task option(s) {sorted(unknown)}; valid options: {valid}")
    try:
        return msgspec.structs.replace(options, **changes)
    except ConfigurationError as exc:
        raise ConfigurationError(f"task {task_name!r}: {exc}") from None


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """A recurring schedule of a task: a cron expression or a fixed interval."""

    cron: str | None = None
    timezone: str = "UTC"
    interval: float | None = None
    """Seconds between the start of one run and the next."""
    initial_delay: float = 0.0
    """Seconds before the first interval run."""
    jitter: float = 0.0
    """Up to this many random seconds are added to each run's due time."""
    max_instances: int = 1
    """At most this many runs of the schedule may execute at once; a run beyond it is skipped."""

    @property
    def signature(self) -> str:
        """A stable text identifying the definition; a change cancels the pending run made by the old one."""
        if self.cron is not None:
            return f"cron={self.cron};tz={self.timezone};jitter={self.jitter:g};max={self.max_instances}"
        return (
            f"interval={self.interval:g};delay={self.initial_delay:g};jitter={self.jitter:g};max={self.max_instances}"
        )

    @property
    def cron_expression(self) -> CronExpression | None:
        """The parsed cron expression (``None`` for interval schedules)."""
        return None if self.cron is None else parse_cron(self.cron)


class _CallShape:
    """A task function's parameters, laid out once so that plain calls are checked and decoded without ``inspect``.

    A call is plain when it maps onto the parameters without surprises: no more positional arguments than
    positional-or-keyword parameters (and none reaching an injected one), every keyword naming a parameter not
    already passed by position. A signature with positional-only or variadic parameters has no plain calls.
    Injected parameters (``_job_id``, ``_task_context``, dependencies) are never passed.
    """

    __slots__ = ("bare", "injected", "keywords", "names", "positional", "required")

    def __init__(self, signature: inspect.Signature, injected: frozenset[str] = _INJECTED) -> None:
        self.injected = injected
        parameters = signature.parameters
        self.names = tuple(parameters)
        """All parameter names in order; the first ``positional`` are positional-or-keyword."""
        kinds = [parameter.kind for parameter in parameters.values()]
        self.positional = kinds.count(inspect.Parameter.POSITIONAL_OR_KEYWORD)
        limit = -1  # the most positional arguments a plain call passes: up to the first injected parameter
        if _PLAIN_KINDS.issuperset(kinds):
            first = (i for i, name in enumerate(self.names[: self.positional]) if name in injected)
            limit = next(first, self.positional)
        required = frozenset(n for n, p in parameters.items() if p.default is p.empty and n not in injected)
        self.keywords = tuple(frozenset(self.names[count:]) for count in range(limit + 1))
        """By the number of positional arguments of a plain call: the names its keywords may take."""
        self.required = tuple(required.difference(self.names[:count]) for count in range(limit + 1))
        """By the number of positional arguments of a plain call: the names it must pass as keywords."""
        self.bare = frozenset(count for count in range(limit + 1) if not self.required[count])
        """The numbers of positional arguments a plain call without keywords may pass (it is then complete)."""

    def is_plain(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
        """Whether the call is plain (``Signature.bind_partial`` would accept it)."""
        return len(args) < len(self.keywords) and kwargs.keys() <= self.keywords[len(args)]

    def is_complete(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
        """Whether a plain call passes every required parameter (so ``Signature.bind`` would accept it too)."""
        return self.required[len(args)] <= kwargs.keys()


class Task(Generic[P, R]):
    """A registered task function with its default options.

    Calling the task calls the function directly (handy in unit tests). Enqueue it with
    ``QueueService.enqueue(task, *args, **kwargs)``; a type checker sees the function's own parameters.
    """

    __slots__ = (
        "_decoders",
        "_factories",
        "_hints",
        "_shape",
        "dependencies",
        "fn",
        "is_async",
        "name",
        "options",
        "schedule",
        "signature",
        "wants_context",
        "wants_job_id",
    )

    def __init__(
        self,
        fn: Callable[P, Awaitable[R]] | Callable[P, R],
        *,
        name: str,
        options: TaskOptions,
        schedule: Schedule | None,
        dependencies: Mapping[str, TaskDependency] | None = None,
    ) -> None:
        self.fn = fn
        self.name = name
        self.options = options
        self.schedule = schedule
        self.dependencies: dict[str, TaskDependency] = dict(dependencies or {})
        """Per-attempt dependencies of this task by parameter name (they win over ``QueueConfig.dependencies``)."""
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = inspect.signature(fn)
        self.wants_job_id = JOB_ID_PARAMETER in self.signature.parameters
        self.wants_context = CONTEXT_PARAMETER in self.signature.parameters
        self._hints: dict[str, Any] | None = None
        self._shape: _CallShape | None = None
        self._decoders: tuple[tuple[str, Any, type | None], ...] | None = None
        self._factories: tuple[Mapping[str, TaskDependency], tuple[tuple[str, TaskDependency], ...]] | None = None

    def __repr__(self) -> str:
        return f"<Task {self.name!r} queue={self.options.queue!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R] | R:
        return self.fn(*args, **kwargs)

    def using(self, **overrides: Any) -> Task[P, R]:
        """Return a copy with per-call options changed, e.g. ``send.using(key=f"user:{id}", priority=10)``.

        Raises:
            TypeError: an option name is unknown.
            ConfigurationError: an option value is invalid (the message names the task, the option and the value).
        """
        options = changed_options(self.name, self.options, overrides)
        clone: Task[P, R] = object.__new__(Task)  # everything but the options is shared: no inspect.signature again
        for slot in Task.__slots__:
            setattr(clone, slot, getattr(self, slot))
        clone.options = options
        return clone

    def check_call(self, args: tuple[Any, ...], kwargs: dict[str, Any], provided: frozenset[str] = _NOTHING) -> None:
        """Check that the call matches the function's signature (injected parameters are filled at run time).

        ``provided`` names the dependencies configured outside the task (``QueueConfig.dependencies``): a parameter
        of that name is injected too.

        Raises:
            TypeError: the arguments do not fit (naming the task), or an injected parameter was passed.
        """
        shape = self._call_shape(provided)
        if not kwargs and len(args) in shape.bare:
            return
        if not shape.injected.isdisjoint(kwargs):
            reserved = sorted(shape.injected.intersection(kwargs))
            raise TypeError(f"task {self.name!r}: {reserved} are injected at run time; do not pass them")
        if not (shape.is_plain(args, kwargs) and shape.is_complete(args, kwargs)):
            self._check_bound(args, kwargs, shape.injected)

    def _check_bound(self, args: tuple[Any, ...], kwargs: dict[str, Any], injected: frozenset[str] = _INJECTED) -> None:
        """``check_call`` of any call, through ``Signature.bind`` (the fast path must agree with it)."""
        filled = {name: None for name in injected if name in self.signature.parameters}
        try:
            self.signature.bind(*args, **kwargs, **filled)
        except TypeError as exc:
            raise TypeError(f"task {self.name!r}: {exc}") from None

    def _call_shape(self, provided: frozenset[str] = _NOTHING) -> _CallShape:
        shape = self._shape
        injected = _INJECTED
        if self.dependencies or provided:
            injected = _INJECTED | frozenset(self.signature.parameters).intersection({*self.dependencies, *provided})
        if shape is None or shape.injected != injected:
            shape = self._shape = _CallShape(self.signature, injected)
        return shape

    def dependency_factories(self, provided: Mapping[str, TaskDependency]) -> tuple[tuple[str, TaskDependency], ...]:
        """The dependencies an attempt opens, by parameter name: the function's parameters that the task's own
        ``dependencies`` or ``provided`` (``QueueConfig.dependencies``) name; the task's own win."""
        cached = self._factories
        if cached is not None and cached[0] is provided:
            return cached[1]
        merged = {**provided, **self.dependencies}
        factories = tuple((name, merged[name]) for name in self.signature.parameters if name in merged)
        self._factories = (provided, factories)
        return factories

    def _type_hints(self) -> dict[str, Any]:
        if self._hints is None:
            try:
                self._hints = typing.get_type_hints(self.fn)
            except Exception:
                self._hints = {}
        return self._hints

    def decode_call(self, args: list[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Convert stored builtin arguments back to the annotated parameter types.

        Raises:
            msgspec.ValidationError: an argument does not convert to its parameter's type; the message names the
                task and the parameter.
        """
        hints = self._type_hints()
        if not hints or not (args or kwargs):
            return args, kwargs
        shape = self._shape or self._call_shape()  # any injected names do: stored calls never hold them
        try:
            if shape.is_plain(args, kwargs):
                return self._decode_plain(shape, hints, args, kwargs)
            return self._decode_bound(hints, args, kwargs)
        except msgspec.ValidationError as exc:
            raise self._decode_error(exc, hints, args, kwargs) from None

    def _decode_error(
        self, exc: msgspec.ValidationError, hints: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> msgspec.ValidationError:
        """``exc`` of ``decode_call`` naming the task and the first argument that does not convert (error path)."""
        shape = self._shape or self._call_shape()
        if shape.is_plain(args, kwargs):
            arguments: dict[str, Any] = {**dict(zip(shape.names, args, strict=False)), **kwargs}
        else:
            arguments = self.signature.bind_partial(*args, **kwargs).arguments
        culprit = ""
        for name, value in arguments.items():
            annotation = hints.get(name)
            if annotation is None or annotation is Any:
                continue
            kind = self.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                values = value
            elif kind is inspect.Parameter.VAR_KEYWORD:
                values = value.values()
            else:
                values = (value,)
            try:
                for item in values:
                    convert_value(item, annotation)
            except msgspec.ValidationError:
                culprit = f"argument {name!r} (expects {_type_name(annotation)}): "
                break
        return msgspec.ValidationError(f"task {self.name!r}: {culprit}{exc}")

    def _decode_bound(
        self, hints: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        """``decode_call`` of any call, through ``Signature.bind_partial`` (the fast path must agree with it)."""
        bound = self.signature.bind_partial(*args, **kwargs)
        for name, value in bound.arguments.items():
            annotation = hints.get(name)
            if annotation is None or annotation is Any:
                continue
            kind = self.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                bound.arguments[name] = tuple(convert_value(item, annotation) for item in value)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                bound.arguments[name] = {key: convert_value(item, annotation) for key, item in value.items()}
            else:
                bound.arguments[name] = convert_value(value, annotation)
        return list(bound.args), dict(bound.kwargs)

    def _decode_plain(
        self, shape: _CallShape, hints: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        """``decode_call`` of a plain call, with the arguments placed where ``BoundArguments`` puts them."""
        if self._decoders is None:
            self._decoders = tuple(_decoder(name, hints.get(name)) for name in shape.names)
        decoders = self._decoders
        decoded = [
            _decode(value, annotation, exact) for value, (_, annotation, exact) in zip(args, decoders, strict=False)
        ]
        decoded_kwargs: dict[str, Any] = {}
        if kwargs:
            for index, (name, annotation, exact) in enumerate(decoders[len(args) :], start=len(args)):
                if name in kwargs:
                    value = _decode(kwargs[name], annotation, exact)
                    if index == len(decoded) < shape.positional:  # like bound.args: every earlier one is positional
                        decoded.append(value)
                    else:
                        decoded_kwargs[name] = value
        return decoded, decoded_kwargs

    def decode_result(self, value: Any) -> Any:
        """Convert a stored result back to the function's annotated return type (as stored when unannotated)."""
        annotation = self._type_hints().get("return")
        if annotation is None or annotation is Any or value is None:
            return value
        return convert_value(value, annotation)


class TaskRegistry:
    """Tasks by name. ``@task`` registers into :data:`default_registry`."""

    __slots__ = ("_lock", "_tasks")

    def __init__(self) -> None:
        self._tasks: dict[str, Task[Any, Any]] = {}
        self._lock = threading.Lock()

    def register(self, task: Task[Any, Any]) -> None:
        """Add a task. A name belongs to one function: registering another function under a taken name raises,
        except a redefinition of the same function (a module reload, or a factory defining it running again),
        which replaces it.

        A lambda or a function defined inside another function is such a redefinition only if it has the same
        code and was named explicitly: under a default name (``module.<locals>.fn``, ``module.<lambda>``) two
        different closures could not be told apart, so the second one raises.

        Raises:
            ConfigurationError: another function already uses the name.
        """
        with self._lock:
            existing = self._tasks.get(task.name)
            if existing is not None and existing.fn is not task.fn and not _redefines(existing, task):
                hint = (
                    "lambdas and functions defined inside other functions share their default name: "
                    "give each one a name with @task('...')"
                    if task.name == _default_name(task.fn)
                    else "give one of them another name"
                )
                raise ConfigurationError(
                    f"task name {task.name!r} is used by both {_describe(existing.fn)} and {_describe(task.fn)}; {hint}"
                )
            self._tasks[task.name] = task

    def get(self, name: str) -> Task[Any, Any]:
        """Return the task registered as ``name``.

        Raises:
            TaskNotFoundError: nothing is registered under that name.
        """
        try:
            return self._tasks[name]
        except KeyError:
            raise TaskNotFoundError(
                f"no task is registered as {name!r}; is the module defining it listed in QueueConfig.task_modules?"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[Task[Any, Any]]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)

    def unregister(self, name: str) -> None:
        """Forget a task (tests)."""
        with self._lock:
            self._tasks.pop(name, None)


default_registry = TaskRegistry()
"""The registry ``@task`` uses unless given another."""


def check_dependency_names(dependencies: Mapping[str, object], where: str) -> None:
    """Refuse dependencies named like the parameters the runner fills itself.

    Raises:
        ConfigurationError: ``dependencies`` is not a mapping of names to callables, or a name is ``_job_id`` or
            ``_task_context``.
    """
    if not isinstance(dependencies, Mapping) or not all(isinstance(name, str) and name for name in dependencies):
        raise ConfigurationError(f"{where}: dependencies must map parameter names to factories, got {dependencies!r}")
    reserved = sorted(_INJECTED.intersection(dependencies))
    if reserved:
        raise ConfigurationError(f"{where}: dependencies may not be named {reserved} (filled by the runner itself)")
    for name, factory in dependencies.items():
        if not callable(factory):
            raise ConfigurationError(
                f"{where}: dependency {name!r} must be a callable taking the TaskExecutionContext and returning an "
                f"async context manager, got {type(factory).__name__}"
            )


def _decoder(name: str, annotation: Any) -> tuple[str, Any, type | None]:
    """How ``_decode`` treats parameter ``name``.

    Its annotation (``None``: the stored value is kept as it is) and the value type that needs no conversion: an
    exact ``str``, ``int`` or ``bool`` annotated as itself. A ``bool`` for ``int`` or an ``int`` for ``float`` is
    still converted.
    """
    if annotation is Any:
        return name, None, None
    return name, annotation, annotation if annotation is str or annotation is int or annotation is bool else None


def _decode(value: Any, annotation: Any, exact: type | None) -> Any:
    return value if annotation is None or type(value) is exact else convert_value(value, annotation)


def _type_name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def _default_name(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _redefines(existing: Task[Any, Any], task: Task[Any, Any]) -> bool:
    """Whether ``task`` is a redefinition of the function ``existing`` registered (see ``TaskRegistry.register``)."""
    qualified = _default_name(task.fn)
    if qualified != _default_name(existing.fn):
        return False
    if "<" not in qualified:  # module level: a reload of the module
        return True
    same_code = getattr(task.fn, "__code__", None) is getattr(existing.fn, "__code__", object())
    return same_code and task.name != qualified


def _describe(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    where = f" ({code.co_filename}:{code.co_firstlineno})" if code is not None else ""
    return f"{_default_name(fn)}{where}"


def _make_schedule(
    name: str,
    *,
    cron: str | None,
    interval: float | timedelta | None,
    timezone: str,
    initial_delay: float | timedelta,
    jitter: float | timedelta,
    max_instances: int,
) -> Schedule | None:
    if cron is None and interval is None:
        return None
    if cron is not None and interval is not None:
        raise ConfigurationError(f"task {name!r}: give either cron= or interval=, not both")
    if cron is not None:
        if not isinstance(cron, str):
            raise ConfigurationError(f"task {name!r}: cron must be a string, got {cron!r}")
        parse_cron(cron)  # a malformed expression fails at import, with CronSyntaxError naming the field
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"task {name!r}: unknown timezone {timezone!r}") from exc
    try:
        return Schedule(
            cron=cron,
            timezone=timezone,
            interval=None if interval is None else check_seconds(interval, "interval", positive=True),
            initial_delay=check_seconds(initial_delay, "initial_delay"),
            jitter=check_seconds(jitter, "jitter"),
            max_instances=check_int(max_instances, "max_instances", minimum=1),
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"task {name!r}: {exc}") from None


class _TaskDecorator(Protocol):
    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]], /) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(fn: Callable[P, Awaitable[R]], /) -> Task[P, R]: ...
@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(
    name: str | None = None,
    /,
    *,
    queue: str = "default",
    priority: int = 0,
    retries: int = 0,
    retry_backoff: float = 1.0,
    timeout: float | timedelta | None = None,
    execution_backend: str | None = None,
    execution_profile: str | None = None,
    key: str | None = None,
    description: str | None = None,
    log_level: str | None = None,
    quiet_success: bool = False,
    expires_in: float | timedelta | None = None,
    requeue_stale: bool = True,
    cron: str | None = None,
    interval: float | timedelta | None = None,
    timezone: str = "UTC",
    initial_delay: float | timedelta = 0.0,
    jitter: float | timedelta = 0.0,
    max_instances: int = 1,
    dependencies: Mapping[str, TaskDependency] | None = None,
    registry: TaskRegistry | None = None,
) -> _TaskDecorator: ...
def task(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    queue: str = "default",
    priority: int = 0,
    retries: int = 0,
    retry_backoff: float = 1.0,
    timeout: float | timedelta | None = None,
    execution_backend: str | None = None,
    execution_profile: str | None = None,
    key: str | None = None,
    description: str | None = None,
    log_level: str | None = None,
    quiet_success: bool = False,
    expires_in: float | timedelta | None = None,
    requeue_stale: bool = True,
    cron: str | None = None,
    interval: float | timedelta | None = None,
    timezone: str = "UTC",
    initial_delay: float | timedelta = 0.0,
    jitter: float | timedelta = 0.0,
    max_instances: int = 1,
    dependencies: Mapping[str, TaskDependency] | None = None,
    registry: TaskRegistry | None = None,
) -> Any:
    """Register a function as a task, bare (``@task``) or with a name and options (``@task("emails.send", retries=3)``).

    The name defaults to ``module.qualname``. Async and sync functions are accepted (sync ones run in a
    thread). A function may declare ``_job_id`` and ``_task_context`` to receive the record id and the
    :class:`~litestar_queues.context.TaskExecutionContext`; they are never stored as arguments. ``dependencies``
    maps parameter names to per-attempt :data:`~litestar_queues.context.TaskDependency` factories (a database
    session, a client): the attempt opens them and passes their values; neither are they stored.

    Raises:
        ConfigurationError: an option is invalid (negative retries, unknown timezone, cron with interval...).
        CronSyntaxError: ``cron`` is malformed.
    """

    def decorate(fn: Callable[..., Any]) -> Task[Any, Any]:
        task_name = _default_name(fn) if name is None or callable(name) else name
        check_name(task_name, "task name")
        check_dependency_names(dependencies or {}, f"task {task_name!r}")
        options = changed_options(
            task_name,
            _DEFAULT_OPTIONS,
            {
                "queue": queue,
                "priority": priority,
                "retries": retries,
                "retry_backoff": retry_backoff,
                "timeout": timeout,
                "execution_backend": execution_backend,
                "execution_profile": execution_profile,
                "key": key,
                "description": description if description is not None else inspect.getdoc(fn),
                "log_level": log_level,
                "quiet_success": quiet_success,
                "expires_in": expires_in,
                "requeue_stale": requeue_stale,
            },
        )
        schedule = _make_schedule(
            task_name,
            cron=cron,
            interval=interval,
            timezone=timezone,
            initial_delay=initial_delay,
            jitter=jitter,
            max_instances=max_instances,
        )
        created: Task[Any, Any] = Task(
            fn, name=task_name, options=options, schedule=schedule, dependencies=dependencies
        )
        (registry if registry is not None else default_registry).register(created)
        return created

    if callable(name):
        return decorate(name)
    return decorate
