"""The short chaos run, in CI, on every backend at once: the five single-server backends, PostgreSQL behind PgBouncer
in transaction pooling mode, and a 3-shard Redis Cluster and Valkey cluster. Real worker processes, SIGKILLs every
couple of seconds, one server restart (Redis and Valkey with an append-only file, a cluster all nodes at once,
PostgreSQL fast, also behind the bouncer, MariaDB clean), each on a private server; then none lost, none stuck, no
overlapping executions, every re-execution explained.

The long version is ``make chaos`` (see ``docs/reliability.md``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from servers import BACKENDS

from conftest import HERE
from litestar_queues.testing import server_url

RUN_SECONDS = 420
"""A hung run fails the test, not the CI run."""


def test_a_short_chaos_run_on_every_backend_loses_nothing_and_runs_nothing_twice_unexplained(tmp_path: Path) -> None:
    for binary in ("LQ_REDIS_BIN", "LQ_VALKEY_BIN", "LQ_POSTGRES_BIN", "LQ_PGBOUNCER_BIN"):
        server_url(binary)  # the private servers use the shared servers' binaries (skips loudly without them)
    runs = {}
    for backend in BACKENDS:
        command = [
            sys.executable,
            str(HERE / "harness.py"),
            backend,
            "--short",
            "--json",
            str(tmp_path / f"{backend}.json"),
        ]
        with (tmp_path / f"{backend}.log").open("wb") as log:
            runs[backend] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        codes = {backend: run.wait(RUN_SECONDS) for backend, run in runs.items()}
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
                run.wait()
    report = []
    for backend in BACKENDS:
        path = tmp_path / f"{backend}.json"
        if not path.exists():
            report.append(
                f"{backend}: no result (exit {codes[backend]}):\n{(tmp_path / f'{backend}.log').read_text()[-3000:]}"
            )
            continue
        (row,) = json.loads(path.read_text())
        if row["problems"]:
            report.append(f"{backend}: {row['problems']} ({row})")
        elif row["kills"] < 1 or row["restarts"] != (0 if backend == "sqlite" else 1):
            report.append(f"{backend}: too little chaos to judge: {row}")
    assert not report, "\n".join(report)
