"""Reading the chaos ledgers back: executions, and what the harness did to the worker processes and the server.

Everything here is pure: the harness gathers the facts (ledger lines, kills, the restart window, the records) and
:func:`judge` turns them into findings, so the rules are tested without running anything.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

__all__ = ("Execution", "Facts", "Findings", "LedgerLine", "executions", "judge", "read_ledgers")


class LedgerLine(msgspec.Struct, frozen=True):
    """One line of a ledger: an execution of a record started, or ended (``how`` says how)."""

    record: str
    attempt: int
    pid: int
    event: str
    """``start`` or ``end``."""
    at: float
    """``time.time()`` when it was written."""
    how: str = ""
    """For ``end``: ``ok`` (the work is done) or ``interrupted`` (cancelled by a hand-back, a cancel or a timeout)."""


def read_ledgers(folder: Path) -> list[LedgerLine]:
    """Every line of every ledger in ``folder``; a line torn by a SIGKILL (the last of its file) is skipped."""
    decode = msgspec.json.Decoder(LedgerLine).decode
    lines: list[LedgerLine] = []
    for path in sorted(folder.glob("ledger-*.jsonl")):
        for raw in path.read_bytes().splitlines():
            try:
                lines.append(decode(raw))
            except msgspec.DecodeError:
                continue
    return lines


@dataclass(frozen=True)
class Execution:
    """One run of a record's code in one process: from its start line to its end line (``None``: never ended)."""

    record: str
    attempt: int
    pid: int
    started: float
    ended: float | None
    how: str | None


def executions(lines: Iterable[LedgerLine]) -> dict[str, list[Execution]]:
    """Pair start and end lines per process and record; the executions of each record in order of start."""
    open_runs: dict[tuple[int, str], LedgerLine] = {}
    runs: dict[str, list[Execution]] = defaultdict(list)
    for line in sorted(lines, key=lambda item: (item.pid, item.at)):
        key = (line.pid, line.record)
        if line.event == "start":
            begun = open_runs.pop(key, None)
            if begun is not None:  # cannot happen in one process: a start without its end
                runs[line.record].append(Execution(line.record, begun.attempt, line.pid, begun.at, None, None))
            open_runs[key] = line
        else:
            begun = open_runs.pop(key, None)
            if begun is not None:
                runs[line.record].append(Execution(line.record, begun.attempt, line.pid, begun.at, line.at, line.how))
    for (pid, record), begun in open_runs.items():
        runs[record].append(Execution(record, begun.attempt, pid, begun.at, None, None))
    for record_runs in runs.values():
        record_runs.sort(key=lambda run: run.started)
    return dict(runs)


@dataclass
class Facts:
    """What happened in a chaos run, as the harness saw it."""

    jobs: set[str]
    """Ids of the records enqueued."""
    statuses: dict[str, str]
    """Status of every record the backend holds at the end, by id."""
    results_ok: set[str]
    """Ids of completed records whose result is the one their task returns."""
    lines: list[LedgerLine]
    kills: dict[int, float]
    """``time.time()`` of each SIGKILL, by pid."""
    outage: tuple[float, float] | None
    """When the server went down and was back (``None``: no restart)."""
    last_disruption: float
    """The last kill or the end of the restart, whichever came later."""
    settled: float
    """When every record was terminal."""
    lease_seconds: float
    """``stale_threshold``."""
    maintenance_seconds: float
    recoveries: list[tuple[int, float]] = field(default_factory=list)
    """Stale recoveries the workers logged: the pid of the worker whose lease expired, and when."""


