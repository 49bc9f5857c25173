"""BlobCache across processes, with the real registry as the source behind the fault proxy.

Children are ``spawn`` processes (``support.cacheworkers``) with a registry client and a
``BlobCache`` of their own on one directory; the proxy counts the blob bytes the registry
serves. Waiting for a child's progress polls files (no timed assertion): the test's
timeout bounds a hang.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import anyio
import pytest

from aioras import AsyncRegistry, BlobCache
from aioras.descriptor import Descriptor
from aioras.digest import digest_bytes
from aioras.testing import LocalRegistry
from support import cacheworkers
from support.faultproxy import Fault, FaultProxy

pytestmark = pytest.mark.anyio

SPAWN = multiprocessing.get_context("spawn")
MiB = 1024 * 1024


def describe(data: bytes) -> Descriptor:
    digest = digest_bytes(data)
    return {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)}


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), MiB):
        yield data[start : start + MiB]


async def push_blobs(registry: LocalRegistry, repository: str, blobs: list[bytes]) -> None:
    async with AsyncRegistry(registry.host, insecure=True) as reg:
        repo = reg.repository(f"{registry.host}/{repository}")
        for data in blobs:
            await repo.push(describe(data), chunks(data))


def blob_bytes_served(proxy: FaultProxy) -> int:
    return sum(e.sent for e in proxy.requests_matching("GET", "/blobs/sha256:"))


async def join(process: BaseProcess) -> int | None:
    await anyio.to_thread.run_sync(process.join)
    return process.exitcode


async def run_children(target: Any, argument_lists: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``target(*arguments)`` in one spawned child each; their results, in order."""
    with SPAWN.Pool(len(argument_lists)) as pool:
        pending = pool.starmap_async(target, argument_lists)
        return await anyio.to_thread.run_sync(pending.get)


async def run_children_sampling(
    target: Any, argument_lists: list[tuple[Any, ...]], cache_dir: Path
) -> tuple[list[Any], int]:
    """`run_children`, sampling the bytes under ``cache_dir/blobs`` meanwhile: the peak."""
    peak = 0
    results: list[Any] = []
    async with anyio.create_task_group() as tasks:

        async def work() -> None:
            results.extend(await run_children(target, argument_lists))

        tasks.start_soon(work)
        while not results:
            peak = max(peak, files_in(cache_dir / "blobs"))
            await anyio.sleep(0.01)
    return results, peak


def part_written(blobs: Path, encoded: str) -> bool:
    """Whether a part of a fill of ``encoded`` (``.<hex>.*``, a download's ``..<hex>.*``)
    holds some bytes."""
    for path in blobs.iterdir() if blobs.is_dir() else []:
        if path.name.lstrip(".").startswith(f"{encoded}."):
            try:
                if path.stat().st_size > 0:
                    return True
            except FileNotFoundError:
                continue  # renamed meanwhile
    return False


async def kill_once_filling(child: BaseProcess, blobs: Path, encoded: str) -> None:
    """SIGKILL ``child`` once its fill of ``encoded`` has written some bytes to a part."""
    while not part_written(blobs, encoded):
        assert child.is_alive(), "the child ended before its fill wrote a byte"
        await anyio.sleep(0.05)
    os.kill(child.pid or 0, signal.SIGKILL)
    assert await join(child) == -signal.SIGKILL
    assert not (blobs / encoded).exists()  # the part is never taken for the blob


def files_in(directory: Path) -> int:
    """Bytes of every file under ``directory`` (finished entries and parts alike)."""
    total = 0
    for parent, _, names in os.walk(directory):
        for name in names:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except FileNotFoundError:
                continue  # renamed or evicted while we looked
    return total


