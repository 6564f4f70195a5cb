"""The chaos checks themselves: each rule catches the failure it is there for (pure data, nothing runs)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from ledger import Facts, LedgerLine, executions, judge

START = 1000.0


def _line(record: str, pid: int, event: str, at: float, *, how: str = "", attempt: int = 1) -> LedgerLine:
    return LedgerLine(record, attempt, pid, event, START + at, how)


def _run(record: str, pid: int, begin: float, end: float, attempt: int = 1) -> list[LedgerLine]:
    """An execution that ended well."""
    return [
        _line(record, pid, "start", begin, attempt=attempt),
        _line(record, pid, "end", end, how="ok", attempt=attempt),
    ]


def _facts(lines: list[LedgerLine], **changes: Any) -> Facts:
    records = sorted({line.record for line in lines})
    values: dict[str, Any] = {
        "jobs": set(records),
        "statuses": dict.fromkeys(records, "completed"),
        "results_ok": set(records),
        "lines": lines,
        "kills": {},
        "outage": None,
        "last_disruption": START,
        "settled": START + 100,
        "lease_seconds": 10.0,
        "maintenance_seconds": 5.0,
    }
    values.update(changes)
    return Facts(**values)


CLEAN = [*_run("a", 1, 1, 2), *_run("b", 2, 1, 3)]
KILLED = [_line("a", 1, "start", 1), *_run("a", 2, 20, 21, attempt=2)]
"""Job a started in pid 1, which died (no end line), then ran again to its end in pid 2."""


def test_a_clean_run_passes() -> None:
    findings = judge(_facts(CLEAN))
    assert findings.problems == [] and findings.executions == 2 and not findings.re_executions


def test_a_killed_execution_that_ran_again_is_explained_and_its_recovery_measured() -> None:
    findings = judge(_facts(KILLED, kills={1: START + 5}, recoveries=[(1, START + 16)]))
    assert findings.problems == [], findings.problems
    assert findings.re_executions == {"kill": 1}
    assert findings.recovery_seconds == [11.0] and findings.rerun_seconds == [15.0]


@pytest.mark.parametrize(
    ("facts", "problem"),
    [
        (_facts(KILLED), "no kill or outage explains"),  # ran twice, nobody was killed
        (_facts(KILLED, kills={1: START + 25}), "overlapped"),  # the first still ran when the second started
        (_facts(KILLED, kills={1: START + 5}), "no worker logged a stale recovery"),
        (replace(_facts(CLEAN), statuses={"a": "completed"}), "lost"),
        (replace(_facts(CLEAN), statuses={"a": "completed", "b": "running"}), "stuck"),
        (replace(_facts(CLEAN), statuses={"a": "completed", "b": "failed"}), "ended failed"),
        (replace(_facts(CLEAN), results_ok={"a"}), "without their result"),
        (replace(_facts(CLEAN), jobs={"a", "b", "c"}, statuses=dict.fromkeys("abc", "completed")), "no execution"),
    ],
)
def test_each_failure_is_caught(facts: Facts, problem: str) -> None:
    problems = judge(facts).problems
    assert any(problem in text for text in problems), problems


def test_a_slow_recovery_is_noted_not_failed() -> None:
    findings = judge(_facts(KILLED, kills={1: START + 5}, recoveries=[(1, START + 40)]))
    assert findings.problems == [] and "recovered later than" in findings.notes[0]


def test_an_outcome_lost_to_the_outage_is_explained() -> None:
    lines = [*_run("a", 1, 1, 2), *_run("a", 2, 30, 31, attempt=2)]
    assert judge(_facts(lines, outage=(START + 2.5, START + 4))).re_executions == {"outage": 1}  # written during it
    assert judge(_facts(lines, outage=(START + 1.5, START + 9))).re_executions == {"outage": 1}  # ran during it
    assert judge(_facts(lines, outage=(START + 5, START + 9))).re_executions == {"unexplained": 1}  # over before
    assert judge(_facts(lines)).re_executions == {"unexplained": 1}


def test_a_torn_last_line_is_skipped_and_executions_pair_up(tmp_path: Any) -> None:
    from ledger import read_ledgers

    (tmp_path / "ledger-7.jsonl").write_bytes(
        b'{"record":"a","attempt":1,"pid":7,"event":"start","at":1.0,"how":""}\n{"record":"a","att'
    )
    lines = read_ledgers(tmp_path)
    assert len(lines) == 1
    (run,) = executions(lines)["a"]
    assert (run.pid, run.ended) == (7, None)
