"""Streaming blob I/O: file bodies for uploads, verified atomic files for downloads.

Nothing here holds a whole blob in memory: uploads read the file in chunks as the socket
takes them; downloads go to a temporary file beside the destination, hashed on the way, and
are renamed into place only when size and digest match.

File reads and writes run in anyio worker threads, one call per chunk. anyio waits for a
thread call to finish even when the task is cancelled, so once a cancelled push or pull
returns, no thread is still touching its files (aiofiles' executor threads would be).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import IO

import anyio
import anyio.abc

from . import defaults
from .digest import Verifier
from .exceptions import SizeMismatch
from .progress import position_reporter
from .transport import BodyFactory

__all__ = ["FileSlice", "VerifiedFile", "file_body", "fsync_directory"]

logger = logging.getLogger(__name__)


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
    """An async byte stream over ``path[offset:offset+length]``, read in worker threads.

    A plain async iterator rather than an async generator: when the request using it is
    cancelled or fails half-way, :meth:`aclose` (or garbage collection) closes the file
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

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        if self._fd is None:
            self._fd = await anyio.to_thread.run_sync(self._open)
        want = self.chunk_size if self.remaining is None else min(self.chunk_size, self.remaining)
        chunk = await anyio.to_thread.run_sync(self._fd.read, want) if want > 0 else b""
        if not chunk:
            self.close()
            raise StopAsyncIteration
        if self.remaining is not None:
            self.remaining -= len(chunk)
        self._position += len(chunk)
        if self._report is not None:
            await self._report(self._position)
        return chunk

    def close(self) -> None:
        """Close the file (closing an unbuffered read-only file does not block)."""
        self._done = True
        if self._fd is not None:
            self._fd.close()
            self._fd = None

    async def aclose(self) -> None:
        """Close the file; the stream yields nothing more."""
        self.close()

    def __del__(self) -> None:
        if self._fd is not None:
            self._fd.close()


def file_body(
    path: str | os.PathLike[str],
    *,
    offset: int = 0,
    length: int | None = None,
    chunk_size: int = defaults.io_chunk_size,
) -> BodyFactory:
    """Return a factory of async byte streams over ``path[offset:offset+length]``.

    Each call opens the file anew, so the transport can replay the body after an auth
    challenge or a retry. Reads run in worker threads: the event loop never blocks on the
    disk.
    """

    def stream() -> AsyncIterator[bytes]:
        return FileSlice(path, offset=offset, length=length, chunk_size=chunk_size)

    return stream


class VerifiedFile:
    """An async context manager writing a blob atomically and verifying it.

    ``write()`` collects the received chunks, and every ``flush_size`` bytes hands them to a
    worker thread that hashes and writes them in one call: one thread hop per MiB instead
    of one per network read, and hashlib releases the GIL so hashing runs beside the event
    loop. One batch may be in the worker while the next is received, so a single download
    overlaps receiving with hashing; at most two batches are held in memory. ``commit()``
    checks size and digest, then renames the temporary file over ``destination``;
    ``reset()`` empties the file to start the blob over. Leaving the context without a
    successful commit removes the temporary file, on errors and cancellation alike, once
    the worker is done with it; ``destination`` is never touched. With ``durable``, the file
    is flushed to disk before the rename and the directory after it, so that once
    ``commit()`` returns the blob survives a crash (what a file naming it later relies on).
    ``mode`` sets the file's permission bits before the rename (the temporary file is 0o600).
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
    ) -> None:
        self.destination = Path(destination)
        self.durable = durable
        self.mode = mode
        self.verifier = Verifier(digest, size)
        self.flush_size = flush_size
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._fd: IO[bytes] | None = None
        self._tmp: Path | None = None
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

    async def __aenter__(self) -> VerifiedFile:
        # Shielded: cancelled half-way, the file would exist with nobody left to remove it.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._open)
        self._tasks = anyio.create_task_group()
        await self._tasks.__aenter__()
        return self

    def _open(self) -> None:
        parent = self.destination.parent
        parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            dir=parent, prefix=f".{self.destination.name}.", suffix=".aioras-part"
        )
        self._tmp = Path(name)
        self._fd = os.fdopen(fd, "wb", buffering=0)

    def _write_and_hash(self, chunks: list[bytes]) -> None:
        assert self._fd is not None
        for chunk in chunks:
            self.verifier.update(chunk)
        self._fd.writelines(chunks)

    async def _work(self, chunks: list[bytes]) -> None:
        try:
            await anyio.to_thread.run_sync(self._write_and_hash, chunks)
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
        """Add the next piece of the blob; raises SizeMismatch once it exceeds the size."""
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

        Raises :class:`~aioras.exceptions.SizeMismatch` or
        :class:`~aioras.exceptions.DigestMismatch`, after which no file is left.
        """
        await self._flush(wait=True)
        self.verifier.verify(what=f"blob {self.verifier.expected_digest}")
        # Shielded: once the rename ran, the result must be recorded as committed.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._close_and_replace)
            self._committed = True
        return self.destination

    async def reset(self) -> None:
        """Forget everything written so far: the blob starts over from its first byte."""
        with anyio.CancelScope(shield=True):
            await self._idle.wait()  # the worker must be done with the file first
        self._worker_error = None
        self._chunks, self._buffered = [], 0
        self._received = 0
        self.verifier = Verifier(self.verifier.expected_digest, self.verifier.expected_size)
        await anyio.to_thread.run_sync(self._truncate)

    def _truncate(self) -> None:
        assert self._fd is not None
        self._fd.seek(0)
        self._fd.truncate()

    def _close_and_replace(self) -> None:
        assert self._fd is not None
        assert self._tmp is not None
        if self.mode is not None:
            os.chmod(self._tmp, self.mode)
        if self.durable:
            os.fsync(self._fd.fileno())
        self._fd.close()
        os.replace(self._tmp, self.destination)
        if self.durable:
            fsync_directory(self.destination.parent)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tasks is not None:
                # Waits for the worker (its thread call cannot be abandoned), so nothing
                # touches the file once it is closed or removed below.
                tasks, self._tasks = self._tasks, None
                await tasks.__aexit__(None, None, None)
        finally:
            if not self._committed:
                # Shielded: removal must happen on errors and cancellation alike.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._discard)

    def _discard(self) -> None:
        if self._fd is not None and not self._fd.closed:
            self._fd.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
