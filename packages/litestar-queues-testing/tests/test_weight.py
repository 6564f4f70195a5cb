"""A backend author needs core and the suite only: ``litestar-queues-testing`` brings no Litestar."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, requires

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

_WEB_STACK = {"litestar", "litestar-queues-litestar", "litestar-queues"}


def _requirements(distribution: str) -> set[str]:
    """The names ``distribution`` needs installed, transitively (extras left out), as far as they are installed."""
    needed: set[str] = set()
    todo = [distribution]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        try:
            listed = requires(name) or []
        except PackageNotFoundError:
            continue  # not installed here (a marker excluded it): it brings nothing either
        for line in listed:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return needed


def test_the_testing_distribution_requires_no_litestar() -> None:
    needed = _requirements("litestar-queues-testing")
    assert "litestar-queues-core" in needed
    assert not needed & _WEB_STACK, sorted(needed & _WEB_STACK)


def test_importing_the_suite_imports_no_litestar() -> None:
    # A fresh interpreter: this test process may have imported Litestar through other tests.
    script = (
        "import sys\n"
        "import litestar_queues.testing\n"
        "from litestar_queues.testing import BackendConformance, run_until_empty\n"
        "web = ('litestar', 'litestar_queues.litestar')\n"
        "print(sorted(m for m in sys.modules if m in web or m.startswith(tuple(w + '.' for w in web))))\n"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip()
    assert found == "[]", found
