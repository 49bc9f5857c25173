"""The command line's modules import one another in one direction only (no cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "src" / "aioras" / "cli"


def _imports(path: Path) -> set[str]:
    """The sibling modules of ``aioras.cli`` that ``path`` imports, wherever it does."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found - {"__init__"}


def test_cli_modules_import_each_other_without_a_cycle() -> None:
    graph = {p.stem: _imports(p) for p in CLI.glob("*.py") if p.stem != "__init__"}
    state: dict[str, str] = {}

    def visit(module: str, path: tuple[str, ...]) -> None:
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join((*path, module))}"
        state[module] = "open"
        for other in sorted(graph.get(module, ())):
            visit(other, (*path, module))
        state[module] = "done"

    for module in sorted(graph):
        visit(module, ())
    assert "commands" in graph["run"]  # run calls the verbs; the verbs never reach back
