"""A task record as flat fields and back, for storage that keeps one plain value per field.

:func:`record_fields` gives one value per :class:`~litestar_queues.records.TaskRecord` field, each text, an
integer, a float or ``None``: times are integer microseconds since the Unix epoch (exact, and their order is the
times' order), the status is its value, ``cancel_requested`` is ``0`` or ``1``, and the structured fields
(``args``, ``kwargs``, ``metadata``, ``result``, ``error``, ``progress``) are msgspec JSON text, so every JSON value
comes back with its type. Any table, hash or document with these columns stores a record exactly;
:func:`record_from_fields` reads it back, and a row that no longer decodes gives the record
:func:`~litestar_queues.salvage.salvage_record` makes of it (every readable field, and an error naming the others)
instead of raising, as the contract asks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec

from litestar_queues.errors import SerializationError
from litestar_queues.records import TaskError, TaskProgress, TaskRecord, as_status
from litestar_queues.salvage import salvage_record

__all__ = (
    "FIELDS",
    "field_readers",
    "from_micros",
    "read_flag",
    "read_integer",
    "read_optional_text",
    "read_text",
    "record_fields",
    "record_from_fields",
    "to_micros",
)

FIELDS: tuple[str, ...] = TaskRecord.__struct_fields__
"""The field names, in :class:`~litestar_queues.records.TaskRecord` order (a column list for a table)."""

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_encode = msgspec.json.Encoder().encode
_decode_any = msgspec.json.Decoder().decode
_decode_list = msgspec.json.Decoder(list[Any]).decode
_decode_dict = msgspec.json.Decoder(dict[str, Any]).decode
_decode_error = msgspec.json.Decoder(TaskError).decode
_decode_progress = msgspec.json.Decoder(TaskProgress).decode


def to_micros(moment: datetime) -> int:
    """Return ``moment`` as integer microseconds since the epoch (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_UTC)
    since = moment - _EPOCH  # exact, unlike timestamp(); its parts are faster than dividing by a timedelta
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def from_micros(value: int | str | bytes) -> datetime:
    """Return the aware UTC datetime of integer microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=int(value))


def read_integer(value: Any) -> int:
    """An integer field's value, refusing anything else (SQLite keeps whatever was stored, whatever the type)."""
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def read_text(value: Any) -> str:
    """A text field's value (``bytes`` decoded as UTF-8), refusing anything else."""
    if type(value) is bytes:
        return value.decode()
    if type(value) is not str:
        raise TypeError(f"expected text, got {value!r}")
    return value


def read_optional_text(value: Any) -> str | None:
    """An optional text field's value."""
    return None if value is None else read_text(value)


def _json(value: Any, what: str) -> str:
    try:
        return _encode(value).decode()
    except (TypeError, ValueError, OverflowError) as error:
        raise SerializationError(f"cannot store the {what} as JSON: {error}") from error


def _optional_micros(moment: datetime | None) -> int | None:
    return None if moment is None else to_micros(moment)


def _read_micros(value: Any) -> datetime:
    return from_micros(read_integer(value))


def read_flag(value: Any) -> bool:
    """A boolean field's value: a boolean, or the integer ``0`` or ``1``; refusing anything else."""
    if type(value) is bool:
        return value
    if type(value) is int and value in {0, 1}:
        return value == 1
    raise TypeError(f"expected a boolean, got {value!r}")


