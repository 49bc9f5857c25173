"""Streaming blob I/O: file bodies for uploads, verified atomic files for downloads.

Nothing here holds a whole blob in memory: uploads read the file in chunks as the socket
takes them; downloads go to a temporary file beside the destination, hashed on the way, and
are renamed into place only when size and digest match.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import IO

import aiofiles
import anyio

from . import defaults
from .digest import Verifier
from .exceptions import SizeMismatch
from .transport import BodyFactory

__all__ = ["VerifiedFile", "file_body"]

logger = logging.getLogger(__name__)


def file_body(
    path: str | os.PathLike[str],
    *,
    offset: int = 0,
    length: int | None = None,
    chunk_size: int = defaults.io_chunk_size,
) -> BodyFactory:
    """Return a factory of async byte streams over ``path[offset:offset+length]``.

    Each call opens the file anew, so the transport can replay the body after an auth
    challenge or a retry. Reads go through aiofiles' worker threads: the event loop never
    blocks on the disk.
    """

    async def stream() -> AsyncIterator[bytes]:
        remaining = length
        async with aiofiles.open(path, "rb") as fd:
            if offset:
                await fd.seek(offset)
            while remaining is None or remaining > 0:
                want = chunk_size if remaining is None else min(chunk_size, remaining)
                chunk = await fd.read(want)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    return stream


class VerifiedFile:
    """An async context manager writing a blob atomically and verifying it.

    ``write()`` buffers, and every ``flush_size`` bytes one worker-thread call both hashes
    and writes the buffer: one thread hop per MiB instead of one per network read, and
    hashlib releases the GIL so concurrent downloads hash on separate cores. ``commit()``
    checks size and digest, then renames the temporary file over ``destination``. Leaving
    the context without a successful commit removes the temporary file; ``destination``
    is never touched.
    """

    def __init__(
        self,
        destination: str | os.PathLike[str],
        digest: str,
        size: int | None = None,
        *,
        flush_size: int = defaults.io_chunk_size,
    ) -> None:
        self.destination = Path(destination)
        self.verifier = Verifier(digest, size)
        self.flush_size = flush_size
        self._buffer = bytearray()
        self._fd: IO[bytes] | None = None
        self._tmp: Path | None = None
        self._committed = False
        self._received = 0

    async def __aenter__(self) -> VerifiedFile:
        await anyio.to_thread.run_sync(self._open)
        return self

    def _open(self) -> None:
        parent = self.destination.parent
        parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            dir=parent, prefix=f".{self.destination.name}.", suffix=".aioras-part"
        )
        self._tmp = Path(name)
        self._fd = os.fdopen(fd, "wb", buffering=0)

    def _write_and_hash(self, data: bytes | bytearray) -> None:
        assert self._fd is not None
        self.verifier.update(data)
        self._fd.write(data)

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
        self._buffer += chunk
        if len(self._buffer) >= self.flush_size:
            await self._flush()

    async def _flush(self) -> None:
        if self._buffer:
            data, self._buffer = self._buffer, bytearray()
            await anyio.to_thread.run_sync(self._write_and_hash, data)

    async def commit(self) -> Path:
        """Verify what was written and move it into place; return the destination.

        Raises :class:`~aioras.exceptions.SizeMismatch` or
        :class:`~aioras.exceptions.DigestMismatch`, after which no file is left.
        """
        await self._flush()
        self.verifier.verify(what=f"blob {self.verifier.expected_digest}")
        await anyio.to_thread.run_sync(self._close_and_replace)
        self._committed = True
        return self.destination

    def _close_and_replace(self) -> None:
        assert self._fd is not None
        assert self._tmp is not None
        self._fd.close()
        os.replace(self._tmp, self.destination)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._committed:
            return
        # Runs on errors and on cancellation alike: shielded so the file is always removed.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._discard)

    def _discard(self) -> None:
        if self._fd is not None and not self._fd.closed:
            self._fd.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
