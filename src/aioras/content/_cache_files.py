"""File-system work of the blob cache: digest locks, entries, eviction and copies out.

The cache directory::

    <root>/                       0700
      blobs/<algorithm>/<hex>     finished, verified blobs (an OCI layout's blob tree)
      blobs/<algorithm>/.<hex>.*  a fill in progress, or left by a killed one (never a blob)
      locks/<algorithm>/<hex>.lock  the digest's lock; while a fill runs it holds its size
      locks/evict.lock            serialises eviction passes and admissions of fills

Locks are ``flock(2)`` locks, which belong to an open file and go with it when the process
dies (SIGKILL included), so a crash never leaves a digest locked. A blob is read under a
shared lock of its digest (a lease) and written, dropped or evicted under an exclusive one;
eviction only ever *tries* a lock (``LOCK_NB``) and skips what it cannot take, so a blob
being read or written is never evicted, and eviction never waits while holding anything.
A lock file may be removed (by eviction, or as stale) only by the holder of its exclusive
lock; whoever takes a lock then checks that the file it locked is still the one at the
path, and starts over when it is not, so two holders can never lock two different files.

Every name inside the root is opened relative to a directory descriptor with
``O_NOFOLLOW``: a symbolic link planted inside is never followed (an entry that is a link is
dropped as corrupt; a link in place of a directory is refused with
[`InvalidLayout`][aioras.exceptions.InvalidLayout]). All functions here block: callers run them in
worker threads.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.platform != "win32":
    import fcntl

from .. import defaults
from .._files.writes import storage_error, write_all
from ..digest import ALGORITHMS, digest_file_sync
from ..exceptions import DigestMismatch, InvalidLayout, SizeMismatch
from ._layout_files import open_subdirectories

__all__ = [
    "EntryInfo",
    "Evicted",
    "Slot",
    "admit",
    "copy_out",
    "evict",
    "list_entries",
    "make_root",
    "open_evict_lock",
    "try_lock_file",
]

LOCKS_DIR = "locks"
EVICT_LOCK = "evict.lock"
_LOCK_SUFFIX = ".lock"
# A fill's staged file (a downloader writes it, the cache checks it, then renames it).
STAGED_SUFFIX = ".aioras-fill"
_PRIVATE = 0o700
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: a FIFO planted as an entry must not hang the open.
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | _NOFOLLOW
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
# copy_file_range cannot copy between these file descriptors: fall back to a streamed copy.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}


def make_root(root: Path) -> None:
    """Create the cache directory (0700) when missing; refuse what is not a directory."""
    try:
        root.mkdir(mode=_PRIVATE, parents=True, exist_ok=True)
    except FileExistsError:
        raise InvalidLayout(f"cache {root} is not a directory", path=str(root)) from None


def try_lock_file(fd: int, *, exclusive: bool) -> bool:
    """Take the ``flock`` without waiting; False when another open file holds it."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _is_current(fd: int, directory: int, name: str) -> bool:
    """Whether ``fd`` is still the file named ``name`` (not removed or replaced)."""
    try:
        st = os.stat(name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _open_lock(directory: int, name: str, where: Path) -> int:
    try:
        return os.open(name, _LOCK_FLAGS, 0o600, dir_fd=directory)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise InvalidLayout(f"{where} is a symbolic link", path=str(where)) from None
        raise storage_error(error, where, "opening the lock") from error


def _is_part_of(name: str, encoded: str) -> bool:
    """Whether ``name`` is a temporary file of a fill of ``encoded`` (``.<hex>.*``)."""
    return name.startswith(".") and name.lstrip(".").startswith(encoded + ".")


@dataclass(frozen=True)
class EntryInfo:
    """A finished entry as listed: where it is, how big, when last used."""

    algorithm: str
    encoded: str
    size: int
    used_ns: int

    @property
    def digest(self) -> str:
        """The entry's digest."""
        return f"{self.algorithm}:{self.encoded}"


class Slot:
    """One digest's place in the cache: its lock file and its blob directory, by descriptor.

    ``lock(exclusive)`` tries the digest's lock once; the caller polls. ``entry(...)``
    opens the blob, checked. The lock is held until `close` (or `unlock`).
    """

    def __init__(self, root: Path, algorithm: str, encoded: str) -> None:
        self.root = root
        self.algorithm = algorithm
        self.encoded = encoded
        self.lock_name = encoded + _LOCK_SUFFIX
        self.blob_path = root / defaults.oci_blobs_dir / algorithm / encoded
        self.lock_path = root / LOCKS_DIR / algorithm / self.lock_name
        self.blobs: int | None = None
        self.locks: int | None = None
        self.lock_fd: int | None = None
        self.exclusive = False

    def open(self) -> None:
        """Open (making them when missing, 0700) the blob and lock directories."""
        if self.blobs is None:
            self.blobs = open_subdirectories(
                self.root, (defaults.oci_blobs_dir, self.algorithm), mode=_PRIVATE
            )
        if self.locks is None:
            self.locks = open_subdirectories(self.root, (LOCKS_DIR, self.algorithm), mode=_PRIVATE)

    def lock(self, *, exclusive: bool) -> bool:
        """Try once to take the digest's lock (shared or exclusive); True when held."""
        self.open()
        assert self.locks is not None
        if self.lock_fd is None:
            self.lock_fd = _open_lock(self.locks, self.lock_name, self.lock_path)
        if not try_lock_file(self.lock_fd, exclusive=exclusive):
            return False
        if not _is_current(self.lock_fd, self.locks, self.lock_name):
            # Removed by an evictor between our open and our lock: lock the new file.
            os.close(self.lock_fd)
            self.lock_fd = None
            return self.lock(exclusive=exclusive)
        self.exclusive = exclusive
        return True

    def downgrade(self) -> None:
        """Turn the exclusive lock into a shared one (readers may join; nobody evicts)."""
        assert self.lock_fd is not None
        fcntl.flock(self.lock_fd, fcntl.LOCK_SH)
        self.exclusive = False

    def unlock(self) -> None:
        """Release the lock (the lock file stays open for the next try)."""
        if self.lock_fd is not None:
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    def entry(self, size: int, *, verify_digest: bool, touch: bool) -> int | str | None:
        """The finished blob, opened: its descriptor, a reason it is corrupt, or None.

        Checks that it is a regular file (not followed if a link) of ``size`` bytes and,
        with ``verify_digest``, that it hashes to the digest. ``touch`` records the use
        (the file's times: the eviction order) on success. The caller holds the lock.
        """
        assert self.blobs is not None
        try:
            fd = os.open(self.encoded, _READ_FLAGS, dir_fd=self.blobs)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.EMLINK):
                return "it is a symbolic link"
            if error.errno == errno.EISDIR:
                return "it is a directory"
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                reason: str | None = "it is not a regular file"
            elif st.st_size != size:
                reason = f"it holds {st.st_size} bytes, not {size}"
            elif verify_digest:
                actual, _ = digest_file_sync(fd, self.algorithm)
                expected = f"{self.algorithm}:{self.encoded}"
                reason = None if actual == expected else f"its bytes hash to {actual}"
            else:
                reason = None
            if reason is not None:
                os.close(fd)
                return reason
            if touch:
                with contextlib.suppress(OSError):  # a read-only cache still serves hits
                    os.utime(fd)
            return fd
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise

    def drop(self) -> None:
        """Remove the entry (a link itself, never what it points to); caller holds EX."""
        assert self.blobs is not None
        try:
            os.unlink(self.encoded, dir_fd=self.blobs)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            where = str(self.blob_path)
            raise InvalidLayout(f"{where} is a directory", path=where) from None

    def clean_parts(self) -> None:
        """Remove what killed fills of this digest left; the caller holds EX."""
        assert self.blobs is not None
        for name in os.listdir(self.blobs):
            if _is_part_of(name, self.encoded):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=self.blobs)

    def reserve(self, size: int) -> None:
        """Record ``size`` in the lock file: eviction counts it while the fill runs.

        ``0`` clears it: what an earlier fill of the digest recorded must not count
        while this one waits to be admitted.
        """
        assert self.lock_fd is not None
        assert self.exclusive
        os.ftruncate(self.lock_fd, 0)
        if size:
            write_all(self.lock_fd, [str(size).encode()], offset=0)

    def staged_name(self) -> str:
        """A fresh name for a downloader's file, recognised as a part of this digest."""
        return f".{self.encoded}.{secrets.token_hex(6)}{STAGED_SUFFIX}"

    def adopt(self, staged: str, size: int) -> None:
        """Check a downloaded file (size, digest) and rename it to the entry; EX held.

        Raises [`SizeMismatch`][aioras.exceptions.SizeMismatch] or
        [`DigestMismatch`][aioras.exceptions.DigestMismatch] (removing it) when it is not the blob.
        """
        assert self.blobs is not None
        try:
            fd = os.open(staged, _READ_FLAGS, dir_fd=self.blobs)
        except FileNotFoundError:
            what = f"download of {self.blob_path}"
            raise SizeMismatch(expected=size, actual=0, what=what) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                reason = f"{staged} is not a regular file"
                raise InvalidLayout(reason, path=str(self.blob_path.parent / staged))
            actual, actual_size = digest_file_sync(fd, self.algorithm)
        finally:
            os.close(fd)
        expected = f"{self.algorithm}:{self.encoded}"
        if actual_size != size or actual != expected:
            self.discard(staged)
            if actual_size != size:
                raise SizeMismatch(expected=size, actual=actual_size, what=f"blob {expected}")
            raise DigestMismatch(expected=expected, actual=actual, what=f"blob {expected}")
        os.replace(staged, self.encoded, src_dir_fd=self.blobs, dst_dir_fd=self.blobs)

    def discard(self, name: str) -> None:
        """Remove a staged file (a failed or cancelled download)."""
        assert self.blobs is not None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.blobs)

    def close(self) -> None:
        """Release the lock and close every descriptor."""
        for attribute in ("lock_fd", "blobs", "locks"):
            fd = getattr(self, attribute)
            if fd is not None:
                setattr(self, attribute, None)
                with contextlib.suppress(OSError):
                    os.close(fd)


