"""Streaming blob I/O: file slices read for uploads, verified atomic files for downloads.

Used by the registry client and the OCI layout alike, so nothing here knows a transport.
Nothing here holds a whole blob in memory: uploads read the file in chunks as the socket
takes them; downloads go to a temporary file beside the destination, hashed on the way, and
are renamed into place only when size and digest match.

Files read for uploads go through aiofiles (its reads shielded from cancellation, see
`FileSlice`); downloads are written and hashed in anyio worker threads, one call per
MiB batch. anyio waits for a thread call to finish even when the task is cancelled, so once
a cancelled push or pull returns, no thread is still touching its files.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Self

import aiofiles.threadpool
import anyio
import anyio.abc
import anyio.lowlevel
from aiofiles.threadpool.binary import AsyncFileIO

from .. import defaults
from ..digest import Hasher, Verifier
from ..exceptions import DigestMismatch, SizeMismatch, StorageError
from ..progress import position_reporter
from .threads import run_file_work
from .writes import storage_error, write_all

__all__ = ["FileSlice", "RangePart", "RangedFile", "VerifiedFile", "fsync_directory"]

logger = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
# Read-write: a RangedFile reads back what ranges ahead of the hash wrote.
_NEW_FILE_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
# Names tried for a temporary file before giving up (each is 48 random bits).
_TEMP_ATTEMPTS = 8
# Bytes one thread call of VerifiedFile.copy_and_commit copies at most (tens of milliseconds).
_COPY_CALL = 16 * 1024 * 1024


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries to disk, so that a rename into it survives a crash.

    A no-op where directories cannot be opened (Windows).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (PermissionError, IsADirectoryError):
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileSlice:
    """An async byte stream over ``path[offset:offset+length]``, read through aiofiles.

    aiofiles runs each read in the event loop's executor. Every open, read and close here is
    shielded from cancellation, so a cancelled upload waits for the read under way (about a
    millisecond for a MiB) and, once it returns, no thread still touches the file, as with
    anyio's worker threads. Reading a 256 MiB file in 1 MiB chunks costs the same either
    way on the 2-core development machine (0.031-0.040 s of CPU through aiofiles,
    0.031-0.035 s through ``anyio.to_thread``). A subclass that overrides `_read`
    (to hash in the same thread call, as the single-pass upload does) is read through
    anyio's worker threads, one call per chunk.

    A plain async iterator rather than an async generator: when the request using it is
    cancelled or fails half-way, `aclose` (or garbage collection) closes the file
    at once, and no generator finalizer task is left for the event loop to run later.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = defaults.io_chunk_size,
    ) -> None:
        self.path = os.fspath(path)
        self.offset = offset
        self.remaining = length
        self.chunk_size = chunk_size
        self._fd: IO[bytes] | None = None
        self._async: AsyncFileIO | None = None
        self._threaded = type(self)._read is not FileSlice._read
        self._done = False
        self._position = offset
        self._report = position_reporter()

    def __aiter__(self) -> FileSlice:
        return self

    def _open(self) -> IO[bytes]:
        fd = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed by aclose/__del__
        if self.offset:
            fd.seek(self.offset)
        return fd

    async def _read_async(self, want: int) -> bytes:
        # Shielded: a read abandoned to its executor thread would go on touching the file.
        with anyio.CancelScope(shield=True):
            if self._async is None:
                # Opened (and positioned) in one thread call; the file object stays ours
                # to close without waiting (see close), aiofiles reads it.
                self._fd = await anyio.to_thread.run_sync(self._open)
                self._async = aiofiles.threadpool.wrap(self._fd)
            chunk = await self._async.read(want)
        await anyio.lowlevel.checkpoint_if_cancelled()
        return chunk

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        want = self.chunk_size if self.remaining is None else min(self.chunk_size, self.remaining)
        if want <= 0:
            chunk = b""
        elif self._threaded:
            if self._fd is None:
                self._fd = await anyio.to_thread.run_sync(self._open)
            chunk = await anyio.to_thread.run_sync(self._read, want)
        else:
            chunk = await self._read_async(want)
        if not chunk:
            self.close()
            raise StopAsyncIteration
        if self.remaining is not None:
            self.remaining -= len(chunk)
        self._position += len(chunk)
        if self._report is not None:
            await self._report(self._position)
        return chunk

    def _read(self, want: int) -> bytes:
        """Read the next chunk (in a worker thread; a subclass may hash it there too)."""
        assert self._fd is not None
        return self._fd.read(want)

    def close(self) -> None:
        """Close the file (closing an unbuffered read-only file does not block)."""
        self._done = True
        self._async = None
        if self._fd is not None:
            self._fd.close()
            self._fd = None

    async def aclose(self) -> None:
        """Close the file; the stream yields nothing more."""
        self.close()

    def __del__(self) -> None:
        if self._fd is not None:
            self._fd.close()


