"""Real ``litestar queues run`` processes: SIGTERM on every backend (drain, and a hand-back at the deadline that uses
no retry), a backend that is down at start-up, and a cancel through ``litestar queues cancel`` that wins over a
retry."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from servers import private_server

from conftest import BACKENDS, HERE, Chaos, backend_url, until
from litestar_queues import QueueService, TaskStatus

pytestmark = pytest.mark.anyio

DRAIN_SECONDS = 4.0


async def _sigterm_drains_and_hands_back(chaos: Chaos, backend: str) -> None:
    """A worker sent SIGTERM as soon as its two tasks run (about a second after it started) lets one finish within
    the drain timeout and hands the other back to pending at the deadline without using up a retry."""
    import chaos_app

    chaos.url = backend_url(backend, chaos.folder)
    async with QueueService(chaos_app.queue_config(chaos.env())) as service:
        short = await service.enqueue(chaos_app.chaos_job, 1, 1.5)  # finishes within the drain
        long = await service.enqueue(chaos_app.chaos_job, 2, 120.0)  # cut off by the drain's deadline
        worker = chaos.worker("--drain-timeout", str(DRAIN_SECONDS))
        await asyncio.to_thread(until, lambda: chaos.lines(short.id) and chaos.lines(long.id), 60, "both jobs running")
        worker.popen.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.exit_code, DRAIN_SECONDS + 20)
        assert code == 0, worker.output
        finished = await service.get_task(short.id)
        handed_back = await service.get_task(long.id)
    assert finished is not None and (finished.status, finished.result) == (TaskStatus.COMPLETED, 1), worker.output
    assert handed_back is not None, worker.output
    assert (handed_back.status, handed_back.attempts, handed_back.owner) == (TaskStatus.PENDING, 0, None), worker.output
    assert [line.how for line in chaos.lines(long.id) if line.event == "end"] == ["interrupted"]
    assert "Traceback" not in worker.output and "Logging error" not in worker.output, worker.output


async def _stops_although_a_call_swallows_its_cancel(chaos: Chaos) -> None:
    """SQLite: a worker sent SIGTERM about a second after it started, with a task running, never exited: the pool
    swallowed the cancellation of a heartbeat opening a connection, and the stop waited for that loop forever. The
    fault is injected here (renewals that are slow and swallow the first cancel), in a real worker process."""
    import chaos_app

    chaos.url = backend_url("sqlite", chaos.folder)
    chaos.settings.update(LQ_CHAOS_HEARTBEAT="0.2", LQ_CHAOS_FAULT="slow-renewal-swallows-a-cancel")
    async with QueueService(chaos_app.queue_config(chaos.env())) as service:
        outcome = await service.enqueue(chaos_app.chaos_job, 1, 1.0)
        worker = chaos.worker("--drain-timeout", str(DRAIN_SECONDS))
        await asyncio.to_thread(until, lambda: chaos.lines(outcome.id), 60, "the job running")
        worker.popen.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.exit_code, DRAIN_SECONDS + 20)
        record = await service.get_task(outcome.id)
    assert code == 0, worker.output
    assert record is not None and record.status is TaskStatus.COMPLETED, worker.output


async def test_sigterm_drains_and_hands_back_on_every_backend(make_chaos: Callable[[], Chaos]) -> None:
    """Each backend (and SQLite with a heartbeat that swallows its cancel) in a worker process of its own, at once."""
    scenarios = {backend: _sigterm_drains_and_hands_back(make_chaos(), backend) for backend in BACKENDS}
    scenarios["sqlite, a call swallowing its cancel"] = _stops_although_a_call_swallows_its_cancel(make_chaos())
    # one thread and event loop per scenario: a backend's slow start-up (migrations) cannot stall another's
    outcomes = await asyncio.gather(
        *(asyncio.to_thread(asyncio.run, scenario) for scenario in scenarios.values()), return_exceptions=True
    )
    failures = {name: outcome for name, outcome in zip(scenarios, outcomes, strict=True) if outcome is not None}
    assert not failures, "\n".join(f"{name}: {failure!r}" for name, failure in failures.items())


def test_a_worker_waits_for_a_backend_that_is_down_at_start_up(chaos: Chaos) -> None:
    server = private_server("redis")
    server.stop()
    try:
        chaos.url = server.url
        waiting, failing, stopped = chaos.worker(), chaos.worker("--fail-fast"), chaos.worker()
        assert failing.exit_code(60) == 1, failing.output
        assert "unreachable" in failing.output
        stopped.wait_for_output("cannot be opened")
        stopped.popen.send_signal(signal.SIGTERM)  # a signal while waiting ends the start-up
        assert stopped.exit_code(20) == 0, stopped.output
        waiting.wait_for_output("cannot be opened")
        server.start()
        waiting.wait_for_output("is reachable after")
        waiting.wait_for_output(" started: queues=")
        waiting.popen.send_signal(signal.SIGTERM)
        assert waiting.exit_code(20) == 0, waiting.output
    finally:
        server.destroy()


async def test_a_cancel_from_the_cli_wins_over_a_retry(chaos: Chaos, tmp_path: Path) -> None:
    chaos.url = backend_url("redis", chaos.folder)
    chaos.settings.update(LQ_CHAOS_HEARTBEAT="20", LQ_CHAOS_STALE="60")  # the attempt fails before any heartbeat
    import chaos_app

    release = tmp_path / "release"
    async with QueueService(chaos_app.queue_config(chaos.env())) as service:
        outcome = await service.enqueue(chaos_app.fails_when_released, str(release))
        worker = chaos.worker()
        await asyncio.to_thread(until, lambda: chaos.lines(outcome.id), 60, "the job running")
        command = [
            sys.executable, "-m", "litestar", "--app-dir", str(HERE), "--app", "chaos_app:app",
            "queues", "cancel", outcome.id,
        ]  # fmt: skip
        cancel = await asyncio.to_thread(
            subprocess.run, command, env=chaos.env(), capture_output=True, text=True, timeout=60
        )
        assert cancel.returncode == 0 and "cancellation requested" in cancel.stdout, cancel.stdout + cancel.stderr
        release.touch()
        record: Any = await service.wait_for(outcome.id, timeout=30)
    assert (record.status, record.attempts) == (TaskStatus.CANCELLED, 1), record
    assert record.error is not None and "released" in record.error.message
    assert [line.event for line in chaos.lines(outcome.id)] == ["start", "end"], worker.output  # never retried
