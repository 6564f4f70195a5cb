"""``Worker``: claims due records, runs them with bounded concurrency, renews their leases, recovers
work of dead workers, and shuts down by draining."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from litestar_queues.backend import Capability
from litestar_queues.config import WorkerConfig, default_worker_id
from litestar_queues.records import LeaseState, Outcome, TaskError, TaskRecord, TaskStatus, WorkerInfo
from litestar_queues.runner import Interrupt
from litestar_queues.salvage import is_undecodable
from litestar_queues.scheduler import schedule_of
from litestar_queues.service import QueueService
from litestar_queues.targets import reconcile_targets, target_for
from litestar_queues.throughput import RecentCounts
from litestar_queues.timeouts import cancel_and_leave, within

__all__ = ("Worker",)

logger = logging.getLogger("litestar_queues.worker")

_ATTEMPTS_PER_SLOT = 3
"""Attempts a worker holds per slot: the one running code, and up to two whose outcomes are still being written
(a backend that batches finishes may have two batches in flight while the next claim runs)."""

_CALLBACK_CONTEXT = contextvars.Context()
"""The empty context a finished attempt's done callback runs in (it reads no context variables)."""

_MIN_PIPELINED_CLAIM = 20
"""Smallest claim worth splitting a batch for: below it, two round trips cost more than the overlap saves."""

_STOP_CALL_SECONDS = 5.0
"""Longest wait, on stop, for a cancelled loop or wait to end, and for unregistering."""
_CANCEL_TRIES = 5

MAINTENANCE_LOCK = "maintenance"
THROUGHPUT_WINDOW = 60.0
"""Seconds the finished counts of a heartbeat cover (``litestar_queues.throughput``)."""
_MAINTENANCE_BATCH = 500
_PRUNE_BATCHES = 20


async def _in_batches(prune: Callable[[int], Awaitable[int]]) -> int:
    """Call ``prune(limit)`` until it deletes fewer than a batch, at most ``_PRUNE_BATCHES`` times (so a large
    backlog cannot stall maintenance); return how many it deleted."""
    total = 0
    for _ in range(_PRUNE_BATCHES):
        deleted = await prune(_MAINTENANCE_BATCH)
        total += deleted
        if deleted < _MAINTENANCE_BATCH:
            break
    return total


class _Job(Interrupt):
    """A running attempt: its record and asyncio task, and the interrupt its runner sees.

    It holds no closures: once the attempt is over and the worker forgets it, reference counting frees it
    and everything the attempt allocated (a cycle would leave that to the garbage collector).
    """

    __slots__ = ("record", "released", "task", "worker")

    def __init__(self, worker: Worker, record: TaskRecord) -> None:
        super().__init__(record.lease_expires_at)
        self.worker = worker
        self.record = record
        self.task: asyncio.Task[None]  # set by the worker right after, to a task running this attempt
        self.released = False
        """Its slot is free again: the task's code is over (its outcome may still be being written)."""

    def finish(self) -> None:
        super().finish()
        self.worker._release(self)

    def done(self, _task: asyncio.Task[None]) -> None:
        self.worker._finished(self)


