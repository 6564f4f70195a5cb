"""Re-export names that live in optional distributions, failing with what to install."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

__all__ = ("load_lazy",)


def load_lazy(package: str, name: str, table: Mapping[str, str]) -> Any:
    """Import ``name`` from the module ``table`` assigns it (a PEP 562 ``__getattr__`` body).

    Raises:
        AttributeError: ``name`` is not in the table.
        ImportError: the distribution providing it is not installed (the message names what to install).
    """
    module_name = table.get(name)
    if module_name is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name not in {"litestar", "litestar_queues.litestar", module_name}:
            raise  # installed, but broken: show the real error
        raise ImportError(
            f"{package}.{name} needs the Litestar integration: "
            "pip install litestar-queues (or litestar-queues-litestar)"
        ) from exc
    return getattr(module, name)
