"""``CloudRunTarget``: dispatch claimed records as Cloud Run job executions, reconcile them, cancel them.

The life of a remote attempt, all under the record's fence (owner + token):

1. A worker claims the record (owner: the worker, token ``N``) and starts one execution of the task's job with
   only ids in its environment (record id, token ``N``, queue, backend name), never arguments or secrets.
2. It hands the record to the execution (``QueueBackend.transfer``: owner = the execution's name, token
   ``N + 1``, lease = ``start_timeout``) and forgets it: it never waits for the execution.
3. The container (``litestar-queues-cloudrun-worker``) takes the record over from either of those two fences
   (owner = ``<execution name>#<attempt>``, a new token), so exactly one process ever runs the attempt: a rerun
   of the same execution, or a second execution started by a retried API call, finds the fence gone and exits.
   It renews its lease while the task runs and ends the attempt like any worker.
4. ``reconcile`` ends what stopped without an outcome: an execution that ended (crash, OOM, timeout, cancelled),
   one that did not start within ``start_timeout``, and a dispatch whose worker died before it stored the
   execution's name (it finds the execution and stores it, or dispatches again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from litestar_queues.backend import Capability
from litestar_queues.errors import ConfigurationError
from litestar_queues.execution.cloudrun.client import CloudRunApiError, CloudRunClient, CloudRunNotFoundError
from litestar_queues.execution.cloudrun.config import CloudRunExecutionConfig
from litestar_queues.execution.cloudrun.resources import (
    ContainerOverride,
    EnvVar,
    Execution,
    Overrides,
    is_execution_name,
)
from litestar_queues.records import Outcome, RecordFilter, TaskError, TaskRecord, TaskStatus
from litestar_queues.runner import AttemptRunner, Interrupt, failed_attempt
from litestar_queues.targets import ExecutionTarget

if TYPE_CHECKING:
    from litestar_queues.service import QueueService
    from litestar_queues.task import TaskOptions

__all__ = (
    "ENV_EXECUTION_BACKEND",
    "ENV_FENCE_TOKEN",
    "ENV_QUEUE",
    "ENV_RECORD_ID",
    "CloudRunTarget",
    "owner_execution",
)

logger = logging.getLogger("litestar_queues.cloudrun")

ENV_RECORD_ID = "LITESTAR_QUEUES_RECORD_ID"
ENV_FENCE_TOKEN = "LITESTAR_QUEUES_FENCE_TOKEN"  # noqa: S105 - a fence token, not a secret
ENV_QUEUE = "LITESTAR_QUEUES_QUEUE"
ENV_EXECUTION_BACKEND = "LITESTAR_QUEUES_EXECUTION_BACKEND"

_SCAN_PAGE = 200
_LIST_PAGES = 5
"""Pages of executions (of 100) searched for one whose name a dead worker never stored."""


def owner_execution(owner: str | None) -> str | None:
    """The execution a record's owner names (``<execution>`` or ``<execution>#<attempt>``), else ``None``."""
    name = (owner or "").partition("#")[0]
    return name if is_execution_name(name) else None


