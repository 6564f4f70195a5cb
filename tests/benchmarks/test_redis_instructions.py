"""The counting of benchmarks/redis_instructions.py: callgrind's summary, the server's command counts, per-job costs."""

from __future__ import annotations

import pytest
from tests.modules import load_file

load_file("benchmarks/harness.py")  # the siblings it imports, registered under their names
load_file("benchmarks/redis_compare.py")
instructions = load_file("benchmarks/redis_instructions.py")


def test_collected_reads_callgrinds_summary_and_refuses_output_without_one() -> None:
    output = "==123== Events    : Ir\n==123== Collected : 987654321\n==123==\n==123== I   refs:      987,654,321\n"
    assert instructions.collected(output) == 987654321
    with pytest.raises(RuntimeError, match="no callgrind summary"):
        instructions.collected("==123== Memcheck, a memory error detector\n")


def test_server_commands_count_every_command_but_the_measurements_own() -> None:
    info = {
        "cmdstat_evalsha": {"calls": 10, "usec": 400},
        "cmdstat_zadd": {"calls": 40, "usec": 90},
        "cmdstat_info": {"calls": 3, "usec": 10},
        "cmdstat_flushall": {"calls": 1, "usec": 5},
        "cmdstat_script|load": {"calls": 28, "usec": 50},
        "used_cpu_user": 1.5,
    }
    assert instructions.server_commands(info) == 50


def test_per_job_is_the_difference_of_the_two_runs_over_the_jobs_between_them() -> None:
    assert instructions.per_job((1_000, 30, 7), (201_000, 430, 7), 100) == [2_000, 4, 0]


def test_the_table_has_one_row_per_system_and_path() -> None:
    table = instructions.table({("ours", "enqueue"): [234_000.0, 211_000.0, 10.0]})
    assert table.splitlines()[-1] == "| ours | enqueue | 234k | 211k | 10.0 |"
