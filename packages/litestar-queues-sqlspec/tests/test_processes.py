"""Two worker processes and a producing process on one database: every task runs exactly once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from litestar_queues.clock import utc_now
from litestar_queues.records import TaskRecord, TaskStatus, new_record_id

pytestmark = pytest.mark.anyio

TASKS = 3000
WORKERS = 2

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from litestar_queues.backends.sqlspec import SQLSpecBackendConfig
    from litestar_queues.clock import utc_now
    from litestar_queues.records import Outcome, TaskStatus

    async def main(url, prefix, version_table, total, out_path, owner):
        config = SQLSpecBackendConfig.from_url(url, table_prefix=prefix, version_table=version_table)
        executed = []
        async with config.create_backend() as backend:
            idle_since = None
            while True:
                now = utc_now()
                claimed = await backend.claim(["default"], owner=owner, limit=10, now=now, lease_seconds=300)
                for record in claimed:
                    executed.append(record.id)  # "execute" the task
                    done = await backend.finish(record.lease, Outcome(status=TaskStatus.COMPLETED), now=utc_now())
                    assert done is not None, f"{owner} lost the lease of {record.id}"
                if claimed:
                    idle_since = None
                    continue
                stats = await backend.statistics(now=now)
                if stats.counts[TaskStatus.COMPLETED] >= total:
                    break
                idle_since = idle_since or now
                assert (now - idle_since).total_seconds() < 60, "starved"
                await asyncio.sleep(0.01)
        with open(out_path, "w") as out:
            out.write("\\n".join(executed))

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]))
    """
)


async def test_two_worker_processes_run_every_task_exactly_once(
    driver: str, make_factory: Callable[..., Any], tmp_path: Path
) -> None:
    if driver == "psycopg":
        pytest.skip("the PostgreSQL case runs with asyncpg; the claim statement is the same")
    factory = make_factory(driver)
    producer = await factory.open()  # creates the schema before the workers start
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    outputs = [tmp_path / f"executed-{number}.txt" for number in range(WORKERS)]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                factory.url,
                factory.prefix,
                factory.version_table,
                str(TASKS),
                str(output),
                f"worker-{number}",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for number, output in enumerate(outputs)
    ]
    try:
        ids: list[str] = []
        for _ in range(TASKS // 100):  # a "web process" keeps enqueueing while the workers run
            now = utc_now()
            batch = [
                TaskRecord(id=new_record_id(), task_name="t", priority=len(ids) % 3, created_at=now, scheduled_at=now)
                for _ in range(100)
            ]
            ids.extend(record.id for record in batch)
            await producer.enqueue(batch[:1])  # single enqueues and bulk ones interleave
            await producer.enqueue(batch[1:])
            await anyio.sleep(0.005)
        for worker in workers:
            _, stderr = await anyio.to_thread.run_sync(lambda worker=worker: worker.communicate(timeout=120))
            assert worker.returncode == 0, stderr
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    executed = Counter(line for output in outputs for line in output.read_text().split("\n") if line)
    assert set(executed) == set(ids)
    assert max(executed.values()) == 1, [record_id for record_id, times in executed.items() if times > 1][:5]
    assert all(executed.get(record_id) for record_id in ids)
    per_worker = [len(output.read_text().split()) for output in outputs]
    assert all(per_worker), f"one worker did all the work: {per_worker}"
    stats = await producer.statistics(now=utc_now())
    assert stats.counts[TaskStatus.COMPLETED] == TASKS