class VerifiedFile:
    """An async context manager writing a blob atomically and verifying it.

    ``write()`` collects the received chunks, and every ``flush_size`` bytes hands them to a
    worker thread that writes and hashes them in one call: one thread hop per MiB instead
    of one per network read, and hashlib releases the GIL so hashing runs beside the event
    loop. (aiofiles writes with the hash on the event loop cost less CPU, 0.35-0.41 s against
    0.42-0.45 s pulling 256 MiB at 20 ms each way, at the same wall time; they are not used
    because a file object's write does not report what reached the file, see below.) One
    batch may be in the worker while the next is received, so a single download overlaps
    receiving with hashing; at most two batches are held in memory.

    Bytes go to the file through `write_all`, and the hash is
    fed the slices the kernel reported written, so the digest and size ``commit()`` checks
    are those of the file's content: a short write on a full disk is continued or fails,
    never "verified". ``commit()`` checks size and digest (and the file's size on disk),
    then renames the temporary file over ``destination``; ``reset()`` empties the file to
    start the blob over. Leaving the context without a successful commit removes the
    temporary file, on errors and cancellation alike, once the worker is done with it;
    ``destination`` is never touched. An ``OSError`` while creating, writing, flushing,
    closing or renaming the file is raised as [`StorageError`][aioras.exceptions.StorageError].

    The temporary file is made and renamed relative to a descriptor of the destination's
    directory: ``directory``, when given (the caller's, opened without following links,
    and left open), else the parent directory, created when missing. With ``durable``,
    the file is flushed to disk before the rename and the directory after it, so that once
    ``commit()`` returns the blob survives a crash (what a file naming it later relies on).
    ``mode`` sets the file's permission bits before the rename (the temporary file is 0o600).
    ``on_verified``, when given, is called (in the worker thread) with the file's descriptor
    once its content is verified, before the rename: a caller sharing the blob with others
    duplicates it there (the registry client shares a download so).
    """

    def __init__(
        self,
        destination: str | os.PathLike[str],
        digest: str,
        size: int | None = None,
        *,
        flush_size: int = defaults.io_chunk_size,
        durable: bool = False,
        mode: int | None = None,
        directory: int | None = None,
        on_verified: Callable[[int], object] | None = None,
    ) -> None:
        self.destination = Path(destination)
        self.durable = durable
        self.mode = mode
        self.on_verified = on_verified
        self.verifier = Verifier(digest, size)
        self.flush_size = flush_size
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._given_dir = directory
        self._dir: int | None = None
        self._fd: int | None = None
        self._tmp: str | None = None  # the temporary file's name in ``_dir``
        self._committed = False
        self._received = 0
        self._tasks: anyio.abc.TaskGroup | None = None
        self._idle = anyio.Event()
        self._idle.set()
        self._worker_error: BaseException | None = None

    @property
    def received(self) -> int:
        """Bytes of the blob received so far (where a resumed download continues)."""
        return self._received

    # Whether __aenter__ creates the file (a RangedFile sizes it up front); otherwise the
    # first worker-thread call does, with its first batch: one hop fewer per blob.
    _open_early = False

    async def __aenter__(self) -> Self:
        if self._open_early:
            # Shielded: cancelled half-way, the file would exist with nobody to remove it.
            with anyio.CancelScope(shield=True):
                await run_file_work(self._open)
        self._tasks = anyio.create_task_group()
        await self._tasks.__aenter__()
        return self

    def _failed(self, error: OSError, doing: str) -> StorageError:
        what = f"{doing} blob {self.verifier.expected_digest} for"
        return storage_error(error, self.destination, what)

    def _open(self) -> None:
        try:
            if self._given_dir is not None:
                self._dir = self._given_dir
            else:
                parent = self.destination.parent
                parent.mkdir(parents=True, exist_ok=True)
                self._dir = os.open(parent, _DIR_FLAGS)
            self._tmp, self._fd = _create_temporary(self._dir, self.destination.name)
        except OSError as error:
            self._release_directory()
            raise self._failed(error, "creating a temporary file of") from error

    def _ensure_open(self) -> int:
        """The temporary file's descriptor, creating the file first if need be (thread)."""
        if self._fd is None:
            self._open()
        assert self._fd is not None
        return self._fd

    def _write_and_hash(self, chunks: Sequence[bytes | memoryview]) -> None:
        self._ensure_open()
        assert self._fd is not None
        try:
            write_all(self._fd, chunks, written=self.verifier.update)
        except OSError as error:
            raise self._failed(error, "writing") from error

    async def _work(self, chunks: list[bytes]) -> None:
        try:
            await run_file_work(self._write_and_hash, chunks)
        except BaseException as error:
            # Kept for the next write/commit to raise: raising here would cancel the
            # download from inside the task group and surface as an ExceptionGroup.
            self._worker_error = error
        finally:
            self._idle.set()

    async def _wait_idle(self) -> None:
        await self._idle.wait()
        if self._worker_error is not None:
            error, self._worker_error = self._worker_error, None
            raise error

    async def write(self, chunk: bytes) -> None:
        """Add the next piece of the blob; raises SizeMismatch once it exceeds the size.

        Also raises the [`StorageError`][aioras.exceptions.StorageError] of an earlier batch that
        could not be written.
        """
        self._received += len(chunk)
        expected = self.verifier.expected_size
        if expected is not None and self._received > expected:
            # Stop a server that sends more than promised before it fills the disk.
            raise SizeMismatch(
                expected=expected,
                actual=self._received,
                what=f"blob {self.verifier.expected_digest}",
            )
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered >= self.flush_size:
            await self._flush(wait=False)

    async def _flush(self, *, wait: bool) -> None:
        await self._wait_idle()
        if self._chunks:
            assert self._tasks is not None
            chunks, self._chunks, self._buffered = self._chunks, [], 0
            self._idle = anyio.Event()
            self._tasks.start_soon(self._work, chunks)
        if wait:
            await self._wait_idle()

    async def commit(self) -> Path:
        """Verify what was written and move it into place; return the destination.

        Raises [`SizeMismatch`][aioras.exceptions.SizeMismatch] or
        [`DigestMismatch`][aioras.exceptions.DigestMismatch] when the bytes written are not the
        blob, and [`StorageError`][aioras.exceptions.StorageError] when they could not all be
        written, flushed or renamed; no file is left once the context is left.
        """
        await self._wait_idle()
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        # Shielded: once the rename ran, the result must be recorded as committed. One
        # worker-thread call writes the last batch, verifies and renames: for a blob of
        # one batch, the only hop besides none at all (the file is created in it too).
        with anyio.CancelScope(shield=True):
            await run_file_work(self._finish, chunks)
            self._committed = True
        return self.destination

    def _finish(self, chunks: list[bytes]) -> None:
        """Write the last batch, verify everything written, rename into place (thread)."""
        self._write_and_hash(chunks)
        self.verifier.verify(what=f"blob {self.verifier.expected_digest}")
        self._close_and_replace()
        # Here, not on the event loop: every system call there may wait for the GIL.
        self._release_directory()

    async def copy_and_commit(self, source: int) -> Path:
        """Write the content of the open file ``source`` (from its start), hashed as written,
        then verify it and move it into place as `commit` does; return the destination.

        Worker-thread calls read it a ``flush_size`` at a time (``pread``: the descriptor's
        offset is left alone, so others may read it too) and write each piece through
        `write_all`, so what is hashed is what was written, as for received bytes. The call
        that reaches the end of ``source`` also verifies and renames: a copy of up to 16 MiB
        takes one hop. Raises [`SizeMismatch`][aioras.exceptions.SizeMismatch] as soon as
        ``source`` holds more than the expected size,
        [`StorageError`][aioras.exceptions.StorageError] when it cannot be read or the copy
        written, and otherwise as `commit` does; no file is left once the context is left.
        """
        await self._flush(wait=True)
        while True:
            # Shielded as commit is: once the rename ran, it must be recorded. Each call is
            # bounded, and a cancellation is taken between calls.
            with anyio.CancelScope(shield=True):
                if await run_file_work(self._copy_or_finish, source, _COPY_CALL):
                    self._committed = True
                    return self.destination
            await anyio.lowlevel.checkpoint()

    @staticmethod
    async def copy_and_commit_together(
        source: int, sinks: Sequence[VerifiedFile]
    ) -> list[BaseException | None]:
        """Copy the open file ``source`` into every one of ``sinks`` at once, hashing each
        piece once; verify, and move each copy into place as `commit` does.

        For sinks of one blob of at most 16 MiB (one worker-thread call, shielded as
        `commit` is), all expecting the same digest and size: each piece read is written whole to
        every sink (`write_all`), then hashed, so every copy holds exactly the bytes hashed,
        as `copy_and_commit` guarantees for one. N copies cost one read and one hash of
        the blob instead of N of each. Returns, for each sink in order, None when it was
        committed, else the error that sink alone would have raised: a
        [`StorageError`][aioras.exceptions.StorageError] for a copy that could not be
        written, an [`IntegrityError`][aioras.exceptions.IntegrityError] (for every sink)
        when ``source`` does not hold the blob.
        """
        for sink in sinks:
            await sink._flush(wait=True)
        with anyio.CancelScope(shield=True):
            errors = await run_file_work(_copy_to_all, source, sinks)
            for sink, error in zip(sinks, errors, strict=True):
                sink._committed = error is None
        return errors

    def _copy_or_finish(self, source: int, most: int) -> bool:
        """Copy up to ``most`` bytes more; at the end, verify and rename; whether done (thread)."""
        if self._copy_from(source, most):
            return False
        self._finish([])
        return True

    def _copy_from(self, source: int, most: int) -> bool:
        """Copy up to ``most`` bytes more; whether ``source`` may hold more (thread)."""
        self._ensure_open()
        buf = bytearray(min(self.flush_size, most))
        view = memoryview(buf)
        expected = self.verifier.expected_size
        stop = self._received + most
        while self._received < stop:
            try:
                got = os.preadv(source, [view[: stop - self._received]], self._received)
            except OSError as error:
                raise self._failed(error, "copying") from error
            if not got:
                return False
            self._received += got
            if expected is not None and self._received > expected:
                raise SizeMismatch(
                    expected=expected,
                    actual=self._received,
                    what=f"copy of blob {self.verifier.expected_digest}",
                )
            self._write_and_hash([view[:got]])
        return True

    async def reset(self) -> None:
        """Forget everything written so far: the blob starts over from its first byte."""
        with anyio.CancelScope(shield=True):
            await self._idle.wait()  # the worker must be done with the file first
        self._worker_error = None
        self._chunks, self._buffered = [], 0
        self._received = 0
        self.verifier = Verifier(self.verifier.expected_digest, self.verifier.expected_size)
        await run_file_work(self._truncate)

    def _truncate(self) -> None:
        if self._fd is None:
            return  # nothing written yet
        try:
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.ftruncate(self._fd, 0)
        except OSError as error:
            raise self._failed(error, "emptying") from error

    def _check_on_disk(self, fd: int) -> None:
        """The file must hold exactly the bytes hashed (what ``verify`` just accepted)."""
        on_disk = os.fstat(fd).st_size
        if on_disk != self.verifier.size:
            raise SizeMismatch(
                expected=self.verifier.size,
                actual=on_disk,
                what=f"file written for blob {self.verifier.expected_digest}",
            )

    def _close_and_replace(self) -> None:
        assert self._fd is not None
        assert self._dir is not None
        assert self._tmp is not None
        try:
            if self.mode is not None:
                os.fchmod(self._fd, self.mode)
            if self.durable:
                os.fsync(self._fd)
            self._check_on_disk(self._fd)
            if self.on_verified is not None:
                self.on_verified(self._fd)
            fd, self._fd = self._fd, None
            # Closing may report a write error late (network file systems): still refused.
            os.close(fd)
            os.replace(self._tmp, self.destination.name, src_dir_fd=self._dir, dst_dir_fd=self._dir)
            self._tmp = None
            if self.durable:
                os.fsync(self._dir)
        except OSError as error:
            raise self._failed(error, "storing") from error

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if self._tasks is not None:
                # Waits for the worker (its thread call cannot be abandoned), so nothing
                # touches the file once it is closed or removed below.
                tasks, self._tasks = self._tasks, None
                await tasks.__aexit__(None, None, None)
        finally:
            if self._committed:
                self._release_directory()
            elif self._fd is None and self._tmp is None and self._dir is None:
                pass  # no file was made: nothing to remove
            else:
                # Shielded: removal must happen on errors and cancellation alike.
                with anyio.CancelScope(shield=True):
                    await run_file_work(self._discard)

    def _discard(self) -> None:
        """Close and remove the temporary file, whatever closing it reports."""
        try:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                # A full disk may fail the close too; the file goes all the same.
                with contextlib.suppress(OSError):
                    os.close(fd)
            if self._tmp is not None and self._dir is not None:
                tmp, self._tmp = self._tmp, None
                try:
                    os.unlink(tmp, dir_fd=self._dir)
                except FileNotFoundError:
                    pass
                except OSError as error:
                    logger.warning("cannot remove %s: %s", self.destination.parent / tmp, error)
        finally:
            self._release_directory()

    def _release_directory(self) -> None:
        fd, self._dir = self._dir, None  # forgotten first: never closed twice
        if fd is not None and fd != self._given_dir:
            os.close(fd)


