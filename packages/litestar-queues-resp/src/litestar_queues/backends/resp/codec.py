"""How records are laid out in a record hash and a body string, how script replies become records, and how stored
events are keyed.

The state hash holds every field a script reads or changes, each flat (times as integer microseconds since
the epoch), so Lua never parses JSON; ``progress`` is one JSON value that scripts only store and clear. The body
holds the immutable rest as one msgspec-JSON array.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, get_type_hints

import msgspec

from litestar_queues.errors import SerializationError
from litestar_queues.events.envelope import QueueEvent
from litestar_queues.events.history import EventPosition, dump_stored_event, event_cursor
from litestar_queues.flat import from_micros, read_text, to_micros
from litestar_queues.records import TaskError, TaskProgress, TaskRecord, TaskStatus, WorkerInfo
from litestar_queues.salvage import salvage_record

__all__ = (
    "decode_optional_record",
    "decode_record",
    "decode_records",
    "decode_worker",
    "encode_error",
    "encode_event",
    "encode_insert",
    "encode_progress",
    "encode_result",
    "encode_worker",
    "event_position_key",
    "from_micros",
    "position_key_cursor",
    "time_key",
    "optional_text",
    "text",
    "to_micros",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class _Body(msgspec.Struct, array_like=True, frozen=True):
    """The immutable part of a record that scripts never read (append new fields at the end, with defaults)."""

    id: str
    args: list[Any]
    kwargs: dict[str, Any]
    max_retries: int
    retry_delay: float
    timeout: float | None
    created_at: datetime
    execution_backend: str
    execution_profile: str | None
    metadata: dict[str, Any]


_encoder = msgspec.json.Encoder()
_body_decoder = msgspec.json.Decoder(_Body)
_error_decoder = msgspec.json.Decoder(TaskError)
_progress_decoder = msgspec.json.Decoder(TaskProgress)
_any_decoder = msgspec.json.Decoder()
_worker_decoder = msgspec.json.Decoder(WorkerInfo)
_STATUS: dict[str | bytes, TaskStatus] = {s.value: s for s in TaskStatus} | {s.value.encode(): s for s in TaskStatus}
_STATUS_VALUES: dict[str, str] = {status.value: status.value for status in TaskStatus}
"""Each status's value, looked up by the member or by the value (a ``str`` enum member hashes as its value)."""


_moments: dict[str, datetime] = {}
_MOMENT_CACHE_SIZE = 4096


def _moment(value: str | bool | None) -> datetime | None:
    """Decode an optional time field; the records of one reply mostly share them (one claim's ``now``)."""
    if value is None or value is False:
        return None
    moment = _moments.get(value)  # type: ignore[arg-type]
    if moment is None:
        if len(_moments) >= _MOMENT_CACHE_SIZE:
            _moments.clear()
        moment = _moments[value] = from_micros(value)  # type: ignore[index]
    return moment


def _micros_arg(moment: datetime | None) -> str:
    return "" if moment is None else str(to_micros(moment))


def text(value: bytes | str) -> str:
    """Return a reply value as ``str`` whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else value


def optional_text(value: str | None) -> str:
    """Encode an optional string argument: ``""`` for ``None``, else ``"="`` followed by the value."""
    return "" if value is None else "=" + value


def _encode(value: Any, what: str) -> str:
    try:
        return _encoder.encode(value).decode()
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        raise SerializationError(f"cannot encode {what} as JSON: {exc}") from exc


def encode_result(result: Any) -> str:
    """Encode a task result (``""`` for ``None``)."""
    return "" if result is None else _encode(result, "the task result")


def encode_error(error: TaskError | None) -> str:
    """Encode a task error (``""`` for ``None``)."""
    return "" if error is None else _encode(error, "the task error")


def encode_progress(progress: TaskProgress | None) -> str:
    """Encode a record's progress (``""`` for ``None``)."""
    return "" if progress is None else _encode(progress, "the task progress")


