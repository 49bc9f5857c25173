"""Worker functions of the blob cache's process tests: module-level, so ``spawn`` children
import them.

Each child runs its own event loop and its own :class:`aioras.AsyncRegistry`, leases blobs
from a :class:`aioras.BlobCache` shared through the file system with the blob's repository
(usually reached through the test's fault proxy) as the source, and reports plain data.
"""

from __future__ import annotations

import hashlib
import os
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

import anyio

from aioras import AsyncRegistry, BlobCache
from aioras.descriptor import Descriptor


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


async def _lease_all(
    cache: BlobCache, host: str, repository: str, descriptors: list[Descriptor], outdir: Path
) -> list[dict[str, Any]]:
    results = []
    async with AsyncRegistry(host, insecure=True) as registry:
        repo = registry.repository(f"{host}/{repository}")
        for index, descriptor in enumerate(descriptors):
            async with cache.lease(descriptor, lambda d=descriptor: repo.fetch(d)) as blob:
                out = await blob.copy_to(outdir / f"{index}.bin")
                results.append({"hit": blob.hit, "digest": _sha256(out)})
    return results


def lease_blobs(
    cache_dir: str,
    max_bytes: int | None,
    host: str,
    repository: str,
    descriptors: list[Descriptor],
    outdir: str,
    start: Barrier | None = None,
) -> list[dict[str, Any]]:
    """Lease each blob in turn (fetching misses from the registry), copy it out; report.

    ``start``: all workers leave the barrier together, so their first lease races.
    """
    cache = BlobCache(cache_dir, max_bytes=max_bytes)
    os.makedirs(outdir, exist_ok=True)
    if start is not None:
        start.wait()
    return anyio.run(_lease_all, cache, host, repository, descriptors, Path(outdir))


def slow_reader(
    cache_dir: str, descriptor: Descriptor, reading: Event, proceed: Event, report: str
) -> None:
    """Hold a lease, read its first chunk, signal ``reading``, wait for ``proceed``, finish.

    Writes the digest of every byte read to ``report`` (or the error it met).
    """

    async def main() -> str:
        cache = BlobCache(cache_dir)
        async with cache.lookup(descriptor) as blob:
            assert blob is not None
            digest = hashlib.sha256()
            stream = blob.stream(chunk_size=64 * 1024)
            digest.update(await stream.__anext__())
            reading.set()
            await anyio.to_thread.run_sync(proceed.wait)
            async for chunk in stream:
                digest.update(chunk)
        return "sha256:" + digest.hexdigest()

    try:
        result = anyio.run(main)
    except Exception as error:  # reported to the test, which fails on it
        result = f"error: {error!r}"
    Path(report).write_text(result)


def pull_with_cache(
    cache_dir: str,
    host: str,
    target: str,
    outdir: str,
    start: Barrier | None = None,
    max_bytes: int | None = None,
) -> dict[str, str]:
    """Pull ``target`` with a registry client using the cache; ``{file name: digest}``."""

    async def main() -> list[str]:
        cache = BlobCache(cache_dir, max_bytes=max_bytes)
        async with AsyncRegistry(host, insecure=True, cache=cache) as registry:
            return await registry.pull(target=target, outdir=outdir)

    if start is not None:
        start.wait()
    return {Path(p).name: _sha256(Path(p)) for p in anyio.run(main)}
