"""The suite's shape: every area is in ``BackendConformance``, no test shadows another, exports are tidy."""

from __future__ import annotations

import inspect

from litestar_queues import testing
from litestar_queues.testing import BackendConformance

_AREAS = [getattr(testing, name) for name in testing.__all__ if name.endswith("Conformance")]
_AREAS.remove(BackendConformance)


def _tests_of(area: type) -> set[str]:
    return {name for name in vars(area) if name.startswith("test_")}


def test_backend_conformance_combines_every_exported_area() -> None:
    assert set(BackendConformance.__bases__) == set(_AREAS)


def test_no_test_name_is_defined_by_two_areas() -> None:
    seen: dict[str, str] = {}
    for area in _AREAS:
        for name in _tests_of(area):
            assert name not in seen, f"{area.__name__}.{name} would shadow {seen[name]}.{name}"
            seen[name] = area.__name__


def test_every_test_is_a_coroutine() -> None:
    for area in _AREAS:
        tests = _tests_of(area)
        assert tests, f"{area.__name__} has no tests"
        for name in tests:
            assert inspect.iscoroutinefunction(vars(area)[name]), f"{area.__name__}.{name} should be async"


def test_all_is_sorted_and_complete() -> None:
    assert list(testing.__all__) == sorted(testing.__all__)
    assert "server_url" in testing.__all__