def encode_insert(record: TaskRecord) -> list[str]:
    """Return the ``enqueue`` script's values for one record: id, queue, priority, task name, scheduled_at, created_at
    and the body; then, unless the record is a new one (pending, no attempts, token 0, every optional field None),
    status, attempts, token, key, expires_at, started_at, finished_at, lease_expires_at, owner, cancel_requested,
    result, error and progress.

    The values a script command could refuse are checked here (a script cannot undo the writes before a failed
    command), so a record that cannot be stored fails its call before anything is sent.

    Raises:
        SerializationError: the record cannot be stored: its priority, attempts or token is not an integer, its
            status is no status, or a structured field cannot be encoded as JSON.
    """
    priority, attempts, token = record.priority, record.attempts, record.token
    if type(priority) is not int:
        raise _invalid(record, "priority", priority)
    if type(attempts) is not int:
        raise _invalid(record, "attempts", attempts)
    if type(token) is not int:
        raise _invalid(record, "token", token)
    try:
        status = _STATUS_VALUES[record.status]
    except (KeyError, TypeError):
        raise _invalid(record, "status", record.status) from None
    body = _Body(
        id=record.id,
        args=record.args,
        kwargs=record.kwargs,
        max_retries=record.max_retries,
        retry_delay=record.retry_delay,
        timeout=record.timeout,
        created_at=record.created_at,
        execution_backend=record.execution_backend,
        execution_profile=record.execution_profile,
        metadata=record.metadata,
    )
    encoded_body = _encode(body, f"the arguments of {record.task_name!r} (record {record.id})")
    values = [
        record.id,
        record.queue,
        str(priority),
        record.task_name,
        str(to_micros(record.scheduled_at)),
        str(to_micros(record.created_at)),
        encoded_body,
    ]
    if (
        status == "pending"
        and attempts == 0
        and token == 0
        and record.key is None
        and record.expires_at is None
        and record.started_at is None
        and record.finished_at is None
        and record.lease_expires_at is None
        and record.owner is None
        and not record.cancel_requested
        and record.result is None
        and record.error is None
        and record.progress is None
    ):
        return values
    values += (
        status,
        str(attempts),
        str(token),
        optional_text(record.key),
        _micros_arg(record.expires_at),
        _micros_arg(record.started_at),
        _micros_arg(record.finished_at),
        _micros_arg(record.lease_expires_at),
        optional_text(record.owner),
        "1" if record.cancel_requested else "",
        encode_result(record.result),
        encode_error(record.error),
        encode_progress(record.progress),
    )
    return values


def _invalid(record: TaskRecord, field: str, value: Any) -> SerializationError:
    return SerializationError(f"invalid record {record.id}: {field} cannot be stored ({value!r})")


def _absent(value: Any) -> bool:
    return value is None or value is False


def decode_record(row: Sequence[Any]) -> TaskRecord:
    """Build a record from a script's row: the state hash fields (s q p n k x a t sa st fa le o c r e g, as the
    prelude's ``read_record`` reads them), the body, then the id.

    Values are ``str``; a missing one is ``False`` (MessagePack replies) or ``None`` (plain replies). A row that
    cannot be decoded gives the record :func:`~litestar_queues.salvage.salvage_record` makes of it (every
    readable field, and an error naming the others), so one broken record never fails a whole reply.
    """
    try:
        s, q, p, n, k, x, a, t, sa, st, fa, le, o, c, r, e, g, raw_body, _ = row
        body = _body_decoder.decode(raw_body)
        return TaskRecord(
            id=body.id,
            task_name=n,
            queue=q,
            args=body.args,
            kwargs=body.kwargs,
            priority=int(p),
            status=_STATUS[s],
            key=None if _absent(k) else k,
            attempts=int(a),
            max_retries=body.max_retries,
            retry_delay=body.retry_delay,
            timeout=body.timeout,
            created_at=body.created_at,
            scheduled_at=_moment(sa),  # type: ignore[arg-type]
            expires_at=_moment(x),
            started_at=_moment(st),
            finished_at=_moment(fa),
            result=None if _absent(r) else _any_decoder.decode(r),
            error=None if _absent(e) else _error_decoder.decode(e),
            execution_backend=body.execution_backend,
            execution_profile=body.execution_profile,
            metadata=body.metadata,
            owner=None if _absent(o) else o,
            token=int(t),
            lease_expires_at=_moment(le),
            cancel_requested=not _absent(c),
            progress=None if _absent(g) else _progress_decoder.decode(g),
        )
    except Exception:
        return _salvage(row)