def copies_in_one_call(size: int | None) -> bool:
    """Whether copies of a blob of ``size`` go in one worker-thread call (at most 16 MiB)."""
    return size is not None and size <= _COPY_CALL


def _copy_to_all(source: int, sinks: Sequence[VerifiedFile]) -> list[BaseException | None]:
    """`VerifiedFile.copy_and_commit_together`'s thread call: copy, hash once, verify, rename."""
    errors: list[BaseException | None] = [None] * len(sinks)
    for i, sink in enumerate(sinks):
        try:
            sink._ensure_open()
        except StorageError as error:
            errors[i] = error
    hasher = Hasher(sinks[0].verifier.algorithm)
    limit = sinks[0].verifier.expected_size
    try:
        past_limit = _copy_pieces(source, sinks, errors, hasher, limit)
    except OSError as error:  # reading the source
        return [e or sink._failed(error, "copying") for e, sink in zip(errors, sinks, strict=True)]
    for i, sink in enumerate(sinks):
        if errors[i] is not None:
            continue
        what = f"copy of blob {sink.verifier.expected_digest}"
        if past_limit is not None and limit is not None:
            errors[i] = SizeMismatch(expected=limit, actual=past_limit, what=what)
            continue
        # Every piece hashed went whole to this file: the hash is this file's too. Each
        # sink checks it against its own expected digest and size, and raises its own error.
        sink.verifier.resume_from(hasher)
        sink._received = hasher.size
        try:
            sink._finish([])
        except (StorageError, SizeMismatch, DigestMismatch) as error:
            errors[i] = error
    return errors


