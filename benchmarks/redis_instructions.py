"""What one job costs on Redis, in counters that the machine's load does not move.

For each system, two paths, each run one job at a time from one client:

* single enqueue: one awaited enqueue per job;
* idle pickup cycle: an idle worker in the same process; per job, the enqueue, the wakeup, the claim, the task's
  start and its finish (the next job is sent once the task ran and the loop went idle again).

and three counters per job, each the difference between a run of ``--base`` jobs and one of ``--base + --jobs``
jobs divided by ``--jobs`` (so start-up, imports and first-call costs cancel out):

* client instructions: the client process under valgrind's callgrind (``Collected`` events);
* server instructions: a private ``redis-server`` (fresh for every run, background cron at 1 Hz) under callgrind;
* server commands: the calls of ``INFO commandstats``, every command counted (a script's ``EVALSHA`` and each
  ``redis.call`` inside it), the measurement's own and a connection's set-up left out.

Run (needs ``valgrind``)::

    uv run --project benchmarks python benchmarks/redis_instructions.py
    uv run --project benchmarks python benchmarks/redis_instructions.py --systems litestar-queues-redis floor

``floor`` is the script floor of ``redis_compare.py`` (one ``EVALSHA`` of a 3-call script per job: no queue, a
reference for the single enqueue only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import TRACKER, free_port
from redis_compare import available_systems, opened

PATHS = ("enqueue", "pickup")
UNCOUNTED = frozenset({"info", "flushall", "script|load", "script", "client|setinfo", "client|setname", "hello"})
"""Commands that are the measurement's own or a connection's set-up, not a job's work."""

_COLLECTED = re.compile(r"^==\d+== Collected : (\d+)", re.MULTILINE)


# -- the client process ------------------------------------------------------------------------------


async def run_jobs(name: str, path: str, jobs: int, url: str) -> None:
    """Run ``jobs`` jobs of one system along one path (the process that valgrind counts)."""
    (system,) = available_systems([name])
    async with opened(system, url):
        if path == "enqueue":
            for n in range(jobs):
                await system.enqueue(n)
            return
        await system.start_worker(10)
        try:
            for n in range(jobs):
                TRACKER.expect(TRACKER.count + 1)
                await system.enqueue(n)
                await asyncio.wait_for(TRACKER.reached.wait(), 60)
                await asyncio.sleep(0.005)  # the finish is written and the worker waits again: idle
        finally:
            await system.stop_worker()


# -- counting -----------------------------------------------------------------------------------------


def collected(valgrind_output: str) -> int:
    """The instructions callgrind counted, from its summary on stderr."""
    match = _COLLECTED.search(valgrind_output)
    if match is None:
        raise RuntimeError(f"no callgrind summary in:\n{valgrind_output[-2000:]}")
    return int(match.group(1))


def server_commands(info: Mapping[str, Any]) -> int:
    """Commands the server ran (every ``cmdstat_*`` but ``UNCOUNTED``), from ``INFO commandstats``."""
    return sum(
        int(value["calls"])
        for key, value in info.items()
        if key.startswith("cmdstat_") and key[len("cmdstat_") :] not in UNCOUNTED
    )


def per_job(small: Sequence[float], large: Sequence[float], jobs: int) -> list[float]:
    """Each counter's cost per job: the larger run's minus the smaller run's, over the jobs between them."""
    return [(b - a) / jobs for a, b in zip(small, large, strict=True)]


async def _commands_then_shutdown(url: str) -> int:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    try:
        commands = server_commands(await client.info("commandstats"))
        with contextlib.suppress(redis.exceptions.ConnectionError):
            await client.shutdown(nosave=True)
        return commands
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


def _callgrind(valgrind: str) -> list[str]:
    return [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]


def counted_run(
    valgrind: str, server_bin: str, script: Path, arguments: Sequence[str]
) -> tuple[tuple[int, int, int], str]:
    """Run ``script arguments --url URL`` under callgrind against a private server under callgrind: the client's
    instructions, the server's and the server's commands, and what the client printed."""
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        server = [server_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        server += ["--hz", "1", "--dir", directory]
        process = subprocess.Popen([*_callgrind(valgrind), *server], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{server_bin} did not start under valgrind")
                time.sleep(0.1)
            url = f"redis://127.0.0.1:{port}/0"
            command = [*_callgrind(valgrind), sys.executable, str(script), *arguments, "--url", url]
            env = {**os.environ, "PYTHONHASHSEED": "0"}
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=script.parent, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{script.name} {' '.join(arguments)} failed:\n{done.stderr[-3000:]}")
            commands = asyncio.run(_commands_then_shutdown(url))
            _, server_output = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return (collected(done.stderr), collected(server_output.decode()), commands), done.stdout


def _counted_run(valgrind: str, server_bin: str, name: str, path: str, jobs: int) -> tuple[int, int, int]:
    counts, _ = counted_run(valgrind, server_bin, Path(__file__), ["--one", name, "--path", path, "--jobs", str(jobs)])
    return counts


def measure(valgrind: str, server_bin: str, name: str, path: str, *, base: int, jobs: int) -> list[float]:
    """Client instructions, server instructions and server commands per job of one system along one path."""
    small = _counted_run(valgrind, server_bin, name, path, base)
    large = _counted_run(valgrind, server_bin, name, path, base + jobs)
    return per_job(small, large, jobs)


def table(rows: Mapping[tuple[str, str], Sequence[float]]) -> str:
    """The measurements as a markdown table, one row per system and path."""
    lines = [
        "| system | path | client instructions / job | server instructions / job | server commands / job |",
        "|---|---|---:|---:|---:|",
    ]
    for (name, path), (client, server, commands) in rows.items():
        lines.append(f"| {name} | {path} | {client / 1000:,.0f}k | {server / 1000:,.0f}k | {commands:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_bin = os.environ.get("LQ_REDIS_BIN") or shutil.which("redis-server") or "redis-server"
    parser.add_argument("--server-bin", default=default_bin)
    parser.add_argument("--systems", nargs="+", default=["litestar-queues-redis", "saq", "taskiq-list", "floor"])
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--base", type=int, default=100, help="jobs of the smaller run")
    parser.add_argument("--jobs", type=int, default=500, help="jobs the larger run adds (the per-job divisor)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.one:
        asyncio.run(run_jobs(arguments.one, arguments.path, arguments.jobs, arguments.url))
        return
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed")
    rows: dict[tuple[str, str], list[float]] = {}
    for name in arguments.systems:
        for system in available_systems([name]):  # none when its package is not installed
            for path in arguments.paths:
                if path == "pickup" and system.single_only:
                    continue
                row = measure(valgrind, arguments.server_bin, name, path, base=arguments.base, jobs=arguments.jobs)
                rows[(system.name, path)] = row
                print(f"{system.name} {path}: {row}", file=sys.stderr, flush=True)
    version = subprocess.run([arguments.server_bin, "--version"], capture_output=True, text=True, check=True).stdout
    print(
        f"{version.split()[2]}, {arguments.jobs} jobs (runs of {arguments.base} and {arguments.base + arguments.jobs})"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
