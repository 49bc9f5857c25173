"""List the import statements between aioras's layers; exit 1 when one points upward.

Bottom to top: ``content/`` (stores), ``remote/`` (the endpoint client), ``operations/``,
then the facade (``aioras.registry``, the sync twins, the oras-py surface, the command
line). Every import statement counts, those under ``if TYPE_CHECKING:`` and inside
functions included. ``python scripts/layer_imports.py`` prints, for each pair of layers, how
many modules of the first name a module of the second, and every upward one by name.
``tests/unit/test_layering.py`` runs the same scan.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = {
    "content": ("aioras.content",),
    "remote": ("aioras.remote",),
    "operations": ("aioras.operations",),
    "facade": ("aioras.registry", "aioras.sync", "aioras.client", "aioras.provider", "aioras.cli"),
}
ORDER = list(LAYERS)


def modules(package: str) -> list[str]:
    """Every module of ``package`` (a dotted name under ``src/``), subpackages included."""
    root = SRC.joinpath(*package.split("."))
    if not root.is_dir():
        return [package]
    return [
        ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for p in sorted(root.rglob("*.py"))
    ]


def imports_of(module: str) -> set[str]:
    """Every module ``module``'s source names in an import statement, anywhere in it."""
    path = SRC.joinpath(*module.split("."))
    source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    package = module if source.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            found.add(stem)
            # ``from . import x`` may name a submodule.
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def layer_of(name: str) -> str | None:
    """The layer ``name`` belongs to, or None (the neutral floor: _files, _http, oci, ...)."""
    for layer, prefixes in LAYERS.items():
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return layer
    return None


def edges() -> tuple[Counter[tuple[str, str]], list[str]]:
    """(importing layer, imported layer) -> modules; and every upward statement by name."""
    counts: Counter[tuple[str, str]] = Counter()
    upward: list[str] = []
    for layer, prefixes in LAYERS.items():
        for module in (m for p in prefixes for m in modules(p)):
            targets = {layer_of(name): name for name in sorted(imports_of(module))}
            for target, name in targets.items():
                if target is None or target == layer:
                    continue
                counts[(layer, target)] += 1
                if ORDER.index(target) > ORDER.index(layer):
                    upward.append(f"{module} -> {name}")
    return counts, upward


def main() -> int:
    counts, upward = edges()
    print("modules of the row's layer that import the column's (content < remote < operations <")
    print("facade; import statements of every kind, type-only ones included):\n")
    print(f"{'':12}" + "".join(f"{c:>12}" for c in ORDER))
    for row in ORDER:
        print(f"{row:12}" + "".join(f"{counts.get((row, c), '') or '-':>12}" for c in ORDER))
    print(f"\nupward imports: {len(upward)}")
    for line in upward:
        print(f"  {line}")
    return 1 if upward else 0


if __name__ == "__main__":
    sys.exit(main())
