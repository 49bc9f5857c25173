"""BlobCache in one process: hits, shared fills, checks on disk, eviction, links, copies out.

The sources are in-memory streams that count how often they are opened; the tests of
several processes (and of a real registry as the source) are in
``tests/integration/test_cache_processes.py``.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from aioras import BlobCache
from aioras._environment import read_environment
from aioras.content.cache import CachedBlob
from aioras.descriptor import Descriptor
from aioras.digest import digest_bytes
from aioras.exceptions import DigestMismatch, InvalidLayout, SizeMismatch

pytestmark = pytest.mark.anyio


def describe(data: bytes) -> Descriptor:
    digest = digest_bytes(data)
    return {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)}


class Source:
    """A stream source of ``data`` counting its openings; ``gate`` holds it before the end."""

    def __init__(self, data: bytes, *, gate: anyio.Event | None = None) -> None:
        self.data = data
        self.calls = 0
        self.gate = gate
        self.started = anyio.Event()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncIterator[bytes]]:
        self.calls += 1

        async def chunks() -> AsyncIterator[bytes]:
            half = len(self.data) // 2
            yield self.data[:half]
            self.started.set()
            if self.gate is not None:
                await self.gate.wait()
            yield self.data[half:]

        yield chunks()


def entry_path(cache: BlobCache, data: bytes) -> Path:
    return cache.path / "blobs" / "sha256" / digest_bytes(data).split(":")[1]


async def fill(cache: BlobCache, data: bytes) -> Source:
    source = Source(data)
    async with cache.lease(describe(data), source):
        pass
    return source


async def test_a_hit_makes_no_fetch_and_a_copy_is_the_blob(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    cache = BlobCache(tmp_path / "cache")
    source = Source(data)
    async with cache.lease(describe(data), source) as blob:
        assert not blob.hit
    async with cache.lease(describe(data), source) as blob:
        assert blob.hit
        out = await blob.copy_to(tmp_path / "out.bin")
        streamed = b"".join([c async for c in blob.stream(chunk_size=4096)])
    assert source.calls == 1
    assert out.read_bytes() == data
    assert streamed == data


async def test_concurrent_tasks_share_one_fetch(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    cache = BlobCache(tmp_path / "cache")
    gate = anyio.Event()
    source = Source(data, gate=gate)
    copies: list[bytes] = []

    async def lease_one(index: int) -> None:
        async with cache.lease(describe(data), source) as blob:
            copies.append((await blob.copy_to(tmp_path / f"out{index}")).read_bytes())

    async with anyio.create_task_group() as tasks:
        for index in range(12):
            tasks.start_soon(lease_one, index)
        await source.started.wait()  # the one fill is half-way: the others are waiting
        gate.set()
    assert source.calls == 1
    assert copies == [data] * 12


async def test_source_with_other_bytes_leaves_nothing(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    cache = BlobCache(tmp_path / "cache")
    wrong = bytearray(data)
    wrong[5000] ^= 1
    with pytest.raises(DigestMismatch):
        async with cache.lease(describe(data), Source(bytes(wrong))):
            pass
    assert await cache.ls() == []
    assert os.listdir(entry_path(cache, data).parent) == []


async def test_truncated_entry_is_caught_by_the_size_check_and_fetched_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = os.urandom(50_000)
    cache = BlobCache(tmp_path / "cache")
    source = await fill(cache, data)
    os.truncate(entry_path(cache, data), 49_999)
    with caplog.at_level(logging.WARNING, logger="aioras.content.cache"):
        async with cache.lease(describe(data), source) as blob:
            assert not blob.hit
            assert (await blob.copy_to(tmp_path / "out")).read_bytes() == data
    assert source.calls == 2
    assert "holds 49999 bytes" in caplog.text


async def test_flipped_bit_is_repaired_under_verify_always(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = os.urandom(50_000)
    cache = BlobCache(tmp_path / "cache", verify="always")
    source = await fill(cache, data)
    path = entry_path(cache, data)
    damaged = bytearray(path.read_bytes())
    damaged[1234] ^= 0x10
    path.write_bytes(damaged)
    with caplog.at_level(logging.WARNING, logger="aioras.content.cache"):
        async with cache.lease(describe(data), source) as blob:
            assert (await blob.copy_to(tmp_path / "out")).read_bytes() == data
    assert source.calls == 2
    assert "corrupt" in caplog.text
    assert path.read_bytes() == data


async def test_flipped_bit_fails_a_stream_and_the_entry_is_dropped(tmp_path: Path) -> None:
    # verify="size" serves the hit unhashed, but a stream hashes what it reads.
    data = os.urandom(50_000)
    cache = BlobCache(tmp_path / "cache")
    source = await fill(cache, data)
    path = entry_path(cache, data)
    damaged = bytearray(path.read_bytes())
    damaged[0] ^= 1
    path.write_bytes(damaged)

    async def read_through() -> None:
        async with cache.fetch(describe(data), source) as stream:
            async for _ in stream:
                pass

    with pytest.raises(DigestMismatch):
        await read_through()
    assert not path.exists()
    async with cache.fetch(describe(data), source) as stream:
        assert b"".join([c async for c in stream]) == data
    assert source.calls == 2


async def test_read_by_digest_hashes_the_entry_and_drops_one_altered_on_disk(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # verify="size" does not hash a hit; a read by digest alone (no size to check) does.
    data = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}'
    cache = BlobCache(tmp_path / "cache")
    digest = describe(data)["digest"]
    assert await cache.read_by_digest(digest) is None
    await fill(cache, data)
    assert await cache.read_by_digest(digest) == data
    assert await cache.read_by_digest(digest, max_size=len(data) - 1) is None
    entry_path(cache, data).write_bytes(data.replace(b"index", b"inde_"))
    with caplog.at_level(logging.WARNING, logger="aioras.content.cache"):
        assert await cache.read_by_digest(digest) is None
    assert "corrupt" in caplog.text
    assert not entry_path(cache, data).exists()


async def test_directories_are_private(tmp_path: Path) -> None:
    data = b"private"
    cache = BlobCache(tmp_path / "cache")
    await fill(cache, data)
    for directory in (cache.path, cache.path / "blobs", cache.path / "blobs" / "sha256",
                      cache.path / "locks", cache.path / "locks" / "sha256"):  # fmt: skip
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stat.S_IMODE(entry_path(cache, data).stat().st_mode) == 0o600


async def test_symlink_planted_as_an_entry_is_not_followed(tmp_path: Path) -> None:
    data = os.urandom(1000)
    decoy = tmp_path / "decoy"
    decoy.write_bytes(b"x" * len(data))  # the right size: a followed link would be a hit
    cache = BlobCache(tmp_path / "cache")
    await fill(cache, b"warm")  # makes the directories
    path = entry_path(cache, data)
    path.symlink_to(decoy)
    source = Source(data)
    async with cache.lease(describe(data), source) as blob:
        assert (await blob.copy_to(tmp_path / "out")).read_bytes() == data
    assert source.calls == 1
    assert decoy.read_bytes() == b"x" * len(data)
    assert not path.is_symlink()


async def test_symlink_planted_for_the_blob_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    cache = BlobCache(tmp_path / "cache")
    (cache.path / "blobs").mkdir(parents=True)
    (cache.path / "blobs" / "sha256").symlink_to(outside)
    with pytest.raises(InvalidLayout):
        async with cache.lease(describe(b"data"), Source(b"data")):
            pass
    assert list(outside.iterdir()) == []


async def test_symlink_planted_as_a_lock_file_is_refused(tmp_path: Path) -> None:
    data = b"locked"
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    cache = BlobCache(tmp_path / "cache")
    await fill(cache, b"warm")
    lock = cache.path / "locks" / "sha256" / (digest_bytes(data).split(":")[1] + ".lock")
    lock.symlink_to(victim)
    with pytest.raises(InvalidLayout):
        async with cache.lease(describe(data), Source(data)):
            pass
    assert victim.read_bytes() == b"keep"


async def test_part_left_by_a_killed_fill_is_never_a_blob_and_is_cleaned(tmp_path: Path) -> None:
    data = os.urandom(4000)
    cache = BlobCache(tmp_path / "cache")
    await fill(cache, b"warm")
    encoded = digest_bytes(data).split(":")[1]
    part = cache.path / "blobs" / "sha256" / f".{encoded}.0123456789ab.aioras-part"
    part.write_bytes(data)  # even whole, a part is not an entry
    async with cache.lookup(describe(data)) as blob:
        assert blob is None
    source = Source(data)
    async with cache.lease(describe(data), source):
        pass
    assert source.calls == 1
    assert not part.exists()


async def test_prune_removes_parts_nobody_fills(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    await fill(cache, b"warm")
    encoded = digest_bytes(b"gone").split(":")[1]
    part = cache.path / "blobs" / "sha256" / f".{encoded}.0123456789ab.aioras-part"
    part.write_bytes(b"go")
    result = await cache.prune()
    assert result.parts == 1
    assert not part.exists()
    assert [e.digest for e in await cache.ls()] == [digest_bytes(b"warm")]


async def test_eviction_takes_the_least_recently_used_first(tmp_path: Path) -> None:
    blobs = [bytes([i]) * 1000 for i in range(4)]
    cache = BlobCache(tmp_path / "cache", max_bytes=3000)
    for index, data in enumerate(blobs[:3]):
        await fill(cache, data)
        os.utime(entry_path(cache, data), ns=(index * 10**9, index * 10**9))
    async with cache.lookup(describe(blobs[0])) as blob:  # a hit makes it the newest
        assert blob is not None
    await fill(cache, blobs[3])
    held = {e.digest for e in await cache.ls()}
    assert held == {describe(d)["digest"] for d in (blobs[0], blobs[2], blobs[3])}
    assert await cache.du() <= 3000


async def test_leased_entry_is_not_evicted(tmp_path: Path) -> None:
    first, second = b"a" * 1000, b"b" * 1000
    cache = BlobCache(tmp_path / "cache", max_bytes=1000)
    await fill(cache, first)
    async with cache.lookup(describe(first)) as blob:
        assert blob is not None
        await fill(cache, second)  # no room, but the first is in use
        assert entry_path(cache, first).exists()
        assert (await blob.copy_to(tmp_path / "out")).read_bytes() == first
    # Evicted as its lease ended, the cache being above its cap.
    assert not entry_path(cache, first).exists()
    assert await cache.du() <= 1000


async def test_blob_larger_than_the_cap_is_kept_alone(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", max_bytes=1000)
    await fill(cache, b"s" * 500)
    big = b"B" * 5000
    await fill(cache, big)
    assert [e.digest for e in await cache.ls()] == [describe(big)["digest"]]
    async with cache.lookup(describe(big)) as blob:  # ... and stays when used again
        assert blob is not None
    assert [e.digest for e in await cache.ls()] == [describe(big)["digest"]]


class Refusals(logging.Handler):
    """Sets ``event`` when the cache logs that a fill waits for room."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.event = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "no room for" in record.getMessage():
            self.event.set()


