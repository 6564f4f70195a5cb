"""The chaos harness: real worker processes, random SIGKILLs, a server restart, and checks of what really ran.

One run, for one backend, on a private server (``servers.py``; the shared test servers are never touched):

1. enqueue the jobs (most take milliseconds, some seconds, so that kills land mid-task);
2. start ``--workers`` worker processes (``litestar queues run`` of ``chaos_app.py``);
3. every ``--kill-every`` seconds SIGKILL a random worker and start a replacement, and restart the server once
   (when a third of the jobs are done), until every job is terminal;
4. SIGTERM the workers, which must drain and exit;
5. judge (``ledger.py``) from the backend's records and the ledgers: none lost, none stuck, no overlapping
   executions, every re-execution explained by a kill or the outage, and how long recovery and settling took.

    uv run python tests/chaos/harness.py redis valkey postgres sqlite mariadb --jobs 10000 --kill-every 2-3

prints one line per backend as it finishes and a Markdown table at the end (``--markdown FILE`` writes it too);
exit status 1 if any check failed. ``make chaos`` runs the long version for every backend.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import chaos_app  # noqa: E402
from ledger import Facts, Findings, judge, read_ledgers  # noqa: E402
from servers import BACKENDS, PrivateServer, private_server  # noqa: E402

from litestar_queues import QueueService  # noqa: E402


@dataclass(frozen=True)
class Settings:
    """One chaos run's shape."""

    jobs: int = 10_000
    workers: int = 3
    """Worker processes alive at once (a killed one is replaced at once)."""
    concurrency: int = 20
    kill_every: tuple[float, float] = (2.0, 3.0)
    long_share: float = 0.15
    """Share of the jobs that take ``long_seconds``; the rest take ``short_seconds``."""
    long_seconds: tuple[float, float] = (0.5, 3.0)
    short_seconds: tuple[float, float] = (0.0, 0.03)
    restart: bool = True
    stale_threshold: float = 10.0
    heartbeat: float = 2.0
    maintenance: float = 5.0
    drain_timeout: float = 10.0
    timeout: float = 900.0
    """Most seconds the jobs may take to settle."""
    seed: int = 13


SHORT = Settings(
    jobs=300,
    workers=2,
    concurrency=10,
    kill_every=(1.5, 2.5),
    long_share=0.2,
    long_seconds=(0.3, 1.5),
    stale_threshold=3.0,
    heartbeat=0.5,
    maintenance=1.0,
    drain_timeout=5.0,
    timeout=150.0,
)
"""The CI version: a few hundred jobs, several kills and one restart, in well under a minute per backend."""


_RECOVERY_LINE = re.compile(
    r"(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*\btask \S+ \(.*\): "
    r"worker (?P<worker>\S+) stopped renewing its lease"
)
"""A worker's log line for a stale recovery (Litestar's log format: the local time comes first)."""


_STARTED = " started: queues="
"""What a worker logs once it runs (a kill before that would only slow the start of its replacement)."""


@dataclass
class Worker:
    popen: subprocess.Popen[bytes]
    log: Path
    started: bool = False

    def has_started(self) -> bool:
        if not self.started:
            self.started = _STARTED in self.log.read_text(errors="replace")
        return self.started


