"""Benchmark workloads: the files pushed, made unique before every push.

The random base content is generated once per run (``os.urandom``, ~250 MiB/s here). Before
each push :func:`refresh` overwrites the first 32 bytes of every file with a new random
nonce, so every push carries blobs with digests the registry has never seen: neither tool
can skip an upload (aioras HEADs each blob first, oras-py too), yet the rest of the file
stays in the page cache and both tools read it under the same conditions.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
NONCE_SIZE = 32
_GEN_CHUNK = 4 * MiB


@dataclass(frozen=True)
class Workload:
    """``count`` files of ``size`` bytes pushed as one artifact (one layer per file)."""

    key: str
    label: str
    count: int
    size: int

    @property
    def total(self) -> int:
        return self.count * self.size

    def file_names(self) -> list[str]:
        return [f"{self.key}-{i:02d}.bin" for i in range(self.count)]


def workloads(quick: bool) -> list[Workload]:
    """The multi-layer workload, then the single big blob (smaller with ``quick``)."""
    if quick:
        return [
            Workload("layers", "8 x 8 MiB", 8, 8 * MiB),
            Workload("blob", "1 x 128 MiB", 1, 128 * MiB),
        ]
    return [
        Workload("layers", "8 x 64 MiB", 8, 64 * MiB),
        Workload("blob", "1 x 1 GiB", 1, 1024 * MiB),
    ]


def generate(workload: Workload, directory: Path) -> list[Path]:
    """Write the workload's files of random bytes into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in workload.file_names():
        path = directory / name
        with open(path, "wb") as fd:
            remaining = workload.size
            while remaining:
                n = min(_GEN_CHUNK, remaining)
                fd.write(os.urandom(n))
                remaining -= n
        paths.append(path)
    return paths


def refresh(paths: list[Path]) -> None:
    """Give every file a new random nonce in its first bytes: new digests, same size."""
    for path in paths:
        with open(path, "r+b") as fd:
            fd.write(os.urandom(NONCE_SIZE))


def sha256_file(path: Path) -> str:
    """``sha256:<hex>`` of a file."""
    h = hashlib.sha256()
    buf = bytearray(4 * MiB)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fd:
        while n := fd.readinto(buf):
            h.update(view[:n])
    return f"sha256:{h.hexdigest()}"
