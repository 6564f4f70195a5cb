"""The Redis-protocol queue backend: every contract method as one Lua script call (see ``lua/``).

Subclasses (``RedisBackend``, ``ValkeyBackend``) only create the client and name its exception classes.
Key layout: ``docs/redis.md``; the scripts carry the details. On a cluster, a prefix with the per-queue layout routes
its calls through ``slots.QueueSlots`` (one hash slot per queue).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, cast

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.backends.resp.batching import GroupCommit
from litestar_queues.backends.resp.client import (
    RespClient,
    RespClusterClient,
    RespErrorTypes,
    RespPubSub,
    RespServerClient,
)
from litestar_queues.backends.resp.codec import (
    decode_optional_record,
    decode_record,
    decode_records,
    decode_worker,
    encode_error,
    encode_event,
    encode_insert,
    encode_progress,
    encode_result,
    encode_worker,
    event_position_key,
    from_micros,
    optional_text,
    position_key_cursor,
    text,
    time_key,
    to_micros,
)
from litestar_queues.backends.resp.config import RespBackendConfig, describe_server, hash_tagged
from litestar_queues.backends.resp.connection import ConnectionMonitor, RespConnectionError
from litestar_queues.backends.resp.scripts import Script, ScriptRunner
from litestar_queues.backends.resp.slots import QueueSlots, glob_escaped
from litestar_queues.backends.resp.wakeups import Wakeups
from litestar_queues.events.envelope import QueueEvent
from litestar_queues.events.history import (
    HISTORY_SCAN_WINDOW,
    EventFilter,
    EventPage,
    load_stored_events,
    parse_event_cursor,
)
from litestar_queues.records import (
    TERMINAL_STATUSES,
    EnqueueOutcome,
    Lease,
    LeaseState,
    Outcome,
    QueueStatistics,
    RecordFilter,
    RecordPage,
    TaskProgress,
    TaskRecord,
    TaskStatus,
    WorkerInfo,
)
from litestar_queues.salvage import isolate_undecodable, isolate_undecodable_record
from litestar_queues.semantics import check_outcome, queue_statistics, requeue_refused

__all__ = ("RespBackend",)

_MICROS = 1_000_000
_LEASE_STATES = {"h": LeaseState.HELD, "c": LeaseState.CANCEL_REQUESTED, "l": LeaseState.LOST}
_TERMINAL_VALUES = frozenset(status.value for status in TERMINAL_STATUSES)
_FINISH_BATCH = 200
_ENQUEUE_CALLS_BATCH = 100
_WORKER_GRACE = timedelta(days=1)
"""How long after its deadline a dead worker's registration is deleted."""


def _seconds(value: float) -> int:
    return round(value * _MICROS)


def _event_bounds(where: EventFilter, cursor: str | None, *, newest_first: bool) -> tuple[str, str]:
    """The ``ZRANGEBYLEX`` bounds of the position keys a query reads: its time range, narrowed by its cursor."""
    low = "-" if where.since is None else "[" + time_key(where.since)
    high = "+" if where.before is None else "(" + time_key(where.before)
    if cursor is not None:
        key = event_position_key(parse_event_cursor(cursor))
        if newest_first and (high == "+" or key < high[1:]):
            high = "(" + key
        elif not newest_first and (low == "-" or key >= low[1:]):
            low = "(" + key
    return low, high


def _event_values(events: Sequence[QueueEvent]) -> list[str]:
    """The ``append_events`` script's values of ``events``, one after the other."""
    return [value for event in events for value in encode_event(event)]


def _progress_rows(updates: Sequence[tuple[Lease, TaskProgress]]) -> list[list[str]]:
    """The scripts' progress updates: id, owner, token, progress JSON."""
    return [[lease.record_id, lease.owner, str(lease.token), encode_progress(progress)] for lease, progress in updates]


def _decodes_responses(client: object) -> bool:
    """Whether the client turns replies into ``str`` (then scripts cannot answer in binary MessagePack)."""
    get_encoder = getattr(client, "get_encoder", None)
    return bool(get_encoder is not None and getattr(get_encoder(), "decode_responses", False))


