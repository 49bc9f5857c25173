"""A blob cache shared by every process of a machine: one download per digest, bounded.

[`BlobCache`][aioras.content.cache.BlobCache] keeps verified blobs (and manifests, by digest) in a
directory laid out as an OCI layout's blob tree, ``blobs/<algorithm>/<hex>``, so that other tools
can read it (the oras CLI's ``ORAS_CACHE`` uses the same tree). What it guarantees:

- **One transfer per digest, machine-wide.** A fill takes the digest's exclusive lock
  (``locks/<algorithm>/<hex>.lock``, an ``flock``); every other task or process asking
  for that digest waits for the lock and then reads the finished blob. Tasks of one process
  queue on an in-process lock first, so only one of them polls the file lock.
- **Nothing unverified is ever served.** A fill writes to a dot-named part file beside the
  entry, hashing the bytes written, and renames it to ``<hex>`` only when size and digest
  match. A fill killed midway (even by SIGKILL) leaves a part that is never taken for a
  blob; the lock dies with the process, and the next fill removes the part and starts over.
- **Trust nothing on disk.** A hit is checked before it is served: a regular file (a
  symbolic link is never followed) of the descriptor's size, and with ``verify="always"``
  of the descriptor's digest. A corrupt entry is dropped, with a warning, and fetched again.
  Streams read from the cache are hashed on the way in any case.
- **Bounded.** With ``max_bytes``, each fill is first admitted: under ``locks/evict.lock``
  it evicts least recently used entries (use is recorded in the files' modification times)
  to make room for its blob, and goes on only when the finished entries and the fills
  admitted before it, in every process, hold at most ``max_bytes``; it then records its
  size for later admissions to count. Otherwise it waits, recording nothing. So the cache
  holds at most ``max_bytes`` plus the blob admitted last, and a blob bigger than the cap
  is kept alone. Entries being read or written (leased: their digest's lock is held) are
  never evicted; eviction only *tries* locks, so it never waits on a reader. A task that
  already holds a lease, and a fill that waited while nothing in the cache changed for 30
  seconds, are admitted without room (with a warning when that takes the cache further
  over): the room may be held by a lease waiting for that very fill.
- **Private.** The directory and the ones below it are created 0700, files 0600.

Waiting rather than reading a growing file: a process that finds a fill of its digest
running waits for it to finish (polling the lock, see
[`BlobCache.lease`][aioras.content.cache.BlobCache.lease]), then copies or streams the finished blob
at disk speed.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio

from .. import defaults
from .._files.blobio import VerifiedFile
from ..descriptor import Descriptor
from ..digest import Verifier, parse_digest
from ..exceptions import IntegrityError, ManifestTooLarge
from . import _cache_files as files

__all__ = ["BlobCache", "CacheEntry", "CachedBlob", "PruneResult", "StreamSource"]

logger = logging.getLogger(__name__)

StreamSource = Callable[[], AbstractAsyncContextManager[AsyncIterable[bytes]]]
"""Opens the blob's bytes from their start: ``lambda: store.fetch(descriptor)``."""
FileSource = Callable[[Path], Awaitable[object]]
"""Writes the blob to the path it is given (a downloader such as ``download_blob``)."""
Verify = Literal["size", "always"]
_T = TypeVar("_T")

# Polling a busy lock: flock(2) cannot be interrupted, so a thread blocked in it could
# neither be cancelled nor let the interpreter exit (anyio's worker threads are not
# daemons). A non-blocking try, then sleeps growing to this bound, costs at most this
# much latency after the holder is done.
_POLL_FIRST = 0.002
_POLL_MAX = 0.05
# A fill waiting for room is admitted anyway once nothing in the cache has changed (no
# entry evicted or added, no fill's part grown) for this long: what holds the room may be
# a lease that waits, in this process or another, for this very fill (see `_admit`).
_ADMIT_STILL_MAX = 30.0


