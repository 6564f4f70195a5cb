"""Line counts of each backend's source, for docs/writing-a-backend.md:
``python scripts/backend_lines.py [ROOT] [--before OTHER_CHECKOUT]``.

Per backend: all lines, lines that are neither blank nor comments, and those lines outside docstrings; SQL
migrations are left out (they are schema history, not logic). For the docs' example backend, the last row counts
the lines of the core helpers it calls: what it would carry itself without them.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

BACKENDS = {
    "memory": ["packages/litestar-queues-memory/src"],
    "resp (Redis and Valkey, shared)": ["packages/litestar-queues-resp/src"],
    "redis": ["packages/litestar-queues-redis/src"],
    "valkey": ["packages/litestar-queues-valkey/src"],
    "core `litestar_queues.sql` (the SQL backends' shared layer)": [
        "packages/litestar-queues-core/src/litestar_queues/sql"
    ],
    "sqlspec": ["packages/litestar-queues-sqlspec/src"],
    "advanced-alchemy": ["packages/litestar-queues-advanced-alchemy/src"],
    "docs example backend (`docs/examples/sqlite_backend.py`)": ["docs/examples/sqlite_backend.py"],
    "core contract and helpers (`backend.py`, `semantics.py`, `flat.py`)": [
        "packages/litestar-queues-core/src/litestar_queues/backend.py",
        "packages/litestar-queues-core/src/litestar_queues/semantics.py",
        "packages/litestar-queues-core/src/litestar_queues/flat.py",
    ],
}
EXAMPLE = "docs/examples/sqlite_backend.py"
HELPER_MODULES = {
    "litestar_queues.semantics": "packages/litestar-queues-core/src/litestar_queues/semantics.py",
    "litestar_queues.flat": "packages/litestar-queues-core/src/litestar_queues/flat.py",
}


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def _code_lines(text: str, docstrings: set[int], span: range | None = None) -> tuple[int, int, int]:
    lines = text.splitlines()
    numbered = [(number, line.strip()) for number, line in enumerate(lines, 1) if span is None or number in span]
    meaningful = [(number, line) for number, line in numbered if line and not line.startswith("#")]
    code = [number for number, _ in meaningful if number not in docstrings]
    return len(numbered), len(meaningful), len(code)


def count(path: Path) -> tuple[int, int, int]:
    """All, non-blank non-comment, and code (outside docstrings) lines of one file."""
    text = path.read_text()
    return _code_lines(text, _docstring_lines(ast.parse(text)))


def helper_lines(root: Path) -> tuple[int, int, int]:
    """The lines of the core helper functions the example backend imports, and of the ones they call."""
    used: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse((root / EXAMPLE).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module in HELPER_MODULES:
            used.setdefault(node.module, set()).update(alias.name for alias in node.names)
    totals = [0, 0, 0]
    for module, names in used.items():
        text = (root / HELPER_MODULES[module]).read_text()
        tree = ast.parse(text)
        docstrings = _docstring_lines(tree)
        functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
        todo = [name for name in names if name in functions]
        while todo:
            for called in ast.walk(functions[todo.pop()]):
                name = called.id if isinstance(called, ast.Name) else ""
                if name in functions and name not in names:
                    names.add(name)
                    todo.append(name)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in names:
                span = range(node.lineno, (node.end_lineno or node.lineno) + 1)
                for position, value in enumerate(_code_lines(text, docstrings, span)):
                    totals[position] += value
    return totals[0], totals[1], totals[2]


def table(root: Path) -> dict[str, tuple[int, int, int] | None]:
    """Each backend's three counts (``None`` where it has no source), then the example's helpers."""
    rows: dict[str, tuple[int, int, int] | None] = {}
    for name, paths in BACKENDS.items():
        files: list[Path] = []
        for relative in paths:
            path = root / relative
            if path.is_file():
                files.append(path)
            elif path.is_dir():
                files += sorted(p for p in path.rglob("*.py") if "migrations" not in p.parts)
        counts = [count(path) for path in files]
        total = (sum(c[0] for c in counts), sum(c[1] for c in counts), sum(c[2] for c in counts))
        rows[name] = total if files else None
    if (root / EXAMPLE).is_file():
        rows["core helpers the example calls"] = helper_lines(root)
    return rows


def _cell(before: int | None, after: int | None) -> str:
    if after is None:
        return "-"
    if before is None:
        return f"new: {after}"
    return f"{before} → {after} ({after - before:+d})"


def main(root: Path, before: Path | None) -> None:
    """Print the Markdown table of ``root``, or of ``before`` → ``root``."""
    after_rows = table(root)
    before_rows = table(before) if before is not None else {}
    print("| backend | lines | non-blank, non-comment | outside docstrings |")
    print("|---|---:|---:|---:|")
    for name, after in after_rows.items():
        old = before_rows.get(name)
        if before is None:
            cells = ["-"] * 3 if after is None else [str(value) for value in after]
        else:
            cells = [_cell(None if old is None else old[i], None if after is None else after[i]) for i in range(3)]
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", nargs="?", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--before", type=Path, help="another checkout (e.g. a worktree of main): print before → after")
    arguments = parser.parse_args()
    main(arguments.root, arguments.before)
