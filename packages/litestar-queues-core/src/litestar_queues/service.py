"""``QueueService``: enqueue, read, wait for, cancel and retry work; initialise schedules."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial
from operator import attrgetter
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import msgspec

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.config import QueueConfig, resolve_backend
from litestar_queues.errors import (
    ConfigurationError,
    DuplicateTaskError,
    RecordNotFoundError,
    RecordStateError,
    TaskFailedError,
    UnsupportedOperation,
)
from litestar_queues.events.envelope import QueueEventType
from litestar_queues.events.history import EventFilter, EventPage, parse_event_cursor
from litestar_queues.events.publisher import QueueEventPublisher
from litestar_queues.limits import check_arguments, is_storable, stored_record_id
from litestar_queues.progress import ProgressReporter
from litestar_queues.records import (
    EnqueueOutcome,
    QueueStatistics,
    RecordFilter,
    RecordPage,
    TaskRecord,
    TaskStatus,
    WorkerInfo,
    as_status,
    is_record_id,
    new_record_id,
    new_record_ids,
)
from litestar_queues.runner import AttemptRunner
from litestar_queues.salvage import is_undecodable
from litestar_queues.scheduler import ScheduleInfo, Scheduler
from litestar_queues.serialization import encode_arguments
from litestar_queues.targets import ExecutionTarget, check_task_targets, create_targets
from litestar_queues.task import (
    ENQUEUE_OPTION_NAMES,
    Task,
    TaskOptions,
    TaskRegistry,
    changed_options,
    default_registry,
)
from litestar_queues.timeouts import AbandonedCallError, within

__all__ = ("CANCELLABLE", "RETRYABLE", "EnqueueRequest", "QueueService")

logger = logging.getLogger("litestar_queues.service")

_WAKEUP_SLICE = 5.0
"""Longest wait for a finish wakeup before the record is read again (wakeups are hints; reads are the truth)."""
_WAKEUP_GRACE = 0.25
"""How long past its own timeout a backend call of ``wait_for`` may take before it is abandoned."""
_OPEN_FIRST_DELAY = 0.5
_OPEN_MAX_DELAY = 10.0
_CLOSE_FLUSH_SECONDS = 5.0
"""How long ``close`` waits for the batched writes (events, progress) before it leaves them behind."""

P = ParamSpec("P")
R = TypeVar("R")


def _checked_queue(queue: str) -> str:
    if not isinstance(queue, str) or not queue:
        raise ValueError(f"a queue name is a non-empty string, got {queue!r}")
    return queue


CANCELLABLE = (TaskStatus.PENDING, TaskStatus.RUNNING)
"""The statuses ``cancel`` changes, in the order bulk cancels visit them."""
RETRYABLE = (TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED)
"""The statuses ``retry`` puts back to pending, in the order bulk retries visit them."""


_REQUEST_SESSION = attrgetter("options.session")
_EXECUTION_BACKEND = attrgetter("execution_backend")


class EnqueueRequest(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A checked, encoded call of a task: what ``enqueue_many`` takes (build one with ``service.request``)."""

    task_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    options: TaskOptions