@dataclass(frozen=True)
class CacheEntry:
    """A finished blob in the cache (see [`BlobCache.ls`][aioras.content.cache.BlobCache.ls])."""

    digest: str
    size: int
    last_used: float
    """When it was added or last served, in seconds since the epoch."""
    path: Path


@dataclass(frozen=True)
class PruneResult:
    """What [`BlobCache.prune`][aioras.content.cache.BlobCache.prune] removed."""

    entries: int
    bytes: int
    parts: int
    """Temporary files that killed fills had left behind."""


class _LeaseStream:
    """The lease's bytes from the start, read in worker threads and hashed on the way."""

    def __init__(self, lease: CachedBlob, chunk_size: int) -> None:
        self.lease = lease
        self.chunk_size = chunk_size
        self.position = 0
        self.verifier = Verifier(lease.descriptor["digest"], lease.descriptor["size"])

    def __aiter__(self) -> _LeaseStream:
        return self

    async def __anext__(self) -> bytes:
        size = self.lease.size
        want = min(self.chunk_size, size - self.position)
        chunk = await anyio.to_thread.run_sync(os.pread, self.lease.fileno(), want, self.position)
        if chunk:
            self.position += len(chunk)
            self.verifier.update(chunk)
            return chunk
        try:
            self.verifier.verify(what=f"cached blob {self.lease.descriptor['digest']}")
        except Exception:
            self.lease.corrupt = True  # dropped when the lease ends, so a retry fetches it
            raise
        raise StopAsyncIteration


class CachedBlob:
    """A lease on a verified cache entry: it is not evicted while the lease is held.

    Reads go through the open file, so they hold even if the entry's name is removed
    meanwhile (by another tool, or by hand). ``hit`` is False when this lease's own fill
    fetched the blob.
    """

    def __init__(self, descriptor: Descriptor, path: Path, fd: int, *, hit: bool) -> None:
        self.descriptor = descriptor
        self.path = path
        self.hit = hit
        self.corrupt = False
        self._fd: int | None = fd

    @property
    def size(self) -> int:
        """The blob's size in bytes."""
        return int(self.descriptor["size"])

    def fileno(self) -> int:
        """The open entry's file descriptor (valid while the lease is held)."""
        if self._fd is None:
            raise ValueError("the lease has ended")
        return self._fd

    def stream(self, *, chunk_size: int = defaults.io_chunk_size) -> AsyncIterator[bytes]:
        """The blob's bytes, hashed as they are read.

        The iterator raises [`DigestMismatch`][aioras.exceptions.DigestMismatch] or
        [`SizeMismatch`][aioras.exceptions.SizeMismatch] at the end when the entry was altered on
        disk; the entry is then dropped when the lease ends.
        """
        return _LeaseStream(self, chunk_size)

    async def read(self, *, max_size: int = defaults.max_manifest_size) -> bytes:
        """The whole blob (a manifest, a config), verified.

        Raises [`ManifestTooLarge`][aioras.exceptions.ManifestTooLarge] above ``max_size``, and
        what `stream` raises.
        """
        if self.size > max_size:
            raise ManifestTooLarge(self.size, max_size)
        return b"".join([chunk async for chunk in self.stream()])

    async def copy_to(
        self, destination: str | os.PathLike[str], *, mode: int | None = None
    ) -> Path:
        """Copy the blob to ``destination`` (replacing it atomically); return the path.

        A reflink or ``copy_file_range`` where the file system has one (disk speed, or
        no copy at all), else a streamed copy; never a hard link, so editing the copy never
        changes the cache. The new file gets ``mode``, or the usual ``0o666`` less the
        umask. Bytes are not hashed again (the lease was checked per the cache's
        ``verify``). Raises [`StorageError`][aioras.exceptions.StorageError] when the copy cannot
        be made whole; nothing is left behind then.
        """
        target = Path(destination)
        await anyio.to_thread.run_sync(files.copy_out, self.fileno(), self.size, target, mode)
        return target

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


