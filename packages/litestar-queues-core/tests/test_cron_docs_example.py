"""Run docs/examples/cron_next_runs.py so the documented output cannot drift from the code."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "cron_next_runs.py"


def test_cron_next_runs_example(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = runpy.run_path(str(EXAMPLE), run_name="__main__")
    printed = capsys.readouterr().out
    assert printed == namespace["EXPECTED"]
    assert "2026-03-29 03:00 CEST (01:00 UTC)" in printed  # the 02:30 slot skipped by the DST gap
    assert printed.count("01:30 EDT") == 1  # the repeated 01:30 fires once, at its first occurrence