class QueueService:
    """The application's handle on its queues. Open it as an async context manager.

    ``enqueue(task, *args, **kwargs)`` is typed by the task's own parameters; per-call options come from
    ``task.using(...)``. For convenience, option names (``key``, ``priority``, ``queue``, ``delay``,
    ``scheduled_at``, ``expires_in``, ``quiet_success``, ...) passed to ``enqueue`` are taken as options
    when the task has no parameter of that name — a task's own parameters always win.
    """

    def __init__(
        self, config: QueueConfig | None = None, *, registry: TaskRegistry | None = None, state: Any = None
    ) -> None:
        self.config = config or QueueConfig()
        self.registry = registry if registry is not None else default_registry
        self.state = state
        """The application's state, which running tasks see as ``TaskExecutionContext.state`` (set by the plugin)."""
        self._provided = frozenset(self.config.dependencies)
        self.clock = self.config.clock
        self.publisher = QueueEventPublisher(self.config.event_config)
        self.id = f"service-{uuid.uuid4().hex[:8]}"
        self.targets: dict[str, ExecutionTarget] = create_targets(self.config.execution_configs)
        """Where attempts run, by ``execution_backend`` name: ``local``, ``immediate`` and the configured ones."""
        self._default_target = self.config.default_execution_backend
        self._backend: QueueBackend | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._progress: ProgressReporter | None = None
        self.scheduler = Scheduler(self)
        """Initialises, continues and lists the registry's schedules."""

    # -- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> QueueService:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self, *, wait_for_backend: bool = False) -> None:
        """Import task modules, create and open the backend, then open the execution targets.

        Args:
            wait_for_backend: When the backend cannot be opened (its server is unreachable, say), log it and try
                again with backoff (0.5 s doubling to 10 s) until it opens, instead of raising. A
                ``ConfigurationError`` is raised at once either way. Standalone workers wait (``docs/deployment.md``).

        Raises:
            ConfigurationError: a task module failed to import, the backend is unknown or not installed, a task
                names an execution backend that is not configured, a target cannot serve this configuration, or
                the event history is on and the backend does not declare ``Capability.EVENT_HISTORY``.
        """
        for module in self.config.task_modules:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ConfigurationError(
                    f"task module {module!r} (QueueConfig.task_modules) failed to import: {exc}"
                ) from exc
        self._backend = backend = await self._open_backend(wait=wait_for_backend)
        self._progress = ProgressReporter(backend, self.clock)
        try:
            if self.config.event_config.history:
                if Capability.EVENT_HISTORY not in backend.capabilities:
                    raise ConfigurationError(
                        f"QueueEventConfig(history=True): the {backend.name} backend ({type(backend).__name__}) does "
                        "not store event history (it does not declare Capability.EVENT_HISTORY); turn the history off "
                        "or use a backend that does (memory, Redis, Valkey, SQL)"
                    )
                self.publisher.store_with(
                    backend.append_events_with_progress, with_progress=backend.stores_progress_with_events
                )
            for target in self.targets.values():
                await target.open(self)
            check_task_targets(
                self.targets, ((task.name, task.options) for task in self.registry), self._default_target
            )
        except BaseException:
            await self.close()
            raise

    async def _open_backend(self, *, wait: bool) -> QueueBackend:
        """Create and open the backend; with ``wait``, try again with backoff while it cannot be reached."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        delay = _OPEN_FIRST_DELAY
        while True:
            backend = resolve_backend(self.config.queue_backend)
            try:
                await backend.open()
            except ConfigurationError:
                raise
            except Exception as exc:
                if not wait:
                    raise
                with contextlib.suppress(Exception):
                    await backend.close()
                logger.warning(
                    "the %s backend cannot be opened (%s: %s); trying again in %.1f s (waiting %.0f s so far)",
                    backend.name,
                    type(exc).__name__,
                    exc,
                    delay,
                    loop.time() - started,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _OPEN_MAX_DELAY)
                continue
            if delay > _OPEN_FIRST_DELAY:
                logger.warning("the %s backend is reachable after %.1f s", backend.name, loop.time() - started)
            return backend

    async def close(self) -> None:
        """Finish publishing what committed transactions enqueued, close the execution targets, write what is still
        batched (events, progress), and close the backend."""
        if self._background:
            with contextlib.suppress(AbandonedCallError):  # a backend that hangs must not hang the stop
                await within(
                    asyncio.gather(*self._background, return_exceptions=True),
                    _CLOSE_FLUSH_SECONDS,
                    "publishing what committed transactions enqueued",
                )
        for target in self.targets.values():
            try:
                await target.close()
            except Exception:
                logger.exception("closing execution target %s failed", target.name)
        progress, self._progress = self._progress, None
        flushes = [self.publisher.flush(), *([] if progress is None else [progress.flush()])]
        with contextlib.suppress(AbandonedCallError):  # a backend that hangs must not hang the stop
            await within(asyncio.gather(*flushes), _CLOSE_FLUSH_SECONDS, "writing the batched events and progress")
        self.publisher.store_with(None)
        backend, self._backend = self._backend, None
        if backend is not None:
            await backend.close()

    @property
    def backend(self) -> QueueBackend:
        """The open backend.

        Raises:
            RuntimeError: the service is not open.
        """
        if self._backend is None:
            raise RuntimeError("QueueService is not open: use 'async with QueueService(config) as service:'")
        return self._backend

    def runner(self, worker_id: str | None = None) -> AttemptRunner:
        """An attempt runner bound to this service (used by workers and inline execution)."""
        return AttemptRunner(
            backend=self.backend,
            registry=self.registry,
            publisher=self.publisher,
            clock=self.clock,
            worker_id=worker_id,
            dependencies=self.config.dependencies,
            state=self.state,
            instrumentation=self.config.instrumentation,
            progress=self._progress,
        )

    # -- enqueue -----------------------------------------------------------------------------------

    def request(self, task: Task[P, R], /, *args: P.args, **kwargs: P.kwargs) -> EnqueueRequest:
        """Check and encode a call without enqueueing it (for ``enqueue_many``).

        Raises:
            TypeError: the arguments do not fit the task's signature.
            ConfigurationError: an option passed by name is invalid; the message names it.
            SerializationError: an argument cannot be encoded; the message names it.
        """
        call_kwargs: dict[str, Any] = kwargs
        options = task.options
        if kwargs:
            call_kwargs = dict(kwargs)
            option_overrides = {
                name: call_kwargs.pop(name)
                for name in kwargs
                if name in ENQUEUE_OPTION_NAMES and name not in task.signature.parameters
            }
            if option_overrides:
                options = changed_options(task.name, options, option_overrides)
        task.check_call(args, call_kwargs, self._provided)
        encoded_args, encoded_kwargs = encode_arguments(task.name, args, call_kwargs)
        return EnqueueRequest(task_name=task.name, args=encoded_args, kwargs=encoded_kwargs, options=options)

    async def enqueue(self, task: Task[P, R], /, *args: P.args, **kwargs: P.kwargs) -> EnqueueOutcome:
        """Enqueue one call of ``task``; with a dedup ``key`` already active, return that record (``created=False``).

        With the ``immediate`` execution backend the attempt (and its retries) run inline before this returns.
        ``task.using(session=db_session)`` writes the record inside the open transaction of the caller's own
        session instead (see :meth:`enqueue_many`).
        """
        outcomes = await self.enqueue_many([self.request(task, *args, **kwargs)])
        return outcomes[0]

    async def enqueue_by_name(
        self, task_name: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> EnqueueOutcome:
        """Enqueue a registered task by name (CLI, admin tools).

        Unlike ``enqueue`` (whose callers a type checker sees), the arguments are also checked against the types
        of the task's parameters, as a worker will convert them, before anything is stored.

        Raises:
            TaskNotFoundError: no task has that name.
            TypeError: the arguments do not fit the task's signature or its parameters' types; the message names
                the parameter.
        """
        task = self.registry.get(task_name)
        if options:
            task = task.using(**options)
        request = self.request(task, *args, **(kwargs or {}))
        try:
            task.decode_call(list(request.args), dict(request.kwargs))
        except msgspec.ValidationError as exc:
            raise TypeError(str(exc)) from None
        (outcome,) = await self.enqueue_many([request])
        return outcome

    async def enqueue_many(self, requests: Iterable[EnqueueRequest], *, session: Any = None) -> list[EnqueueOutcome]:
        """Enqueue many calls in one backend round trip (per chunk); outcomes come back in order.

        With ``session`` (or a request made from ``task.using(session=...)``), the records are written inside the
        open transaction of that session, the caller's own (a backend declaring ``TRANSACTIONAL_ENQUEUE``, on the
        same database): the queue never commits it, the records become claimable (and wake workers) when the
        caller commits, and a rollback leaves none of them and frees their keys. ``task.enqueued`` events follow
        the commit where the backend can observe it, and are not published otherwise.

        Raises:
            SerializationError: an argument holds NaN or an infinity, or nests too deeply (nothing is enqueued).
            UnsupportedOperation: A session was given and the backend cannot enqueue inside it.
            ConfigurationError: A session was given for the ``immediate`` execution backend (which runs the work
                before this returns, when the caller's transaction is still open).
        """
        now = self.clock.now()
        requests = list(requests)
        records = self._records(requests, now)
        if not records:
            return []
        sessions = list(map(_REQUEST_SESSION, requests))
        plain = session is None and sessions.count(None) == len(sessions)
        if session is not None:
            sessions = [session if value is None else value for value in sessions]
        send = partial(self.backend.enqueue, records) if plain else partial(self._enqueue_within, sessions, records)
        hooks = self.config.instrumentation
        outcomes = await (send() if hooks is None else hooks.enqueue(records, send))
        if plain:
            await self._publish_enqueued(outcomes)
        if "immediate" not in set(map(_EXECUTION_BACKEND, records)) and not logger.isEnabledFor(logging.DEBUG):
            return outcomes
        for index, outcome in enumerate(outcomes):
            if outcome.created and outcome.record.execution_backend == "immediate":
                outcomes[index] = EnqueueOutcome(await self._run_inline(outcome.record.id), created=True)
            elif not outcome.created:
                logger.debug("enqueue of %s returned existing record %s", outcome.record.task_name, outcome.record.id)
        return outcomes

    async def _publish_enqueued(self, outcomes: Sequence[EnqueueOutcome]) -> None:
        if self.publisher.enabled and self.publisher.config.publish_enqueued:
            for outcome in outcomes:
                if outcome.created:
                    await self.publisher.publish_task_event(outcome.record, QueueEventType.ENQUEUED)

    async def _enqueue_within(self, sessions: list[Any], records: list[TaskRecord]) -> list[EnqueueOutcome]:
        """Enqueue each record in its caller's transaction (one backend call per session; no session: at once)."""
        backend = self.backend
        if Capability.TRANSACTIONAL_ENQUEUE not in backend.capabilities:
            raise UnsupportedOperation(
                f"the {backend.name} backend cannot enqueue inside the caller's transaction (session=...): it stores "
                "work outside your database; enqueue without a session, or use a SQL backend on your database"
            )
        if any(record.execution_backend == "immediate" for record in records):
            raise ConfigurationError(
                "the 'immediate' execution backend runs work before enqueue returns, while your transaction (session=) "
                "is still open and the record invisible; enqueue without session= there, or run a worker"
            )
        outcomes: list[EnqueueOutcome | None] = [None] * len(records)
        groups: dict[int, tuple[Any, list[int]]] = {}
        for position, session in enumerate(sessions):
            groups.setdefault(id(session), (session, []))[1].append(position)
        for session, positions in groups.values():
            chosen = [records[position] for position in positions]
            if session is None:
                results = await backend.enqueue(chosen)
                await self._publish_enqueued(results)
            else:
                results = await backend.enqueue_within(session, chosen)
                self._publish_after_commit(session, results)
            for position, outcome in zip(positions, results, strict=True):
                outcomes[position] = outcome
        return [outcome for outcome in outcomes if outcome is not None]

    def _publish_after_commit(self, session: Any, outcomes: list[EnqueueOutcome]) -> None:
        """Publish ``task.enqueued`` for the records created in ``session``'s transaction once it commits."""
        if not (self.publisher.enabled and self.publisher.config.publish_enqueued):
            return
        created = [outcome for outcome in outcomes if outcome.created]
        if created and not self.backend.after_commit(session, partial(self._publish_later, created)):
            logger.debug("task.enqueued not published: the backend cannot tell when the session commits")

    def _publish_later(self, outcomes: list[EnqueueOutcome]) -> None:
        """Publish in the background (kept until done; ``close`` waits for what is left)."""
        task = asyncio.get_running_loop().create_task(self._publish_enqueued(outcomes))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _records(self, requests: Sequence[EnqueueRequest], now: datetime) -> list[TaskRecord]:
        """The records of one ``enqueue_many`` call. Requests of one task with the same options object (what
        ``request`` gives for calls without per-call options) differ only in their arguments: the first one's
        record is made in full, the others copy it with their own id, arguments and metadata dict."""
        templates: dict[tuple[str, int], TaskRecord] = {}
        records: list[TaskRecord] = []
        replace = msgspec.structs.replace
        template: TaskRecord | None = None
        options: TaskOptions | None = None
        for request, record_id in zip(requests, new_record_ids(len(requests)), strict=True):
            if template is None or request.options is not options or request.task_name != template.task_name:
                options = request.options
                shape = (request.task_name, id(options))
                template = templates.get(shape)
                if template is None:
                    template = templates[shape] = self._record(request, now, record_id=record_id)
                    records.append(template)
                    continue
            check_arguments(request.task_name, request.args, request.kwargs)
            records.append(
                replace(
                    template, id=record_id, args=request.args, kwargs=request.kwargs, metadata=dict(template.metadata)
                )
            )
        return records

    def _record(self, request: EnqueueRequest, now: datetime, *, record_id: str | None = None) -> TaskRecord:
        options = request.options
        check_arguments(request.task_name, request.args, request.kwargs)
        if options.scheduled_at is not None:
            scheduled_at = options.scheduled_at
        else:
            scheduled_at = now + timedelta(seconds=options.delay) if options.delay else now
        execution_backend = options.execution_backend or self._default_target
        target = self.targets.get(execution_backend)
        if target is None:
            raise ConfigurationError(
                f"task {request.task_name!r}: execution backend {execution_backend!r} is not available here; "
                f"use one of {sorted(self.targets)} or configure it in QueueConfig.execution_backends"
            )
        target.check(request.task_name, options)
        metadata = dict(options.metadata)
        if options.description is not None:
            metadata["description"] = options.description
        if options.log_level is not None:
            metadata["log_level"] = options.log_level
        if options.quiet_success:
            metadata["quiet_success"] = True
        if not options.requeue_stale:
            metadata["requeue_stale"] = False
        return TaskRecord(
            id=record_id or new_record_id(),
            task_name=request.task_name,
            queue=options.queue,
            args=request.args,
            kwargs=request.kwargs,
            priority=options.priority,
            key=options.key,
            max_retries=options.retries,
            retry_delay=options.retry_backoff,
            timeout=options.timeout,
            created_at=now,
            scheduled_at=scheduled_at,
            expires_at=now + timedelta(seconds=options.expires_in) if options.expires_in is not None else None,
            execution_backend=execution_backend,
            execution_profile=options.execution_profile,
            metadata=metadata,
        )

    async def _run_inline(self, record_id: str) -> TaskRecord:
        runner = self.runner()
        while True:
            claimed = await self.backend.claim_record(
                record_id, owner=self.id, now=self.clock.now(), lease_seconds=self.config.worker.stale_threshold
            )
            if claimed is None:
                break
            final = await runner.run(claimed)
            if final is None or final.status is not TaskStatus.PENDING:
                break
        record = await self.backend.get(record_id)
        if record is None:
            raise RecordNotFoundError(record_id)
        return record

    # -- schedules ---------------------------------------------------------------------------------

    async def initialize_schedules(self) -> list[TaskRecord]:
        """Make sure every scheduled task has a pending record of its current definition; return them.

        Pending records of an older definition are cancelled (see :class:`~litestar_queues.scheduler.Scheduler`).
        """
        return await self.scheduler.initialize()

    async def schedules(self) -> list[ScheduleInfo]:
        """Every registered schedule with its next run."""
        return await self.scheduler.schedules()

    # -- reading -----------------------------------------------------------------------------------

    async def get_task(self, record_id: str | uuid.UUID) -> TaskRecord | None:
        """The record with ``record_id``, or ``None``.

        Raises:
            TypeError: ``record_id`` is neither a ``str`` nor a ``UUID``.
        """
        stored_id = stored_record_id(record_id)
        return None if stored_id is None else await self.backend.get(stored_id)

    async def get_task_by_key(self, key: str) -> TaskRecord | None:
        """The active record holding ``key``, else the latest record that had it, else ``None``."""
        return await self.backend.get_by_key(key) if is_storable(key) else None

    async def list_tasks(
        self,
        *,
        status: TaskStatus | str | None = None,
        queue: str | None = None,
        task_name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RecordPage:
        """Records matching the filters, newest first, one page at a time (pass ``next_cursor`` back)."""
        where = RecordFilter(
            status=TaskStatus(status) if status is not None else None, queue=queue, task_name=task_name
        )
        if not _can_match(where) or (cursor is not None and not is_record_id(cursor)):
            return RecordPage([], None)
        return await self.backend.query(where, limit=limit, cursor=cursor)

    async def list_events(
        self,
        *,
        task_id: str | uuid.UUID | None = None,
        event_type: str | None = None,
        queue: str | None = None,
        since: datetime | None = None,
        before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> EventPage:
        """Stored events matching the filters, oldest first (or newest first), one page at a time.

        ``task_id``, ``event_type`` and ``queue`` select events of that task, type and queue; ``since`` (inclusive)
        and ``before`` (exclusive) bound ``occurred_at``. The order is ``(occurred_at, sequence, id)``; pass
        ``next_cursor`` back for the next page. A page holds ``limit`` events unless it is the last: where the
        backend bounds the work of one query (a rare type or queue in a long history), this calls it again from
        its cursor until the page is full. Events are stored while ``QueueEventConfig(history=True)``.

        Raises:
            UnsupportedOperation: the backend keeps no event history.
            ValueError: ``cursor`` is not the ``next_cursor`` of a page of events, or a moment is naive.
            TypeError: ``task_id`` is neither a ``str`` nor a ``UUID``.
        """
        backend = self.backend
        if Capability.EVENT_HISTORY not in backend.capabilities:
            raise UnsupportedOperation(
                f"the {backend.name} backend ({type(backend).__name__}) keeps no event history "
                "(it does not declare Capability.EVENT_HISTORY)"
            )
        for name, moment in (("since", since), ("before", before)):
            if moment is not None and moment.utcoffset() is None:
                raise ValueError(f"list_events({name}=...) must be timezone-aware, got {moment!r}")
        if cursor is not None:
            parse_event_cursor(cursor)
        if isinstance(task_id, uuid.UUID):
            task_id = str(task_id)
        elif task_id is not None and not isinstance(task_id, str):
            raise TypeError(f"a task id must be a str or uuid.UUID, got {task_id!r} ({type(task_id).__name__})")
        if not all(name is None or is_storable(name) for name in (task_id, event_type, queue)):
            return EventPage([], None)  # no stored event can have it
        where = EventFilter(task_id=task_id, type=event_type, queue=queue, since=since, before=before)
        page = await backend.query_events(where, limit=limit, cursor=cursor, newest_first=newest_first)
        events = page.events
        while len(events) < limit and page.next_cursor is not None:  # a short page from a bounded query: go on
            page = await backend.query_events(
                where, limit=limit - len(events), cursor=page.next_cursor, newest_first=newest_first
            )
            events = [*events, *page.events]
        return EventPage(events, page.next_cursor)

    async def get_statistics(self, queue: str | None = None, *, count_limit: int | None = None) -> QueueStatistics:
        """Counts by status and the oldest due pending record, for one queue or all.

        With ``count_limit``, a status with more records than that counts ``count_limit + 1`` ("more than"), and
        the backend reads no more than that many of each (what keeps a dashboard fast over millions of records).
        """
        if count_limit is not None and count_limit < 0:
            raise ValueError(f"count_limit must not be negative, got {count_limit}")
        if queue is not None and not is_storable(queue):
            return QueueStatistics(counts=dict.fromkeys(TaskStatus, 0), queue=queue)
        return await self.backend.statistics(now=self.clock.now(), queue=queue, count_limit=count_limit)

    async def list_workers(self) -> list[WorkerInfo]:
        """Live workers."""
        return await self.backend.list_workers(now=self.clock.now())

    async def wait_for(self, record_id: str | uuid.UUID, timeout: float | None = None) -> TaskRecord:
        """Wait until the record is terminal and return it (pushed where the backend can, polled otherwise).

        With a ``timeout`` it returns or raises on time whatever the backend does: a read or a wakeup that does not
        come back by then (a connection that hangs) is abandoned, not waited for.

        Raises:
            RecordNotFoundError: no such record.
            TimeoutError: not terminal within ``timeout`` seconds.
        """
        record_id = _existing_id(record_id)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        pushes = Capability.FINISH_WAKEUP in self.backend.capabilities
        poll = 0.005
        while True:
            if deadline is None:
                record = await self.backend.get(record_id)
            else:
                seconds = deadline - loop.time() + _WAKEUP_GRACE
                record = await within(self.backend.get(record_id), seconds, f"reading record {record_id}")
            if record is None:
                raise RecordNotFoundError(f"no record {record_id!r}")
            if record.is_terminal:
                return record
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"record {record_id} is still {record.status.value} after {timeout}s")
            if pushes:
                wait = _WAKEUP_SLICE if remaining is None else min(remaining, _WAKEUP_SLICE)
                with contextlib.suppress(AbandonedCallError):
                    waiting = self.backend.wait_for_finish(record_id, timeout=wait)
                    await within(waiting, wait + _WAKEUP_GRACE, f"the finish wakeup of {record_id}")
            else:
                await asyncio.sleep(min(poll, remaining) if remaining is not None else poll)
                poll = min(poll * 2, 0.5)

    async def result(self, record_id: str | uuid.UUID, timeout: float | None = None) -> Any:
        """Wait for the record and return its result, converted to the task's return annotation.

        Raises:
            TaskFailedError: it ended failed, cancelled or expired, or its stored result cannot be decoded.
        """
        record = await self.wait_for(record_id, timeout)
        if record.status is not TaskStatus.COMPLETED or is_undecodable(record):
            detail = f": {record.error.type}: {record.error.message}" if record.error else ""
            raise TaskFailedError(record, f"task {record.task_name} ({record.id}) ended {record.status.value}{detail}")
        if record.task_name in self.registry:
            return self.registry.get(record.task_name).decode_result(record.result)
        return record.result

    # -- queues ------------------------------------------------------------------------------------

    async def pause_queue(self, queue: str) -> bool:
        """Pause ``queue``: workers start none of its work until :meth:`resume_queue`; whether this call paused it.

        The pause is kept by the backend (every process sharing it sees it, and it survives restarts). It gates
        claims only: enqueues are still accepted, running work finishes, retries wait in the queue.
        """
        paused = await self.backend.pause_queue(_checked_queue(queue), now=self.clock.now())
        if paused:
            logger.info("queue %s paused", queue)
        return paused

    async def resume_queue(self, queue: str) -> bool:
        """Resume ``queue``; return whether it was paused. Waiting workers are woken where the backend can."""
        resumed = await self.backend.resume_queue(_checked_queue(queue))
        if resumed:
            logger.info("queue %s resumed", queue)
        return resumed

    async def paused_queues(self) -> dict[str, datetime]:
        """The paused queues and when each was paused."""
        return await self.backend.paused_queues()

    # -- control -----------------------------------------------------------------------------------

    async def cancel(self, record_id: str | uuid.UUID) -> TaskRecord:
        """Cancel pending work at once; request cancellation of running work.

        A worker running it interrupts it at its next lease renewal; a remote target (Cloud Run) ends the record
        as cancelled at once and stops the attempt where it runs.

        Raises:
            RecordNotFoundError: no such record.
        """
        record = await self.backend.cancel(_existing_id(record_id), now=self.clock.now())
        if record is None:
            raise RecordNotFoundError(f"no record {record_id!r}")
        if record.status is TaskStatus.RUNNING:
            target = self.targets.get(record.execution_backend)
            stopped = await target.cancel(record) if target is not None else None
            return stopped or record
        if record.status is TaskStatus.CANCELLED and self.publisher.enabled:
            await self.publisher.publish_task_event(
                record, QueueEventType.CANCELLED, message="cancelled before it started"
            )
        return record

    async def cancel_many(
        self,
        *,
        status: TaskStatus | None = None,
        queue: str | None = None,
        task_name: str | None = None,
        limit: int | None = None,
    ) -> int:
        """Cancel the active records matching the filters (at most ``limit``, newest first within each status);
        return how many were cancelled or asked to stop."""
        count = 0
        async for record in self.iterate_tasks(
            CANCELLABLE, status=status, queue=queue, task_name=task_name, limit=limit
        ):
            await self.cancel(record.id)
            count += 1
        return count

    async def retry_many(
        self,
        *,
        status: TaskStatus | None = None,
        queue: str | None = None,
        task_name: str | None = None,
        limit: int | None = None,
    ) -> int:
        """Retry the failed, cancelled and expired records matching the filters (at most ``limit``, newest first
        within each status); return how many went back to pending.

        A record whose dedup key another active record holds now is left as it is (and logged).
        """
        count = 0
        async for record in self.iterate_tasks(RETRYABLE, status=status, queue=queue, task_name=task_name, limit=limit):
            try:
                await self.retry(record.id)
            except DuplicateTaskError as exc:
                logger.info("retry of %s skipped: %s", record.id, exc)
                continue
            count += 1
        return count

    async def iterate_tasks(
        self,
        statuses: Iterable[TaskStatus],
        *,
        status: TaskStatus | str | None = None,
        queue: str | None = None,
        task_name: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[TaskRecord]:
        """Yield the records of ``statuses`` (only of ``status`` when given: none if it is not one of them) matching
        the filters, one status after another (each newest first), at most ``limit`` in all. Pages are read by id,
        so a caller may change each record as it comes."""
        if status is not None:
            statuses = [given for given in statuses if given is as_status(status)]
        remaining = limit
        for wanted in statuses:
            where = RecordFilter(status=wanted, queue=queue, task_name=task_name)
            if not _can_match(where):
                continue
            cursor: str | None = None
            while remaining is None or remaining > 0:
                size = 200 if remaining is None else min(200, remaining)
                page = await self.backend.query(where, limit=size, cursor=cursor)
                for record in page.records:
                    yield record
                if remaining is not None:
                    remaining -= len(page.records)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor

    async def retry(self, record_id: str | uuid.UUID) -> TaskRecord:
        """Put a failed, cancelled or expired record back to pending.

        Raises:
            RecordNotFoundError: no such record.
            RecordStateError: the record is pending, running or completed (nothing to retry), or it cannot be
                decoded (it would only fail again).
            DuplicateTaskError: another active record holds its key.
        """
        record_id = _existing_id(record_id)
        stored = await self.backend.get(record_id)
        if stored is None:
            raise RecordNotFoundError(f"no record {record_id!r}")
        if is_undecodable(stored):
            raise RecordStateError(stored, f"cannot retry: {stored.error.message if stored.error else record_id}")
        if stored.status not in _RETRYABLE:
            raise RecordStateError(
                stored,
                f"cannot retry {record_id}: it is {stored.status.value}; "
                "only failed, cancelled or expired records can be retried",
            )
        record = await self.backend.requeue(record_id, now=self.clock.now())
        if record is None:
            raise RecordNotFoundError(f"no record {record_id!r}")
        if record.status is TaskStatus.PENDING and record.execution_backend == "immediate":
            return await self._run_inline(record.id)
        return record


def _existing_id(record_id: str | uuid.UUID) -> str:
    """The stored form of ``record_id``.

    Raises:
        TypeError: it is neither a ``str`` nor a ``UUID``.
        RecordNotFoundError: no record can have it (record ids are UUID strings).
    """
    stored_id = stored_record_id(record_id)
    if stored_id is None:
        raise RecordNotFoundError(f"no record {record_id!r} (record ids are UUID strings)")
    return stored_id


def _can_match(where: RecordFilter) -> bool:
    """Whether a record can hold the names ``where`` asks for (else the backend need not be asked)."""
    return all(name is None or is_storable(name) for name in (where.queue, where.task_name))


_RETRYABLE = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED})