class Worker:
    """Runs work from a :class:`QueueService`'s backend.

    ``await worker.start()`` runs it in the background; ``await worker.stop()`` drains it: claiming stops,
    running attempts get ``drain_timeout`` seconds to finish, and the rest go back to pending without
    using up a retry. ``run_until_stopped`` does both around ``request_stop()`` (signal handlers call it).

    A slot is free again as soon as its attempt's code is over, while the outcome is still being written:
    the next claim overlaps the previous attempts' finishes. At most ``concurrency`` attempts run code,
    and at most three times that many are in flight counting the ones being written. With a backlog, the
    next claim goes out while a batch starts (for the slots that batch leaves free; see ``_claim_size``).
    """

    def __init__(self, service: QueueService, config: WorkerConfig | None = None) -> None:
        self.service = service
        self.config = config or service.config.worker
        self.id = self.config.worker_id or default_worker_id()
        self._jobs: dict[str, _Job] = {}
        self._busy = 0
        self._per_queue: Counter[str] = Counter()
        self._slot_freed = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._cut_drain = asyncio.Event()
        self._stopping: asyncio.Future[None] | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._acting: set[asyncio.Task[Any]] = set()
        self._stopping_loops = False
        """The periodic loops in the middle of their action (a backend call): stopping lets them finish it."""
        self._idle: asyncio.Task[Any] | None = None
        """The claim loop's task while it waits for work in itself; ``request_stop`` cancels that wait."""
        self._ahead: tuple[asyncio.Task[list[TaskRecord]], int] | None = None
        """A claim sent ahead while the previous batch starts, and its size: its records are held, not started."""
        self._executor = ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix=f"lq-{self.id}")
        self._started_at = service.clock.now()
        self._runner = service.runner(self.id)
        self._runner.executor = self._executor
        self._targets = service.targets
        self._remote = {name for name, target in service.targets.items() if target.remote}
        """Targets whose attempts run elsewhere: they reconcile their own stale attempts."""
        self._failing: str | None = None
        self.processed = 0
        """Attempts this worker has finished (any outcome)."""
        self._recent = RecentCounts(THROUGHPUT_WINDOW, time.monotonic())

    @property
    def queues(self) -> tuple[str, ...]:
        """The queues served: configured, or ``default`` plus every queue a registered task names."""
        if self.config.queues is not None:
            return self.config.queues
        return tuple(sorted({"default", *(task.options.queue for task in self.service.registry)}))

    @property
    def running(self) -> int:
        """Attempts running their code now (not counting ones whose outcome is being written)."""
        return self._busy

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Register, run one maintenance pass (recovering work of crashed workers), and start claiming.

        A backend that fails meanwhile is logged, and the worker starts anyway: its loops retry with backoff.
        """
        backend = self.service.backend
        for action in (self._register, self._maintenance):
            try:
                await action()
            except Exception as exc:
                await self._backend_failed(action.__name__.strip("_"), exc)
        loop = asyncio.get_running_loop()
        self._loops = [
            loop.create_task(self._claim_loop(), name=f"{self.id}-claim"),
            loop.create_task(self._every(self.config.heartbeat_interval, self._heartbeat), name=f"{self.id}-heartbeat"),
            loop.create_task(self._every(self.config.maintenance_interval, self._maintenance), name=f"{self.id}-maint"),
        ]
        if self._remote:
            reconcile = self._every(self.config.reconcile_interval, self._reconcile)
            self._loops.append(loop.create_task(reconcile, name=f"{self.id}-reconcile"))
        logger.info(
            "worker %s started: queues=%s concurrency=%d backend=%s",
            self.id,
            ",".join(self.queues),
            self.config.concurrency,
            backend.name,
        )

    def request_stop(self) -> None:
        """Ask the worker to stop claiming (safe to call from a signal handler in the loop's thread)."""
        self._stop_requested.set()
        idle, self._idle = self._idle, None
        if idle is not None:  # the claim loop is waiting for work: end the wait (_wait_in_loop takes the cancel back)
            idle.cancel()

    async def run_until_stopped(self) -> None:
        """Start, wait for ``request_stop()``, then drain and stop."""
        await self.start()
        await self._stop_requested.wait()
        await self.stop()

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Stop claiming, let running attempts finish within ``drain_timeout``, hand the rest back, unregister.

        Calling it again while a drain is in progress with ``drain_timeout=0`` (a second signal) cuts the
        drain short: running attempts are handed back at once.
        """
        timeout = self.config.drain_timeout if drain_timeout is None else drain_timeout
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(timeout))
        elif timeout <= 0:
            self._cut_drain.set()
        await asyncio.shield(self._stopping)

    async def _stop(self, timeout: float) -> None:
        self.request_stop()
        claim_loop = self._loops[0] if self._loops else None
        if claim_loop is not None:  # it ends by itself (a claim in flight is waited for; _end_loops cancels a hang)
            await asyncio.wait((claim_loop,), timeout=_STOP_CALL_SECONDS)
        if self._jobs:
            logger.info("worker %s draining %d running task(s) for up to %gs", self.id, len(self._jobs), timeout)
            await self._drain(timeout)
        if self._jobs:
            logger.warning("worker %s handing %d unfinished task(s) back to pending", self.id, len(self._jobs))
            unfinished = [job.task for job in self._jobs.values()]
            self._interrupt_all("shutdown")
            await asyncio.wait(unfinished, timeout=5.0)
        await self._end_loops()
        with contextlib.suppress(Exception):
            await within(self.service.backend.remove_worker(self.id), _STOP_CALL_SECONDS, "unregistering the worker")
        self._executor.shutdown(wait=False, cancel_futures=True)
        logger.info("worker %s stopped after %d task(s)", self.id, self.processed)

    async def _end_loops(self) -> None:
        """Cancel the background loops (claims, heartbeats, maintenance, reconcile) and wait for them, a bounded time.

        A loop in the middle of a backend call may not end at the first cancel: a client can swallow a cancellation
        that races its reply (seen in a pool opening a SQLite connection). The cancel is repeated, and a loop that
        still runs is left behind, so that a stop never hangs. A heartbeat or maintenance call in flight is first let
        finish (within the same bound): cancelled halfway, a call may leave its connection checked out and, on SQLite,
        its write lock held.
        """
        self._stopping_loops = True
        acting = {task for task in self._loops if task in self._acting}
        for task in self._loops:
            if task not in acting:
                task.cancel()
        if acting:
            await asyncio.wait(acting, timeout=_STOP_CALL_SECONDS)
        pending = {task for task in self._loops if not task.done()}
        for _ in range(_CANCEL_TRIES):
            if not pending:
                break
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=_STOP_CALL_SECONDS / _CANCEL_TRIES)
        if pending:
            logger.warning("worker %s: %d background task(s) did not stop; leaving them", self.id, len(pending))
        cancel_and_leave(pending)
        for task in self._loops:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the loops report their own failures

    async def _drain(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        cut = loop.create_task(self._cut_drain.wait())
        try:
            while self._jobs and not self._cut_drain.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                running = [job.task for job in self._jobs.values()]
                await asyncio.wait([*running, cut], timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cut.cancel()

    async def run_until_idle(self, *, timeout: float = 30.0) -> int:
        """Start, process due work until none is left and nothing runs, then stop; return attempts finished.

        Before it returns, every event the attempts published has reached the sinks (and the history, when on).
        For tests and scripts. Raises:
            TimeoutError: work was still arriving after ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        started = self.processed
        await self.start()
        try:
            while self._jobs or self._ahead is not None or await self._due_work_left():
                if loop.time() > deadline:
                    raise TimeoutError(f"worker {self.id} still busy after {timeout}s")
                self._slot_freed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), 0.05)
        finally:
            await self.stop()
        await self.service.publisher.flush()
        return self.processed - started

    async def _due_work_left(self) -> bool:
        """Whether due work is left, leaving out paused queues (read only when something is due at all)."""
        backend = self.service.backend
        now = self.service.clock.now()
        if (await backend.statistics(now=now)).oldest_pending_at is None:
            return False
        paused = await backend.paused_queues()
        if not paused:
            return True
        for queue in self.queues:
            if queue not in paused and (await backend.statistics(now=now, queue=queue)).oldest_pending_at is not None:
                return True
        return False

    # -- claiming ----------------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        loop = asyncio.get_running_loop()
        stop_wait = loop.create_task(self._stop_requested.wait())
        found = -1  # records the last claim found (-1: none since the last wait for work)
        try:
            while not self._stop_requested.is_set():
                try:
                    if self._ahead is not None:
                        claim, size = self._ahead
                        await asyncio.wait((claim, stop_wait), return_when=asyncio.FIRST_COMPLETED)
                        if not claim.done():  # stopping: the claim still completes, below
                            break
                        self._ahead = None
                        records = claim.result()
                    else:
                        if found == 0:
                            await self._wait_for_work(stop_wait)
                            found = -1
                            continue
                        size = self._claim_size(reserved=0)
                        if size <= 0:
                            self._slot_freed.clear()
                            await self._first(self._slot_freed.wait(), stop_wait)
                            continue
                        records = await self._claim(size)
                except Exception as exc:
                    await self._backend_failed("claiming", exc)
                    continue
                self._backend_recovered()
                found = len(records)
                if found == size and not self.config.queue_concurrency:
                    # A backlog: the next claim goes out before this batch starts, and overlaps its run.
                    next_size = self._claim_size(reserved=found)
                    if next_size > 0:
                        self._ahead = (loop.create_task(self._claim(next_size)), next_size)
                for record in records:
                    self._start(record)
                await asyncio.sleep(0)  # let the new attempts start before claiming more
        finally:
            stop_wait.cancel()
            ahead, self._ahead = self._ahead, None
            if ahead is not None:  # its records are held by now: run them, and the drain ends them
                with contextlib.suppress(Exception):
                    for record in await ahead[0]:
                        self._start(record)

    def _claim_size(self, *, reserved: int) -> int:
        """Records to ask for next, with ``reserved`` slots already promised to claimed records.

        When one claim could fill every free slot and the backend asks for it (``split_claims``), it takes half
        of them (if that half is at least ``_MIN_PIPELINED_CLAIM``): the other half goes to the next claim, sent
        while this batch starts.
        """
        concurrency = self.config.concurrency
        room = min(concurrency - self._busy, _ATTEMPTS_PER_SLOT * concurrency - len(self._jobs)) - reserved
        size = min(room, self.config.batch_size)
        half = -(-room // 2)
        backend = self.service.backend
        if size == room and half >= _MIN_PIPELINED_CLAIM and backend.split_claims and not self.config.queue_concurrency:
            return half
        return size

    async def _wait_for_work(self, stop_wait: asyncio.Task[Any]) -> None:
        backend = self.service.backend
        queues = self.queues
        freed: list[Awaitable[Any]] = []
        caps = self.config.queue_concurrency
        full = {queue for queue, cap in caps.items() if self._per_queue[queue] >= cap} if caps else None
        if full:
            # A queue at its cap is left out of the wait: its due work would end every wait at once (a busy
            # loop), and a freed slot ends the wait instead.
            queues = tuple(queue for queue in queues if queue not in full)
            self._slot_freed.clear()
            freed.append(self._slot_freed.wait())
        waiter = (
            backend.wait_for_work(queues, timeout=self.config.poll_interval)
            if queues and Capability.PUSH_WAKEUP in backend.capabilities
            else asyncio.sleep(self.config.poll_interval)
        )
        try:
            if freed:
                await self._first(waiter, stop_wait, *freed)
            else:
                await self._wait_in_loop(waiter)
        except Exception as exc:
            await self._backend_failed("waiting for work", exc)

    async def _wait_in_loop(self, waiter: Awaitable[Any]) -> None:
        """Await ``waiter`` in the claim loop's own task, so a wakeup resumes the loop directly (no task, no
        ``asyncio.wait`` per wait); ``request_stop`` cancels the loop's task meanwhile, and this takes that cancel
        back."""
        task = self._idle = asyncio.current_task()
        try:
            await waiter
        except asyncio.CancelledError:
            if self._idle is not None:  # not the stop's cancel
                raise
            # the stop's cancel: taken back, unless the task was also cancelled by someone else (3.11+ counts them;
            # on 3.10 the loop ends anyway, as a stop was requested)
            if sys.version_info >= (3, 11) and task is not None and task.uncancel() > 0:
                raise
        finally:
            self._idle = None

    async def _first(self, awaitable: Awaitable[Any], stop_wait: asyncio.Task[Any], *more: Awaitable[Any]) -> None:
        """Wait until ``stop_wait`` or one of the awaitables is done; cancel the others; raise what that one raised."""
        waiters = [asyncio.ensure_future(item) for item in (awaitable, *more)]
        try:
            await asyncio.wait((*waiters, stop_wait), return_when=asyncio.FIRST_COMPLETED)
        finally:
            pending = [waiter for waiter in waiters if not waiter.done()]
            for waiter in pending:  # the waits that lost, or all of them when stopping: not waited for long
                waiter.cancel()
            if pending:
                _, stuck = await asyncio.wait(pending, timeout=_STOP_CALL_SECONDS)
                cancel_and_leave(stuck)
        for waiter in waiters:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is not None:
                raise waiter.exception()  # type: ignore[misc]

    async def _claim(self, free: int) -> list[TaskRecord]:
        backend = self.service.backend
        now = self.service.clock.now()
        lease = self.config.stale_threshold
        caps = self.config.queue_concurrency
        if not caps:
            return await backend.claim(
                self.queues, owner=self.id, limit=min(free, self.config.batch_size), now=now, lease_seconds=lease
            )
        claimed: list[TaskRecord] = []
        uncapped = [queue for queue in self.queues if queue not in caps]
        for queue in self.queues:
            if queue in caps:
                room = min(free - len(claimed), caps[queue] - self._per_queue[queue], self.config.batch_size)
                if room > 0:
                    claimed += await backend.claim([queue], owner=self.id, limit=room, now=now, lease_seconds=lease)
        room = min(free - len(claimed), self.config.batch_size)
        if uncapped and room > 0:
            claimed += await backend.claim(uncapped, owner=self.id, limit=room, now=now, lease_seconds=lease)
        return claimed

    async def _backend_failed(self, doing: str, exc: Exception) -> None:
        description = f"{type(exc).__name__}: {exc}"
        if self._failing is None:
            logger.error("worker %s: backend failed while %s (%s); retrying with backoff", self.id, doing, description)
        self._failing = description
        await asyncio.sleep(min(self.config.poll_interval, 1.0))

    def _backend_recovered(self) -> None:
        if self._failing is not None:
            logger.warning("worker %s: backend reachable again", self.id)
            self._failing = None

    # -- running -----------------------------------------------------------------------------------

    def _start(self, record: TaskRecord) -> None:
        job = self._jobs[record.id] = _Job(self, record)
        job.task = task = asyncio.get_running_loop().create_task(self._execute(record, job))
        self._busy += 1
        self._per_queue[record.queue] += 1
        task.add_done_callback(job.done, context=_CALLBACK_CONTEXT)  # not a copy of the current context per job

    def _release(self, job: _Job) -> None:
        if not job.released:
            job.released = True
            self._busy -= 1
            self._per_queue[job.record.queue] -= 1
            self._slot_freed.set()

    def _finished(self, job: _Job) -> None:
        self._jobs.pop(job.record.id, None)
        self._release(job)
        self.processed += 1
        self._recent.totals[job.record.queue] += 1
        self._slot_freed.set()

    async def _execute(self, record: TaskRecord, interrupt: Interrupt) -> None:
        try:
            if schedule_of(record) is not None and not await self.service.scheduler.start_run(record):
                return
            await target_for(self._targets, record).dispatch(record, self._runner, interrupt)
        except asyncio.CancelledError:
            if interrupt.reason is None:
                raise
        except Exception:  # the record keeps its lease and comes back through stale recovery
            logger.exception(
                "worker %s: task %s (%s) could not be finished; it comes back through stale recovery",
                self.id,
                record.id,
                record.task_name,
            )

    def _interrupt(self, record_id: str, reason: str) -> None:
        job = self._jobs.get(record_id)  # an attempt whose outcome is being written is left to write it
        if job is not None and job.reason is None and not job.finishing:
            job.reason = reason
            job.task.cancel()

    def _interrupt_all(self, reason: str) -> None:
        for record_id in list(self._jobs):
            self._interrupt(record_id, reason)

    # -- heartbeats and maintenance ----------------------------------------------------------------

    async def _every(self, seconds: float, action: Callable[[], Awaitable[None]]) -> None:
        while not self._stopping_loops:
            await asyncio.sleep(seconds)
            current = asyncio.current_task()
            assert current is not None
            self._acting.add(current)
            try:
                await action()
            except Exception as exc:
                await self._backend_failed(action.__name__.strip("_"), exc)
            finally:
                self._acting.discard(current)

    def _info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=list(self.queues),
            concurrency=self.config.concurrency,
            started_at=self._started_at,
            last_heartbeat_at=self.service.clock.now(),
            metadata={
                "running": self._busy,
                "processed": self.processed,
                **self._recent.report(time.monotonic()),
            },
        )

    async def _heartbeat(self) -> None:
        backend = self.service.backend
        # Attempts whose outcome is being written are left out (a renewal racing the write would call them lost),
        # except those whose outcome is held after a failed write: their lease must last until it is written.
        leases = [job.record.lease for job in self._jobs.values() if not job.finishing or job.holding]
        if leases:
            now = self.service.clock.now()
            states = await backend.renew(leases, now=now, lease_seconds=self.config.stale_threshold)
            renewed_until = now + timedelta(seconds=self.config.stale_threshold)
            for record_id, state in states.items():
                job = self._jobs.get(record_id)
                if job is None:
                    continue
                if state is not LeaseState.LOST:
                    job.lease_expires_at = renewed_until
                if job.finishing:
                    continue  # finished while the renewal was in flight: not lost, just over
                if state is LeaseState.CANCEL_REQUESTED:
                    self._interrupt(record_id, "cancel")
                elif state is LeaseState.LOST:
                    logger.warning("worker %s lost the lease of task %s; stopping that attempt", self.id, record_id)
                    self._interrupt(record_id, "lost")
        await self._register()

    async def _register(self) -> None:
        await self.service.backend.register_worker(self._info(), ttl_seconds=self.config.stale_threshold)

    async def _maintenance(self) -> None:
        backend = self.service.backend
        clock = self.service.clock
        ttl = self.config.maintenance_interval * 2
        if not await backend.acquire_lock(MAINTENANCE_LOCK, owner=self.id, ttl_seconds=ttl, now=clock.now()):
            return
        expired = await backend.expire(now=clock.now(), limit=_MAINTENANCE_BATCH)
        stale = await backend.expired_leases(now=clock.now(), limit=_MAINTENANCE_BATCH)
        recovered = await self.recover_stale(
            [record for record in stale if record.execution_backend not in self._remote]
        )
        pruned = events_pruned = 0
        if self.config.retention is not None:
            finished_before = clock.now() - timedelta(seconds=self.config.retention)
            pruned = await _in_batches(lambda limit: backend.prune(finished_before=finished_before, limit=limit))
        history_retention = self.service.config.event_config.history_retention
        if self.service.publisher.stores_history and history_retention is not None:
            occurred_before = clock.now() - timedelta(seconds=history_retention)
            events_pruned = await _in_batches(
                lambda limit: backend.prune_events(occurred_before=occurred_before, limit=limit)
            )
        if expired or recovered or pruned or events_pruned:
            logger.info(
                "maintenance: %d expired, %d recovered from dead workers, %d pruned, %d stored events pruned",
                expired,
                recovered,
                pruned,
                events_pruned,
            )
        hooks = self.service.config.instrumentation
        if hooks is not None:
            try:
                await hooks.tick(self)
            except Exception:
                logger.exception("worker %s: the instrumentation's maintenance tick failed", self.id)

    async def _reconcile(self) -> None:
        ttl = self.config.reconcile_interval * 2
        changed = await reconcile_targets(self.service, owner=self.id, ttl_seconds=ttl)
        if changed:
            logger.info("reconcile: %d attempt(s) that stopped elsewhere ended", changed)

    async def recover_stale(self, records: Sequence[TaskRecord]) -> int:
        """Requeue (or fail) running records whose worker stopped renewing their lease; return how many changed.

        The attempt counts; work whose worker died gets ``crash_retries`` attempts beyond ``retries``, and a
        task declared with ``requeue_stale=False`` fails instead, as does a record that cannot be decoded.
        """
        changed = 0
        for record in records:
            job = self._jobs.get(record.id)
            if job is not None and job.record.token == record.token:
                continue  # still running here (its renewals failed for a while): the next renewal extends it
            now = self.service.clock.now()
            error = TaskError(
                type="lease_expired",
                message=f"worker {record.owner} stopped renewing its lease (it died, or lost the backend for longer)",
            )
            undecodable = is_undecodable(record)  # fails: requeued, it would only be failed by the next claim
            requeue = (
                not undecodable
                and record.metadata.get("requeue_stale", True)
                and record.attempts <= record.max_retries + self.config.crash_retries
            )
            if undecodable and record.error is not None:
                error = record.error
            outcome = (
                Outcome(status=TaskStatus.PENDING, scheduled_at=now, error=error, only_if_lease_expired=True)
                if requeue
                else Outcome(status=TaskStatus.FAILED, error=error, only_if_lease_expired=True)
            )
            final = await self.service.backend.finish(record.lease, outcome, now=now)
            if final is not None:
                changed += 1
                logger.warning(
                    "task %s (%s): %s; now %s", record.id, record.task_name, error.message, final.status.value
                )
        return changed