async def test_fill_without_room_waits_until_the_blob_in_use_can_be_evicted(
    tmp_path: Path,
) -> None:
    big, small = b"B" * 1500, b"s" * 500
    cache = BlobCache(tmp_path / "cache", max_bytes=1000)
    await fill(cache, big)  # alone above the cap: kept
    logger = logging.getLogger("aioras.content.cache")
    refusals = Refusals()
    logger.addHandler(refusals)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    released = False
    source = Source(small)
    fetched_while_held: list[bool] = []

    async def fill_small() -> None:
        async def opened() -> AsyncIterator[AsyncIterator[bytes]]:
            fetched_while_held.append(not released)
            refusals.event.set()
            async with source() as chunks:
                yield chunks

        async with cache.lease(describe(small), asynccontextmanager(opened)):
            pass

    try:
        async with anyio.create_task_group() as tasks, cache.lookup(describe(big)) as held:
            assert held is not None
            tasks.start_soon(fill_small)
            await refusals.event.wait()  # the fill waits for room, or (wrongly) fetches
            released = True
    finally:
        logger.removeHandler(refusals)
        logger.setLevel(level)
    # Room came only when the lease on the big blob ended: it was evicted then.
    assert fetched_while_held == [False]
    assert [e.digest for e in await cache.ls()] == [describe(small)["digest"]]


