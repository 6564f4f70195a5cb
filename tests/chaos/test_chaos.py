"""The short chaos run, in CI, on the five single-server backends at once and on PostgreSQL behind PgBouncer in
transaction pooling mode: real worker processes, SIGKILLs every couple of seconds, one server restart (Redis and
Valkey with an append-only file, PostgreSQL fast, also behind the bouncer, MariaDB clean), each on a private server;
then none lost, none stuck, no overlapping executions, every re-execution explained.

The two 3-shard clusters (``redis_cluster``, ``valkey_cluster``: ``bash scripts/chaos.sh --short redis_cluster
valkey_cluster``) pass this run alone, but in CI beside the five the Valkey cluster's run once never got its
statistics back within 150 s of the whole-cluster restart: an open finding, so they are not in CI yet.

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

SINGLE_SERVER = tuple(backend for backend in BACKENDS if not backend.endswith("_cluster"))
RUN_SECONDS = 420
"""A hung run fails the test, not the CI run."""


def test_a_short_chaos_run_on_every_backend_loses_nothing_and_runs_nothing_twice_unexplained(tmp_path: Path) -> None:
    for binary in ("LQ_REDIS_BIN", "LQ_VALKEY_BIN", "LQ_POSTGRES_BIN", "LQ_PGBOUNCER_BIN"):
        server_url(binary)  # the private servers use the shared servers' binaries (skips loudly without them)
    runs = {}
    for backend in SINGLE_SERVER:
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
    for backend in SINGLE_SERVER:
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