# -- listing and eviction -------------------------------------------------------------------


def _subdirectory(parent: int, name: str) -> int | None:
    """``name`` below ``parent`` opened as a directory, or None (absent, a link, a file)."""
    try:
        return os.open(name, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW, dir_fd=parent)
    except OSError:
        return None


def _walk(root: int, top: str) -> list[tuple[str, int]]:
    """``(algorithm, directory fd)`` of each known algorithm's directory under ``top``."""
    base = _subdirectory(root, top)
    if base is None:
        return []
    try:
        out = []
        for algorithm in sorted(os.listdir(base)):
            if algorithm in ALGORITHMS:
                fd = _subdirectory(base, algorithm)
                if fd is not None:
                    out.append((algorithm, fd))
        return out
    finally:
        os.close(base)


def _open_root(root: Path) -> int:
    return os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))


def _entries_in(algorithm: str, directory: int) -> list[EntryInfo]:
    length = ALGORITHMS[algorithm]
    out = []
    for name in os.listdir(directory):
        if len(name) != length or name.startswith("."):
            continue
        try:
            st = os.stat(name, dir_fd=directory, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            out.append(EntryInfo(algorithm, name, st.st_size, st.st_mtime_ns))
    return out


def list_entries(root: Path) -> list[EntryInfo]:
    """Every finished entry, least recently used first."""
    try:
        fd = _open_root(root)
    except FileNotFoundError:
        return []
    try:
        out: list[EntryInfo] = []
        for algorithm, directory in _walk(fd, defaults.oci_blobs_dir):
            try:
                out.extend(_entries_in(algorithm, directory))
            finally:
                os.close(directory)
    finally:
        os.close(fd)
    return sorted(out, key=lambda e: (e.used_ns, e.digest))


def _locked_exclusively(directory: int, name: str) -> int | None:
    """The lock file ``name`` opened and locked exclusively, or None when it is held."""
    try:
        fd = os.open(name, _LOCK_FLAGS, 0o600, dir_fd=directory)
    except OSError:
        return None
    try:
        if try_lock_file(fd, exclusive=True) and _is_current(fd, directory, name):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _reserved(fd: int) -> int:
    """The size a running fill recorded in its lock file (0 when unreadable)."""
    data = os.pread(fd, 32, 0)
    try:
        return max(0, int(data.decode("ascii")))
    except ValueError:
        return 0


@dataclass
class Evicted:
    """What an eviction pass removed, and what it left."""

    entries: int = 0
    bytes: int = 0
    parts: int = 0
    remaining: int = 0
    """Bytes counted after the pass: finished entries plus running fills' reservations."""
    counted: int = 0
    """How many entries and fills ``remaining`` counts."""
    activity: tuple[tuple[str, int, int], ...] = ()
    """Parts being written (name, size, mtime): changes while any fill makes progress."""


def _sweep_locks(locks: int, blobs: int | None, finished: set[str]) -> tuple[int, int, int]:
    """Reserved bytes of running fills; removes stale lock files and parts.

    Returns (bytes reserved, fills reserving them, parts removed).
    """
    reserved = 0
    fills = 0
    removed_parts = 0
    for name in os.listdir(locks):
        if not name.endswith(_LOCK_SUFFIX):
            continue
        encoded = name[: -len(_LOCK_SUFFIX)]
        if encoded in finished:
            continue
        held = _locked_exclusively(locks, name)
        if held is None:
            # A fill in progress (or a reader racing one): count what it will add.
            try:
                fd = os.open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=locks)
            except OSError:
                continue
            try:
                size = _reserved(fd)
            finally:
                os.close(fd)
            reserved += size
            fills += size > 0
            continue
        try:  # nobody fills this digest: what its fills left is stale
            if blobs is not None:
                for part in os.listdir(blobs):
                    if _is_part_of(part, encoded):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(part, dir_fd=blobs)
                            removed_parts += 1
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=locks)
        finally:
            os.close(held)
    return reserved, fills, removed_parts


