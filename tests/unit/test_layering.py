"""Layers import downward only, at run time and for typing alike.

Bottom to top: ``content/`` (stores), ``remote/`` (the endpoint client), ``operations/``,
then the facade (``aioras.registry``'s ``AsyncRegistry``, the sync twins, the oras-py
surface, the command line). The run-time checks use a fresh interpreter, so that modules
loaded by other tests cannot hide a cycle; the static checks read every import statement,
those under ``if TYPE_CHECKING:`` and inside functions included.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = str(ROOT / "src")

# The scan of import statements is the one ``scripts/layer_imports.py`` prints.
_SCRIPT = ROOT / "scripts" / "layer_imports.py"
_spec = importlib.util.spec_from_file_location("layer_imports", _SCRIPT)
assert _spec is not None
assert _spec.loader is not None
layer_imports = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layer_imports)
imports_of = layer_imports.imports_of

# What sits above the operations layer: the registry object, the facades and the command line.
FACADE = (
    "aioras.registry",
    "aioras.sync",
    "aioras.client",
    "aioras.provider",
    "aioras.cli",
)
OPERATIONS = ("aioras.operations",)


def _modules(package: str) -> list[str]:
    root = Path(SRC, *package.split("."))
    return [
        ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for p in sorted(root.rglob("*.py"))
    ]


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _loaded_after_import(modules: list[str]) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded


@pytest.mark.parametrize("package", ["aioras.operations", "aioras.content", "aioras.remote"])
def test_lower_layer_never_loads_the_facade(package: str) -> None:
    loaded = _loaded_after_import(_modules(package))
    assert [m for m in loaded if _under(m, FACADE)] == []


@pytest.mark.parametrize("package", ["aioras.content", "aioras.remote"])
def test_stores_and_endpoint_client_never_load_operations(package: str) -> None:
    loaded = _loaded_after_import(_modules(package))
    assert [m for m in loaded if _under(m, OPERATIONS)] == []


@pytest.mark.parametrize(
    ("package", "above"),
    [
        ("aioras.content", FACADE + OPERATIONS),
        ("aioras.remote", FACADE + OPERATIONS),
        ("aioras.operations", FACADE),
    ],
)
def test_no_import_statement_points_upward(package: str, above: tuple[str, ...]) -> None:
    upward = {
        module: sorted(name for name in imports_of(module) if _under(name, above))
        for module in _modules(package)
    }
    assert {module: names for module, names in upward.items() if names} == {}


def test_the_static_scan_sees_type_only_imports() -> None:
    # The scan is what keeps ``if TYPE_CHECKING:`` honest: it must see such an import.
    assert "aioras.remote.client" in imports_of("aioras.operations.mirror.run")


def test_the_layer_listing_finds_no_upward_import() -> None:
    counts, upward = layer_imports.edges()
    assert upward == []
    assert counts[("operations", "remote")] > 0  # the scan does see imports between layers


def test_subpackage_modules_are_checked_too() -> None:
    assert "aioras.operations.mirror.run" in _modules("aioras.operations")
    assert "aioras.operations.mirror" in _modules("aioras.operations")


def test_oci_layout_loads_no_transport_and_no_auth() -> None:
    # An OCILayout reads and writes files only: importing it must cost no HTTP stack.
    loaded = _loaded_after_import(["aioras.content.layout"])
    heavy = [
        m
        for m in loaded
        if m in ("httpx", "httpcore") or m.startswith(("aioras.auth", "aioras._http.transport"))
    ]
    assert heavy == []


def test_oci_layout_import_defers_the_schema_validator() -> None:
    # jsonschema costs about as much as the rest of aioras; the first check pays for it.
    loaded = _loaded_after_import(["aioras.content.layout"])
    assert [m for m in loaded if m == "jsonschema" or m.startswith("jsonschema.")] == []
