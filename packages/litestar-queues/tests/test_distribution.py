"""The umbrella's metadata: lockstep versions, and every extra installs an existing sibling distribution."""

from __future__ import annotations

from pathlib import Path

import tomllib

PACKAGES = Path(__file__).resolve().parents[2]


def _project(name: str) -> dict[str, object]:
    with (PACKAGES / name / "pyproject.toml").open("rb") as handle:
        project: dict[str, object] = tomllib.load(handle)["project"]
    return project


def test_every_distribution_has_the_same_version() -> None:
    versions = {path.parent.name: _project(path.parent.name)["version"] for path in PACKAGES.glob("*/pyproject.toml")}
    assert len(set(versions.values())) == 1, versions


def test_extras_pin_existing_siblings_at_the_same_version() -> None:
    umbrella = _project("litestar-queues")
    version = umbrella["version"]
    extras = umbrella["optional-dependencies"]
    assert isinstance(extras, dict)
    assert set(extras) == {
        "redis",
        "valkey",
        "sqlspec",
        "advanced-alchemy",
        "cloudrun",
        "opentelemetry",
        "prometheus",
        "testing",
        "all",
    }
    pinned = list(extras["all"])
    for requirement in [*umbrella["dependencies"], *pinned]:  # type: ignore[misc]
        name, _, pin = requirement.partition("==")
        name = name.partition("[")[0]  # litestar-queues-opentelemetry[prometheus]: a sibling with its own extra
        assert pin == version, requirement
        assert (PACKAGES / name / "pyproject.toml").exists(), f"{name} is not a workspace distribution"
    assert sorted(pinned) == sorted(r for key, reqs in extras.items() if key != "all" for r in reqs)


def test_plain_install_gives_core_memory_and_plugin() -> None:
    names = sorted(r.partition("==")[0] for r in _project("litestar-queues")["dependencies"])  # type: ignore[union-attr]
    assert names == ["litestar-queues-core", "litestar-queues-litestar", "litestar-queues-memory"]
