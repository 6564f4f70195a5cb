"""The benchmark harness's per-round ratios (benchmarks/harness.py)."""

from __future__ import annotations

import math

from tests.modules import load_file

harness = load_file("benchmarks/harness.py")


def test_per_round_ratios_skip_peer_rounds_that_did_not_finish_or_were_not_measured() -> None:
    ours = harness.Result("ours", "enqueue single", 4.0, "jobs/s", rounds=(4.0, 6.0, 3.0))
    peer = harness.Result("peer", "enqueue single", 2.0, "jobs/s", rounds=(2.0, math.nan, 0.0))
    other = harness.Result("other", "enqueue single", 1.0, "jobs/s", rounds=(1.0, 3.0, 0.0))
    assert harness.round_ratios(ours, [peer, other], higher=True) == [2.0, 2.0]
    table = harness.markdown_table([ours, peer, other], ours=["ours"])
    assert "2.00x (2.00 to 2.00)" in table
