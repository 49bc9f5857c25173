"""Layers import downward only: operations and content never load the registry or the facades.

Each check runs in a fresh interpreter so modules loaded by other tests cannot hide a cycle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")

# What sits above the operations layer: the registry object, the facades and the command line.
UPPER = (
    "aioras.remote.registry",
    # The parts AsyncRegistry is composed of (its mixins and their shared core).
    "aioras.remote._core",
    "aioras.remote._blob_endpoints",
    "aioras.remote._manifest_endpoints",
    "aioras.remote._tag_endpoints",
    "aioras.remote._operation_methods",
    "aioras.sync",
    "aioras.client",
    "aioras.provider",
    "aioras.cli",
)


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


def _modules_of(package: str) -> list[str]:
    """Every module of ``package``, those of its subpackages (operations.mirror...) too."""
    root = Path(SRC, *package.split("."))
    modules = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules.append(".".join((package, *parts)))
    return modules


def test_subpackage_modules_are_checked_too() -> None:
    assert "aioras.operations.mirror.run" in _modules_of("aioras.operations")
    assert "aioras.operations.mirror" in _modules_of("aioras.operations")


@pytest.mark.parametrize(
    "package",
    ["aioras.operations", "aioras.content"],
)
def test_lower_layer_never_imports_the_registry_or_facades(package: str) -> None:
    modules = _modules_of(package)
    # mirror.dask builds registries on workers by design: it imports the registry lazily there.
    loaded = _loaded_after_import(modules)
    upper = [m for m in loaded if any(m == u or m.startswith(u + ".") for u in UPPER)]
    assert upper == []


def test_content_layer_never_imports_operations() -> None:
    modules = _modules_of("aioras.content")
    loaded = _loaded_after_import(modules)
    assert [m for m in loaded if m.startswith("aioras.operations")] == []


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
