"""Every public helper for backend authors is documented, in the walk-through and in the contract table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from litestar_queues import flat, semantics

ROOT = Path(__file__).resolve().parents[2]
HELPERS = sorted({*semantics.__all__, *flat.__all__})


@pytest.mark.parametrize("page", ["docs/writing-a-backend.md", "docs/conformance.md"])
def test_every_helper_is_documented(page: str) -> None:
    text = (ROOT / page).read_text()
    blocks = re.findall(r"```.*?```", text, flags=re.DOTALL)
    spans = re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
    code = {word for span in [*blocks, *spans] for word in re.findall(r"\w+", span)}
    assert [name for name in HELPERS if name not in code] == []