def _copy_pieces(
    source: int,
    sinks: Sequence[VerifiedFile],
    errors: list[BaseException | None],
    hasher: Hasher,
    limit: int | None,
) -> int | None:
    """Read ``source`` a piece at a time, write each to every sink not failed, then hash it.

    Returns None, or the size read when ``source`` holds more than ``limit`` bytes (the
    copy stops there).
    """
    buf = bytearray(sinks[0].flush_size)
    view = memoryview(buf)
    while got := os.preadv(source, [view], hasher.size):
        if limit is not None and hasher.size + got > limit:
            return hasher.size + got
        piece = view[:got]
        for i, sink in enumerate(sinks):
            if errors[i] is None:
                assert sink._fd is not None
                try:
                    write_all(sink._fd, [piece])
                except OSError as error:
                    errors[i] = sink._failed(error, "copying")
        hasher.update(piece)
    return None


def _create_temporary(directory: int, name: str) -> tuple[str, int]:
    """Create a new private file named after ``name`` in ``directory``; its name and fd.

    Starts with a dot (layout listings skip such names) and is never a followed link.
    """
    for _ in range(_TEMP_ATTEMPTS):
        tmp = f".{name}.{secrets.token_hex(6)}.aioras-part"
        try:
            return tmp, os.open(tmp, _NEW_FILE_FLAGS, 0o600, dir_fd=directory)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary name for {name}")


