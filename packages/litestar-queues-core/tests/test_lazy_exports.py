"""Names from other distributions: importable when installed, an ImportError naming what to install when not."""

from __future__ import annotations

import sys

import pytest

import litestar_queues
import litestar_queues.events


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (litestar_queues, "QueuePlugin"),
        (litestar_queues, "DashboardConfig"),
        (litestar_queues.events, "stream_queue_events"),
    ],
)
def test_missing_integration_names_the_distribution(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
    hidden_modules = ("plugin", "streaming", "dashboard")
    for hidden in ("litestar_queues.litestar", *(f"litestar_queues.litestar.{name}" for name in hidden_modules)):
        monkeypatch.setitem(sys.modules, hidden, None)  # what an environment without the plugin looks like
    with pytest.raises(ImportError, match=r"pip install litestar-queues \(or litestar-queues-litestar\)"):
        getattr(module, name)


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        litestar_queues.Nope  # noqa: B018