def _orphan_parts(algorithm: str, blobs: int, locks: int | None) -> int:
    """Remove parts of digests nobody is filling (even without a lock file). Count."""
    removed = 0
    for name in os.listdir(blobs):
        if not name.startswith("."):
            continue
        encoded = name.lstrip(".").split(".", 1)[0]
        if len(encoded) != ALGORITHMS[algorithm] or locks is None:
            continue
        held = _locked_exclusively(locks, encoded + _LOCK_SUFFIX)
        if held is None:
            continue
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=blobs)
                removed += 1
            with contextlib.suppress(FileNotFoundError):
                os.unlink(encoded + _LOCK_SUFFIX, dir_fd=locks)
        finally:
            os.close(held)
    return removed


def _parts_activity(blob_dirs: dict[str, int]) -> tuple[tuple[str, int, int], ...]:
    """``(name, size, mtime)`` of every part: it changes while some fill writes."""
    out = []
    for algorithm, blobs in sorted(blob_dirs.items()):
        for name in sorted(os.listdir(blobs)):
            if name.startswith("."):
                try:
                    st = os.stat(name, dir_fd=blobs, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                out.append((f"{algorithm}/{name}", st.st_size, st.st_mtime_ns))
    return tuple(out)


def evict(root: Path, max_bytes: int | None) -> Evicted:
    """Remove least recently used entries nobody holds until the cache fits ``max_bytes``.

    What counts: finished entries plus the sizes running fills recorded. Entries whose lock
    cannot be taken at once (being read or written) are skipped, so the cache may stay
    above ``max_bytes`` by what is in use. Stale parts and lock files go too. ``None``
    evicts nothing (only the stale files go). The caller holds the eviction lock. The
    result says what is left (``remaining``) and what fills are writing (``activity``).
    """
    done = Evicted()
    entries = list_entries(root)
    finished: dict[str, set[str]] = {}
    for entry in entries:
        finished.setdefault(entry.algorithm, set()).add(entry.encoded)
    total = sum(e.size for e in entries)
    fd = _open_root(root)
    try:
        blob_dirs = dict(_walk(fd, defaults.oci_blobs_dir))
        lock_dirs = dict(_walk(fd, LOCKS_DIR))
        try:
            for algorithm, locks in lock_dirs.items():
                reserved, fills, parts = _sweep_locks(
                    locks, blob_dirs.get(algorithm), finished.get(algorithm, set())
                )
                total += reserved
                done.counted += fills
                done.parts += parts
            for algorithm, blobs in blob_dirs.items():
                done.parts += _orphan_parts(algorithm, blobs, lock_dirs.get(algorithm))
            for entry in entries:
                if max_bytes is None or total <= max_bytes:
                    break
                entry_locks = lock_dirs.get(entry.algorithm)
                entry_blobs = blob_dirs.get(entry.algorithm)
                if entry_locks is None or entry_blobs is None:
                    continue
                if _evict_one(entry, entry_blobs, entry_locks):
                    total -= entry.size
                    done.entries += 1
                    done.bytes += entry.size
            done.remaining = total
            done.counted += len(entries) - done.entries
            done.activity = _parts_activity(blob_dirs)
        finally:
            for directory in (*blob_dirs.values(), *lock_dirs.values()):
                os.close(directory)
    finally:
        os.close(fd)
    return done


def _evict_one(entry: EntryInfo, blobs: int, locks: int) -> bool:
    """Remove ``entry`` unless someone holds its lock. Readers with it open keep reading.

    Unlinking a file removes its name only: a process that has it open reads on to the end
    (POSIX), and its space is freed when the last descriptor closes.
    """
    name = entry.encoded + _LOCK_SUFFIX
    held = _locked_exclusively(locks, name)
    if held is None:
        return False
    try:
        try:
            os.unlink(entry.encoded, dir_fd=blobs)
        except FileNotFoundError:
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=locks)
        return True
    finally:
        os.close(held)


