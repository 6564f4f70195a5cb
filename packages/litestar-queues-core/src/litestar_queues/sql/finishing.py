"""What a finish writes into a row, and how terminal finishes of concurrent attempts share one statement.

A SQL backend turns an :class:`~litestar_queues.records.Outcome` into a guarded ``UPDATE`` in its own dialect; what
goes into it is decided here once: which of the statement's shapes applies (terminal or retry, refunding the attempt
or not, only if the lease expired) and the encoded values. Terminal finishes may instead be batched (PostgreSQL
joins their fences as arrays): an :class:`Ending` is one of them, and :func:`finished_records` gives each caller its
record back from the ids the shared statement returned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from litestar_queues.backend import finished_record
from litestar_queues.records import Lease, Outcome, TaskRecord, TaskStatus, as_status
from litestar_queues.sql.rows import encode_json

__all__ = (
    "ENDING_ARRAYS",
    "FINISH_PARAMS",
    "Ending",
    "FinishParams",
    "FinishValues",
    "ending",
    "ending_arrays",
    "finish_params",
    "finish_values",
    "finished_records",
    "lease_arrays",
)


class FinishValues(NamedTuple):
    """The encoded values an outcome writes, and the shape of the statement that writes them."""

    terminal: bool
    """``completed``, ``failed`` or ``cancelled``: sets ``finished_at``, ``result``, frees the key."""
    refund: bool
    """A retry that gives the attempt back (``attempts - 1``, never below zero)."""
    only_if_expired: bool
    """Applies only if the lease expired (``lease_expires_at <= now``)."""
    status: str
    error: str | None
    """The error as JSON text."""
    result: str | None
    """The result as JSON text (terminal outcomes)."""
    scheduled_at: datetime | None
    """When the record is due again (retries)."""

    @property
    def shape(self) -> tuple[bool, bool, bool]:
        """What distinguishes the statements: ``(terminal, refund, only_if_expired)``."""
        return (self.terminal, self.refund, self.only_if_expired)


def finish_values(outcome: Outcome) -> FinishValues:
    """The values ``outcome`` (checked by ``check_outcome``) writes."""
    status = as_status(outcome.status)
    terminal = status is not TaskStatus.PENDING
    return FinishValues(
        terminal=terminal,
        refund=outcome.refund_attempt and not terminal,
        only_if_expired=outcome.only_if_lease_expired,
        status=status.value,
        error=None if outcome.error is None else encode_json(outcome.error),
        result=None if not terminal or outcome.result is None else encode_json(outcome.result),
        scheduled_at=None if terminal else outcome.scheduled_at,
    )


class FinishParams(NamedTuple):
    """The names a backend's finish statement binds its parameters to."""

    id: str
    owner: str
    token: str
    error: str
    status: str
    now: str
    result: str
    scheduled_at: str


FINISH_PARAMS = FinishParams("id", "owner", "token", "error", "status", "now", "result", "scheduled_at")
"""The default names: the columns' own."""


def finish_params(
    values: FinishValues,
    lease: Lease,
    now: datetime,
    time: Callable[[datetime], Any],
    names: FinishParams = FINISH_PARAMS,
) -> dict[str, Any]:
    """The parameters of the statement of ``values.shape`` under ``lease``: the fence (id, owner, token), the error,
    ``now`` (a retry of a record whose cancel was requested ends cancelled at ``now``), and the status and result of
    a terminal finish or the due time of a retry; ``time`` encodes a moment for the database."""
    params: dict[str, Any] = {
        names.id: lease.record_id,
        names.owner: lease.owner,
        names.token: lease.token,
        names.error: values.error,
        names.now: time(now),
    }
    if values.terminal:
        params[names.status] = values.status
        params[names.result] = values.result
    else:
        assert values.scheduled_at is not None  # checked by the backend (check_outcome)
        params[names.scheduled_at] = time(values.scheduled_at)
    return params


class Ending(NamedTuple):
    """A terminal finish that may share a statement with others."""

    record_id: str
    owner: str
    token: int
    status: str
    moment: datetime
    result: str | None
    error: str | None
    finished: TaskRecord | None
    """The finished record when the caller's claimed record gives it (else it is read back)."""


ENDING_ARRAYS = ("ids", "owners", "tokens", "statuses", "moments", "results", "errors")
"""The array parameters of a shared statement, in :class:`Ending` field order."""


def ending(lease: Lease, outcome: Outcome, now: datetime, claimed: TaskRecord | None) -> Ending:
    """The :class:`Ending` of a terminal ``outcome`` under ``lease``."""
    values = finish_values(outcome)
    finished = None if claimed is None else finished_record(claimed, outcome, now)
    return Ending(lease.record_id, lease.owner, lease.token, values.status, now, values.result, values.error, finished)


def lease_arrays(leases: Sequence[Lease]) -> dict[str, list[Any]]:
    """The fences of ``leases`` bound as arrays (``ids``, ``owners``, ``tokens``): a statement that joins them with
    ``unnest`` changes several running rows under their fences at once (renewals, progress)."""
    return {
        "ids": [lease.record_id for lease in leases],
        "owners": [lease.owner for lease in leases],
        "tokens": [lease.token for lease in leases],
    }


def ending_arrays(endings: Sequence[Ending]) -> dict[str, list[Any]]:
    """The shared statement's parameters: one array per field, element ``i`` from ending ``i``."""
    columns = zip(*(item[:7] for item in endings), strict=True)
    return {name: list(values) for name, values in zip(ENDING_ARRAYS, columns, strict=True)}


async def finished_records(
    endings: Sequence[Ending], done: set[str], read: Callable[[list[str]], Awaitable[list[TaskRecord]]]
) -> list[TaskRecord | None]:
    """Each ending's record after the shared statement (``done``: the ids whose fence held), ``None`` where the fence
    failed; ``read`` fetches the records no caller gave."""
    unknown = [item.record_id for item in endings if item.finished is None and item.record_id in done]
    records = {record.id: record for record in await read(unknown)} if unknown else {}
    return [(item.finished or records.get(item.record_id)) if item.record_id in done else None for item in endings]
