"""The limits every stored value keeps, checked once in core so that every backend behaves the same.

Backends store names in 255-character columns and keys, cannot store a NUL character in a name, and
write arguments and results as JSON, which has no NaN or Infinity. A value outside these limits is
refused where it is given (``@task``, ``Task.using``, ``enqueue``), with an error naming it, instead of
failing later in one backend's driver or silently changing on the way through another.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from litestar_queues.errors import ConfigurationError, SerializationError
from litestar_queues.records import is_record_id

if TYPE_CHECKING:
    from litestar_queues.events.envelope import QueueEvent

__all__ = (
    "MAX_INT",
    "MAX_NAME_LENGTH",
    "MAX_NESTING",
    "MIN_INT",
    "PLAIN_TYPES",
    "check_arguments",
    "check_event",
    "check_int",
    "check_json_value",
    "check_name",
    "check_seconds",
    "is_storable",
    "stored_record_id",
)

MAX_NAME_LENGTH = 255
"""Most characters of a task name, queue name, dedup key, execution profile or worker id (record ids are UUIDs)."""

MAX_NESTING = 64
"""Most levels of lists and dicts inside one argument, result or metadata value."""

MIN_INT = -(2**31)
MAX_INT = 2**31 - 1
"""Bounds of ``priority`` and ``retries`` (the SQL backends store them as 32-bit integers)."""

_MIN_INT64 = -(2**63)
_MAX_INT64 = 2**63 - 1

PLAIN_TYPES = frozenset({str, int, bool, type(None)})
"""Types of argument values that need no check and no conversion (msgspec stores them as they are)."""


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is a name every backend can store, else raise naming ``what``.

    A name is a non-empty ``str`` of at most :data:`MAX_NAME_LENGTH` characters, without NUL characters or
    lone surrogates (it must encode as UTF-8).

    Raises:
        ConfigurationError: it is not such a name.
    """
    if type(value) is not str:
        raise ConfigurationError(f"{what} must be a string, got {value!r} ({type(value).__name__})")
    if is_storable(value):
        return value
    if not value:
        raise ConfigurationError(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ConfigurationError(
            f"{what} must be at most {MAX_NAME_LENGTH} characters, got {len(value)}: {value[:40]!r}..."
        )
    if "\x00" in value:
        raise ConfigurationError(f"{what} must not contain NUL characters, got {value!r}")
    raise ConfigurationError(f"{what} must be valid Unicode text (no lone surrogates), got {value!r}")


def check_int(value: object, what: str, *, minimum: int = MIN_INT, maximum: int = MAX_INT) -> int:
    """Return ``value`` if it is an ``int`` (not a ``bool``) within ``[minimum, maximum]``, else raise naming ``what``.

    Raises:
        ConfigurationError: it is not such an integer.
    """
    if type(value) is not int:
        raise ConfigurationError(f"{what} must be an integer, got {value!r} ({type(value).__name__})")
    if not minimum <= value <= maximum:
        bounds = f"at least {minimum}" if value < minimum != MIN_INT else f"between {minimum} and {maximum}"
        raise ConfigurationError(f"{what} must be {bounds}, got {value}")
    return value


def check_seconds(value: object, what: str, *, positive: bool = False) -> float:
    """Return ``value`` (a real number of seconds or a ``timedelta``) as a finite float ``>= 0`` (``> 0`` if
    ``positive``), else raise naming ``what``.

    Raises:
        ConfigurationError: it is not a number, not finite, negative, or zero when it must be positive.
    """
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if type(value) is bool or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{what} must be a number of seconds, got {value!r} ({type(value).__name__})")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigurationError(f"{what} must be a finite number of seconds, got {value!r}")
    if number < 0 or (positive and number == 0):
        raise ConfigurationError(f"{what} must be {'positive' if positive else 'at least 0'}, got {value!r}")
    return number


def check_json_value(value: Any, what: str) -> None:
    """Check that ``value`` (msgspec builtins) is stored as it is by every backend.

    Raises:
        SerializationError: it holds NaN or an infinity (JSON has neither: a backend would store ``null``), or it
            nests lists and dicts deeper than :data:`MAX_NESTING` levels. The message names ``what`` and where.
    """
    if type(value) in PLAIN_TYPES:
        return
    problem = _problem(value, 0)
    if problem is None:
        return
    if problem is _TOO_DEEP:
        raise SerializationError(f"{what} is nested deeper than {MAX_NESTING} levels of lists and dicts")
    path, number = problem
    where = f" at {path}" if path else ""
    raise SerializationError(
        f"{what}{where} is {number!r}, which JSON cannot hold: pass None, a string or a finite number instead"
    )


_TOO_DEEP = ("", 0.0)


def check_arguments(task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """:func:`check_json_value` of every encoded argument of a call of ``task_name``, naming the argument.

    Raises:
        SerializationError: an argument holds NaN or an infinity, or nests too deeply.
    """
    for index, value in enumerate(args):
        if type(value) not in PLAIN_TYPES:
            check_json_value(value, f"positional argument {index} of task {task_name!r}")
    for name, value in kwargs.items():
        if type(value) not in PLAIN_TYPES:
            check_json_value(value, f"argument {name!r} of task {task_name!r}")


def _problem(value: Any, depth: int) -> tuple[str, float] | None:
    """Where the first non-finite float is and its value, :data:`_TOO_DEEP`, or ``None`` if nothing is wrong."""
    kind = type(value)
    if kind is float:
        return None if math.isfinite(value) else ("", value)
    if kind is list:
        items: Any = enumerate(value)
    elif kind is dict:
        items = value.items()
    else:
        return None
    if depth == MAX_NESTING:
        return _TOO_DEEP
    for key, item in items:
        if type(item) not in PLAIN_TYPES:
            found = _problem(item, depth + 1)
            if found is _TOO_DEEP:
                return found
            if found is not None:
                return f"[{key!r}]{found[0]}", found[1]
    return None


def check_event(event: QueueEvent) -> None:
    """Check that the event history of every backend can store ``event`` as it is.

    Raises:
        ConfigurationError: its ``id`` or ``type`` is not a name (:func:`check_name`), nor its ``task_id``,
            ``queue`` or ``worker_id`` when set, or its ``sequence`` or ``attempt`` is not a 64-bit integer.
        SerializationError: a number is NaN or infinite, or ``payload`` holds one or nests too deeply.
    """
    # On every event's path: the names and integers every worker event has are checked in one pass first.
    for value in (event.id, event.type, event.task_id, event.queue, event.worker_id):
        if value is not None and not (
            type(value) is str and 0 < len(value) <= MAX_NAME_LENGTH and value.isascii() and "\x00" not in value
        ):
            _check_event_fields(event)  # raises, naming the field, or accepts a non-ASCII name
            break
    for integer in (event.sequence, event.attempt):
        if integer is not None and (type(integer) is not int or not _MIN_INT64 <= integer <= _MAX_INT64):
            _check_event_fields(event)
    for number in (event.progress_current, event.progress_total, event.progress_percent):
        if number is not None and not math.isfinite(number):
            _check_event_fields(event)
    if event.payload is not None:
        check_json_value(event.payload, f"the payload of event {event.type!r}")


def _check_event_fields(event: QueueEvent) -> None:
    """The names, integers and numbers of :func:`check_event`, raising the error that names the first bad one."""
    check_name(event.id, "QueueEvent.id")
    check_name(event.type, "QueueEvent.type")
    for name in ("task_id", "queue", "worker_id"):
        value = getattr(event, name)
        if value is not None:
            check_name(value, f"QueueEvent.{name}")
    for name in ("sequence", "attempt"):
        value = getattr(event, name)
        if value is not None:
            check_int(value, f"QueueEvent.{name}", minimum=_MIN_INT64, maximum=_MAX_INT64)
    for name in ("progress_current", "progress_total", "progress_percent"):
        number = getattr(event, name)
        if number is not None and not math.isfinite(number):
            raise SerializationError(f"QueueEvent.{name} must be a finite number, got {number!r}")


def is_storable(name: str) -> bool:
    """Whether a record can hold ``name`` as its queue, task name or key (see :func:`check_name`).

    Lookups by a name no record can hold find nothing, without asking the backend (where such a name could be an
    error of the driver instead).
    """
    if not name or len(name) > MAX_NAME_LENGTH or "\x00" in name:
        return False
    if not name.isascii():
        try:
            name.encode()
        except UnicodeEncodeError:
            return False
    return True


def stored_record_id(value: object) -> str | None:
    """Return a record id given as ``str`` or ``uuid.UUID`` as the stored string, or ``None`` if no record can have
    it (record ids are UUID strings in canonical form, see :func:`~litestar_queues.records.is_record_id`).

    Raises:
        TypeError: ``value`` is neither a ``str`` nor a ``UUID``.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"a record id must be a str or uuid.UUID, got {value!r} ({type(value).__name__})")
    return value if is_record_id(value) else None