def admit(
    root: Path, max_bytes: int, slot: Slot, size: int, *, force: bool
) -> tuple[bool, Evicted]:
    """Make room for a fill of ``size`` bytes and, when there is room, reserve it: admitted?

    Evicts (as `evict` does) until the other fills and the finished entries leave ``size``
    bytes under ``max_bytes``, as far as entries not in use allow. The fill is admitted
    when what remains is at most ``max_bytes`` (so that with it the cache holds at most
    ``max_bytes + size``), or when ``force``: then ``size`` is recorded in ``slot``'s lock
    file (which must hold nothing yet, see `Slot.reserve`) and ``remaining`` includes it.
    Otherwise nothing is recorded and ``remaining`` is what kept it out. The caller holds
    ``slot``'s exclusive lock and the eviction lock, so that no other fill is admitted on
    the same room.
    """
    done = evict(root, max(max_bytes - size, 0))
    if done.remaining > max_bytes and not force:
        return False, done
    slot.reserve(size)
    done.remaining += size
    done.counted += 1
    return True, done


def open_evict_lock(root: Path) -> int:
    """The descriptor of ``locks/evict.lock`` (not locked yet); the caller closes it."""
    locks = open_subdirectories(root, (LOCKS_DIR,), mode=_PRIVATE)
    try:
        return _open_lock(locks, EVICT_LOCK, root / LOCKS_DIR / EVICT_LOCK)
    finally:
        os.close(locks)