class CloudRunTarget(ExecutionTarget):
    """Runs attempts as Cloud Run job executions (see the module docstring for the protocol)."""

    remote = True

    def __init__(self, config: CloudRunExecutionConfig) -> None:
        self.config = config
        self.name = config.name
        self._client: CloudRunClient | None = None
        self._service: QueueService | None = None

    @property
    def client(self) -> CloudRunClient:
        """The API client, created on first use (so processes that never call the API need no credentials)."""
        if self._client is None:
            self._client = CloudRunClient(
                endpoint=self.config.api_endpoint,
                credentials=self.config.credentials,
                timeout=self.config.request_timeout,
                retries=self.config.api_retries,
                backoff=self.config.api_backoff,
            )
        return self._client

    @property
    def service(self) -> QueueService:
        """The service that opened this target."""
        if self._service is None:
            raise RuntimeError(f"execution target {self.name!r} is not open")
        return self._service

    # -- lifecycle ---------------------------------------------------------------------------------

    async def open(self, service: QueueService) -> None:
        """Refuse a backend a container cannot reach or that cannot hand an attempt over.

        Raises:
            ConfigurationError: the backend is process-local (memory, SQLite) or does not declare ``transfer``.
        """
        backend = service.backend
        if backend.local_only:
            raise ConfigurationError(
                f"execution backend {self.name!r} runs tasks in Cloud Run containers, which cannot reach the "
                f"{backend.name} queue backend of this process; use one they can reach (Redis, Valkey, PostgreSQL, "
                "MySQL)"
            )
        if Capability.TRANSFER not in backend.capabilities:
            raise ConfigurationError(
                f"execution backend {self.name!r} needs a queue backend that can hand running attempts over "
                f"(Capability.TRANSFER); {type(backend).__name__} does not declare it"
            )
        self._service = service
        for task in service.registry:
            name = task.options.execution_backend or service.config.default_execution_backend
            timeout = task.options.timeout
            if (
                name == self.name
                and timeout is not None
                and timeout + self.config.timeout_grace > (self.config.max_timeout)
            ):
                logger.warning(
                    "task %s: timeout %gs plus %gs of grace is clamped to Cloud Run's per-attempt limit of %ds",
                    task.name,
                    timeout,
                    self.config.timeout_grace,
                    self.config.attempt_timeout(timeout),
                )

    async def close(self) -> None:
        """Close the API client."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def check(self, task_name: str, options: TaskOptions) -> None:
        """Refuse an ``execution_profile`` that names no job.

        Raises:
            ConfigurationError: naming the task and the profile.
        """
        try:
            self.config.job_name(options.execution_profile)
        except ConfigurationError as exc:
            raise ConfigurationError(f"task {task_name!r}: {exc}") from None

    # -- dispatch ----------------------------------------------------------------------------------

    def overrides(self, record: TaskRecord) -> Overrides:
        """What the execution of ``record``'s attempt gets: ids only, and the clamped per-attempt timeout."""
        env = [
            EnvVar(ENV_RECORD_ID, record.id),
            EnvVar(ENV_FENCE_TOKEN, str(record.token)),
            EnvVar(ENV_QUEUE, record.queue),
            EnvVar(ENV_EXECUTION_BACKEND, self.name),
        ]
        timeout = self.config.attempt_timeout(record.timeout)
        return Overrides(
            container_overrides=[ContainerOverride(name=self.config.container, env=env)],
            task_count=1,
            timeout=f"{timeout}s" if timeout is not None else None,
        )

    async def dispatch(self, record: TaskRecord, runner: AttemptRunner, interrupt: Interrupt | None) -> None:
        """Start one execution for the claimed ``record`` and hand the record to it; never wait for it to run.

        API errors are retried with backoff by the client; a dispatch that still fails ends the attempt under the
        task's retry policy (an unknown job or missing permission is not retried).
        """
        try:
            job = self.config.job_name(record.execution_profile)
        except ConfigurationError as exc:
            error = TaskError(type="cloudrun_dispatch_failed", message=str(exc))
            await runner.end(record, Outcome(status=TaskStatus.FAILED, error=error))
            return
        start = asyncio.ensure_future(self.client.run_job(job, self.overrides(record)))
        try:
            execution = await asyncio.shield(start)
        except asyncio.CancelledError:
            reason = interrupt.reason if interrupt is not None else None
            if reason is None:
                start.cancel()
                raise
            await self._interrupted(record, runner, reason, start)
            return
        except CloudRunApiError as exc:
            error = TaskError(type="cloudrun_dispatch_failed", message=f"starting an execution of {job} failed: {exc}")
            await runner.end(record, failed_attempt(record, error, self.service.clock.now(), retryable=exc.retryable))
            return
        await self._hand_over(record, execution)

    async def _interrupted(
        self, record: TaskRecord, runner: AttemptRunner, reason: str, start: asyncio.Future[Execution]
    ) -> None:
        """The worker interrupted a dispatch: finish what the API call started, then do what ``reason`` asks."""
        execution: Execution | None = None
        with contextlib.suppress(Exception):
            execution = await start
        if reason == "cancel":
            if execution is not None:
                await self._cancel_execution(execution.name)
            error = TaskError(type="cancelled", message="cancelled while being dispatched to Cloud Run")
            await runner.end(record, Outcome(status=TaskStatus.CANCELLED, error=error))
        elif execution is not None:  # started: hand the record over even while the worker stops
            await self._hand_over(record, execution)
        elif reason == "shutdown":
            now = self.service.clock.now()
            await runner.end(
                record, Outcome(status=TaskStatus.PENDING, scheduled_at=now, refund_attempt=True, error=record.error)
            )

    async def _hand_over(self, record: TaskRecord, execution: Execution) -> None:
        backend = self.service.backend
        now = self.service.clock.now()
        lease_seconds = self.config.start_timeout
        if await backend.transfer(record.lease, owner=execution.name, now=now, lease_seconds=lease_seconds):
            logger.info("task %s (%s) dispatched to Cloud Run: %s", record.id, record.task_name, execution.name)
            return
        current = await backend.get(record.id)
        running = current is not None and current.status is TaskStatus.RUNNING
        if running and current is not None and owner_execution(current.owner) == execution.name:
            return  # its container took the record over before the name was stored
        logger.warning(
            "task %s (%s) changed while Cloud Run started %s (now %s); cancelling that execution",
            record.id,
            record.task_name,
            execution.name,
            current.status.value if current is not None else "deleted",
        )
        await self._cancel_execution(execution.name)

    async def _cancel_execution(self, name: str) -> None:
        try:
            await self.client.cancel_execution(name)
        except CloudRunApiError as exc:  # it may have ended meanwhile; its container cannot commit anyway
            logger.warning("cancelling Cloud Run execution %s failed: %s", name, exc)

    # -- reconcile ---------------------------------------------------------------------------------

    async def reconcile(self) -> int:
        """End the running records of this target whose execution stopped without writing an outcome."""
        backend = self.service.backend
        runner = self.service.runner()
        changed = 0
        cursor: str | None = None
        while True:
            page = await backend.query(RecordFilter(status=TaskStatus.RUNNING), limit=_SCAN_PAGE, cursor=cursor)
            for record in page.records:
                if record.execution_backend != self.name or record.status is not TaskStatus.RUNNING:
                    continue
                try:
                    changed += await self._reconcile_record(record, runner)
                except CloudRunApiError as exc:
                    logger.warning("reconcile of task %s (%s) failed: %s", record.id, record.task_name, exc)
            if page.next_cursor is None:
                return changed
            cursor = page.next_cursor

    async def _reconcile_record(self, record: TaskRecord, runner: AttemptRunner) -> int:
        now = self.service.clock.now()
        expired = record.lease_expires_at is not None and record.lease_expires_at <= now
        name = owner_execution(record.owner)
        if name is None:  # still with the worker dispatching it
            return await self._repair(record, runner) if expired else 0
        try:
            execution: Execution | None = await self.client.get_execution(name)
        except CloudRunNotFoundError:
            execution = None
        if execution is not None and not execution.finished:
            if not expired:
                return 0
            stalled = "did not start within start_timeout" if record.owner == name else "stopped renewing its lease"
            error = TaskError(type="cloudrun_execution_stalled", message=f"Cloud Run execution {name} {stalled}")
            final = await runner.end(record, failed_attempt(record, error, now))
            if final is not None:
                await self._cancel_execution(name)
            return int(final is not None)
        if execution is not None and execution.cancelled:
            outcome = Outcome(
                status=TaskStatus.CANCELLED,
                error=TaskError(type="cancelled", message=f"Cloud Run execution {name} was cancelled"),
            )
        else:
            ended = execution.describe() if execution is not None else "no longer exists"
            error = TaskError(
                type="cloudrun_execution_ended", message=f"Cloud Run execution {name} {ended} without an outcome"
            )
            outcome = failed_attempt(record, error, now)
        return int(await runner.end(record, outcome) is not None)

    async def _repair(self, record: TaskRecord, runner: AttemptRunner) -> int:
        """The worker dispatching ``record`` died: store the execution it started, or dispatch again."""
        execution = await self._find_execution(record)
        backend = self.service.backend
        now = self.service.clock.now()
        if execution is not None:
            lease_seconds = self.config.start_timeout
            if await backend.transfer(record.lease, owner=execution.name, now=now, lease_seconds=lease_seconds):
                logger.warning(
                    "task %s (%s): worker %s died before storing its execution; stored %s",
                    record.id,
                    record.task_name,
                    record.owner,
                    execution.name,
                )
                return 1
            return 0
        error = TaskError(
            type="dispatch_interrupted",
            message=f"worker {record.owner} stopped before a Cloud Run execution started; dispatching again",
        )
        outcome = Outcome(status=TaskStatus.PENDING, scheduled_at=now, refund_attempt=True, error=error)
        return int(await runner.end(record, outcome) is not None)

    async def _find_execution(self, record: TaskRecord) -> Execution | None:
        """The execution started for ``record``'s current attempt (its ids are in the execution's environment)."""
        try:
            job = self.config.job_name(record.execution_profile)
        except ConfigurationError:
            return None
        token = ""
        for _ in range(_LIST_PAGES):
            page = await self.client.list_executions(job, page_token=token)
            for execution in page.executions:
                env = execution.env()
                if env.get(ENV_RECORD_ID) == record.id and env.get(ENV_FENCE_TOKEN) == str(record.token):
                    return execution
            token = page.next_page_token
            if not token:
                return None
        return None

    # -- cancel ------------------------------------------------------------------------------------

    async def cancel(self, record: TaskRecord) -> TaskRecord | None:
        """End ``record`` as cancelled under its current fence, then cancel its execution through the API."""
        error = TaskError(type="cancelled", message="cancelled while running on Cloud Run")
        final = await self.service.runner().end(record, Outcome(status=TaskStatus.CANCELLED, error=error))
        if final is None:
            return None  # its owner changed meanwhile; whoever holds it sees the request when renewing
        name = owner_execution(record.owner)
        if name is not None:
            await self._cancel_execution(name)
        return final
