"""Every ``__all__`` in the package is honest: each name it lists exists in its module."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import aioras


def _modules() -> list[str]:
    names = [aioras.__name__]
    for info in pkgutil.walk_packages(aioras.__path__, prefix=f"{aioras.__name__}."):
        # The CLI needs its optional extra; the Dask shard runner imports dask lazily anyway.
        if ".cli" in info.name or info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_every_name_in_all_exists(name: str) -> None:
    module = importlib.import_module(name)
    listed = getattr(module, "__all__", None)
    if listed is None:
        return
    assert len(listed) == len(set(listed)), f"{name}.__all__ lists a name twice"
    missing = [n for n in listed if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


def test_top_level_names_are_public_objects() -> None:
    assert "__version__" in aioras.__all__
    for name in aioras.__all__:
        assert not name.startswith("_") or name == "__version__", name
