"""docs/conformance.md names real tests, lists every test of the suite, and covers every method of the contract."""

from __future__ import annotations

import re
from pathlib import Path

from litestar_queues.backend import QueueBackend
from litestar_queues.testing import BackendConformance

ROOT = Path(__file__).resolve().parents[2]
TABLE = (ROOT / "docs" / "conformance.md").read_text()
SUITE = {name for name in dir(BackendConformance) if name.startswith("test_")}


def test_every_test_named_in_the_table_exists() -> None:
    named = set(re.findall(r"`(test_\w+)`", TABLE))
    assert named - SUITE == set()
    for path, name in re.findall(r"`([\w./-]+\.py)::(test_\w+)`", TABLE):
        assert f"def {name}(" in (ROOT / path).read_text(), f"{path}::{name}"


def test_every_test_of_the_suite_is_in_the_table() -> None:
    named = set(re.findall(r"`(test_\w+)`", TABLE))
    assert SUITE - named == set()


def test_every_method_of_the_contract_has_rules_in_the_table() -> None:
    methods = {name for name, member in vars(QueueBackend).items() if callable(member) and not name.startswith("_")}
    missing = {name for name in methods if f"`{name}" not in TABLE}
    assert missing == set()