@pytest.mark.parametrize(
    "size", [32 * MiB, pytest.param(256 * MiB, marks=pytest.mark.slow)], ids=["32MiB", "256MiB"]
)
async def test_eight_processes_fetching_one_blob_make_the_registry_serve_it_once(
    registry: LocalRegistry, fault_proxy: FaultProxy, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    await push_blobs(registry, "cache/shared", [data])
    # Slowed so that the fill is still running when the others ask for the blob.
    fault_proxy.add(Fault("throttle", rate=64 * MiB), method="GET", path="/blobs/")
    cache_dir = tmp_path / "cache"
    start = SPAWN.Manager().Barrier(8)
    arguments = [
        (str(cache_dir), None, fault_proxy.host, "cache/shared", [describe(data)],
         str(tmp_path / f"out{i}"), start)
        for i in range(8)
    ]  # fmt: skip
    results = await run_children(cacheworkers.lease_blobs, arguments)
    leases = [r[0] for r in results]
    assert [lease["digest"] for lease in leases] == [describe(data)["digest"]] * 8
    assert sorted(lease["hit"] for lease in leases) == [False] + [True] * 7
    assert blob_bytes_served(fault_proxy) <= 1.01 * size


@pytest.mark.parametrize(
    "size", [32 * MiB, pytest.param(256 * MiB, marks=pytest.mark.slow)], ids=["32MiB", "256MiB"]
)
async def test_eight_processes_pulling_one_artifact_make_the_registry_serve_it_once(
    areg: AsyncRegistry,
    registry: LocalRegistry,
    fault_proxy: FaultProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("model.bin").write_bytes(os.urandom(size))
    await areg.push(registry.reference("cache/pulled:v1"), files=["model.bin"])
    fault_proxy.add(Fault("throttle", rate=64 * MiB), method="GET", path="/blobs/")
    start = SPAWN.Manager().Barrier(8)
    target = fault_proxy.reference("cache/pulled:v1")
    arguments = [
        (str(tmp_path / "cache"), fault_proxy.host, target, str(tmp_path / f"out{i}"), start)
        for i in range(8)
    ]
    results = await run_children(cacheworkers.pull_with_cache, arguments)
    expected = "sha256:" + hashlib.sha256(Path("model.bin").read_bytes()).hexdigest()
    assert results == [{"model.bin": expected}] * 8
    assert blob_bytes_served(fault_proxy) <= 1.01 * size
    # Tags are resolved at the registry every time: each pull asked for the manifest.
    assert len(fault_proxy.requests_matching("GET", "/manifests/v1")) == 8


async def test_fill_killed_midway_leaves_a_part_and_the_next_fill_gives_a_verified_blob(
    registry: LocalRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    data = os.urandom(32 * MiB)
    descriptor = describe(data)
    await push_blobs(registry, "cache/killed", [data])
    fault_proxy.add(Fault("throttle", rate=2 * MiB), method="GET", path="/blobs/")
    cache_dir = tmp_path / "cache"
    child = SPAWN.Process(
        target=cacheworkers.lease_blobs,
        args=(str(cache_dir), None, fault_proxy.host, "cache/killed", [descriptor],
              str(tmp_path / "out")),
    )  # fmt: skip
    child.start()
    blobs = cache_dir / "blobs" / "sha256"
    encoded = descriptor["digest"].split(":")[1]
    await kill_once_filling(child, blobs, encoded)
    assert [p.name for p in blobs.iterdir() if p.name.startswith(".")]

    fault_proxy.clear()
    cache = BlobCache(cache_dir)
    async with AsyncRegistry(fault_proxy.host, insecure=True) as reg:
        repo = reg.repository(f"{fault_proxy.host}/cache/killed")
        async with cache.lease(descriptor, lambda: repo.fetch(descriptor)) as blob:
            assert not blob.hit
            out = await blob.copy_to(tmp_path / "verified.bin")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == encoded
    assert sorted(p.name for p in blobs.iterdir()) == [encoded]  # the part is gone


async def test_a_puller_killed_mid_blob_then_a_new_pull_gives_a_verified_file(
    areg: AsyncRegistry,
    registry: LocalRegistry,
    fault_proxy: FaultProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("model.bin").write_bytes(os.urandom(32 * MiB))
    expected = "sha256:" + hashlib.sha256(Path("model.bin").read_bytes()).hexdigest()
    await areg.push(registry.reference("cache/killed-pull:v1"), files=["model.bin"])
    fault_proxy.add(Fault("throttle", rate=2 * MiB), method="GET", path="/blobs/")
    cache_dir = tmp_path / "cache"
    target = fault_proxy.reference("cache/killed-pull:v1")
    child = SPAWN.Process(
        target=cacheworkers.pull_with_cache,
        args=(str(cache_dir), fault_proxy.host, target, str(tmp_path / "killed")),
    )
    child.start()
    blobs = cache_dir / "blobs" / "sha256"
    encoded = expected.split(":")[1]
    await kill_once_filling(child, blobs, encoded)
    assert [p.name for p in blobs.iterdir() if p.name.startswith(".")]  # what it left

    fault_proxy.clear()
    async with AsyncRegistry(fault_proxy.host, insecure=True, cache=cache_dir) as reg:
        [pulled] = await reg.pull(target=target, outdir=tmp_path / "after")
    assert "sha256:" + hashlib.sha256(Path(pulled).read_bytes()).hexdigest() == expected
    assert [p.name for p in blobs.iterdir() if p.name.startswith(".")] == []
    assert hashlib.sha256((blobs / encoded).read_bytes()).hexdigest() == encoded


async def test_cache_stays_under_its_cap_plus_one_blob_while_four_processes_pull(
    areg: AsyncRegistry,
    registry: LocalRegistry,
    fault_proxy: FaultProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blob_size = 2 * MiB
    names = [f"part{j}.bin" for j in range(8)]
    for i in range(4):  # four artifacts of eight files each, no two files alike
        folder = tmp_path / f"artifact{i}"
        folder.mkdir()
        monkeypatch.chdir(folder)
        for name in names:
            Path(name).write_bytes(os.urandom(blob_size))
        await areg.push(registry.reference(f"cache/capped{i}:v1"), files=names)
    fault_proxy.add(Fault("throttle", rate=32 * MiB), method="GET", path="/blobs/")
    # Four of the 32 files the four pulls fetch between them, and a third of the 12 fills
    # they run at once (3 each, the default pull concurrency): fills wait for room.
    cap = 4 * blob_size
    cache_dir = tmp_path / "cache"
    arguments = [
        (str(cache_dir), fault_proxy.host, fault_proxy.reference(f"cache/capped{i}:v1"),
         str(tmp_path / f"out{i}"), None, cap)
        for i in range(4)
    ]  # fmt: skip
    results, peak = await run_children_sampling(cacheworkers.pull_with_cache, arguments, cache_dir)
    for i, pulled in enumerate(results):
        folder = tmp_path / f"artifact{i}"
        assert pulled == {
            name: "sha256:" + hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in names
        }
    assert peak <= cap + blob_size
    assert files_in(cache_dir / "blobs") <= cap
    assert blob_bytes_served(fault_proxy) == 32 * blob_size


async def test_cache_stays_under_its_cap_plus_one_blob_while_four_processes_fill_it(
    registry: LocalRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    blob_size = 2 * MiB
    blobs = [os.urandom(blob_size) for _ in range(16)]
    await push_blobs(registry, "cache/evict", blobs)
    fault_proxy.add(Fault("throttle", rate=32 * MiB), method="GET", path="/blobs/")
    cap = 6 * blob_size  # well below the 16 blobs the four workers pull between them
    cache_dir = tmp_path / "cache"
    arguments = [
        (str(cache_dir), cap, fault_proxy.host, "cache/evict",
         [describe(b) for b in blobs[i * 4 : i * 4 + 4]], str(tmp_path / f"out{i}"))
        for i in range(4)
    ]  # fmt: skip
    results, peak = await run_children_sampling(cacheworkers.lease_blobs, arguments, cache_dir)
    assert [r["digest"] for rs in results for r in rs] == [describe(b)["digest"] for b in blobs]
    assert peak <= cap + blob_size
    assert files_in(cache_dir / "blobs") <= cap
    assert blob_bytes_served(fault_proxy) == 16 * blob_size


async def test_eviction_during_another_process_read_does_not_break_it(tmp_path: Path) -> None:
    data = os.urandom(8 * MiB)
    descriptor = describe(data)
    cache = BlobCache(tmp_path / "cache")

    async def content() -> AsyncIterator[bytes]:
        yield data

    await cache.put(descriptor, content())
    manager = SPAWN.Manager()
    reading, proceed = manager.Event(), manager.Event()
    report = tmp_path / "report"
    child = SPAWN.Process(
        target=cacheworkers.slow_reader,
        args=(str(cache.path), descriptor, reading, proceed, str(report)),
    )
    child.start()
    try:
        await anyio.to_thread.run_sync(reading.wait)
        # The reader's lease keeps eviction away from its blob ...
        assert (await cache.prune(max_bytes=0)).entries == 0
        assert [e.digest for e in await cache.ls()] == [descriptor["digest"]]
        # ... and its open file keeps its bytes even when the name goes anyway (by hand).
        (await cache.ls())[0].path.unlink()
        proceed.set()
        assert await join(child) == 0
    finally:
        proceed.set()
        child.join()
    assert report.read_text() == descriptor["digest"]
    assert await cache.ls() == []
