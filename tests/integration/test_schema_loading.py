"""The first manifest check of a process imports jsonschema in a worker thread.

That import (40-180 ms) would otherwise stop the whole event loop. Each case runs in a fresh
interpreter, where jsonschema is not imported yet, against the real registry, and records
which thread asked for the module.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aioras.testing import LocalRegistry

pytestmark = pytest.mark.anyio

SCRIPT = r"""
import asyncio, importlib.abc, sys, threading

asked_on_main_thread = []


class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "jsonschema":
            asked_on_main_thread.append(threading.current_thread() is threading.main_thread())
        return None


sys.meta_path.insert(0, Spy())
from aioras import AsyncRegistry


async def main(host, ref, action):
    async with AsyncRegistry(host, insecure=True) as reg:
        if action == "push":
            with open("file.txt", "w") as f:
                f.write("content")
            await reg.push(ref, files=["file.txt"])
        else:
            await reg.get_manifest(ref)


asyncio.run(main(*sys.argv[1:]))
print(asked_on_main_thread)
"""


def _run(host: str, ref: str, action: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, host, ref, action],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.mark.parametrize("action", ["push", "fetch"])
async def test_the_first_manifest_check_imports_jsonschema_off_the_event_loop(
    registry: LocalRegistry, tmp_path: Path, action: str
) -> None:
    ref = registry.reference("schemas/first:v1")
    if action == "fetch":
        _run(registry.host, ref, "push", tmp_path)  # something to fetch
    assert _run(registry.host, ref, action, tmp_path) == "[False]"