@dataclass
class Findings:
    """The checks of a chaos run; ``problems`` is empty when every one passed."""

    jobs: int = 0
    kills: int = 0
    restarts: int = 0
    executions: int = 0
    lost: int = 0
    stuck: int = 0
    failed: int = 0
    wrong_results: int = 0
    overlaps: int = 0
    re_executions: Counter[str] = field(default_factory=Counter)
    """Executions that did not end their record, by cause: ``kill`` or ``outage``; ``unexplained`` is a failure."""
    settle_seconds: float = 0.0
    recovery_seconds: list[float] = field(default_factory=list)
    """From each SIGKILL to the stale recovery of each record the killed worker held (back to pending)."""
    rerun_seconds: list[float] = field(default_factory=list)
    """From each SIGKILL that cut an execution short to the next execution of that record (recovery, then a
    free slot: this includes waiting behind the backlog)."""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Timings worth a look that are no failure: a busy machine stretches them."""


_ALIVE = float("inf")
_CLAIM_SLACK_SECONDS = 3.0
"""Beyond the bound of a recovery: the maintenance pass itself, on a busy machine."""


def _cause(run: Execution, facts: Facts) -> str:
    """Why ``run`` did not end its record: its process was killed before its outcome was written, or it ran (or
    was being written) while the server was down: a restart longer than the lease lets leases expire, and one
    that loses writes loses outcomes. Else it is unexplained."""
    killed = facts.kills.get(run.pid)
    if killed is not None and (run.ended is None or run.ended <= killed <= run.ended + facts.lease_seconds):
        return "kill"
    if facts.outage is not None:
        down, back = facts.outage
        ended = run.ended if run.ended is not None else killed
        if run.started <= back and (ended is None or ended >= down - 1.0):
            return "outage"
    return "unexplained"


def judge(facts: Facts) -> Findings:
    """Check a chaos run: every job terminal and completed with its result, none lost, none stuck, no two
    executions of one job overlapping while their processes lived, every re-execution explained; and measure
    how long the queue took to settle and to recover killed work."""
    findings = Findings(jobs=len(facts.jobs), kills=len(facts.kills), restarts=0 if facts.outage is None else 1)
    lost = facts.jobs - facts.statuses.keys()
    findings.lost = len(lost)
    findings.stuck = sum(1 for status in facts.statuses.values() if status in ("pending", "running"))
    findings.failed = sum(1 for status in facts.statuses.values() if status in ("failed", "cancelled", "expired"))
    findings.wrong_results = sum(
        1 for record, status in facts.statuses.items() if status == "completed" and record not in facts.results_ok
    )
    runs = executions(facts.lines)
    findings.executions = sum(len(record_runs) for record_runs in runs.values())
    never_ran = [record for record in facts.jobs if record not in runs]
    unexplained: list[str] = []
    for record, record_runs in runs.items():
        for earlier, later in itertools.pairwise(record_runs):
            killed = facts.kills.get(earlier.pid)
            ended = earlier.ended if earlier.ended is not None else (killed if killed is not None else _ALIVE)
            if later.started < ended:
                findings.overlaps += 1
            cause = _cause(earlier, facts)
            findings.re_executions[cause] += 1
            if cause == "unexplained":
                unexplained.append(f"{record} attempt {earlier.attempt} in pid {earlier.pid} ({earlier.how})")
            if earlier.ended is None and killed is not None:
                findings.rerun_seconds.append(later.started - killed)
    findings.recovery_seconds = [at - facts.kills[pid] for pid, at in facts.recoveries if pid in facts.kills]
    findings.settle_seconds = max(0.0, facts.settled - facts.last_disruption)
    _problems(findings, lost, never_ran, unexplained, facts)
    return findings


def _problems(
    findings: Findings, lost: set[str], never_ran: Sequence[str], unexplained: Sequence[str], facts: Facts
) -> None:
    problems = findings.problems
    if lost:
        problems.append(f"{len(lost)} job(s) lost, e.g. {sorted(lost)[:3]}")
    if findings.stuck:
        problems.append(f"{findings.stuck} job(s) stuck pending or running")
    if findings.failed:
        problems.append(f"{findings.failed} job(s) ended failed, cancelled or expired")
    if findings.wrong_results:
        problems.append(f"{findings.wrong_results} completed job(s) without their result")
    if never_ran:
        problems.append(f"{len(never_ran)} job(s) have no execution in the ledger, e.g. {list(never_ran)[:3]}")
    if findings.overlaps:
        problems.append(f"{findings.overlaps} pair(s) of executions of one job overlapped")
    if unexplained:
        problems.append(f"{len(unexplained)} re-execution(s) no kill or outage explains, e.g. {list(unexplained)[:3]}")
    # stale_threshold + one maintenance interval, or two more if the maintenance lock's holder died meanwhile
    bound = facts.lease_seconds + 3 * facts.maintenance_seconds + _CLAIM_SLACK_SECONDS
    slow = [seconds for seconds in findings.recovery_seconds if seconds > bound]
    if slow:  # timing: a note, not a failure (a loaded machine delays maintenance passes)
        findings.notes.append(
            f"{len(slow)} record(s) of killed workers recovered later than {bound:g}s, at most {max(slow):.1f}s"
        )
    if findings.kills and not findings.recovery_seconds and findings.re_executions["kill"]:
        problems.append("kills cut executions short, yet no worker logged a stale recovery")