class Run:
    """One chaos run against one private server."""

    def __init__(self, backend: str, settings: Settings, folder: Path) -> None:
        self.backend = backend
        self.settings = settings
        self.folder = folder
        self.ledger = folder / "ledger"
        self.ledger.mkdir(parents=True)
        self.random = random.Random(settings.seed)
        self.workers: list[Worker] = []
        self.kills: dict[int, float] = {}
        self.worker_pids: dict[str, int] = {}
        self.outage: tuple[float, float] | None = None
        self.last_disruption = time.time()
        self.server: PrivateServer | None = None

    # -- processes ---------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        assert self.server is not None
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "LQ_CHAOS_URL": self.server.url,
            "LQ_CHAOS_DIRECT_URL": self.server.direct_url,
            "LQ_CHAOS_PREFIX": "chaos",
            "LQ_CHAOS_LEDGER": str(self.ledger),
            "LQ_CHAOS_STALE": str(self.settings.stale_threshold),
            "LQ_CHAOS_HEARTBEAT": str(self.settings.heartbeat),
            "LQ_CHAOS_MAINTENANCE": str(self.settings.maintenance),
        }

    def spawn(self) -> Worker:
        number = len(self.workers)
        log = self.folder / f"worker-{number}.log"
        command = [
            sys.executable, "-m", "litestar", "--app-dir", str(HERE), "--app", "chaos_app:app", "queues", "run",
            "--concurrency", str(self.settings.concurrency), "--drain-timeout", str(self.settings.drain_timeout),
            "--worker-id", f"chaos-{self.backend}-{number}",
        ]  # fmt: skip
        with log.open("wb") as out:
            popen = subprocess.Popen(command, env=self._env(), stdout=out, stderr=subprocess.STDOUT)
        worker = Worker(popen, log)
        self.workers.append(worker)
        self.worker_pids[f"chaos-{self.backend}-{number}"] = popen.pid
        return worker

    def alive(self) -> list[Worker]:
        return [worker for worker in self.workers if worker.popen.poll() is None]

    def kill_one(self) -> bool:
        """SIGKILL a random worker that runs (not one still starting) and start a replacement; ``False`` (and no
        kill) unless another worker runs too, so that work goes on however slowly processes start."""
        running = [worker for worker in self.alive() if worker.has_started()]
        if len(running) < 2:  # the victim, and one that keeps working
            return False
        victim = self.random.choice(running)
        victim.popen.kill()
        victim.popen.wait()
        self.kills[victim.popen.pid] = self.last_disruption = time.time()
        self.spawn()
        return True

    def restart_server(self) -> None:
        assert self.server is not None
        self.outage = self.server.restart()
        self.last_disruption = max(self.last_disruption, self.outage[1])

    def stop_workers(self) -> list[str]:
        """SIGTERM every live worker; each must drain and exit with status 0. Returns the problems."""
        problems = []
        live = self.alive()
        for worker in live:
            worker.popen.send_signal(signal.SIGTERM)
        for worker in live:
            try:
                code = worker.popen.wait(self.settings.drain_timeout + 20)
            except subprocess.TimeoutExpired:
                worker.popen.kill()
                worker.popen.wait()
                problems.append(f"worker pid {worker.popen.pid} did not exit after SIGTERM ({worker.log})")
                continue
            # A replacement still importing the app ends by the signal itself (nothing to drain yet).
            if code != 0 and not (code == -signal.SIGTERM and not worker.has_started()):
                problems.append(f"worker pid {worker.popen.pid} exited with {code} after SIGTERM ({worker.log})")
        return problems

    # -- the run -----------------------------------------------------------------------------------

    async def execute(self) -> Findings:
        self.server = private_server(self.backend)
        try:
            async with QueueService(chaos_app.queue_config(self._env())) as service:
                jobs = await self._enqueue(service, chaos_app.chaos_job)
                for _ in range(self.settings.workers):
                    self.spawn()
                settled = await self._disrupt_until_settled(service)
                problems = await asyncio.to_thread(self.stop_workers)
                facts = await self._facts(service, jobs, settled)
            findings = judge(facts)
            findings.problems.extend(problems)
            return findings
        finally:
            for worker in self.alive():
                worker.popen.kill()
                worker.popen.wait()
            self.server.destroy()

    async def _enqueue(self, service: Any, job: Any) -> dict[str, int]:
        settings = self.settings
        requests = []
        spread = [job.using(queue=queue) for queue in chaos_app.CHAOS_QUEUES]
        for number in range(settings.jobs):
            low, high = settings.long_seconds if self.random.random() < settings.long_share else settings.short_seconds
            requests.append(
                service.request(spread[number % len(spread)], number, round(self.random.uniform(low, high), 3))
            )
        jobs: dict[str, int] = {}
        for start in range(0, len(requests), 500):
            outcomes = await service.enqueue_many(requests[start : start + 500])
            jobs.update((outcome.id, start + offset) for offset, outcome in enumerate(outcomes))
        return jobs

    async def _disrupt_until_settled(self, service: Any) -> float:
        """Kill a worker every ``kill_every`` seconds while work is waiting, and once more when the last of it was
        claimed (so that the queue settles through a recovery); restart the server once. Return when every job is
        terminal.

        A kill only takes a worker that runs while another runs too, so a busy machine, slow to start the
        replacements, sees a kill late rather than no worker left working.
        """
        settings = self.settings
        deadline = time.monotonic() + settings.timeout
        next_kill = time.monotonic() + self.random.uniform(*settings.kill_every)
        restart_pending = settings.restart and self.server is not None and self.server.restartable
        killing = True
        while True:
            try:
                counts = (await service.get_statistics()).counts
            except Exception:  # the server is restarting
                counts = None
            if counts is not None:
                if not counts["pending"] + counts["running"]:
                    return time.time()
                if restart_pending and counts["completed"] >= settings.jobs / 3:
                    restart_pending = False
                    await asyncio.to_thread(self.restart_server)
                last = killing and not counts["pending"] and counts["running"]
                due = time.monotonic() >= next_kill
                if (last or (killing and due)) and await asyncio.to_thread(self.kill_one):
                    next_kill = time.monotonic() + self.random.uniform(*settings.kill_every)
                    killing = not last
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.backend}: jobs still active after {settings.timeout}s: {counts}")
            await asyncio.sleep(0.1)

    async def _facts(self, service: Any, jobs: dict[str, int], settled: float) -> Facts:
        statuses: dict[str, str] = {}
        results_ok: set[str] = set()
        cursor = None
        while True:
            page = await service.list_tasks(limit=1000, cursor=cursor)
            for record in page.records:
                statuses[record.id] = record.status.value
                if record.status.value == "completed" and record.result == jobs.get(record.id):
                    results_ok.add(record.id)
            cursor = page.next_cursor
            if cursor is None:
                break
        return Facts(
            jobs=set(jobs),
            statuses=statuses,
            results_ok=results_ok,
            lines=read_ledgers(self.ledger),
            kills=self.kills,
            outage=self.outage,
            last_disruption=self.last_disruption,
            settled=settled,
            lease_seconds=self.settings.stale_threshold,
            maintenance_seconds=self.settings.maintenance,
            recoveries=self._recoveries(),
        )

    def _recoveries(self) -> list[tuple[int, float]]:
        """The stale recoveries the workers logged: (pid of the worker that held the lease, when)."""
        found = []
        for worker in self.workers:
            for line in worker.log.read_text(errors="replace").splitlines():
                match = _RECOVERY_LINE.search(line)
                if match is not None and match["worker"] in self.worker_pids:
                    at = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    found.append((self.worker_pids[match["worker"]], at))
        return found