def _salvage(row: Sequence[Any]) -> TaskRecord:
    """``decode_record`` field by field, for a row the fast path could not decode."""
    s, q, p, n, k, x, a, t, sa, st, fa, le, o, c, r, e, g, raw_body, record_id = row
    readers: dict[str, Callable[[], Any]] = {
        "task_name": lambda: read_text(n),
        "queue": lambda: read_text(q),
        "priority": lambda: int(p),
        "status": lambda: _STATUS[s],
        "key": lambda: None if _absent(k) else read_text(k),
        "attempts": lambda: int(a),
        "scheduled_at": lambda: _required_moment(sa),
        "expires_at": lambda: _moment(x),
        "started_at": lambda: _moment(st),
        "finished_at": lambda: _moment(fa),
        "result": lambda: None if _absent(r) else _any_decoder.decode(r),
        "error": lambda: None if _absent(e) else _error_decoder.decode(e),
        "owner": lambda: None if _absent(o) else read_text(o),
        "token": lambda: int(t),
        "lease_expires_at": lambda: _moment(le),
        "cancel_requested": lambda: not _absent(c),
        "progress": lambda: None if _absent(g) else _progress_decoder.decode(g),
    }
    try:
        items = _any_decoder.decode(raw_body)
        if type(items) is not list:
            raise TypeError(f"expected a JSON array, got {type(items).__name__}")
    except Exception as exc:
        for name in _BODY_FIELDS[1:]:
            readers[name] = partial(_raise, exc)
    else:
        for position, (name, kind) in enumerate(_BODY_TYPES[1:], start=1):
            readers[name] = partial(_element, items, position, kind)
    return salvage_record(text(record_id), readers)


_BODY_FIELDS = _Body.__struct_fields__
_BODY_TYPES = tuple(zip(_BODY_FIELDS, get_type_hints(_Body).values(), strict=True))


def _required_moment(value: Any) -> datetime:
    if _absent(value):
        raise ValueError("missing")
    return from_micros(value)


def _element(items: list[Any], position: int, kind: Any) -> Any:
    if position >= len(items):
        raise ValueError("missing from the body")
    return msgspec.convert(items[position], kind)


def _raise(error: Exception) -> Any:
    raise error


def decode_optional_record(row: Any) -> TaskRecord | None:
    """Decode a row that may be missing (``None`` or ``False``)."""
    return None if _absent(row) else decode_record(row)


def decode_records(rows: Sequence[Any]) -> list[TaskRecord]:
    """Decode a list of rows, skipping missing ones."""
    return [decode_record(row) for row in rows if not _absent(row)]


def encode_worker(info: WorkerInfo) -> str:
    """Encode a worker registration."""
    return _encode(info, "the worker info")


def decode_worker(raw: bytes | str) -> WorkerInfo:
    """Decode a worker registration."""
    return _worker_decoder.decode(raw)


_TIME_OFFSET = 2**62
"""Added to microseconds since the epoch so that every moment from year 1 to 9999 is a 16-digit hex (no padding)."""
_SEQUENCE_OFFSET = 2**63
"""Added to a sequence so that every signed 64-bit value is a non-negative 16-digit hex."""
_SEQUENCE_KEYS = tuple(f"{sequence + _SEQUENCE_OFFSET:016x}" for sequence in range(1024))
"""The sequence part of a position key for the sequences most events have (formatting is most of a key's cost)."""


def _time_hex(micros: int) -> str:
    return hex(micros + _TIME_OFFSET)[2:]


def _position_key(micros: int, sequence: int, event_id: str) -> str:
    if 0 <= sequence < len(_SEQUENCE_KEYS):
        return _time_hex(micros) + _SEQUENCE_KEYS[sequence] + event_id
    return f"{_time_hex(micros)}{sequence + _SEQUENCE_OFFSET:016x}{event_id}"


def time_key(moment: datetime) -> str:
    """The first 16 hex digits of the position key of every event that occurred at ``moment``."""
    return _time_hex(to_micros(moment))


def event_position_key(position: EventPosition) -> str:
    """An event's position as a string whose byte order is the history order: time, sequence (16 hex digits
    each), then the id."""
    return _position_key(position.micros, position.sequence, position.id)


def position_key_cursor(key: bytes | str) -> str:
    """The cursor naming the position an ``event_position_key`` encodes."""
    value = text(key)
    moment = _EPOCH + timedelta(microseconds=int(value[:16], 16) - _TIME_OFFSET)
    return event_cursor(EventPosition(moment, int(value[16:32], 16) - _SEQUENCE_OFFSET, value[32:]))


def encode_event(event: QueueEvent) -> tuple[str, str, str]:
    """The ``append_events`` script's values for one event: position key (which ends in the id), task id ("" =
    None), and the stored value: type, queue and task id ("" where None) each followed by a NUL, then the event as
    stored (text: the scripts' MessagePack reader knows no binary strings)."""
    task_id = event.task_id or ""
    return (
        _position_key(to_micros(event.occurred_at), event.sequence or 0, event.id),
        task_id,
        f"{event.type}\0{event.queue or ''}\0{task_id}\0{dump_stored_event(event).decode()}",
    )