@dataclass
class _Fill:
    stream: StreamSource | None = None
    download: FileSource | None = None


class BlobCache:
    """A directory of verified blobs, shared by tasks and processes; see the module doc.

    ``path`` is created (0700) on first use. ``max_bytes`` bounds what it holds (None: no
    bound). ``verify`` says what a hit is checked for before it is served: ``"size"`` (the
    default; cheap) or ``"always"`` (its digest too, reading it whole). Objects of this class
    hold no open files between calls and can be pickled. One object serves the tasks of one
    event loop (its in-process queue is made of that loop's locks); other loops, threads and
    processes use objects of their own on the same directory, which share everything but
    that queue.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int | None = None,
        verify: Verify = "size",
    ) -> None:
        if verify not in ("size", "always"):
            raise ValueError(f"verify must be 'size' or 'always', not {verify!r}")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must be at least 0, not {max_bytes}")
        self.path = Path(path).expanduser().absolute()
        self.max_bytes = max_bytes
        self.verify: Verify = verify
        self._acquiring: dict[str, tuple[anyio.Lock, int]] = {}
        self._holders: dict[int, int] = {}  # task id: leases it holds
        # This object saw the cache above its cap, with more than one blob in it (a blob
        # bigger than the cap is kept alone): it evicts again as its leases end.
        self._over = False

    def __repr__(self) -> str:
        return f"BlobCache({str(self.path)!r}, max_bytes={self.max_bytes}, verify={self.verify!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "max_bytes": self.max_bytes, "verify": self.verify}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.max_bytes = state["max_bytes"]
        self.verify = state["verify"]
        self._acquiring = {}
        self._holders = {}
        self._over = False

    # -- leases ------------------------------------------------------------------------------
    @asynccontextmanager
    async def lease(
        self,
        descriptor: Descriptor,
        source: StreamSource | None = None,
        *,
        download: FileSource | None = None,
    ) -> AsyncIterator[CachedBlob]:
        """Hold the verified blob ``descriptor`` names, fetching it first on a miss.

        On a hit nothing is fetched. On a miss, one fill runs machine-wide: ``source``
        opens the blob's bytes (a verified stream such as ``store.fetch(descriptor)``), or
        ``download`` writes them to the path it is given (a file in the cache directory,
        checked by size and digest before it becomes the entry). Concurrent leases of the
        same digest, in this process or another, wait for that fill and then share it.
        The entry is not evicted until the context ends.

        Raises what the source raises (nothing is kept then),
        [`DigestMismatch`][aioras.exceptions.DigestMismatch] or
        [`SizeMismatch`][aioras.exceptions.SizeMismatch] when it gives other bytes,
        [`InvalidLayout`][aioras.exceptions.InvalidLayout] when a directory of the cache is a link
        or not a directory, and [`StorageError`][aioras.exceptions.StorageError] when the blob
        cannot be written.
        """
        if (source is None) == (download is None):
            raise ValueError("give either a stream source or a download (use lookup for none)")
        lease = await self._acquire(descriptor, _Fill(source, download))
        assert lease is not None  # a fill either stores the blob or raises
        async with self._held(lease):
            yield lease[0]

    @asynccontextmanager
    async def lookup(self, descriptor: Descriptor) -> AsyncIterator[CachedBlob | None]:
        """Hold the blob when the cache has it (checked as a hit is); None otherwise."""
        lease = await self._acquire(descriptor, None)
        if lease is None:
            yield None
            return
        async with self._held(lease):
            yield lease[0]

    async def read_by_digest(
        self, digest: str, *, max_size: int = defaults.max_manifest_size
    ) -> bytes | None:
        """A small entry's bytes when only its digest is known (a manifest by digest).

        None when the cache lacks it. Its size is taken from the file, so the bytes are
        hashed against ``digest`` whatever ``verify`` says; an entry whose bytes are not
        the digest's is dropped, with a warning, and counts as missing. So does an entry
        over ``max_size``, which is not read. Raises
        [`InvalidLayout`][aioras.exceptions.InvalidLayout] as `lease` does.
        """
        algorithm, encoded = parse_digest(digest)
        path = self.path / defaults.oci_blobs_dir / algorithm / encoded
        try:
            size = (await anyio.to_thread.run_sync(os.lstat, path)).st_size
        except (FileNotFoundError, NotADirectoryError):
            return None
        if size > max_size:
            return None
        descriptor: Descriptor = {
            "mediaType": defaults.default_blob_media_type,
            "digest": digest,
            "size": size,
        }
        async with self.lookup(descriptor) as blob:
            if blob is None:
                return None
            try:
                return await blob.read(max_size=max_size)
            except IntegrityError:
                return None  # altered on disk: dropped (with a warning) as the lease ends

    @asynccontextmanager
    async def fetch(
        self, descriptor: Descriptor, source: StreamSource
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """A store's ``fetch`` through the cache: the verified bytes, filled on a miss."""
        async with self.lease(descriptor, source) as blob:
            yield blob.stream()

    async def put(self, descriptor: Descriptor, content: AsyncIterable[bytes]) -> bool:
        """Add ``content`` (verified against ``descriptor``); False when already held.

        ``content`` is consumed only when the blob is missing.
        """

        @asynccontextmanager
        async def opened() -> AsyncIterator[AsyncIterable[bytes]]:
            yield content

        async with self.lease(descriptor, opened) as blob:
            return not blob.hit

    # -- housekeeping --------------------------------------------------------------------------
    async def ls(self) -> list[CacheEntry]:
        """The finished entries, least recently used first."""
        entries = await anyio.to_thread.run_sync(files.list_entries, self.path)
        return [
            CacheEntry(
                e.digest,
                e.size,
                e.used_ns / 1e9,
                self.path / defaults.oci_blobs_dir / e.algorithm / e.encoded,
            )
            for e in entries
        ]

    async def du(self) -> int:
        """Bytes held by finished entries."""
        return sum(e.size for e in await self.ls())

    async def prune(self, *, max_bytes: int | None = None) -> PruneResult:
        """Evict least recently used entries down to ``max_bytes`` (default: the cap).

        Entries in use are skipped. Temporary files of killed fills, and lock files of
        digests nobody holds, are removed too. With neither ``max_bytes`` nor a cap, only
        those go.
        """
        limit = self.max_bytes if max_bytes is None else max_bytes
        if not self.path.is_dir():
            return PruneResult(0, 0, 0)
        done = await self._evict(limit)
        return PruneResult(done.entries, done.bytes, done.parts)

    # -- the machinery ---------------------------------------------------------------------
    @asynccontextmanager
    async def _held(self, lease: tuple[CachedBlob, files.Slot]) -> AsyncIterator[None]:
        blob, slot = lease
        task = anyio.get_current_task().id
        self._holders[task] = self._holders.get(task, 0) + 1
        try:
            yield
        finally:
            held = self._holders.pop(task, 0) - 1
            if held > 0:
                self._holders[task] = held
            blob._close()
            with anyio.CancelScope(shield=True):
                if not blob.hit and not blob.corrupt:
                    # While the lease is held, so the blob just fetched stays.
                    await self._settle()
                await anyio.to_thread.run_sync(slot.close)
                if blob.corrupt:
                    await self._drop_corrupt(blob.descriptor)
                elif blob.hit:
                    await self._settle()

    @asynccontextmanager
    async def _queue(self, digest: str) -> AsyncIterator[None]:
        """One task of this process at a time acquires a digest; the others wait here."""
        lock, users = self._acquiring.get(digest) or (anyio.Lock(), 0)
        self._acquiring[digest] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._acquiring[digest]
            if users == 1:
                del self._acquiring[digest]
            else:
                self._acquiring[digest] = (lock, users - 1)

    async def _lock(self, slot: files.Slot, *, exclusive: bool) -> None:
        """Take the digest's file lock, polling while another process (or file) holds it."""
        delay = _POLL_FIRST
        while not await anyio.to_thread.run_sync(lambda: slot.lock(exclusive=exclusive)):
            await anyio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    async def _acquire(
        self, descriptor: Descriptor, fill: _Fill | None
    ) -> tuple[CachedBlob, files.Slot] | None:
        digest = descriptor["digest"]
        size = int(descriptor["size"])
        if size < 0:
            raise ValueError(f"descriptor of {digest} has a negative size: {size}")
        algorithm, encoded = parse_digest(digest)
        await anyio.to_thread.run_sync(files.make_root, self.path)
        slot = files.Slot(self.path, algorithm, encoded)
        verify_digest = self.verify == "always"
        try:
            async with self._queue(digest):
                await self._lock(slot, exclusive=False)
                found = await anyio.to_thread.run_sync(
                    lambda: slot.entry(size, verify_digest=verify_digest, touch=True)
                )
                if isinstance(found, int):
                    return CachedBlob(descriptor, slot.blob_path, found, hit=True), slot
                if found is None and fill is None:
                    await anyio.to_thread.run_sync(slot.close)
                    return None
                await anyio.to_thread.run_sync(slot.unlock)
                await self._lock(slot, exclusive=True)
                return await self._acquire_exclusive(descriptor, slot, fill)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(slot.close)
            raise

    async def _acquire_exclusive(
        self, descriptor: Descriptor, slot: files.Slot, fill: _Fill | None
    ) -> tuple[CachedBlob, files.Slot] | None:
        """With the digest's exclusive lock: a blob filled meanwhile, or drop and fill."""
        digest = descriptor["digest"]
        size = int(descriptor["size"])
        verify_digest = self.verify == "always"
        found = await anyio.to_thread.run_sync(
            lambda: slot.entry(size, verify_digest=verify_digest, touch=True)
        )
        if isinstance(found, int):  # another process filled it while we waited
            await anyio.to_thread.run_sync(slot.downgrade)
            return CachedBlob(descriptor, slot.blob_path, found, hit=True), slot
        if found is not None:
            logger.warning(
                "cached blob %s at %s is corrupt (%s): dropped, fetching it again",
                digest,
                slot.blob_path,
                found,
            )
            await anyio.to_thread.run_sync(slot.drop)
        if fill is None:
            await anyio.to_thread.run_sync(slot.close)
            return None
        await anyio.to_thread.run_sync(slot.clean_parts)
        if self.max_bytes is not None:
            await self._admit(slot, size, self.max_bytes)
        await self._fill(descriptor, slot, fill)
        opened = await anyio.to_thread.run_sync(
            lambda: slot.entry(size, verify_digest=False, touch=True)
        )
        if not isinstance(opened, int):
            raise AssertionError(f"the blob just stored at {slot.blob_path} is gone: {opened}")
        await anyio.to_thread.run_sync(slot.downgrade)
        return CachedBlob(descriptor, slot.blob_path, opened, hit=False), slot

    async def _fill(self, descriptor: Descriptor, slot: files.Slot, fill: _Fill) -> None:
        digest = descriptor["digest"]
        size = int(descriptor["size"])
        logger.debug("cache miss: fetching %s (%d bytes) into %s", digest, size, self.path)
        if fill.stream is not None:
            async with VerifiedFile(slot.blob_path, digest, size, directory=slot.blobs) as out:
                async with fill.stream() as chunks:
                    async for chunk in chunks:
                        await out.write(chunk)
                await out.commit()
            return
        assert fill.download is not None
        staged = slot.staged_name()
        try:
            await fill.download(slot.blob_path.parent / staged)
            await anyio.to_thread.run_sync(slot.adopt, staged, size)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(slot.discard, staged)

    async def _admit(self, slot: files.Slot, size: int, limit: int) -> None:
        """Wait until the cache has room for this fill, then reserve it (`files.admit`).

        Room: the finished entries and the other running fills, after eviction, within
        ``limit``; the fill then brings the cache to at most ``limit + size``. While it
        waits it records nothing, so waiting fills never keep each other out; room comes
        as other fills end and their leases with them. A task that already holds a lease
        is admitted at once, and so is a fill that has waited while nothing in the cache
        changed for `_ADMIT_STILL_MAX` seconds (with a warning): in both cases the room
        may be held by a lease that is itself waiting for this fill.
        """
        await anyio.to_thread.run_sync(slot.reserve, 0)
        nested = anyio.get_current_task().id in self._holders
        delay = _POLL_FIRST
        seen: tuple[int, tuple[tuple[str, int, int], ...]] | None = None
        still_since = anyio.current_time()
        while True:
            force = nested or anyio.current_time() - still_since >= _ADMIT_STILL_MAX
            admitted, done = await self._under_evict_lock(
                functools.partial(files.admit, self.path, limit, slot, size, force=force)
            )
            if admitted:
                self._over = done.remaining > limit and done.counted > 1
                if done.remaining > limit + size:
                    logger.warning(
                        "cache %s: admitted a fill of %s (%d bytes) without room, %d bytes "
                        "being in use: the cache goes above its cap plus this blob",
                        self.path, slot.blob_path.name, size, done.remaining - size,
                    )  # fmt: skip
                return
            if seen is None:
                logger.debug(
                    "cache %s: no room for %s (%d bytes) while %d bytes are in use: waiting",
                    self.path, slot.blob_path.name, size, done.remaining,
                )  # fmt: skip
            if (done.remaining, done.activity) != seen:
                seen = (done.remaining, done.activity)
                still_since = anyio.current_time()
            await anyio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    async def _settle(self) -> None:
        """Evict down to the cap when this object last saw the cache above it (`_over`).

        Fills admitted while others were in use leave it so; as leases end, what they held
        can go.
        """
        if self.max_bytes is not None and self._over:
            done = await self._evict(self.max_bytes)
            self._over = done.remaining > self.max_bytes and done.counted > 1

    async def _under_evict_lock(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` in a worker thread under ``locks/evict.lock`` (no lease waits for it)."""
        await anyio.to_thread.run_sync(files.make_root, self.path)
        fd = await anyio.to_thread.run_sync(files.open_evict_lock, self.path)
        try:
            delay = _POLL_FIRST
            while not files.try_lock_file(fd, exclusive=True):
                await anyio.sleep(delay)
                delay = min(delay * 2, _POLL_MAX)
            return await anyio.to_thread.run_sync(work)
        finally:
            os.close(fd)

    async def _evict(self, limit: int | None) -> files.Evicted:
        """One eviction pass (`files.evict`) under ``locks/evict.lock``."""
        done = await self._under_evict_lock(lambda: files.evict(self.path, limit))
        if done.entries:
            logger.debug("evicted %d blobs (%d bytes) from %s", done.entries, done.bytes, self)
        return done

    async def _drop_corrupt(self, descriptor: Descriptor) -> None:
        """Remove an entry a stream found altered (if it is still the same file)."""
        algorithm, encoded = parse_digest(descriptor["digest"])
        slot = files.Slot(self.path, algorithm, encoded)
        try:
            async with self._queue(descriptor["digest"]):
                await self._lock(slot, exclusive=True)
                found = await anyio.to_thread.run_sync(
                    lambda: slot.entry(int(descriptor["size"]), verify_digest=True, touch=False)
                )
                if isinstance(found, int):
                    os.close(found)  # repaired meanwhile
                    return
                if found is not None:
                    logger.warning(
                        "cached blob %s at %s is corrupt (%s): dropped",
                        descriptor["digest"],
                        slot.blob_path,
                        found,
                    )
                    await anyio.to_thread.run_sync(slot.drop)
        finally:
            await anyio.to_thread.run_sync(slot.close)