def record_fields(record: TaskRecord) -> dict[str, str | int | float | None]:
    """Return ``record`` as one flat value per field (see the module's docstring), keyed by :data:`FIELDS`.

    Raises:
        SerializationError: A structured field holds something msgspec cannot encode as JSON.
    """
    return {
        "id": record.id,
        "task_name": record.task_name,
        "queue": record.queue,
        "args": _json(record.args, "task arguments"),
        "kwargs": _json(record.kwargs, "task keyword arguments"),
        "priority": record.priority,
        "status": as_status(record.status).value,
        "key": record.key,
        "attempts": record.attempts,
        "max_retries": record.max_retries,
        "retry_delay": float(record.retry_delay),
        "timeout": None if record.timeout is None else float(record.timeout),
        "created_at": to_micros(record.created_at),
        "scheduled_at": to_micros(record.scheduled_at),
        "expires_at": _optional_micros(record.expires_at),
        "started_at": _optional_micros(record.started_at),
        "finished_at": _optional_micros(record.finished_at),
        "result": None if record.result is None else _json(record.result, "task result"),
        "error": None if record.error is None else _json(record.error, "task error"),
        "execution_backend": record.execution_backend,
        "execution_profile": record.execution_profile,
        "metadata": _json(record.metadata, "record metadata"),
        "owner": record.owner,
        "token": record.token,
        "lease_expires_at": _optional_micros(record.lease_expires_at),
        "cancel_requested": 1 if record.cancel_requested else 0,
        "progress": None if record.progress is None else _json(record.progress, "task progress"),
    }


def field_readers(
    fields: Mapping[str, Any], *, read_time: Callable[[Any], datetime] = _read_micros, key_field: str = "key"
) -> dict[str, Callable[[], Any]]:
    """One reader per field but ``id``, each decoding its field of ``fields`` or raising, for
    :func:`~litestar_queues.salvage.salvage_record`. ``read_time`` reads a stored time (integer microseconds by
    default; a SQL family passes its own), and ``key_field`` names the field holding the dedup key."""

    def optional_time(value: Any) -> datetime | None:
        return None if value is None else read_time(value)

    return {
        "task_name": lambda: read_text(fields["task_name"]),
        "queue": lambda: read_text(fields["queue"]),
        "args": lambda: _decode_list(fields["args"]),
        "kwargs": lambda: _decode_dict(fields["kwargs"]),
        "priority": lambda: read_integer(fields["priority"]),
        "status": lambda: as_status(read_text(fields["status"])),
        "key": lambda: read_optional_text(fields[key_field]),
        "attempts": lambda: read_integer(fields["attempts"]),
        "max_retries": lambda: read_integer(fields["max_retries"]),
        "retry_delay": lambda: float(fields["retry_delay"]),
        "timeout": lambda: None if fields["timeout"] is None else float(fields["timeout"]),
        "created_at": lambda: read_time(fields["created_at"]),
        "scheduled_at": lambda: read_time(fields["scheduled_at"]),
        "expires_at": lambda: optional_time(fields["expires_at"]),
        "started_at": lambda: optional_time(fields["started_at"]),
        "finished_at": lambda: optional_time(fields["finished_at"]),
        "result": lambda: None if fields["result"] is None else _decode_any(fields["result"]),
        "error": lambda: None if fields["error"] is None else _decode_error(fields["error"]),
        "execution_backend": lambda: read_text(fields["execution_backend"]),
        "execution_profile": lambda: read_optional_text(fields["execution_profile"]),
        "metadata": lambda: _decode_dict(fields["metadata"]),
        "owner": lambda: read_optional_text(fields["owner"]),
        "token": lambda: read_integer(fields["token"]),
        "lease_expires_at": lambda: optional_time(fields["lease_expires_at"]),
        "cancel_requested": lambda: read_flag(fields["cancel_requested"]),
        "progress": lambda: None if fields["progress"] is None else _decode_progress(fields["progress"]),
    }


def record_from_fields(fields: Mapping[str, Any]) -> TaskRecord:
    """Return the record stored as ``fields`` (as :func:`record_fields` made them; a mapping with every one of
    :data:`FIELDS`, e.g. a database row). A field that does not decode never raises: the record is salvaged
    (:func:`~litestar_queues.salvage.salvage_record`), its ``error`` naming the broken fields."""
    return salvage_record(str(fields["id"]), field_readers(fields))
