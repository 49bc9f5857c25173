"""File-system helpers of OCI layout directories: locks, small reads, listings, removal.

All of them block: callers run them in worker threads.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

if sys.platform != "win32":
    import fcntl

from .. import defaults
from .._files.blobio import fsync_directory
from ..exceptions import InvalidLayout
from ._layout_index import blob_digest

__all__ = [
    "MARKER_LIMIT",
    "BlobSource",
    "Stamp",
    "blob_size_at",
    "directory_blobs",
    "directory_lock",
    "open_blob_directory",
    "process_lock",
    "read_small",
    "unlink_durably",
]

logger = logging.getLogger(__name__)

# oci-layout holds one small JSON object; anything bigger is not one.
MARKER_LIMIT = 64 * 1024
# (inode, mtime, size): changes whenever index.json is replaced or rewritten.
Stamp = tuple[int, int, int]
# (digest, file, offset, size): where a blob's bytes are.
BlobSource = tuple[str, str, int, int]
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
# A directory below the layout root is opened without following a link (O_NOFOLLOW).
_SUBDIR_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_PROCESS_LOCKS_GUARD = threading.Lock()


def process_lock(path: Path) -> threading.Lock:
    """The lock serialising this process's edits of one layout directory."""
    key = os.path.realpath(path)
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())


@contextmanager
def directory_lock(path: Path) -> Iterator[None]:
    """An advisory lock on the layout directory against other processes (POSIX only).

    Best effort: file systems without ``flock`` (some network mounts) go unlocked.
    """
    if sys.platform == "win32":
        yield
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield  # nothing on disk yet to protect
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as error:
            logger.debug("cannot lock %s (%s); editing it unlocked", path, error)
        yield
    finally:
        os.close(fd)  # releases the lock


def read_small(path: Path, limit: int) -> tuple[bytes, Stamp] | None:
    """Read a layout file of at most ``limit`` bytes; ``None`` when it does not exist."""
    # O_NOFOLLOW: a link could lead anywhere; O_NONBLOCK: a FIFO must not hang the open.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        raise InvalidLayout(f"{path} is a symbolic link", path=str(path)) from None
    with open(fd, "rb", buffering=0) as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise InvalidLayout(f"{path} is not a regular file", path=str(path))
        if st.st_size > limit:
            raise InvalidLayout(
                f"{path} of {st.st_size} bytes exceeds the {limit}-byte limit", path=str(path)
            )
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise InvalidLayout(f"{path} exceeds the {limit}-byte limit", path=str(path))
    return data, (st.st_ino, st.st_mtime_ns, st.st_size)


def directory_blobs(root: Path) -> list[BlobSource]:
    """Every blob file under ``root`` (``blobs/``), in name order; temporary files skipped.

    Raises :class:`InvalidLayout` for names that are not digests and for entries that are
    not regular files (or, one level up, directories).
    """
    out: list[BlobSource] = []
    if not root.is_dir():
        return out
    for algorithm in sorted(os.listdir(root)):
        directory = root / algorithm
        if directory.is_symlink() or not directory.is_dir():
            raise InvalidLayout(f"{directory} is not a directory", path=str(directory))
        for name in sorted(os.listdir(directory)):
            if name.startswith("."):
                continue  # the temporary file of a write in progress, or left by a crash
            digest = blob_digest(f"{defaults.oci_blobs_dir}/{algorithm}/{name}")
            if digest is None:
                continue
            st = os.lstat(directory / name)
            if not stat.S_ISREG(st.st_mode):
                raise InvalidLayout(f"blob {directory / name} is not a regular file")
            out.append((digest, str(directory / name), 0, st.st_size))
    return out


def unlink_durably(path: Path) -> None:
    """Remove a file and flush its directory."""
    path.unlink()
    fsync_directory(path.parent)


def _open_subdirectory(parent: int, name: str, where: Path) -> int:
    """Open (making it first if missing) directory ``name`` of ``parent``, never a link."""
    for _ in range(2):
        try:
            return os.open(name, _SUBDIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):  # made meanwhile by another writer
                os.mkdir(name, 0o755, dir_fd=parent)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                raise InvalidLayout(f"{where} is not a directory", path=str(where)) from None
            raise
    raise InvalidLayout(f"{where} keeps disappearing", path=str(where))


def open_blob_directory(root: Path, algorithm: str) -> int:
    """A descriptor of ``root/blobs/<algorithm>``, made when missing; the caller closes it.

    Opened a directory at a time from ``root``, each below it with ``O_NOFOLLOW``, on every
    call: files made and renamed relative to this descriptor land inside the layout even
    when ``blobs`` or ``blobs/<algorithm>`` is swapped for a link meanwhile (what a check of
    the path, done once, would miss). Raises :class:`InvalidLayout` when either is a
    symbolic link or not a directory.
    """
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    where = root
    try:
        for name in (defaults.oci_blobs_dir, algorithm):
            where = where / name
            child = _open_subdirectory(fd, name, where)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def blob_size_at(directory: int, encoded: str, where: Path) -> int | None:
    """The size of blob file ``encoded`` in ``directory`` (a descriptor); None when absent.

    Raises :class:`InvalidLayout` when it is not a regular file (a link, a FIFO ...).
    """
    try:
        st = os.stat(encoded, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidLayout(f"blob {where} is not a regular file", path=str(where))
    return st.st_size