class RangedFile(VerifiedFile):
    """A `VerifiedFile` filled by several byte ranges at once, at their offsets.

    ``parts`` splits ``[0, size)`` into contiguous ranges of equal size (the last one
    shorter), each received by its own `RangePart`. Every part writes its batches at its
    own offsets (``pwritev``, in a worker thread); SHA-256 is sequential, so the hash
    follows the contiguous prefix: a batch landing right where the hash stands is hashed
    from its own buffer, and bytes that arrived ahead of it (in later ranges) are read
    back from the file, a MiB at a time, once the ranges before them are complete.

    One thread at a time advances the hash; a part whose batch arrives meanwhile writes it
    and returns at once (the hashing thread looks again before it stops, so no byte is
    left behind). Reading back a range that arrived ahead therefore never stalls the
    ranges still arriving. ``commit()`` succeeds only when every range is complete and the
    whole prefix hashed to the digest. Memory stays bounded: at most one batch per part,
    plus one read-back buffer.
    """

    def __init__(
        self,
        destination: str | os.PathLike[str],
        digest: str,
        size: int,
        parts: int,
        *,
        flush_size: int = defaults.io_chunk_size,
        durable: bool = False,
        mode: int | None = None,
        on_verified: Callable[[int], object] | None = None,
    ) -> None:
        super().__init__(
            destination,
            digest,
            size,
            flush_size=flush_size,
            durable=durable,
            mode=mode,
            on_verified=on_verified,
        )
        if parts < 1 or size < parts:
            raise ValueError(f"cannot split {size} bytes into {parts} ranges")
        step = -(-size // parts)
        self.size = size
        self.starts = [i * step for i in range(parts) if i * step < size]
        self.ends = [*self.starts[1:], size]
        self.filled = [0] * len(self.starts)
        self._hashed = 0
        # Held by the one thread advancing the hash (tried, never waited for).
        self._hashing = threading.Lock()

    @property
    def hashed(self) -> int:
        """Bytes of the contiguous prefix hashed so far."""
        return self._hashed

    def part(self, index: int) -> RangePart:
        """The writer of range ``index``, continuing where that range stands."""
        return RangePart(self, index)

    _open_early = True  # sized up front, and written at offsets by several parts

    def _open(self) -> None:
        super()._open()
        assert self._fd is not None
        try:
            try:
                # Claims the space up front: a full disk fails now, not half-way through.
                os.posix_fallocate(self._fd, 0, self.size)
            except (AttributeError, OSError):
                os.ftruncate(self._fd, self.size)  # file systems without fallocate
        except OSError as error:
            self._discard()
            raise self._failed(error, "sizing") from error

    def _write_part(self, index: int, chunks: list[bytes]) -> None:
        """Write a batch of range ``index`` at its offset, then advance the hash (thread)."""
        assert self._fd is not None
        offset = self.starts[index] + self.filled[index]
        try:
            count = write_all(self._fd, chunks, offset=offset)
        except OSError as error:
            raise self._failed(error, "writing") from error
        # Counted before the hash is tried: a thread hashing now sees it when it looks again.
        self.filled[index] += count
        if not self._hashing.acquire(blocking=False):
            return  # another thread is hashing, and reaches these bytes before it stops
        try:
            if offset == self._hashed:
                # Written whole (write_all returned): these are the bytes on disk.
                for chunk in chunks:
                    self.verifier.update(chunk)
                self._hashed += count
        finally:
            self._hashing.release()
        self._advance()

    def _advance(self) -> None:
        """Hash what the prefix now reaches, until no thread left bytes for us (thread).

        A part that finds the hash taken only counts its bytes; looking again after letting
        go of it picks up whatever was counted meanwhile.
        """
        while self._reachable() and self._hashing.acquire(blocking=False):
            try:
                self._catch_up()
            except OSError as error:
                raise self._failed(error, "reading back") from error
            finally:
                self._hashing.release()

    def _reachable(self) -> bool:
        """Whether bytes on disk continue the hashed prefix."""
        hashed = self._hashed
        for index, start in enumerate(self.starts):
            if start <= hashed < self.ends[index]:
                return hashed < start + self.filled[index]
        return False

    def _catch_up(self) -> None:
        """Hash bytes already on disk that the prefix reaches (the caller holds the hash)."""
        assert self._fd is not None
        buf: bytearray | None = None
        for index, start in enumerate(self.starts):
            end = start + self.filled[index]
            if self._hashed >= self.ends[index]:
                continue
            if self._hashed < start:
                return  # the range before this one is incomplete
            while self._hashed < end:
                if buf is None:
                    buf = bytearray(self.flush_size)
                want = min(len(buf), end - self._hashed)
                got = os.preadv(self._fd, [memoryview(buf)[:want]], self._hashed)
                if got <= 0:
                    raise OSError(errno.EIO, f"short read at byte {self._hashed}")
                self.verifier.update(memoryview(buf)[:got])
                self._hashed += got
            if end < self.ends[index]:
                return

    async def reset(self) -> None:
        """Forget everything written so far (every range starts over)."""
        await super().reset()
        self.filled = [0] * len(self.starts)
        self._hashed = 0

    def _truncate(self) -> None:
        super()._truncate()
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, self.size)
        except OSError as error:
            raise self._failed(error, "sizing") from error

    def _finish(self, chunks: list[bytes]) -> None:
        self._advance()  # every part is done: nothing can be left unhashed, but make sure
        super()._finish(chunks)

    async def commit(self) -> Path:
        """Verify the ranges and move the file into place; see `VerifiedFile.commit`."""
        if self.filled != [e - s for s, e in zip(self.starts, self.ends, strict=True)]:
            raise SizeMismatch(
                expected=self.size,
                actual=sum(self.filled),
                what=f"blob {self.verifier.expected_digest}",
            )
        return await super().commit()