async def test_task_holding_a_lease_fills_another_blob_without_waiting_for_room(
    tmp_path: Path,
) -> None:
    first, second = b"a" * 1500, b"b" * 500
    cache = BlobCache(tmp_path / "cache", max_bytes=1000)
    await fill(cache, first)
    async with cache.lookup(describe(first)) as held:
        assert held is not None
        # The room is held by this task's own lease: waiting would never end.
        source = await fill(cache, second)
        assert source.calls == 1
    assert [e.digest for e in await cache.ls()] == [describe(second)["digest"]]


async def test_fill_whose_room_is_held_by_a_lease_waiting_for_it_is_admitted_anyway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("aioras.content.cache._ADMIT_STILL_MAX", 0.2)
    big, small = b"B" * 1500, b"s" * 500
    cache = BlobCache(tmp_path / "cache", max_bytes=1000)
    await fill(cache, big)
    filled = anyio.Event()

    async def fill_small() -> None:
        await fill(cache, small)
        filled.set()

    async with anyio.create_task_group() as tasks, cache.lookup(describe(big)) as held:
        assert held is not None
        tasks.start_soon(fill_small)
        # This lease ends only once the other task's fill is done: waiting for room
        # would never end, so that fill is admitted once nothing has moved for a while.
        await filled.wait()
    assert "admitted a fill" in caplog.text
    assert [e.digest for e in await cache.ls()] == [describe(small)["digest"]]


