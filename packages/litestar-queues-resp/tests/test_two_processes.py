"""Two worker processes on one server: thousands of records, each executed exactly once."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from typing import Any

import pytest

from litestar_queues.backends.resp import RespBackend
from litestar_queues.records import TaskRecord, TaskStatus, new_record_id

pytestmark = pytest.mark.anyio

RECORDS = 3000

# Each process runs four claim loops (owners) until the queue stays empty, "executes" a record by noting
# its id, and finishes it under its fence. It prints the ids it executed as JSON.
WORKER = """
import asyncio, json, sys
from datetime import datetime, timezone
from litestar_queues.backends.{flavor} import {config}
from litestar_queues.records import Outcome, TaskStatus

async def loop(backend, owner, executed):
    idle = 0
    while idle < 20:
        now = datetime.now(timezone.utc)
        claimed = await backend.claim(["q"], owner=owner, limit=25, now=now, lease_seconds=300)
        if not claimed:
            idle += 1
            await asyncio.sleep(0.01)
            continue
        idle = 0
        for record in claimed:
            executed.append(record.id)
            done = await backend.finish(record.lease, Outcome(status=TaskStatus.COMPLETED, result=owner), now=now)
            assert done is not None, "fence failed for a record this owner claimed"

async def main():
    executed = []
    async with {config}(url=sys.argv[1], key_prefix=sys.argv[2]).create_backend() as backend:
        await asyncio.gather(*(loop(backend, f"{{sys.argv[3]}}-{{n}}", executed) for n in range(4)))
    print(json.dumps(executed))

asyncio.run(main())
"""


async def test_two_processes_execute_every_record_once(
    flavor: str, server: str, key_prefix: str, backend: RespBackend
) -> None:
    now = datetime.now().astimezone()
    records = [
        TaskRecord(id=new_record_id(), task_name="t", queue="q", priority=i % 3, created_at=now, scheduled_at=now)
        for i in range(RECORDS)
    ]
    assert all(outcome.created for outcome in await backend.enqueue(records))
    config = {"redis": "RedisBackendConfig", "valkey": "ValkeyBackendConfig"}[flavor]
    script = WORKER.format(flavor=flavor, config=config)
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, server, key_prefix, name, stdout=asyncio.subprocess.PIPE
        )
        for name in ("p1", "p2")
    ]
    outputs: list[Any] = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)), 120)
    assert [p.returncode for p in processes] == [0, 0]
    executed = [json.loads(stdout) for stdout, _ in outputs]
    every = executed[0] + executed[1]
    assert len(every) == len(set(every)) == RECORDS, "a record ran twice or not at all"
    assert executed[0] and executed[1], "both processes must have taken part"
    stats = await backend.statistics(now=now)
    assert stats.counts[TaskStatus.COMPLETED] == RECORDS
    assert sum(stats.counts.values()) == RECORDS
