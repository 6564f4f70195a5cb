"""Soak loop for ``QueueService.wait_for`` after crash recovery: it must return (or raise) on time, every time.

Each round, on a private server: two worker processes run; a job starts, its worker is SIGKILLed and replaced,
stale recovery hands the job to the other worker; every other round the server restarts while the waiter waits.
The waiter (this process) calls ``wait_for(timeout=20)``. A watchdog thread arms ``faulthandler`` and, if a wait
outlives its timeout by 10 s, dumps every thread and every asyncio task's stack, then exits with status 2.

    uv run python tests/chaos/soak_wait_for.py --rounds 50 [--backend valkey]
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import chaos_app  # noqa: E402
from servers import private_server  # noqa: E402

from litestar_queues import QueueService  # noqa: E402

WAIT_TIMEOUT = 20.0
HANG_GRACE = 10.0


def _dump_tasks(loop: asyncio.AbstractEventLoop) -> str:
    out = io.StringIO()
    for task in asyncio.all_tasks(loop):
        out.write(f"--- {task!r}\n")
        task.print_stack(file=out)
    return out.getvalue()


class Watchdog:
    """Dumps the stacks of a wait that outlives its timeout, then ends the process."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.deadline: float | None = None
        thread = threading.Thread(target=self._watch, daemon=True, name="soak-watchdog")
        thread.start()

    def _watch(self) -> None:
        while True:
            time.sleep(0.5)
            deadline = self.deadline
            if deadline is None or time.monotonic() < deadline:
                continue
            print("[soak] HANG: a wait_for outlived its timeout; stacks follow", file=sys.stderr, flush=True)
            faulthandler.dump_traceback(all_threads=True)
            future = asyncio.run_coroutine_threadsafe(_stacks(self.loop), self.loop)
            try:
                print(future.result(timeout=5), file=sys.stderr, flush=True)
            except Exception as error:  # the loop itself is blocked: the thread dump above shows where
                print(f"[soak] the event loop does not answer ({error!r})", file=sys.stderr, flush=True)
            os._exit(2)


async def _stacks(loop: asyncio.AbstractEventLoop) -> str:
    return _dump_tasks(loop)


async def soak(backend: str, rounds: int) -> int:
    server = private_server(backend)
    folder = Path(tempfile.mkdtemp(prefix="lq-soak-"))
    (folder / "ledger").mkdir()
    env = {
        **os.environ,
        "LQ_CHAOS_URL": server.url,
        "LQ_CHAOS_PREFIX": "soak",
        "LQ_CHAOS_LEDGER": str(folder / "ledger"),
        "LQ_CHAOS_STALE": "2",
        "LQ_CHAOS_HEARTBEAT": "0.3",
        "LQ_CHAOS_MAINTENANCE": "0.5",
    }
    command = [sys.executable, "-m", "litestar", "--app-dir", str(HERE), "--app", "chaos_app:app", "queues", "run"]
    workers: list[subprocess.Popen[bytes]] = []
    log = (folder / "workers.log").open("ab")

    def spawn() -> None:
        workers.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))

    watchdog = Watchdog(asyncio.get_running_loop())
    slow = 0
    try:
        async with QueueService(chaos_app.queue_config(env)) as service:
            spawn()
            spawn()
            for number in range(rounds):
                outcome = await service.enqueue(chaos_app.chaos_job, number, 1.0)
                while (record := await service.get_task(outcome.id)) is not None and record.owner is None:
                    await asyncio.sleep(0.02)
                owner = record.owner if record else None
                victim = next((w for w in workers if w.poll() is None and owner and str(w.pid) in owner), None)
                if victim is None:  # the worker id holds the pid: worker-<host>-<pid>-<random>
                    victim = next(w for w in workers if w.poll() is None)
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                spawn()
                started = time.monotonic()
                watchdog.deadline = started + WAIT_TIMEOUT + HANG_GRACE
                waiting = asyncio.ensure_future(service.wait_for(outcome.id, timeout=WAIT_TIMEOUT))
                if number % 2:
                    await asyncio.sleep(0.3)
                    await asyncio.to_thread(server.restart)
                verdict = await _outcome(service, outcome.id, waiting, started)
                watchdog.deadline = None
                took = time.monotonic() - started
                slow += took > WAIT_TIMEOUT + 1
                print(f"[soak] round {number}: {verdict} after {took:.1f}s", flush=True)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        server.destroy()
    return 1 if slow else 0


async def _outcome(service: Any, record_id: str, waiting: asyncio.Future[Any], started: float) -> str:
    """How the wait ended; a wait the restart interrupted (a connection error) waits again for the time left."""
    while True:
        try:
            return str((await waiting).status.value)
        except TimeoutError:
            return "timed out (on time)"
        except Exception as error:  # the server restarting: wait again, within the same deadline
            left = WAIT_TIMEOUT - (time.monotonic() - started)
            print(f"[soak] wait interrupted ({type(error).__name__}); waiting {left:.1f}s more", flush=True)
            await asyncio.sleep(0.1)
            waiting = asyncio.ensure_future(service.wait_for(record_id, timeout=max(left, 0.1)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--backend", default="redis", choices=["redis", "valkey"])
    args = parser.parse_args()
    faulthandler.enable()
    return asyncio.run(soak(args.backend, args.rounds))


if __name__ == "__main__":
    sys.exit(main())