async def test_prune_to_zero_empties_the_cache(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    for data in (b"one", b"two"):
        await fill(cache, data)
    result = await cache.prune(max_bytes=0)
    assert (result.entries, result.bytes) == (2, 6)
    assert await cache.ls() == []


async def test_copy_out_is_an_independent_file(tmp_path: Path) -> None:
    data = os.urandom(100_000)
    cache = BlobCache(tmp_path / "cache")
    await fill(cache, data)
    async with cache.lookup(describe(data)) as blob:
        assert blob is not None
        out = await blob.copy_to(tmp_path / "out")
    assert out.stat().st_ino != entry_path(cache, data).stat().st_ino
    assert out.stat().st_nlink == 1
    with out.open("r+b") as edited:
        edited.write(b"edited")
    assert entry_path(cache, data).read_bytes() == data


async def test_cancelled_fill_leaves_no_part_and_no_entry(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    cache = BlobCache(tmp_path / "cache")
    source = Source(data, gate=anyio.Event())  # never opened: the fill hangs half-way
    async with anyio.create_task_group() as tasks:

        async def lease() -> None:
            async with cache.lease(describe(data), source):
                pass

        tasks.start_soon(lease)
        await source.started.wait()
        tasks.cancel_scope.cancel()
    assert os.listdir(entry_path(cache, data).parent) == []
    source.gate = None
    async with cache.lease(describe(data), source) as blob:
        assert not blob.hit


async def test_download_source_is_checked_before_it_becomes_the_entry(tmp_path: Path) -> None:
    data = os.urandom(20_000)
    cache = BlobCache(tmp_path / "cache")

    async def wrong(path: Path) -> None:
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))

    async def right(path: Path) -> None:
        path.write_bytes(data)

    with pytest.raises(DigestMismatch):
        async with cache.lease(describe(data), download=wrong):
            pass
    assert os.listdir(entry_path(cache, data).parent) == []
    async with cache.lease(describe(data), download=right) as blob:
        assert (await blob.read()) == data


async def test_download_source_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")

    async def short(path: Path) -> None:
        path.write_bytes(b"shor")

    with pytest.raises(SizeMismatch):
        async with cache.lease(describe(b"short"), download=short):
            pass


async def test_put_adds_once(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")

    async def content() -> AsyncIterator[bytes]:
        yield b"put me"

    assert await cache.put(describe(b"put me"), content())
    assert not await cache.put(describe(b"put me"), content())
    assert await cache.du() == 6


async def test_lease_ends_with_its_context(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    kept: list[CachedBlob] = []
    async with cache.lease(describe(b"x"), Source(b"x")) as blob:
        kept.append(blob)
    with pytest.raises(ValueError, match="ended"):
        kept[0].fileno()


def test_environment_names_the_cache() -> None:
    assert read_environment({"ORAS_CACHE": "/var/cache/oras"}).oras_cache == Path("/var/cache/oras")
    assert read_environment({"ORAS_CACHE": ""}).oras_cache is None
    assert read_environment({}).oras_cache is None


def test_cache_pickles_without_state(tmp_path: Path) -> None:
    import pickle

    cache = BlobCache(tmp_path, max_bytes=5, verify="always")
    clone = pickle.loads(pickle.dumps(cache))
    assert (clone.path, clone.max_bytes, clone.verify) == (cache.path, 5, "always")


async def test_descriptor_with_a_negative_size_is_refused(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    bad: Descriptor = {**describe(b"x"), "size": -1}
    with pytest.raises(ValueError, match="negative"):
        async with cache.lookup(bad):
            pass
