"""Small files replaced whole or not at all, and the lock that serialises their rewrites.

Every small document aioras rewrites in place (``utils.write_file``/``write_json``, the
Docker ``config.json`` login edits, a mirror's resume file, an OCI layout's ``index.json``
and ``oci-layout``) goes through `replace_file`: the content is written to a
temporary file beside the target, flushed to disk, given its permission bits and renamed
over the target, and the directory entry is flushed too. Readers see the old file or the
new one, never half of one, and a crash leaves one of them. `file_lock` lets several
writers (tasks, threads or processes) do read-modify-write on one file without dropping
each other's changes. Both functions block or wait on the disk: call `replace_file`
in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.to_thread

from .._retry import Backoff, Retrying
from .blobio import fsync_directory
from .writes import storage_error, write_all

if sys.platform != "win32":
    import fcntl

__all__ = ["file_lock", "replace_file"]

# A writer holds a lock for milliseconds: poll briefly first, and never sleep over 50 ms.
_LOCK_POLL = Backoff(first=0.002, cap=0.05, jitter=0.0)


def replace_file(
    path: str | os.PathLike[str], content: str | bytes, *, mode: int | None = None
) -> None:
    """Replace the file at ``path`` with ``content`` (text is written as UTF-8), atomically.

    The new file gets ``mode`` when given, else the mode of the file it replaces, else
    0o644 (reading the umask would mean changing it, racing other threads). A symlink at
    ``path`` is replaced by the file, not written through: resolve it first to write
    through. Raises [`StorageError`][aioras.exceptions.StorageError] when the content cannot be
    written whole and flushed (a full disk), and the ``OSError`` of a failed rename;
    either way ``path`` keeps its old content and no temporary file is left.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    data = content.encode() if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", dir=directory)
    try:
        try:
            try:
                write_all(fd, [data])
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as error:  # a full disk, a file size limit, a failing device
            raise storage_error(error, target, "writing") from error
        if mode is None:
            try:
                mode = stat.S_IMODE(os.stat(target).st_mode)
            except FileNotFoundError:
                mode = 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_directory(directory)


def _lock_path(path: str | os.PathLike[str]) -> Path:
    """The sidecar lock file of ``path``: beside its real target, so every alias shares it."""
    target = Path(os.path.realpath(path))
    return target.with_name(target.name + ".lock")


def _open_lock_file(path: Path) -> int:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


@contextlib.asynccontextmanager
async def file_lock(path: str | os.PathLike[str]) -> AsyncIterator[None]:
    """Hold the exclusive lock of the file at ``path`` (``flock`` on ``<path>.lock``).

    Waits, without blocking the event loop, while another thread, task or process holds
    it; cancelling the wait is safe. The sidecar file is never removed: removing it would
    let two writers lock two different files. Without ``flock`` (Windows) nothing is locked.
    """
    if sys.platform == "win32":
        yield
        return
    fd = await anyio.to_thread.run_sync(_open_lock_file, _lock_path(path))
    try:
        polling = Retrying(None, on=BlockingIOError, backoff=_LOCK_POLL, level=None)
        async for attempt in polling:
            with attempt:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)  # releases the lock
