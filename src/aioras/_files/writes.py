"""The one place where blob bytes reach a file: every byte written, or a typed error.

``write(2)`` may write less than it was given: a disk that fills up, a quota, a file size
limit or a signal cut it short, and only the *next* call reports the error (``ENOSPC``,
``EDQUOT``, ``EFBIG``, ``EIO``). A file object's ``writelines`` (or an unbuffered
``write``) drops that count on the floor, so a writer that hashes what it was handed
rather than what was written can "verify" a file that holds less. `write_all`
continues every short write until each byte is written or the kernel refuses, and hands
each written slice to ``written`` (a hasher), so what is hashed and counted is exactly what
the file holds. `storage_error` turns the ``OSError`` of a write, flush, close or
rename into [`StorageError`][aioras.exceptions.StorageError]; callers then remove their temporary
file. All functions here block: callers run them in worker threads.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence

from ..exceptions import StorageError

__all__ = ["FdWriter", "storage_error", "write_all"]

Chunk = bytes | bytearray | memoryview

# writev/pwritev take at most IOV_MAX buffers (1024 on Linux and the BSDs).
_IOV_MAX = 1024


def write_all(
    fd: int,
    chunks: Sequence[Chunk],
    *,
    offset: int | None = None,
    written: Callable[[memoryview], object] | None = None,
) -> int:
    """Write ``chunks`` whole to ``fd`` (at ``offset`` when given, else where it stands).

    One ``writev``/``pwritev`` call per batch; a call writing less than asked is followed by
    another for the rest, so a short write either completes or ends in the kernel's error,
    raised as the ``OSError`` it is. A call writing nothing raises ``ENOSPC``. ``written``
    receives every slice the kernel reported written, in order, before the next call.
    Returns the number of bytes written (all of them).
    """
    views = [memoryview(c).cast("B") for c in chunks if len(c)]
    first = 0  # views[:first] are written
    total = 0
    while first < len(views):
        batch = views[first : first + _IOV_MAX]
        count = os.writev(fd, batch) if offset is None else os.pwritev(fd, batch, offset + total)
        if count <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        total += count
        while count:
            head = views[first]
            done = min(count, len(head))
            if written is not None:
                written(head[:done])
            count -= done
            if done == len(head):
                first += 1
            else:
                views[first] = head[done:]
    return total


def storage_error(error: OSError, path: str | os.PathLike[str], doing: str) -> StorageError:
    """The typed error for ``error``, raised while ``doing`` (e.g. "writing") ``path``."""
    where = os.fspath(path)
    return StorageError(
        f"{doing} {where} failed: {error.strerror or error}", path=where, errno=error.errno
    )


class FdWriter:
    """A write-only binary file over a descriptor whose ``write`` writes every byte.

    For writers such as `tarfile` that take a file object: each ``write`` goes through
    `write_all`, and an ``OSError`` becomes [`StorageError`][aioras.exceptions.StorageError] naming
    ``path``. ``written`` counts the bytes written. The descriptor is the caller's to close.
    """

    def __init__(self, fd: int, path: str | os.PathLike[str]) -> None:
        self.fd = fd
        self.path = os.fspath(path)
        self.written = 0

    def write(self, data: Chunk) -> int:
        """Write ``data`` whole; raises [`StorageError`][aioras.exceptions.StorageError] when the
        kernel refuses."""
        try:
            count = write_all(self.fd, [data])
        except OSError as error:
            raise storage_error(error, self.path, "writing") from error
        self.written += count
        return count

    def tell(self) -> int:
        """The position in the file (where the next write lands)."""
        return os.lseek(self.fd, 0, os.SEEK_CUR)