class RespBackend(QueueBackend):
    """Queue storage on a Redis-protocol server (Redis 6.2+, Valkey 7.2+).

    Each state change is one Lua script, so it is atomic on the server; a bulk enqueue is one script per chunk,
    all chunks in one pipeline. Records live in flat hashes so scripts never parse JSON; see ``docs/redis.md``.
    """

    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.PUSH_WAKEUP, Capability.FINISH_WAKEUP, Capability.TRANSFER, Capability.EVENT_HISTORY}
    )
    event_scan_window: int = HISTORY_SCAN_WINDOW
    """Most stored events one page of a history query examines (tests make it small)."""

    def __init__(self, config: RespBackendConfig, errors: RespErrorTypes) -> None:
        """Create an unopened backend.

        Args:
            config: The configuration.
            errors: The client library's exception classes.
        """
        self.config = config
        self._errors = errors
        retention = config.retention_seconds
        self._retention_us = None if retention is None else _seconds(retention)
        self._cluster = config.cluster or self._is_cluster_client(config.client)
        self._prefix = hash_tagged(config.key_prefix) if self._cluster else config.key_prefix
        where = describe_server(config.effective_url, config.client or config.connection_pool)
        self._monitor = ConnectionMonitor(f"{self.name} backend at {where} (prefix {self._prefix!r})")
        self._client: RespClient | None = None
        self._owns_client = False
        self._runner: ScriptRunner | None = None
        self._slots: QueueSlots | None = None
        self._wakeups: Wakeups | None = None
        self._listener_node = 0
        self._seeds: dict[str, Any] = {}
        self._finishes = GroupCommit(self._not_open, max_batch=1)
        self._enqueues = GroupCommit(self._not_open, max_batch=1)

    # -- wiring hooks ------------------------------------------------------------------------------

    @abc.abstractmethod
    def _client_from_url(self, url: str, options: dict[str, Any]) -> RespServerClient:
        """Create a client for ``url`` on a blocking connection pool (a call waits for a free connection) of its own.

        ``options`` are the pool's keyword arguments: socket timeouts, ``max_connections``, ``timeout`` (the wait for
        a free connection), then ``client_options``.
        """

    @abc.abstractmethod
    def _client_from_pool(self, pool: Any) -> RespServerClient:
        """Create a client on the app's connection pool (closing the client must leave the pool open)."""

    @abc.abstractmethod
    def _cluster_client_from_url(self, url: str, options: dict[str, Any]) -> RespClusterClient:
        """Create the library's asyncio cluster client for ``url`` (one node; it discovers the others).

        ``options``: socket timeouts, ``max_connections`` (per node), then ``client_options``. The client must not
        retry a command after a connection error (a retried script could apply twice); following ``MOVED``/``ASK``
        redirections is fine (a redirected script did not run).
        """

    @abc.abstractmethod
    def _is_cluster_client(self, client: object) -> bool:
        """Whether ``client`` (an adopted client, or ``None``) is the library's cluster client."""

    @abc.abstractmethod
    def _node_pubsub(self, node: Any) -> RespPubSub:
        """A pub/sub connection to one node of the cluster client (an entry of its ``get_nodes()``)."""

    def _create_client(self) -> tuple[RespClient, bool]:
        config = self.config
        if config.client is not None:
            return config.client, False
        if config.connection_pool is not None:
            return self._client_from_pool(config.connection_pool), True
        options: dict[str, Any] = {
            "socket_timeout": config.socket_timeout,
            "socket_connect_timeout": config.socket_connect_timeout,
            "max_connections": config.max_connections,
        }
        if self._cluster:
            return self._cluster_client_from_url(config.effective_url, {**options, **config.client_options}), True
        options = {**options, "timeout": config.pool_timeout, **config.client_options}
        return self._client_from_url(config.effective_url, options), True

    def _cluster_listener(self) -> RespPubSub:
        """A pub/sub connection for the wakeup listener in cluster mode: to the next node in turn, so that after
        a node is lost the listener reconnects to another. Any node will do: a ``PUBLISH`` reaches every node."""
        client = self._client
        assert client is not None
        nodes = cast("RespClusterClient", client).get_nodes()
        self._listener_node += 1
        return self._node_pubsub(nodes[self._listener_node % len(nodes)])

    def _reseed(self) -> None:
        """Give the cluster client back every node it knew at open() as a startup node.

        valkey-py's cluster client drops a node from its startup nodes whenever a command to it fails to connect,
        and finds the cluster again only through them: after a whole-cluster restart it can end up with none left,
        and then never reconnects ("cannot be connected ... None"). Called after every failed call (a few dict
        look-ups); redis-py keeps failed nodes since 7.2, so there it changes nothing. Upstream: valkey-py issue #327
        (redis-py #3693, fixed by #3917).
        """
        client = self._client
        manager = getattr(client, "nodes_manager", None)
        if manager is None:
            return
        startup = manager.startup_nodes
        for name, node in self._seeds.items():
            if name not in startup:
                startup[name] = type(node)(node.host, node.port, **manager.connection_kwargs)

    @property
    def key_prefix(self) -> str:
        """The prefix every key and channel starts with: ``config.key_prefix``, hash-tagged in cluster mode."""
        return self._prefix

    # -- lifecycle ---------------------------------------------------------------------------------

    async def open(self) -> None:
        """Create or adopt the client and load the scripts.

        Raises:
            RespConnectionError: the server could not be reached.
        """
        if self._runner is not None:
            return
        client, owned = self._create_client()
        runner = ScriptRunner(
            client,
            self._errors,
            self._monitor,
            self._prefix,
            packed=not _decodes_responses(client),
            cluster=self._cluster,
            heal=self._reseed if self._cluster else None,
        )
        try:
            await runner.load_all()
            slots = await self._queue_slots(runner) if self._cluster else None
        except BaseException:
            if owned:
                await client.aclose()
            raise
        if self._cluster:
            nodes = cast("RespClusterClient", client).get_nodes()
            self._seeds = {node.name: node for node in nodes}
        self._slots = slots
        self._client, self._owns_client, self._runner = client, owned, runner
        self._finishes = GroupCommit(lambda batch: runner.call(Script.FINISH, batch), max_batch=_FINISH_BATCH)
        self._enqueues = GroupCommit(self._enqueue_batch, max_batch=_ENQUEUE_CALLS_BATCH)
        self._wakeups = Wakeups(
            self._cluster_listener if self._cluster else cast("RespServerClient", client).pubsub,
            self._errors,
            self._monitor,
            self._prefix,
        )

    async def _queue_slots(self, runner: ScriptRunner) -> QueueSlots | None:
        """The per-queue layout's router, when this cluster prefix has that layout (``slots.py``): decided once per
        prefix and stored; a prefix with data of the one-slot layout keeps it, and so does a prefix with a hash tag
        of its own (its owner chose the slot)."""
        if hash_tagged(self.config.key_prefix) == self.config.key_prefix:
            return None
        layout = await runner.call(Script.LAYOUT, [])
        return QueueSlots(runner, self.config.key_prefix) if layout == "queues" else None

    async def close(self) -> None:
        """Stop the wakeup listener and close the client if the backend created it."""
        wakeups, client, runner = self._wakeups, self._client, self._runner
        self._wakeups = self._runner = self._client = None
        self._slots = None
        if wakeups is not None:
            await wakeups.close()
        if runner is not None:
            await runner.close()
        if client is not None and self._owns_client:
            await client.aclose()

    async def purge(self) -> int:
        """Delete every key under this backend's prefix (records, indexes, workers, locks); return how many.

        For test teardown and resets. Not atomic: records written meanwhile may survive.

        Raises:
            RespConnectionError: the server could not be reached.
        """
        client = self._client
        if client is None:
            raise RuntimeError(f"{type(self).__name__} is not open: use `async with backend:` or await open()")
        patterns = [glob_escaped(self._prefix) + ":*"]
        if self._slots is not None:
            patterns.append(self._slots.queue_key_pattern)
        # scan_iter of a cluster client walks every primary in turn; a cluster client deletes key by key
        deleted, batch = 0, []
        try:
            for pattern in patterns:
                async for key in client.scan_iter(match=pattern, count=1000):
                    batch.append(key)
                    if len(batch) == 1000:
                        deleted += int(await client.delete(*batch))
                        batch.clear()
            if batch:
                deleted += int(await client.delete(*batch))
            return deleted
        except BaseException as exc:
            if self._errors.is_connection_error(exc):
                raise self._monitor.failed(exc) from exc
            raise

    async def _not_open(self, _: list[Any]) -> list[Any]:
        raise RuntimeError(f"{type(self).__name__} is not open: use `async with backend:` or await open()")

    @property
    def _scripts(self) -> ScriptRunner:
        runner = self._runner
        if runner is None:
            raise RuntimeError(f"{type(self).__name__} is not open: use `async with backend:` or await open()")
        return runner

    # -- writing work ------------------------------------------------------------------------------

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        """Insert records with id and key dedup (one script per chunk, one round trip).

        See ``QueueBackend.enqueue``.
        """
        if not records:
            return []
        size = self.config.enqueue_chunk_size
        if self._slots is not None:
            return await self._slots.enqueue(records, [encode_insert(record) for record in records], size)
        if len(records) <= size:
            # concurrent small enqueues (web requests) share one script call; a lone caller goes out at once
            reply = await self._enqueues.submit([encode_insert(record) for record in records])
            return self._outcomes(records, reply)
        chunks = [records[start : start + size] for start in range(0, len(records), size)]
        calls = [(Script.ENQUEUE, [encode_insert(record) for record in chunk]) for chunk in chunks]
        replies = await self._scripts.call_many(calls)
        return [
            outcome for chunk, reply in zip(chunks, replies, strict=True) for outcome in self._outcomes(chunk, reply)
        ]

    @staticmethod
    def _outcomes(records: Sequence[TaskRecord], reply: Sequence[Any]) -> list[EnqueueOutcome]:
        return [
            EnqueueOutcome(decode_record(resolved), False)
            if isinstance(resolved, list)
            else EnqueueOutcome(record, True)
            for record, resolved in zip(records, reply, strict=True)
        ]

    async def _enqueue_batch(self, calls: list[list[list[str]]]) -> list[list[Any]]:
        """Send the records of several enqueue calls as one script call and split the reply per call."""
        if len(calls) == 1:
            return [await self._scripts.call(Script.ENQUEUE, calls[0])]
        reply = await self._scripts.call(Script.ENQUEUE, [record for call in calls for record in call])
        split, start = [], 0
        for call in calls:
            split.append(reply[start : start + len(call)])
            start += len(call)
        return split

    async def get(self, record_id: str) -> TaskRecord | None:
        """Return the record with ``record_id``, or ``None``."""
        if self._slots is not None:
            return decode_optional_record(await self._slots.get(record_id))
        (row,) = await self._scripts.call(Script.GET, [record_id])
        return decode_optional_record(row)

    async def get_by_key(self, key: str) -> TaskRecord | None:
        """Return the active record holding ``key``, else the most recently created one with it, else ``None``."""
        if self._slots is not None:
            return decode_optional_record(await self._slots.get_by_key(key))
        row = await self._scripts.call(Script.GET_BY_KEY, [key])
        return decode_optional_record(row)

    # -- claiming and running ----------------------------------------------------------------------

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_seconds: float
    ) -> list[TaskRecord]:
        """Atomically claim up to ``limit`` due records in due order (one script call)."""
        if limit <= 0 or not queues:
            return []
        now_us = to_micros(now)
        if self._slots is not None:
            rows = await self._slots.claim(queues, [owner, limit, now_us, now_us + _seconds(lease_seconds)])
            return await isolate_undecodable(self, [decode_record(row) for row in rows], now=now)
        rows = await self._scripts.call(Script.CLAIM, [owner, limit, now_us, now_us + _seconds(lease_seconds), *queues])
        return await isolate_undecodable(self, [decode_record(row) for row in rows], now=now)

    async def claim_record(
        self, record_id: str, *, owner: str, now: datetime, lease_seconds: float
    ) -> TaskRecord | None:
        """Claim one specific pending record whatever its ``scheduled_at``."""
        now_us = to_micros(now)
        args = [record_id, owner, str(now_us), str(now_us + _seconds(lease_seconds))]
        if self._slots is not None:
            row = await self._slots.claim_record(record_id, args)
        else:
            row = await self._scripts.call(Script.CLAIM_RECORD, args)
        return await isolate_undecodable_record(self, decode_optional_record(row), now=now)

    async def renew(self, leases: Sequence[Lease], *, now: datetime, lease_seconds: float) -> dict[str, LeaseState]:
        """Extend held leases and report each one's state (one script call)."""
        if not leases:
            return {}
        until = str(to_micros(now) + _seconds(lease_seconds))
        if self._slots is not None:
            fences = [(lease.record_id, lease.owner, str(lease.token)) for lease in leases]
            states = await self._slots.renew(until, fences)
            return {lease.record_id: _LEASE_STATES[state] for lease, state in zip(leases, states, strict=True)}
        args = [until]
        for lease in leases:
            args += (lease.record_id, lease.owner, str(lease.token))
        states = await self._scripts.call(Script.RENEW, args)
        return {lease.record_id: _LEASE_STATES[state] for lease, state in zip(leases, states, strict=True)}

    async def save_progress(self, updates: Sequence[tuple[Lease, TaskProgress]]) -> None:
        """Store the progress of each attempt whose fence matches, in order (one script call)."""
        if not updates:
            return
        rows = _progress_rows(updates)
        if self._slots is not None:
            await self._slots.save_progress(rows)
        else:
            await self._scripts.call(Script.SAVE_PROGRESS, rows)

    async def transfer(self, lease: Lease, *, owner: str, now: datetime, lease_seconds: float) -> TaskRecord | None:
        """Hand the attempt held by ``lease`` to ``owner`` with a new token and lease (one script call)."""
        args = [lease.record_id, lease.owner, str(lease.token), owner, str(to_micros(now) + _seconds(lease_seconds))]
        if self._slots is not None:
            return decode_optional_record(await self._slots.transfer(lease.record_id, args))
        return decode_optional_record(await self._scripts.call(Script.TRANSFER, args))

    async def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> TaskRecord | None:
        """End a running attempt under the fence (one script call; ``claimed`` is not used).

        Raises:
            ValueError: ``outcome.status`` is not a finishing status, or ``pending`` without ``scheduled_at``.
        """
        status = check_outcome(outcome)
        retry_at = outcome.scheduled_at if status is TaskStatus.PENDING else None
        scheduled = "" if retry_at is None else str(to_micros(retry_at))
        now_us = to_micros(now)
        cutoff = "" if self._retention_us is None else str(now_us - self._retention_us)
        args = [
            lease.record_id,
            lease.owner,
            str(lease.token),
            str(now_us),
            "1" if outcome.only_if_lease_expired else "0",
            status.value,
            encode_result(outcome.result) if status is not TaskStatus.PENDING else "",
            encode_error(outcome.error),
            scheduled,
            "1" if outcome.refund_attempt else "0",
            cutoff,
        ]
        if self._slots is not None:
            row = await self._slots.finish(args, None if claimed is None else claimed.queue)
        else:
            row = await self._finishes.submit(args)
        return decode_optional_record(row)

    async def expired_leases(self, *, now: datetime, limit: int) -> list[TaskRecord]:
        """Return up to ``limit`` running records whose lease expired at ``now``."""
        if limit <= 0:
            return []
        if self._slots is not None:
            return decode_records(await self._slots.expired_leases(str(to_micros(now)), limit))
        return decode_records(await self._scripts.call(Script.EXPIRED_LEASES, [str(to_micros(now)), limit]))

    # -- control -----------------------------------------------------------------------------------

    async def cancel(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Cancel a pending record, request cancellation of a running one; see ``QueueBackend.cancel``."""
        if self._slots is not None:
            return decode_optional_record(await self._slots.cancel(record_id, str(to_micros(now))))
        row = await self._scripts.call(Script.CANCEL, [record_id, str(to_micros(now))])
        return decode_optional_record(row)

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Put a failed, cancelled or expired record back to pending.

        Raises:
            DuplicateTaskError: another active record holds the record's key.
        """
        if self._slots is not None:
            code, value = await self._slots.requeue(record_id, str(to_micros(now)))
        else:
            code, value = await self._scripts.call(Script.REQUEUE, [record_id, str(to_micros(now))])
        if code == "dup":
            raise requeue_refused(record_id, holder_id=text(value))
        return decode_optional_record(value)

    async def expire(self, *, now: datetime, limit: int) -> int:
        """Expire up to ``limit`` pending records past ``expires_at``; return how many."""
        if limit <= 0:
            return 0
        if self._slots is not None:
            return await self._slots.expire(str(to_micros(now)), limit)
        return int(await self._scripts.call(Script.EXPIRE, [str(to_micros(now)), limit]))

    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` terminal records finished before ``finished_before``; return how many."""
        if limit <= 0:
            return 0
        if self._slots is not None:
            return await self._slots.prune(str(to_micros(finished_before)), limit)
        return int(await self._scripts.call(Script.PRUNE, [str(to_micros(finished_before)), limit]))

    # -- event history -----------------------------------------------------------------------------

    async def append_events(self, events: Sequence[QueueEvent]) -> None:
        """Store the events whose ids are new, and index them by position and task (one script call)."""
        if events:
            await self._scripts.call(Script.APPEND_EVENTS, [_event_values(events), []])

    @property
    def stores_progress_with_events(self) -> bool:
        """Whether ``append_events_with_progress`` is one script call: in every layout but the per-queue cluster
        layout, where the history and the records live in different slots (read once the backend is open)."""
        return self._slots is None

    async def append_events_with_progress(
        self, events: Sequence[QueueEvent], progress: Sequence[tuple[Lease, TaskProgress]]
    ) -> None:
        """Store the new events and the progress under its fences in one script call (the events' script), or, in
        the per-queue cluster layout, one after the other."""
        if self._slots is not None:
            await super().append_events_with_progress(events, progress)
        elif events or progress:
            await self._scripts.call(Script.APPEND_EVENTS, [_event_values(events), _progress_rows(progress)])

    async def query_events(
        self, where: EventFilter, *, limit: int, cursor: str | None = None, newest_first: bool = False
    ) -> EventPage:
        """Return one page of stored events in history order (one script call).

        The script walks the task's index (``task_id`` given) or every event's within the time range and after the
        cursor, checking the other filters; it looks at no more than ``event_scan_window`` events per call, so a
        page of a rare type or queue may come back short with a cursor to go on from. (Indexes by type and by queue
        would make every stored event cost two more sorted-set inserts.)
        """
        if limit <= 0:
            return EventPage([], None)
        low, high = _event_bounds(where, cursor, newest_first=newest_first)
        reply = await self._scripts.call(
            Script.QUERY_EVENTS,
            [
                optional_text(where.type),
                optional_text(where.queue),
                optional_text(where.task_id),
                low,
                high,
                limit,
                "1" if newest_first else "0",
                self.event_scan_window,
            ],
        )
        next_cursor = position_key_cursor(reply[0]) if reply[0] else None
        return EventPage(load_stored_events((repr(data[:60]), data) for data in reply[1:]), next_cursor)

    async def prune_events(self, *, occurred_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` stored events that occurred before ``occurred_before``, oldest first."""
        if limit <= 0:
            return 0
        return int(await self._scripts.call(Script.PRUNE_EVENTS, [time_key(occurred_before), limit]))

    # -- reading -----------------------------------------------------------------------------------

    async def query(self, where: RecordFilter, *, limit: int, cursor: str | None = None) -> RecordPage:
        """Return one page of matching records, newest first; the cursor is the last id of the previous page."""
        if limit <= 0:
            return RecordPage([], None)
        args = [
            optional_text(None if where.status is None else where.status.value),
            optional_text(where.queue),
            optional_text(where.task_name),
            limit,
            optional_text(cursor),
        ]
        if self._slots is not None:
            reply = await self._slots.query(args, where.queue)
        else:
            reply = await self._scripts.call(Script.QUERY, args)
        next_cursor = reply[0] or None
        return RecordPage(decode_records(reply[1:]), next_cursor)

    async def statistics(
        self, *, now: datetime, queue: str | None = None, count_limit: int | None = None
    ) -> QueueStatistics:
        """Count records by status (kept as counters, not scanned: ``count_limit`` only caps them) and find the
        oldest due pending record."""
        if self._slots is not None:
            reply = await self._slots.statistics(str(to_micros(now)), queue)
        else:
            reply = await self._scripts.call(Script.STATISTICS, [str(to_micros(now)), optional_text(queue)])
        counts = [(status, int(count)) for status, count in zip(reply[1::2], reply[2::2], strict=True)]
        oldest = from_micros(reply[0]) if reply[0] else None
        return queue_statistics(counts, oldest_pending_at=oldest, queue=queue, count_limit=count_limit)

    # -- pausing queues ----------------------------------------------------------------------------

    async def pause_queue(self, queue: str, *, now: datetime) -> bool:
        """Pause ``queue`` (a hash field the claim script checks); whether this call paused it."""
        if self._slots is not None:
            return bool(await self._slots.pause_queue(queue, str(to_micros(now))))
        return bool(await self._scripts.call(Script.PAUSE_QUEUE, [queue, str(to_micros(now))]))

    async def resume_queue(self, queue: str) -> bool:
        """Resume ``queue`` and publish its wakeup; whether it was paused."""
        if self._slots is not None:
            return bool(await self._slots.resume_queue(queue))
        return bool(await self._scripts.call(Script.RESUME_QUEUE, [queue]))

    async def paused_queues(self) -> dict[str, datetime]:
        """The paused queues and when each was paused."""
        if self._slots is not None:
            reply = await self._slots.paused_queues()
        else:
            reply = await self._scripts.call(Script.PAUSED_QUEUES, [])
        return {text(queue): from_micros(moment) for queue, moment in zip(reply[::2], reply[1::2], strict=True)}

    # -- workers and maintenance -------------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo, *, ttl_seconds: float) -> None:
        """Insert or replace ``info``, alive until ``last_heartbeat_at + ttl_seconds``."""
        deadline = to_micros(info.last_heartbeat_at) + _seconds(ttl_seconds)
        await self._scripts.call(Script.REGISTER_WORKER, [info.id, encode_worker(info), str(deadline)])

    async def remove_worker(self, worker_id: str) -> None:
        """Forget a worker."""
        await self._scripts.call(Script.REMOVE_WORKER, [worker_id])

    async def list_workers(self, *, now: datetime) -> list[WorkerInfo]:
        """Return the workers alive at ``now``, ordered by id."""
        raw = await self._scripts.call(Script.LIST_WORKERS, [str(to_micros(now)), str(to_micros(now - _WORKER_GRACE))])
        return sorted((decode_worker(item) for item in raw), key=lambda info: info.id)

    async def acquire_lock(self, name: str, *, owner: str, ttl_seconds: float, now: datetime) -> bool:
        """Take or renew the named lock; ``True`` if ``owner`` holds it afterwards."""
        now_us = to_micros(now)
        return bool(
            await self._scripts.call(
                Script.ACQUIRE_LOCK, [name, owner, str(now_us), str(now_us + _seconds(ttl_seconds))]
            )
        )

    async def release_lock(self, name: str, *, owner: str) -> None:
        """Release the named lock if ``owner`` holds it."""
        await self._scripts.call(Script.RELEASE_LOCK, [name, owner])

    # -- push --------------------------------------------------------------------------------------

    async def wait_for_work(self, queues: Sequence[str], *, timeout: float) -> None:
        """Return when work may be available on ``queues`` (pub/sub hint) or after ``timeout`` seconds."""
        wakeups = self._wakeups
        if wakeups is None:
            raise RuntimeError(f"{type(self).__name__} is not open: use `async with backend:` or await open()")
        await wakeups.wait_for_work(list(queues), timeout)

    async def wait_for_finish(self, record_id: str, *, timeout: float) -> None:
        """Return when ``record_id`` may have become terminal (pub/sub hint) or after ``timeout`` seconds."""
        wakeups = self._wakeups
        if wakeups is None:
            raise RuntimeError(f"{type(self).__name__} is not open: use `async with backend:` or await open()")
        await wakeups.wait_for_finish(record_id, timeout, lambda: self._is_finished(record_id))

    async def _is_finished(self, record_id: str) -> bool:
        try:
            slots = self._slots
            status = await (slots.status(record_id) if slots else self._scripts.call(Script.STATUS, [record_id]))
        except RespConnectionError:
            return True  # stop waiting: the caller's next read reports the outage
        return not status or status in _TERMINAL_VALUES
