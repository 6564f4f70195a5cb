"""The instruction count that benchmarks/bulk_instructions.py reads from a callgrind output file."""

from __future__ import annotations

import pytest
from tests.modules import load_file

bulk_instructions = load_file("benchmarks/bulk_instructions.py")


def test_the_count_is_the_totals_line_of_the_callgrind_output() -> None:
    output = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfn=(1) main\n16 5\nsummary: 120\ntotals: 123456\n"
    assert bulk_instructions.collected_instructions(output) == 123456
    assert bulk_instructions.collected_instructions("events: Ir\nsummary: 77\n") == 77


def test_an_output_without_a_count_is_an_error() -> None:
    with pytest.raises(ValueError, match="no totals"):
        bulk_instructions.collected_instructions("events: Ir\n")
