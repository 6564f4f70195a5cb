"""``QueueService``: enqueue, read, wait for, cancel and retry work; initialise schedules."""

from __future__ import annotations

import asyncio
import importlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import msgspec

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.config import QueueConfig, resolve_backend
from litestar_queues.errors import (
    ConfigurationError,
    RecordNotFoundError,
    RecordStateError,
    TaskFailedError,
    UnsupportedOperation,
)
from litestar_queues.events.envelope import QueueEventType
from litestar_queues.events.publisher import QueueEventPublisher
from litestar_queues.limits import check_arguments, is_storable, stored_record_id
from litestar_queues.records import (
    EnqueueOutcome,
    QueueStatistics,
    RecordFilter,
    RecordPage,
    TaskRecord,
    TaskStatus,
    WorkerInfo,
    is_record_id,
    new_record_id,
)
from litestar_queues.runner import AttemptRunner
from litestar_queues.salvage import is_undecodable
from litestar_queues.scheduler import (
    SCHEDULE_METADATA_KEY,
    ScheduleInfo,
    jittered,
    matches_definition,
    next_slot,
    schedule_metadata,
    schedule_of,
    slot_record_id,
)
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

__all__ = ("EnqueueRequest", "QueueService")

logger = logging.getLogger("litestar_queues.service")

P = ParamSpec("P")
R = TypeVar("R")


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

    # -- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> QueueService:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Import task modules, create and open the backend, then open the execution targets.

        Raises:
            ConfigurationError: a task module failed to import, the backend is unknown or not installed, a task
                names an execution backend that is not configured, or a target cannot serve this configuration.
        """
        for module in self.config.task_modules:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ConfigurationError(
                    f"task module {module!r} (QueueConfig.task_modules) failed to import: {exc}"
                ) from exc
        backend = resolve_backend(self.config.queue_backend)
        await backend.open()
        self._backend = backend
        try:
            for target in self.targets.values():
                await target.open(self)
            check_task_targets(
                self.targets, ((task.name, task.options) for task in self.registry), self._default_target
            )
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Finish publishing what committed transactions enqueued, then close the execution targets and the backend."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        for target in self.targets.values():
            try:
                await target.close()
            except Exception:
                logger.exception("closing execution target %s failed", target.name)
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
        records = [self._record(request, now) for request in requests]
        if not records:
            return []
        sessions = [request.options.session if request.options.session is not None else session for request in requests]
        if all(value is None for value in sessions):
            outcomes = await self.backend.enqueue(records)
            await self._publish_enqueued(outcomes)
        else:
            outcomes = await self._enqueue_within(sessions, records)
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
        """Make sure every scheduled task has one pending record of its current definition.

        Pending records of an older definition are cancelled. Returns the pending records.
        """
        now = self.clock.now()
        pending: list[TaskRecord] = []
        for task in self.registry:
            if task.schedule is None:
                continue
            current: TaskRecord | None = None
            for record in await self._scheduled_records(task.name, TaskStatus.PENDING):
                if matches_definition(record, task) and current is None:
                    current = record
                else:
                    await self.backend.cancel(record.id, now=now)
                    logger.info("schedule of %s changed: cancelled pending run %s", task.name, record.id)
            if current is None:
                first = now + timedelta(seconds=task.schedule.initial_delay) if task.schedule.interval else None
                current = await self.enqueue_slot(task, first or next_slot(task.schedule, now), now=now)
            pending.append(current)
        return pending

    async def _scheduled_records(self, task_name: str, status: TaskStatus) -> list[TaskRecord]:
        page = await self.backend.query(RecordFilter(status=status, task_name=task_name), limit=100)
        return [record for record in page.records if schedule_of(record) is not None]

    async def enqueue_slot(self, task: Task[Any, Any], slot: datetime, *, now: datetime) -> TaskRecord:
        """Enqueue one slot of a task's schedule; enqueueing the same slot again returns the same record."""
        schedule = task.schedule
        if schedule is None:
            raise ConfigurationError(f"task {task.name!r} has no schedule")
        metadata = {**task.options.metadata, SCHEDULE_METADATA_KEY: schedule_metadata(schedule, slot)}
        options = msgspec.structs.replace(
            task.options, scheduled_at=jittered(schedule, slot), delay=None, metadata=metadata
        )
        request = EnqueueRequest(task_name=task.name, args=[], kwargs={}, options=options)
        record = self._record(request, now, record_id=slot_record_id(task.name, schedule, slot))
        (outcome,) = await self.backend.enqueue([record])
        return outcome.record

    async def schedule_next(self, record: TaskRecord) -> None:
        """Called when a scheduled run starts: enqueue the following slot (idempotent across workers)."""
        meta = schedule_of(record)
        if meta is None or record.task_name not in self.registry:
            return
        task = self.registry.get(record.task_name)
        if task.schedule is None or not matches_definition(record, task):
            return  # an old definition's run: initialize_schedules owns the new one
        now = self.clock.now()
        slot = datetime.fromisoformat(meta["slot"])
        await self.enqueue_slot(task, next_slot(task.schedule, max(now, slot), previous=slot), now=now)

    async def schedules(self) -> list[ScheduleInfo]:
        """Every registered schedule with its next run."""
        infos = []
        for task in self.registry:
            if task.schedule is None:
                continue
            pending = [
                r for r in await self._scheduled_records(task.name, TaskStatus.PENDING) if matches_definition(r, task)
            ]
            record = min(pending, key=lambda r: r.scheduled_at, default=None)
            infos.append(
                ScheduleInfo(
                    task_name=task.name,
                    cron=task.schedule.cron,
                    interval=task.schedule.interval,
                    timezone=task.schedule.timezone,
                    next_run_at=record.scheduled_at if record else next_slot(task.schedule, self.clock.now()),
                    pending_record_id=record.id if record else None,
                )
            )
        return infos

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

    async def get_statistics(self, queue: str | None = None) -> QueueStatistics:
        """Counts by status and the oldest due pending record, for one queue or all."""
        if queue is not None and not is_storable(queue):
            return QueueStatistics(counts=dict.fromkeys(TaskStatus, 0), queue=queue)
        return await self.backend.statistics(now=self.clock.now(), queue=queue)

    async def list_workers(self) -> list[WorkerInfo]:
        """Live workers."""
        return await self.backend.list_workers(now=self.clock.now())

    async def wait_for(self, record_id: str | uuid.UUID, timeout: float | None = None) -> TaskRecord:
        """Wait until the record is terminal and return it (pushed where the backend can, polled otherwise).

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
            record = await self.backend.get(record_id)
            if record is None:
                raise RecordNotFoundError(f"no record {record_id!r}")
            if record.is_terminal:
                return record
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"record {record_id} is still {record.status.value} after {timeout}s")
            if pushes:
                await self.backend.wait_for_finish(record_id, timeout=min(remaining or 5.0, 5.0))
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
        self, *, status: TaskStatus | None = None, queue: str | None = None, task_name: str | None = None
    ) -> int:
        """Cancel every active record matching the filters; return how many were cancelled or asked to stop."""
        statuses = [status] if status is not None else [TaskStatus.PENDING, TaskStatus.RUNNING]
        count = 0
        for wanted in statuses:
            where = RecordFilter(status=wanted, queue=queue, task_name=task_name)
            if not _can_match(where):
                continue
            cursor: str | None = None
            while True:
                page = await self.backend.query(where, limit=200, cursor=cursor)
                for record in page.records:
                    if record.status in (TaskStatus.PENDING, TaskStatus.RUNNING):
                        await self.cancel(record.id)
                        count += 1
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        return count

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
