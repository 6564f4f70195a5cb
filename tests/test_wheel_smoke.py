"""The wheel checks of ``scripts/check_wheels.py``, exercised on small synthetic wheels.

The real wheels are built and checked by .ci/run (``uv build --all-packages`` + ``scripts/check_wheels.py``) and then
installed into a fresh venv for ``tests/wheel_smoke/``; this file makes sure the checker itself catches what it must.
"""

import importlib.util
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_wheels.py"


@pytest.fixture(scope="module")
def check_wheels() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_wheels", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_wheels"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def make_wheel(dist_dir: Path, name: str, files: list[str], version: str = "0.1.0") -> Path:
    path = dist_dir / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for file in files:
            archive.writestr(file, "")
        archive.writestr(f"{name.replace('-', '_')}-{version}.dist-info/METADATA", f"Name: {name}\n")
    return path


CORE = ["litestar_queues/__init__.py", "litestar_queues/py.typed", "litestar_queues/events/__init__.py"]
REDIS = ["litestar_queues/backends/redis/__init__.py", "litestar_queues/backends/redis/py.typed"]
CLOUDRUN = ["litestar_queues/execution/cloudrun/__init__.py", "litestar_queues/execution/cloudrun/py.typed"]
PLUGIN = ["litestar_queues/litestar/__init__.py", "litestar_queues/litestar/py.typed"]
OPENTELEMETRY = ["litestar_queues/opentelemetry/__init__.py", "litestar_queues/opentelemetry/py.typed"]


def run(check_wheels: ModuleType, tmp_path: Path, wheels: dict[str, list[str]], **versions: str) -> list[str]:
    for name, files in wheels.items():
        make_wheel(tmp_path, name, files, versions.get(name.replace("-", "_"), "0.1.0"))
    read = [check_wheels.read_wheel(path) for path in sorted(tmp_path.glob("*.whl"))]
    expected = {check_wheels.normalize(name) for name in wheels}
    errors: list[str] = check_wheels.check_wheels(read, expected)
    return errors


def good() -> dict[str, list[str]]:
    return {
        "litestar-queues": [],
        "litestar-queues-core": list(CORE),
        "litestar-queues-redis": list(REDIS),
        "litestar-queues-cloudrun": list(CLOUDRUN),
        "litestar-queues-litestar": list(PLUGIN),
        "litestar-queues-opentelemetry": list(OPENTELEMETRY),
    }


def test_a_correct_set_passes(check_wheels: ModuleType, tmp_path: Path) -> None:
    assert run(check_wheels, tmp_path, good()) == []


def test_the_same_file_in_two_wheels_fails(check_wheels: ModuleType, tmp_path: Path) -> None:
    wheels = good()
    wheels["litestar-queues-litestar"].append("litestar_queues/backends/redis/__init__.py")
    errors = run(check_wheels, tmp_path, wheels)
    assert any("shipped by 2 wheels" in error for error in errors), errors


@pytest.mark.parametrize("folder", ["backends", "execution"])
def test_an_init_in_a_pep420_folder_fails(check_wheels: ModuleType, tmp_path: Path, folder: str) -> None:
    wheels = good()
    wheels["litestar-queues-redis"].append(f"litestar_queues/{folder}/__init__.py")
    errors = run(check_wheels, tmp_path, wheels)
    assert any("namespace folder (PEP 420)" in error for error in errors), errors


@pytest.mark.parametrize(
    ("dist", "missing"),
    [
        ("litestar-queues-core", "litestar_queues/py.typed"),
        ("litestar-queues-redis", "litestar_queues/backends/redis/py.typed"),
        ("litestar-queues-cloudrun", "litestar_queues/execution/cloudrun/py.typed"),
        ("litestar-queues-litestar", "litestar_queues/litestar/py.typed"),
        ("litestar-queues-opentelemetry", "litestar_queues/opentelemetry/py.typed"),
    ],
)
def test_a_leaf_without_py_typed_fails(check_wheels: ModuleType, tmp_path: Path, dist: str, missing: str) -> None:
    wheels = good()
    wheels[dist].remove(missing)
    errors = run(check_wheels, tmp_path, wheels)
    assert any(f"{missing} is missing" in error for error in errors), errors


