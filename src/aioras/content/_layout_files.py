"""File-system helpers of OCI layout directories: locks, small reads, listings, removal.

All of them block: callers run them in worker threads.
"""

from __future__ import annotations

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
from ..exceptions import InvalidLayout
from ..remote._blobio import fsync_directory
from ._layout_index import blob_digest

__all__ = [
    "MARKER_LIMIT",
    "BlobSource",
    "Stamp",
    "directory_blobs",
    "directory_lock",
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
