"""Check the wheels built from the workspace before anyone installs them.

Usage: ``python scripts/check_wheels.py DIST_DIR [--packages-dir DIR]``

All distributions share one import namespace, ``litestar_queues`` (DESIGN.md §3), so a packaging slip shows up only
when two wheels are installed side by side. This proves, from the wheel files alone, that:

* no two wheels ship the same file (``*.dist-info/`` aside);
* exactly one wheel (core) ships ``litestar_queues/__init__.py``, and none ships an ``__init__.py`` (or any file)
  directly in the PEP 420 folders ``litestar_queues/backends/`` and ``litestar_queues/execution/``;
* every leaf package (``litestar_queues/backends/<x>/``, ``litestar_queues/execution/<x>/``, any other top-level
  ``litestar_queues/<x>/`` of a non-core wheel, and ``litestar_queues/`` itself for core) belongs to exactly one wheel,
  and that wheel ships the leaf's ``__init__.py`` and ``py.typed``;
* nothing is shipped outside the namespace, and all wheels carry the same version (lockstep);
* with ``--packages-dir`` (default: the workspace's ``packages/`` when it exists), every workspace distribution has
  exactly one wheel, and that wheel ships every file of its ``src/`` folder (templates, assets and other package
  data too, not only modules).

Exit status 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

NAMESPACE = "litestar_queues"
PEP420_FOLDERS = ("backends", "execution")
WORKSPACE_PACKAGES = Path(__file__).resolve().parent.parent / "packages"

__all__ = ("Wheel", "check_wheels", "main", "missing_sources", "read_wheel", "workspace_distributions")


def normalize(name: str) -> str:
    """Normalize a distribution name the way wheel file names do (PEP 503 + underscores)."""
    return re.sub(r"[-_.]+", "_", name).lower()


@dataclass
class Wheel:
    """The parts of a wheel the checks look at."""

    filename: str
    name: str
    version: str
    files: list[str] = field(default_factory=list)

    @property
    def is_core(self) -> bool:
        return f"{NAMESPACE}/__init__.py" in self.files


def read_wheel(path: Path) -> Wheel:
    """Read a wheel's name, version and file list (without its ``.dist-info`` folder)."""
    parts = path.name[: -len(".whl")].split("-")
    if len(parts) < 5:
        msg = f"{path.name}: not a wheel file name"
        raise ValueError(msg)
    with zipfile.ZipFile(path) as archive:
        files = [
            info.filename
            for info in archive.infolist()
            if not info.is_dir() and not info.filename.split("/", 1)[0].endswith(".dist-info")
        ]
    return Wheel(filename=path.name, name=normalize(parts[0]), version=parts[1], files=sorted(files))


def leaf_of(wheel: Wheel, path: str) -> str | None:
    """The leaf package directory a shipped file belongs to, or None when it lies outside any leaf."""
    parts = path.split("/")
    if parts[0] != NAMESPACE or len(parts) < 2:
        return None
    if parts[1] in PEP420_FOLDERS:
        return "/".join(parts[:3]) if len(parts) >= 4 else None
    if len(parts) == 2 or wheel.is_core:
        return NAMESPACE
    return "/".join(parts[:2])


