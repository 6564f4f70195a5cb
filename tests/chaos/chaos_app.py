"""The app the chaos suite's worker processes run: ``litestar --app-dir tests/chaos --app chaos_app:app queues run``.

Its one task records every execution in a crash-proof ledger before and after its work: one append-only file per
process, each line fsynced before the task goes on, so a SIGKILL loses at most the line being written. What the
chaos harness later reads from the ledgers is what really ran, whatever the backend's records say.

Settings come from the environment (the harness sets them):

- ``LQ_CHAOS_URL``: the queue backend's URL (a SQLAlchemy one, ``postgresql+asyncpg://…``, for the Advanced Alchemy
  backend); ``LQ_CHAOS_PREFIX``: its key or table prefix; ``LQ_CHAOS_DIRECT_URL`` (optional): the PostgreSQL server
  behind a PgBouncer at ``LQ_CHAOS_URL``, for LISTEN.
- ``LQ_CHAOS_LEDGER``: the directory of the ledgers.
- ``LQ_CHAOS_STALE``, ``LQ_CHAOS_HEARTBEAT``, ``LQ_CHAOS_MAINTENANCE``: the worker's lease settings, in seconds.
- ``LQ_CHAOS_FAULT=slow-renewal-swallows-a-cancel``: lease renewals take half a second and swallow the first
  cancellation that reaches them, as sqlspec's SQLite pool did when a cancel hit it opening a connection (a
  worker stopping soon after its start then never exited).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
from ledger import LedgerLine
from litestar import Litestar

from litestar_queues import QueueConfig, QueuePlugin, TaskExecutionContext, WorkerConfig, task
from litestar_queues.backend import BackendConfig

CHAOS_TASK = "chaos.job"
CHAOS_QUEUES = ("chaos.a", "chaos.b", "chaos.c")
"""The queues the jobs go to in turn (on a cluster each has a hash slot of its own, so the run spans the shards)."""


class _Ledger:
    """This process's ledger file, opened on first use (the process's pid is in its name).

    Lines are written and fsynced by one thread of their own, in order: the task waits for its line to be on disk,
    but the event loop (heartbeats, maintenance, other tasks) does not.
    """

    def __init__(self) -> None:
        self._fd: int | None = None
        self._encode = msgspec.json.Encoder().encode
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chaos-ledger")

    async def write(self, line: LedgerLine) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._write, line)

    def _write(self, line: LedgerLine) -> None:
        if self._fd is None:
            folder = Path(os.environ["LQ_CHAOS_LEDGER"])
            self._fd = os.open(folder / f"ledger-{os.getpid()}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, self._encode(line) + b"\n")
        os.fsync(self._fd)


_ledger = _Ledger()


@task(CHAOS_TASK, retries=50, retry_backoff=0.1)
async def chaos_job(number: int, seconds: float, _task_context: TaskExecutionContext) -> int:
    """Sleep ``seconds`` between two ledger lines; return ``number``."""
    record, attempt, pid = _task_context.job_id, _task_context.attempt, os.getpid()
    await _ledger.write(LedgerLine(record, attempt, pid, "start", time.time()))
    how = "interrupted"
    try:
        await asyncio.sleep(seconds)
        how = "ok"
    finally:
        await _ledger.write(LedgerLine(record, attempt, pid, "end", time.time(), how))
    return number


@task("chaos.fails_when_released", retries=5, retry_backoff=0.1)
async def fails_when_released(path: str, _task_context: TaskExecutionContext) -> None:
    """Wait until the file ``path`` exists, then fail (a retryable error)."""
    record, attempt, pid = _task_context.job_id, _task_context.attempt, os.getpid()
    await _ledger.write(LedgerLine(record, attempt, pid, "start", time.time()))
    while not Path(path).exists():
        await asyncio.sleep(0.02)
    await _ledger.write(LedgerLine(record, attempt, pid, "end", time.time(), "failed"))
    raise RuntimeError("released: failing as told")


def backend_config(url: str, prefix: str, direct_url: str = "") -> BackendConfig:
    """The typed configuration of the backend at ``url``, under ``prefix`` (keys or tables); with ``direct_url``,
    ``url`` is a PgBouncer in transaction pooling mode in front of that PostgreSQL."""
    if url.startswith(("redis://", "valkey://", "redis+cluster://", "valkey+cluster://")):
        from litestar_queues.backends.redis import RedisBackendConfig
        from litestar_queues.backends.valkey import ValkeyBackendConfig

        config_class: Any = RedisBackendConfig if url.startswith("redis") else ValkeyBackendConfig
        config: BackendConfig = config_class(url=url, key_prefix=prefix)
        return config
    if "+" in url.split("://", 1)[0]:  # a SQLAlchemy URL (postgresql+asyncpg://...): the Advanced Alchemy backend
        from advanced_alchemy.config import SQLAlchemyAsyncConfig

        from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackendConfig

        alchemy = SQLAlchemyAsyncConfig(connection_string=url)
        return AdvancedAlchemyBackendConfig(alchemy=alchemy, table_prefix=f"{prefix}_", create_tables=True)
    from litestar_queues.backends.sqlspec import SQLSpecBackendConfig

    if direct_url:
        return SQLSpecBackendConfig.from_url(
            url, table_prefix=f"{prefix}_", pooler_mode="transaction", direct_dsn=direct_url
        )
    return SQLSpecBackendConfig.from_url(url, table_prefix=f"{prefix}_")


def _slow_and_swallowing_a_cancel(call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    swallowed = False

    async def slow(*args: Any, **kwargs: Any) -> Any:
        nonlocal swallowed
        try:
            await asyncio.sleep(0.5)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed = True  # the cancel is lost, the call goes on
        return await call(*args, **kwargs)

    return slow


def queue_config(env: Mapping[str, str] = os.environ) -> QueueConfig:
    """The queue configuration ``env`` describes (this process's environment by default)."""
    worker = WorkerConfig(
        stale_threshold=float(env.get("LQ_CHAOS_STALE", "30")),
        heartbeat_interval=float(env.get("LQ_CHAOS_HEARTBEAT", "5")),
        maintenance_interval=float(env.get("LQ_CHAOS_MAINTENANCE", "15")),
        poll_interval=0.2,
        queues=("default", *CHAOS_QUEUES),
    )
    prefix = env.get("LQ_CHAOS_PREFIX", "chaos")
    backend: Any = backend_config(env["LQ_CHAOS_URL"], prefix, env.get("LQ_CHAOS_DIRECT_URL", ""))
    if env.get("LQ_CHAOS_FAULT") == "slow-renewal-swallows-a-cancel":
        backend = backend.create_backend()
        backend.renew = _slow_and_swallowing_a_cancel(backend.renew)
    return QueueConfig(
        queue_backend=backend,
        task_modules=("chaos_app",),
        in_app_worker=False,
        worker=worker,
    )


app = Litestar([], plugins=[QueuePlugin(config=queue_config())] if "LQ_CHAOS_URL" in os.environ else [])
"""The worker processes' app (a process that only imports the tasks, such as a test's, gets no plugin)."""
