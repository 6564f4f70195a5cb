"""The table row of a :class:`~litestar_queues.records.TaskRecord`, shared by the SQL backends.

Every SQL backend stores the same columns (:data:`TASK_COLUMNS`) the same way, so their tables stay alike.
Structured fields (``args``, ``kwargs``, ``result``, ``error``, ``metadata``) are stored as msgspec JSON text on
every database, so a row reads the same whatever the driver's JSON codecs are. Times and flags differ per family
(see :class:`ValueCodec`); everything else is stored as is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import msgspec

from litestar_queues.errors import ConfigurationError, SerializationError
from litestar_queues.flat import field_readers, from_micros, read_integer, to_micros
from litestar_queues.records import ACTIVE_STATUSES, TaskError, TaskProgress, TaskRecord, WorkerInfo, as_status
from litestar_queues.salvage import salvage_record

__all__ = (
    "SQLITE_MIN_VERSION",
    "TASK_COLUMNS",
    "PER_ROW_COLUMNS",
    "SHARED_COLUMNS",
    "DEFAULTED_COLUMNS",
    "MySQLValueCodec",
    "PostgresValueCodec",
    "SQLiteValueCodec",
    "ValueCodec",
    "check_sqlite_version",
    "decode_task",
    "decode_worker",
    "encode_json",
    "encode_json_rows",
    "encode_shared_rows",
    "encode_task",
    "encode_worker",
)

TASK_COLUMNS: tuple[str, ...] = (
    "id",
    "task_name",
    "queue",
    "args",
    "kwargs",
    "priority",
    "status",
    "dedup_key",
    "active_key",
    "attempts",
    "max_retries",
    "retry_delay",
    "timeout",
    "created_at",
    "scheduled_at",
    "expires_at",
    "started_at",
    "finished_at",
    "result",
    "error",
    "execution_backend",
    "execution_profile",
    "metadata",
    "owner",
    "token",
    "lease_expires_at",
    "cancel_requested",
    "progress",
)
"""Columns of the tasks table in insert order (``progress`` last: it came later, with SQLSpec's migration 0006).
``dedup_key`` is the record's ``key``; ``active_key`` repeats it while the record is active and is ``NULL`` otherwise
(the unique index enforcing dedup)."""

_UTC = timezone.utc
_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode
_args_decode = msgspec.json.Decoder(list[Any]).decode
_kwargs_decode = msgspec.json.Decoder(dict[str, Any]).decode
_error_decode = msgspec.json.Decoder(TaskError).decode
_worker_decode = msgspec.json.Decoder(WorkerInfo).decode
_progress_decode = msgspec.json.Decoder(TaskProgress).decode


class ValueCodec:
    """How one SQL family stores times and booleans. The base class passes values through (PostgreSQL)."""

    __slots__ = ()

    def time(self, value: datetime) -> Any:
        """Return the database value of an aware datetime."""
        return value

    def optional_time(self, value: datetime | None) -> Any:
        """Return the database value of an optional aware datetime."""
        return None if value is None else self.time(value)

    def read_time(self, value: Any) -> datetime:
        """Return the aware UTC datetime of a stored time."""
        moment: datetime = value
        return moment if moment.tzinfo is _UTC else moment.astimezone(_UTC)

    def read_optional_time(self, value: Any) -> datetime | None:
        """Return the aware UTC datetime of a stored time, or ``None``."""
        return None if value is None else self.read_time(value)

    def flag(self, value: bool) -> Any:
        """Return the database value of a boolean."""
        return value


class PostgresValueCodec(ValueCodec):
    """``timestamptz`` and ``boolean``: the drivers convert both natively."""

    __slots__ = ()


class MySQLValueCodec(ValueCodec):
    """``DATETIME(6)`` holding naive UTC (independent of the session time zone) and ``TINYINT(1)``."""

    __slots__ = ()

    def time(self, value: datetime) -> Any:
        """Return naive UTC."""
        return value.astimezone(_UTC).replace(tzinfo=None)

    def read_time(self, value: Any) -> datetime:
        """Attach UTC to the stored naive value."""
        moment: datetime = value
        return moment.replace(tzinfo=_UTC)

    def flag(self, value: bool) -> Any:
        """Return ``1`` or ``0``."""
        return 1 if value else 0


class SQLiteValueCodec(ValueCodec):
    """``INTEGER`` microseconds since the Unix epoch (exact, sortable, no sqlite3 adapters) and ``INTEGER`` flags."""

    __slots__ = ()

    def time(self, value: datetime) -> Any:
        """Return whole microseconds since the epoch."""
        return to_micros(value)

    def read_time(self, value: Any) -> datetime:
        """Return the aware datetime of a microsecond count."""
        return from_micros(value)

    def flag(self, value: bool) -> Any:
        """Return ``1`` or ``0``."""
        return 1 if value else 0


SQLITE_MIN_VERSION = (3, 35, 0)
"""The oldest SQLite with ``RETURNING``."""


def check_sqlite_version(backend: str) -> None:
    """Require SQLite 3.35+ (``RETURNING``) from the library this Python links.

    Raises:
        ConfigurationError: The Python build links an older SQLite library.
    """
    if sqlite3.sqlite_version_info < SQLITE_MIN_VERSION:
        msg = f"the {backend} needs SQLite 3.35+ (RETURNING); this Python links {sqlite3.sqlite_version}"
        raise ConfigurationError(msg)


def encode_json(value: Any) -> str:
    """Return ``value`` as JSON text.

    Raises:
        SerializationError: ``value`` holds something msgspec cannot encode as JSON.
    """
    try:
        return _json_encode(value).decode()
    except (TypeError, ValueError, OverflowError) as error:
        msg = f"cannot store {type(value).__name__} value as JSON: {error}"
        raise SerializationError(msg) from error


def encode_task(record: TaskRecord, codec: ValueCodec) -> tuple[Any, ...]:
    """Return the row of ``record`` in :data:`TASK_COLUMNS` order."""
    status = as_status(record.status)
    key = record.key
    return (
        record.id,
        record.task_name,
        record.queue,
        encode_json(record.args),
        encode_json(record.kwargs),
        record.priority,
        status.value,
        key,
        key if status in ACTIVE_STATUSES else None,
        record.attempts,
        record.max_retries,
        float(record.retry_delay),
        None if record.timeout is None else float(record.timeout),
        codec.time(record.created_at),
        codec.time(record.scheduled_at),
        codec.optional_time(record.expires_at),
        codec.optional_time(record.started_at),
        codec.optional_time(record.finished_at),
        None if record.result is None else encode_json(record.result),
        None if record.error is None else encode_json(record.error),
        record.execution_backend,
        record.execution_profile,
        encode_json(record.metadata),
        record.owner,
        record.token,
        codec.optional_time(record.lease_expires_at),
        codec.flag(record.cancel_requested),
        None if record.progress is None else encode_json(record.progress),
    )


_JsonRow = msgspec.defstruct("_JsonRow", [(column, Any, None) for column in TASK_COLUMNS], omit_defaults=True, gc=False)
"""A task row as one JSON object, the shape PostgreSQL's ``json_to_recordset`` reads; a missing key is a NULL column,
so NULLs are left out (a new record has a dozen). The structured columns travel as strings holding their JSON text:
PostgreSQL's JSON functions refuse a NUL character (``\\u0000``) that would become text, and task arguments may
hold one. Untracked by the garbage collector (its values are strings, numbers and None): a bulk enqueue builds
thousands at once, and tracked ones would count toward the collector's thresholds and be walked by it."""


def encode_json_rows(records: Sequence[TaskRecord], codec: ValueCodec) -> str:
    """Return the rows of ``records`` as one JSON array text (see ``_JsonRow``): a bulk insert's single parameter,
    far cheaper for a driver to send than one array per column."""
    return encode_json([_JsonRow(*encode_task(record, codec)) for record in records])


PER_ROW_COLUMNS: tuple[str, ...] = ("id", "args", "kwargs", "priority", "dedup_key", "active_key", "scheduled_at")
"""The columns a bulk insert of records that share everything else sends once per row (see
:func:`encode_shared_rows`): what differs between the calls of one task with per-call options."""
DEFAULTED_COLUMNS: tuple[str, ...] = ("priority", "scheduled_at")
"""Per-row columns also sent once per statement: a row leaves them out (NULL) when it has the first row's value,
and the statement takes the shared one (``coalesce``; neither column is ever NULL)."""
SHARED_COLUMNS: tuple[str, ...] = tuple(
    column for column in TASK_COLUMNS if column not in PER_ROW_COLUMNS or column in DEFAULTED_COLUMNS
)
"""The columns sent once per statement by :func:`encode_shared_rows`."""

_SharedRow = msgspec.defstruct(
    "_SharedRow", [(column, Any, None) for column in PER_ROW_COLUMNS], omit_defaults=True, gc=False
)
"""The per-row columns of a task row as one JSON object (as ``_JsonRow``: NULLs left out, JSON columns as text)."""


def encode_shared_rows(records: Sequence[TaskRecord], codec: ValueCodec) -> tuple[str, str] | None:
    """Return the :data:`SHARED_COLUMNS` of ``records`` as one JSON object text and their :data:`PER_ROW_COLUMNS`
    as one JSON array text (objects as in :func:`encode_json_rows`), or ``None`` when the records differ in a shared
    column. A bulk call of one task differs only in its per-row columns, and encoding the rest once per statement
    instead of once per row halves the client's work."""
    first = records[0]
    replace = msgspec.structs.replace
    # A record shares the first one's columns when it equals the first once its per-row fields are the first's
    # (one copy and one comparison in C: far cheaper than reading the 21 other fields of each record).
    row_id, args, kwargs, priority, key, scheduled_at = (
        first.id,
        first.args,
        first.kwargs,
        first.priority,
        first.key,
        first.scheduled_at,
    )
    for record in records:
        if (
            replace(record, id=row_id, args=args, kwargs=kwargs, priority=priority, key=key, scheduled_at=scheduled_at)
            != first
        ):
            return None
    row = encode_task(first, codec)
    columns = {column: value for column, value in zip(TASK_COLUMNS, row, strict=True) if value is not None}
    active = as_status(first.status) in ACTIVE_STATUSES
    time = codec.time
    encode = _json_encode
    try:
        rows = [
            _SharedRow(
                record.id,
                encode(record.args).decode(),
                encode(record.kwargs).decode() if record.kwargs else "{}",
                None if record.priority == priority else record.priority,
                record.key,
                record.key if active else None,
                None if record.scheduled_at == scheduled_at else time(record.scheduled_at),
            )
            for record in records
        ]
    except (TypeError, ValueError, OverflowError) as error:
        msg = f"cannot store the arguments of a task as JSON: {error}"
        raise SerializationError(msg) from error
    return encode_json({column: columns[column] for column in SHARED_COLUMNS if column in columns}), encode_json(rows)


def decode_task(row: Mapping[str, Any], codec: ValueCodec) -> TaskRecord:
    """Return the record stored in ``row`` (a mapping with at least the :data:`TASK_COLUMNS` but ``active_key``).

    A row that cannot be decoded gives the record :func:`~litestar_queues.salvage.salvage_record` makes of it
    (every readable column, and an error naming the others), so one broken row never fails a whole statement.
    """
    try:
        result = row["result"]
        error = row["error"]
        timeout = row["timeout"]
        progress = row["progress"]
        read_time = codec.read_time
        read_optional_time = codec.read_optional_time
        return TaskRecord(
            id=row["id"],
            task_name=row["task_name"],
            queue=row["queue"],
            args=_args_decode(row["args"]),
            kwargs=_kwargs_decode(row["kwargs"]),
            priority=read_integer(row["priority"]),
            status=as_status(row["status"]),
            key=row["dedup_key"],
            attempts=read_integer(row["attempts"]),
            max_retries=read_integer(row["max_retries"]),
            retry_delay=float(row["retry_delay"]),
            timeout=None if timeout is None else float(timeout),
            created_at=read_time(row["created_at"]),
            scheduled_at=read_time(row["scheduled_at"]),
            expires_at=read_optional_time(row["expires_at"]),
            started_at=read_optional_time(row["started_at"]),
            finished_at=read_optional_time(row["finished_at"]),
            result=None if result is None else _json_decode(result),
            error=None if error is None else _error_decode(error),
            execution_backend=row["execution_backend"],
            execution_profile=row["execution_profile"],
            metadata=_kwargs_decode(row["metadata"]),
            owner=row["owner"],
            token=read_integer(row["token"]),
            lease_expires_at=read_optional_time(row["lease_expires_at"]),
            cancel_requested=bool(row["cancel_requested"]),
            progress=None if progress is None else _progress_decode(progress),
        )
    except Exception:
        return _salvage(row, codec)


def _salvage(row: Mapping[str, Any], codec: ValueCodec) -> TaskRecord:
    """``decode_task`` column by column, for a row the fast path could not decode."""
    return salvage_record(str(row["id"]), field_readers(row, read_time=codec.read_time, key_field="dedup_key"))


def encode_worker(info: WorkerInfo) -> str:
    """Return ``info`` as JSON text."""
    return encode_json(info)


def decode_worker(text: str) -> WorkerInfo:
    """Return the worker stored as JSON ``text``."""
    return _worker_decode(text)