def test_a_leaf_split_across_wheels_fails(check_wheels: ModuleType, tmp_path: Path) -> None:
    wheels = good()
    wheels["litestar-queues-litestar"].append("litestar_queues/backends/redis/extra.py")
    errors = run(check_wheels, tmp_path, wheels)
    assert any("split across wheels" in error for error in errors), errors


def test_core_shipping_into_another_leaf_fails(check_wheels: ModuleType, tmp_path: Path) -> None:
    wheels = good()
    wheels["litestar-queues-core"].append("litestar_queues/litestar/helpers.py")
    errors = run(check_wheels, tmp_path, wheels)
    assert any("which belongs to" in error for error in errors), errors


def test_a_second_root_init_fails(check_wheels: ModuleType, tmp_path: Path) -> None:
    wheels = good()
    wheels["litestar-queues-redis"] = ["litestar_queues/__init__.py", *REDIS]
    errors = run(check_wheels, tmp_path, wheels)
    assert any("exactly one wheel must ship" in error for error in errors), errors


def test_files_outside_the_namespace_fail(check_wheels: ModuleType, tmp_path: Path) -> None:
    wheels = good()
    wheels["litestar-queues-redis"].append("tests/test_redis.py")
    errors = run(check_wheels, tmp_path, wheels)
    assert any("outside the litestar_queues namespace" in error for error in errors), errors


def test_versions_out_of_lockstep_fail(check_wheels: ModuleType, tmp_path: Path) -> None:
    errors = run(check_wheels, tmp_path, good(), litestar_queues_redis="0.2.0")
    assert any("lockstep" in error for error in errors), errors


def test_a_missing_wheel_fails(check_wheels: ModuleType, tmp_path: Path) -> None:
    make_wheel(tmp_path, "litestar-queues-core", CORE)
    read = [check_wheels.read_wheel(path) for path in tmp_path.glob("*.whl")]
    errors = check_wheels.check_wheels(read, {"litestar_queues_core", "litestar_queues_redis"})
    assert errors == ["litestar_queues_redis: no wheel was built"]


def test_the_workspace_lists_every_package(check_wheels: ModuleType) -> None:
    names = check_wheels.workspace_distributions(SCRIPT.parent.parent / "packages")
    assert {"litestar_queues", "litestar_queues_core", "litestar_queues_memory", "litestar_queues_testing"} <= names


def test_package_data_missing_from_a_wheel_fails(check_wheels: ModuleType, tmp_path: Path) -> None:
    # A template left out of the plugin wheel (say, by an include pattern for *.py only) is named.
    packages = tmp_path / "packages"
    source = packages / "litestar-queues-litestar" / "src" / "litestar_queues" / "litestar"
    (source / "dashboard" / "templates").mkdir(parents=True)
    (source.parent.parent.parent / "pyproject.toml").write_text('[project]\nname = "litestar-queues-litestar"\n')
    for path in ("__init__.py", "py.typed", "dashboard/templates/base.html"):
        (source / path).write_text("")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "plugin.cpython-311.pyc").write_text("")
    dist = tmp_path / "dist"
    dist.mkdir()
    make_wheel(dist, "litestar-queues-litestar", PLUGIN)
    read = [check_wheels.read_wheel(path) for path in dist.glob("*.whl")]
    assert check_wheels.missing_sources(read, packages) == [
        "litestar_queues_litestar-0.1.0-py3-none-any.whl: litestar_queues/litestar/dashboard/templates/base.html "
        "is not in the wheel"
    ]
    make_wheel(dist, "litestar-queues-litestar", [*PLUGIN, "litestar_queues/litestar/dashboard/templates/base.html"])
    assert check_wheels.missing_sources([check_wheels.read_wheel(path) for path in dist.glob("*.whl")], packages) == []