def check_wheels(wheels: list[Wheel], expected: set[str] | None = None) -> list[str]:
    """Return every problem found in a set of wheels (an empty list when they are fine)."""
    errors: list[str] = []
    if not wheels:
        return ["no wheels found"]

    by_name: dict[str, list[str]] = defaultdict(list)
    for wheel in wheels:
        by_name[wheel.name].append(wheel.filename)
    errors.extend(
        f"{name}: {len(filenames)} wheels ({', '.join(filenames)})"
        for name, filenames in sorted(by_name.items())
        if len(filenames) > 1
    )
    if expected is not None:
        errors.extend(f"{name}: no wheel was built" for name in sorted(expected - by_name.keys()))
        errors.extend(
            f"{name}: wheel of a distribution that is not in the workspace"
            for name in sorted(by_name.keys() - expected)
        )

    versions = {wheel.version for wheel in wheels}
    if len(versions) > 1:
        listing = ", ".join(f"{wheel.name} {wheel.version}" for wheel in wheels)
        errors.append(f"versions are not in lockstep: {listing}")

    owners: dict[str, list[str]] = defaultdict(list)
    for wheel in wheels:
        for path in wheel.files:
            owners[path].append(wheel.filename)
    errors.extend(
        f"{path} is shipped by {len(filenames)} wheels: {', '.join(filenames)}"
        for path, filenames in sorted(owners.items())
        if len(filenames) > 1
    )

    cores = [wheel.filename for wheel in wheels if wheel.is_core]
    if len(cores) != 1:
        errors.append(f"exactly one wheel must ship {NAMESPACE}/__init__.py, found {len(cores)}: {cores}")

    leaves: dict[str, set[str]] = defaultdict(set)
    for wheel in wheels:
        for path in wheel.files:
            parts = path.split("/")
            if parts[0] != NAMESPACE:
                errors.append(f"{wheel.filename}: ships {path}, outside the {NAMESPACE} namespace")
                continue
            if len(parts) == 3 and parts[1] in PEP420_FOLDERS:
                errors.append(
                    f"{wheel.filename}: ships {path}; {NAMESPACE}/{parts[1]}/ is a namespace folder (PEP 420) "
                    f"and must stay empty in every distribution"
                )
                continue
            leaf = leaf_of(wheel, path)
            if leaf is not None:
                leaves[leaf].add(wheel.filename)

    by_filename = {wheel.filename: wheel for wheel in wheels}
    for leaf, filenames in sorted(leaves.items()):
        if len(filenames) > 1:
            errors.append(f"{leaf}/ is split across wheels: {', '.join(sorted(filenames))}")
            continue
        wheel = by_filename[next(iter(filenames))]
        errors.extend(
            f"{wheel.filename}: {leaf}/{required} is missing"
            for required in ("__init__.py", "py.typed")
            if f"{leaf}/{required}" not in wheel.files
        )

    # A non-core leaf must not receive files from another wheel, core included (core's files count as its own leaf).
    non_core_leaves = {
        leaf: next(iter(names)) for leaf, names in leaves.items() if leaf != NAMESPACE and len(names) == 1
    }
    for wheel in wheels:
        for path in wheel.files:
            for leaf, owner in non_core_leaves.items():
                if path.startswith(f"{leaf}/") and wheel.filename != owner:
                    errors.append(f"{wheel.filename}: ships {path} inside {leaf}/, which belongs to {owner}")
    return errors


def workspace_distributions(packages_dir: Path) -> set[str]:
    """Normalized names of the distributions under a workspace's ``packages/`` folder."""
    import tomllib  # noqa: PLC0415  (Python >= 3.11; only this function needs it)

    return {
        normalize(tomllib.loads(pyproject.read_text())["project"]["name"])
        for pyproject in sorted(packages_dir.glob("*/pyproject.toml"))
    }


def missing_sources(wheels: list[Wheel], packages_dir: Path) -> list[str]:
    """Every file under a workspace package's ``src/`` that its wheel does not ship (bytecode caches aside)."""
    import tomllib  # noqa: PLC0415  (Python >= 3.11; only the workspace checks need it)

    by_name = {wheel.name: wheel for wheel in wheels}
    errors = []
    for pyproject in sorted(packages_dir.glob("*/pyproject.toml")):
        wheel = by_name.get(normalize(tomllib.loads(pyproject.read_text())["project"]["name"]))
        source = pyproject.parent / "src"
        if wheel is None or not source.is_dir():
            continue
        shipped = set(wheel.files)
        errors.extend(
            f"{wheel.filename}: {path} is not in the wheel"
            for path in sorted(
                file.relative_to(source).as_posix()
                for file in source.rglob("*")
                if file.is_file() and "__pycache__" not in file.parts
            )
            if path not in shipped
        )
    return errors


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("dist_dir", type=Path, help="folder holding the built wheels")
    parser.add_argument(
        "--packages-dir",
        type=Path,
        default=WORKSPACE_PACKAGES if WORKSPACE_PACKAGES.is_dir() else None,
        help="workspace packages folder: every distribution in it must have a wheel (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    wheels = [read_wheel(path) for path in sorted(args.dist_dir.glob("*.whl"))]
    expected = workspace_distributions(args.packages_dir) if args.packages_dir else None
    for wheel in wheels:
        leaves = sorted({leaf for path in wheel.files if (leaf := leaf_of(wheel, path)) is not None})
        print(f"  {wheel.filename:<60} {len(wheel.files):>4} files  {', '.join(leaves) or '(metadata only)'}")

    errors = check_wheels(wheels, expected)
    if args.packages_dir:
        errors += missing_sources(wheels, args.packages_dir)
    if errors:
        print(f"check_wheels: {len(errors)} problem(s) in {args.dist_dir}:", file=sys.stderr)
        for error in errors:
            print(f"  - {error}", file=sys.stderr)
        return 1
    print(
        f"check_wheels: {len(wheels)} wheels OK (no shared files, PEP 420 folders empty, every leaf has py.typed, "
        "every source file shipped)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
