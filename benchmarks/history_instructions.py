"""What a stored event costs on Redis, in counters that the machine's load does not move.

Three paths, each run from one client process against a private ``redis-server``, both under valgrind's callgrind
(``redis_instructions.counted_run``):

* ``off`` and ``on``: ``history_drain.py``'s drain (each job publishes ``task.started``, one ``task.progress`` and
  ``task.completed`` to a counting sink; the progress is kept on the record in both) with the history off and on,
  at ``--concurrency`` slots; the jobs are enqueued in bulk first and counted too (the same in both);
* ``writes``: the drain's events stored alone with ``append_events``, in batches of ``--batch``, one write at a time
  (every run builds the events of the larger run, so building cancels out).

Each counter is the difference between a run of ``--base`` jobs and one of ``--base + --jobs`` jobs divided by
``--jobs`` (start-up, imports and first calls cancel out). ``on - off`` over three is what the history adds to an
event in the drain (encoding, the writer's batching, the round trips, the server's work); ``writes`` over three is an
event's write alone. Under callgrind everything runs ~50 times slower, so the history writer's batches differ from an
uninstrumented drain's: the report gives their mean size. Run (needs ``valgrind``)::

    uv run --project benchmarks python benchmarks/history_instructions.py [--concurrency 50] [--batch 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

from history_drain import drain, job_events
from litestar_queues.backends.redis import RedisBackendConfig
from litestar_queues.config import resolve_backend
from redis_instructions import counted_run, per_job

PATHS = ("off", "on", "writes")


# -- the client process ------------------------------------------------------------------------------


async def run_path(arguments: argparse.Namespace) -> None:
    """Run ``--jobs`` jobs along the path ``--one`` (the process that valgrind counts); print the writer's mean
    batch."""
    config = RedisBackendConfig(arguments.url, key_prefix="lqi")
    if arguments.one == "writes":
        events = job_events(arguments.built)[: 3 * arguments.jobs]
        backend = resolve_backend(config)
        await backend.open()
        try:
            for start in range(0, len(events), arguments.batch):
                await backend.append_events(events[start : start + arguments.batch])
        finally:
            await backend.close()
        print(f"batch {arguments.batch}")
        return
    history = arguments.one == "on"
    drained = await drain(config, history=history, jobs=arguments.jobs, concurrency=arguments.concurrency, check=False)
    print(f"batch {drained.batch}")


# -- counting -----------------------------------------------------------------------------------------


def measure(
    valgrind: str, server_bin: str, path: str, *, base: int, jobs: int, concurrency: int, batch: int
) -> tuple[list[float], str]:
    """Client instructions, server instructions and server commands per job along one path, and the larger run's
    mean batch."""
    runs = []
    for count in (base, base + jobs):
        arguments = ["--one", path, "--jobs", str(count), "--built", str(base + jobs)]
        arguments += ["--concurrency", str(concurrency), "--batch", str(batch)]
        runs.append(counted_run(valgrind, server_bin, Path(__file__), arguments))
    (small, _), (large, output) = runs
    return per_job(small, large, jobs), output.strip().rsplit(" ", 1)[-1]


def table(rows: dict[str, tuple[list[float], str]]) -> str:
    """The measurements per event (a job has three), with ``on - off`` as the history's cost in the drain."""
    lines = [
        "| path | mean batch | client instructions / event | server instructions / event | server commands / event |",
        "|---|---:|---:|---:|---:|",
    ]
    per_event = {path: [value / 3 for value in row] for path, (row, _) in rows.items()}
    if "on" in per_event and "off" in per_event:
        per_event["on - off"] = [a - b for a, b in zip(per_event["on"], per_event["off"], strict=True)]
    for path, (client, server, commands) in per_event.items():
        batch = rows[path][1] if path in rows else ""
        lines.append(f"| {path} | {batch} | {client / 1000:,.1f}k | {server / 1000:,.1f}k | {commands:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_bin = os.environ.get("LQ_REDIS_BIN") or shutil.which("redis-server") or "redis-server"
    parser.add_argument("--server-bin", default=default_bin)
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--base", type=int, default=200, help="jobs of the smaller run")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs the larger run adds (the per-job divisor)")
    parser.add_argument("--concurrency", type=int, default=50, help="the drain's slots")
    parser.add_argument("--batch", type=int, default=60, help="events per append_events call (writes)")
    parser.add_argument("--one", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--built", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.one:
        asyncio.run(run_path(arguments))
        return
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed")
    rows: dict[str, tuple[list[float], str]] = {}
    for path in arguments.paths:
        rows[path] = measure(
            valgrind,
            arguments.server_bin,
            path,
            base=arguments.base,
            jobs=arguments.jobs,
            concurrency=arguments.concurrency,
            batch=arguments.batch,
        )
        print(f"{path}: {rows[path]}", file=sys.stderr, flush=True)
    version = subprocess.run([arguments.server_bin, "--version"], capture_output=True, text=True, check=True).stdout
    print(
        f"{version.split()[2]}, {arguments.jobs} jobs (runs of {arguments.base} and {arguments.base + arguments.jobs}),"
        f" concurrency {arguments.concurrency}"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