def run_backend(backend: str, settings: Settings, keep: bool = False) -> tuple[Findings, float, Path]:
    """One chaos run; the findings, the seconds it took, and its folder (logs and ledgers; removed unless kept
    or failed)."""
    folder = Path(tempfile.mkdtemp(prefix=f"lq-chaos-run-{backend}-"))
    started = time.monotonic()
    findings = asyncio.run(Run(backend, settings, folder).execute())
    elapsed = time.monotonic() - started
    if not keep and not findings.problems:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return findings, elapsed, folder


def summary(backend: str, findings: Findings, elapsed: float) -> dict[str, Any]:
    """A run's findings as one JSON-able row."""
    row = asdict(findings)
    row.update(
        backend=backend,
        re_executions=dict(findings.re_executions),
        settle_seconds=round(findings.settle_seconds, 2),
        elapsed=round(elapsed, 1),
    )
    for name in ("recovery_seconds", "rerun_seconds"):
        values = row.pop(name)
        row[name.replace("_seconds", "")] = {
            "median": round(statistics.median(values), 2) if values else None,
            "max": round(max(values), 2) if values else None,
        }
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    """The results table of docs/reliability.md."""
    head = (
        "| backend | jobs | executions | kills | restarts | lost | stuck | overlaps | re-executed: kill / outage / "
        "unexplained | killed work recovered after (median / max) | and running again after | settled after the "
        "last disruption | run |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | ---: | ---: |\n"
    )
    lines = []
    for row in rows:
        again = row["re_executions"]
        lines.append(
            f"| {row['backend']} | {row['jobs']} | {row['executions']} | {row['kills']} | {row['restarts']} | "
            f"{row['lost']} | {row['stuck']} | {row['overlaps']} | {again.get('kill', 0)} / {again.get('outage', 0)} / "
            f"{again.get('unexplained', 0)} | {_spread(row['recovery'])} | {_spread(row['rerun'])} | "
            f"{row['settle_seconds']:.1f} s | {row['elapsed']:.0f} s |"
        )
    return head + "\n".join(lines) + "\n"


def _spread(values: dict[str, float | None]) -> str:
    if values["median"] is None:
        return "-"
    return f"{values['median']:.1f} s / {values['max']:.1f} s"


def _span(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    return float(low), float(high or low)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("backends", nargs="*", metavar="backend", help=f"{', '.join(BACKENDS)} (default: all)")
    parser.add_argument("--short", action="store_true", help="the CI version's settings")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--kill-every", type=_span, help="seconds between kills, e.g. 2-3")
    parser.add_argument("--no-restart", action="store_true")
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--keep", action="store_true", help="keep logs and ledgers of passing runs too")
    args = parser.parse_args(argv)
    unknown = set(args.backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(sorted(unknown))}; use {', '.join(BACKENDS)}")
    settings = SHORT if args.short else Settings()
    overrides = {
        "jobs": args.jobs,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "kill_every": args.kill_every,
        "restart": False if args.no_restart else None,
    }
    settings = Settings(**{**asdict(settings), **{k: v for k, v in overrides.items() if v is not None}})
    rows = []
    failed = False
    for backend in args.backends or BACKENDS:
        findings, elapsed, folder = run_backend(backend, settings, keep=args.keep)
        row = summary(backend, findings, elapsed)
        rows.append(row)
        verdict = "ok" if not findings.problems else "FAILED: " + "; ".join(findings.problems)
        verdict += "".join(f"; note: {note}" for note in findings.notes)
        print(f"[chaos] {backend}: {json.dumps(row)}\n[chaos] {backend}: {verdict} (logs: {folder})", flush=True)
        failed = failed or bool(findings.problems)
    table = markdown(rows)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