class RangePart:
    """Receives one range of a `RangedFile`, batching writes as VerifiedFile does."""

    def __init__(self, owner: RangedFile, index: int) -> None:
        self.owner = owner
        self.index = index
        self._chunks: list[bytes] = []
        self._buffered = 0

    @property
    def start(self) -> int:
        """Where the range begins in the blob."""
        return self.owner.starts[self.index]

    @property
    def end(self) -> int:
        """Where the range ends (exclusive)."""
        return self.owner.ends[self.index]

    @property
    def received(self) -> int:
        """Bytes of this range received so far (where a resumed request continues)."""
        return self.owner.filled[self.index] + self._buffered

    async def write(self, chunk: bytes) -> None:
        """Add the next piece of the range; raises SizeMismatch past the range's end."""
        if self.start + self.received + len(chunk) > self.end:
            raise SizeMismatch(
                expected=self.end - self.start,
                actual=self.received + len(chunk),
                what=f"range {self.index} of blob {self.owner.verifier.expected_digest}",
            )
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered >= self.owner.flush_size:
            await self.flush()

    async def flush(self) -> None:
        """Write what is buffered (in a worker thread, which cancellation waits for)."""
        if self._chunks:
            chunks, self._chunks, self._buffered = self._chunks, [], 0
            await run_file_work(self.owner._write_part, self.index, chunks)
