"""The report of benchmarks/history_instructions.py: per event, and the history's cost as on minus off."""

from __future__ import annotations

from tests.modules import load_file

load_file("benchmarks/harness.py")  # the siblings it imports, registered under their names
load_file("benchmarks/redis_compare.py")
load_file("benchmarks/redis_instructions.py")
load_file("benchmarks/history_drain.py")
instructions = load_file("benchmarks/history_instructions.py")


def test_the_table_gives_each_path_per_event_and_on_minus_off() -> None:
    rows = {"off": ([600_000.0, 530_000.0, 25.5], "1"), "on": ([630_000.0, 641_000.0, 30.0], "60")}
    lines = instructions.table(rows).splitlines()
    assert lines[2] == "| off | 1 | 200.0k | 176.7k | 8.50 |"
    assert lines[3] == "| on | 60 | 210.0k | 213.7k | 10.00 |"
    assert lines[4] == "| on - off |  | 10.0k | 37.0k | 1.50 |"