# -- copies out -------------------------------------------------------------------------------


def _clone(source: int, target: int, size: int) -> int:
    """Copy ``size`` bytes in the kernel: a reflink, else copy_file_range. Bytes copied."""
    with contextlib.suppress(OSError, AttributeError, NameError):
        fcntl.ioctl(target, _FICLONE, source)  # btrfs, XFS, bcachefs: shares extents
        return size
    copied = 0
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is None:
        return 0
    try:
        while copied < size:
            count = copy_range(source, target, size - copied, copied, copied)
            if count == 0:
                break
            copied += count
    except OSError as error:
        if error.errno not in _NO_KERNEL_COPY:
            raise
    return copied


def _stream_copy(source: int, target: int, start: int, size: int) -> int:
    """Copy ``[start, size)`` by reads and writes; bytes copied in all."""
    position = start
    while position < size:
        chunk = os.pread(source, min(defaults.io_chunk_size, size - position), position)
        if not chunk:
            break
        position += write_all(target, [chunk], offset=position)
    return position


def copy_out(source: int, size: int, destination: Path, mode: int | None) -> None:
    """Copy the open entry ``source`` to ``destination``, atomically; never a hard link.

    A temporary file beside ``destination`` receives the bytes (a reflink or
    ``copy_file_range`` where the file system offers one, else reads and writes), and is
    renamed over ``destination`` once it holds ``size`` bytes. Raises
    [`StorageError`][aioras.exceptions.StorageError] (nothing left behind) when it cannot be made.
    """
    parent = os.open(
        destination.parent,
        os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0),
    )
    temporary = f".{destination.name}.{secrets.token_hex(6)}.aioras-part"
    try:
        # 0o666 less the umask, as any new file; ``mode`` (when given) replaces it below.
        target = os.open(temporary, _NEW_FILE_FLAGS, 0o666, dir_fd=parent)
        try:
            copied = _clone(source, target, size)
            if copied < size:
                copied = _stream_copy(source, target, copied, size)
            on_disk = os.fstat(target).st_size
            if copied != size or on_disk != size:
                raise SizeMismatch(expected=size, actual=on_disk, what=f"copy to {destination}")
            if mode is not None:
                os.fchmod(target, mode)
        finally:
            os.close(target)
        os.replace(temporary, destination.name, src_dir_fd=parent, dst_dir_fd=parent)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=parent)
        raise storage_error(error, destination, "copying a cached blob to") from error
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=parent)
        raise
    finally:
        os.close(parent)
