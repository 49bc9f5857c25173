"""Worker functions of the pickling tests: module-level, so ``spawn`` children import them.

Each takes a registry object that arrived in the worker by pickle, uses it against the real
registry, and returns plain data the test checks (file digests, what the object carried).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from aioras.provider import Registry


class MirrorClient(Registry):
    """An oras-py style subclass with state of its own, set before and after the base's."""

    def __init__(self, *args: Any, channel: str = "main", **kwargs: Any) -> None:
        self.channel = channel
        super().__init__(*args, **kwargs)
        self.seen: list[str] = []
        self.options = {"retries": 3, "labels": ("a", "b")}

    def note(self, name: str) -> None:
        self.seen.append(name)


def digests(paths: list[str]) -> dict[str, str]:
    """``{file name: sha256}`` of pulled files."""
    return {Path(p).name: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def pull_in_worker(registry: Registry, target: str, outdir: str) -> dict[str, Any]:
    """Pull ``target`` into ``outdir`` with the registry that arrived here; what was pulled."""
    with registry:
        paths = registry.pull(target=target, outdir=outdir)
    return {"pid": os.getpid(), "files": digests(paths)}


def pull_task(task: tuple[Registry, str, str]) -> dict[str, Any]:
    """``Pool.map``'s shape: the client inside the task tuple."""
    registry, target, outdir = task
    return pull_in_worker(registry, target, outdir)


def pull_with_local_credentials(registry: Registry, target: str, outdir: str) -> dict[str, Any]:
    """Pull with a registry sent without secrets; report what credentials it found here."""
    result = pull_in_worker(registry, target, outdir)
    result["environment_user"] = registry.environment.oras_user
    return result
