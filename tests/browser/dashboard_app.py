"""The app the browser tests open: the dashboard on the backend named by ``LQ_BROWSER_BACKEND`` (``memory``, a Redis
URL or a PostgreSQL DSN) under the key or table prefix ``LQ_BROWSER_PREFIX``, an in-app worker, and events through
in-memory Channels (the worker runs in this process, so its events reach the page's stream).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend

from litestar_queues import QueueConfig, QueuePlugin, WorkerConfig, task
from litestar_queues.events import QueueEventConfig, publish_task_progress
from litestar_queues.litestar import DashboardConfig

_failed_once: set[str] = set()


@task("browser.steps", queue="browser")
async def steps(count: int, pause: float = 0.2) -> dict[str, int]:
    """Report progress step by step, slowly enough for a page to watch."""
    for step in range(1, count + 1):
        await asyncio.sleep(pause)
        await publish_task_progress(current=step, total=count, message=f"step {step} of {count}")
    return {"steps": count}


@task("browser.fail_once", queue="browser")
async def fail_once(name: str) -> str:
    """Fail the first time it runs for ``name`` (in this process), succeed when retried."""
    if name not in _failed_once:
        _failed_once.add(name)
        raise RuntimeError(f"{name} fails on its first attempt")
    return f"{name} worked on retry"


@task("reports.nightly", cron="0 3 * * *")
async def nightly() -> None:
    """A schedule for the overview to list."""


def _backend() -> Any:
    backend = os.environ.get("LQ_BROWSER_BACKEND", "memory")
    prefix = os.environ.get("LQ_BROWSER_PREFIX", "browser_")
    if backend.startswith(("redis://", "valkey://")):
        from litestar_queues.backends.redis import RedisBackendConfig

        return RedisBackendConfig(url=backend, key_prefix=prefix)
    if backend.startswith(("postgresql://", "postgres://")):
        from litestar_queues.backends.sqlspec import SQLSpecBackendConfig

        return SQLSpecBackendConfig(dsn=backend, table_prefix=prefix)
    return backend


channels = ChannelsPlugin(backend=MemoryChannelsBackend(history=50), arbitrary_channels_allowed=True)
config = QueueConfig(
    queue_backend=_backend(),
    task_modules=(__name__,),
    worker=WorkerConfig(poll_interval=0.2, heartbeat_interval=0.5, stale_threshold=5.0),
    event_config=QueueEventConfig(enabled=True, channels_backend=channels),
    dashboard=DashboardConfig(path="/queues", title="browser test"),
)
app = Litestar(plugins=[channels, QueuePlugin(config=config)])
