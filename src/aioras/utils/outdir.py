"""Writing under an output directory without ever following a symlink on the way.

Every entry a pull makes is created relative to a descriptor of the output directory: each
directory on the way is opened with ``O_NOFOLLOW`` from its parent's descriptor, so a symlink
planted by an earlier layer, an earlier pull or anyone else is never traversed; it is refused
with [`UnsafePathError`][aioras.exceptions.UnsafePathError]. New content is made under a temporary
name in its final directory and linked into place without clobbering; what it replaces is kept
aside until `OutDir.finish` commits, or put back when it rolls back. Rollback removes
only entries that are still the very inode this object made, and only empty directories, so
it never deletes what a concurrent writer made.

Symlinks are held to a rule that no later change can break: the target is relative, climbs
(``..``) only at its start and never above the output directory, and must exist, reached
inside the output directory, when the link is made. Since directories are never replaced,
such a link resolves inside the output directory for as long as it exists.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Never

from .. import defaults
from .._files.paths import CONTROL_RE
from .._retry import Retrying
from ..exceptions import OutputPathError, UnsafePathError

__all__ = ["OutDir", "Parts", "link_destination", "split_parts"]

Parts = tuple[str, ...]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# Tries at placing one entry while concurrent writers keep putting theirs there.
_INSTALL_ATTEMPTS = 8
# Errors of link() on file systems without hard links.
NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV})
# Directory descriptors kept open for the next entries (most archives go dir by dir).
_CACHED_DIRS = 16
# Symlink expansions allowed while resolving one path: stops loops and exploding chains.
_MAX_LINK_HOPS = 64
_ABSOLUTE_RE = re.compile(r"^(?:[/\\]|[A-Za-z]:)")


def split_parts(path: str) -> Parts:
    """Split a relative ``/``-separated path, dropping empty and ``.`` components."""
    return tuple(part for part in path.split("/") if part not in ("", "."))


def link_destination(parent: Parts, target: str) -> Parts:
    """Where a symlink in ``parent`` pointing at ``target`` leads, checked by the link rule.

    Raises [`UnsafePathError`][aioras.exceptions.UnsafePathError] for an empty, absolute or
    control-character target, a ``..`` after a name (its meaning would depend on what that name
    becomes later), or one climbing above the output directory.
    """
    if not target or _ABSOLUTE_RE.match(target) or CONTROL_RE.search(target):
        raise UnsafePathError(f"symlink target {target!r} is empty or absolute", path=target)
    parts = split_parts(target)
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    if ".." in parts[ups:]:
        raise UnsafePathError(f"symlink target {target!r} has '..' after a name", path=target)
    if ups > len(parent):
        raise UnsafePathError(f"symlink target {target!r} leaves the output directory", path=target)
    return parent[: len(parent) - ups] + parts[ups:]


class _LinkTargetMissing(UnsafePathError):
    """A symlink's target does not exist (yet)."""


@dataclass
class _Placed:
    parts: Parts
    ident: tuple[int, int]  # (st_dev, st_ino) of the entry this object made
    backup: str | None  # the entry it replaced, renamed aside in the same directory


def _link_new(fd: int, source: str, name: str) -> bool:
    """Give ``source`` the name ``name`` unless that exists; return whether it did."""
    try:
        os.link(source, name, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
    except FileExistsError:
        return False
    except (OSError, NotImplementedError) as error:
        if isinstance(error, OSError) and error.errno not in NO_HARD_LINKS:
            raise
        # No hard links here: a rename, which may replace an entry made this very instant.
        os.rename(source, name, src_dir_fd=fd, dst_dir_fd=fd)
    return True


def _remove_if_ours(fd: int, name: str, ident: tuple[int, int]) -> None:
    """Remove ``name`` if it is the inode ``ident``; an entry of another writer stays."""
    # Moved away first and checked there: an entry another writer puts at ``name`` between
    # a check and an unlink would otherwise be the one removed.
    trash = _tmp_name("del")
    try:
        os.rename(name, trash, src_dir_fd=fd, dst_dir_fd=fd)
    except FileNotFoundError:
        return
    st = os.stat(trash, dir_fd=fd, follow_symlinks=False)
    if (st.st_dev, st.st_ino) != ident:
        _link_new(fd, trash, name)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(trash, dir_fd=fd)


def _tmp_name(kind: str) -> str:
    # Fixed length: a temporary name must fit wherever the final name fits.
    return f".aioras-{secrets.token_hex(8)}.{kind}"


class OutDir:
    """An output directory written through descriptors, with a journal to undo the writes.

    Create it in a worker thread (it touches the disk); every method blocks. ``path`` is
    created when missing ([`OutputPathError`][aioras.exceptions.OutputPathError] when it cannot be).
    Call `finish` exactly once.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self._made_root: str | None = None
        try:
            if not os.path.isdir(self.path):
                topmost = self.path
                while not os.path.lexists(os.path.dirname(topmost)):
                    topmost = os.path.dirname(topmost)
                os.makedirs(self.path, exist_ok=True)
                self._made_root = topmost
            # The output directory itself is the caller's choice: a symlink to it is fine.
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as error:
            raise OutputPathError(
                f"cannot use {self.path} as output directory: {error.strerror}",
                path=self.path,
                errno=error.errno,
            ) from error
        self.real = os.path.realpath(self.path)
        self._fds: OrderedDict[Parts, int] = OrderedDict()
        self._dirs: list[Parts] = []
        self._placed: list[_Placed] = []
        self._links: list[tuple[Parts, tuple[int, int]]] = []
        self._stage: str | None = None
        self._stage_fd: int | None = None

    def rel(self, parts: Parts) -> str:
        """``parts`` as a path relative to the output directory, for messages."""
        return "/".join(parts) or "."

    # -- walking -------------------------------------------------------------------------

    @contextlib.contextmanager
    def directory(self, parts: Parts, *, create: bool) -> Iterator[int]:
        """Yield a descriptor of directory ``parts``, opened without following any symlink.

        Missing directories are made when ``create`` (and undone on rollback). Raises
        [`UnsafePathError`][aioras.exceptions.UnsafePathError] when a component is a symlink and
        [`OutputPathError`][aioras.exceptions.OutputPathError] when it is something else than a
        directory. The descriptor belongs to this object: do not close it.
        """
        yield self._dir_fd(parts, create)

    def _dir_fd(self, parts: Parts, create: bool) -> int:
        if not parts:
            return self.fd
        fd = self._fds.get(parts)
        if fd is not None:
            self._fds.move_to_end(parts)
            return fd
        # Archive members come directory by directory: start from the parent when known.
        start = len(parts) - 1 if parts[:-1] in self._fds else 0
        fd, owned = self._fds.get(parts[:start], self.fd), False
        try:
            for i in range(start, len(parts)):
                child = self._open_dir(fd, parts[: i + 1], create)
                if owned:
                    os.close(fd)
                fd, owned = child, True
        except BaseException:
            if owned:
                os.close(fd)
            raise
        # One entry added per call: a descriptor a caller holds from the call before stays.
        self._fds[parts] = fd
        if len(self._fds) > _CACHED_DIRS:
            os.close(self._fds.popitem(last=False)[1])
        return fd

    def _open_dir(self, parent_fd: int, parts: Parts, create: bool) -> int:
        name = parts[-1]
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as error:
            self._refuse_non_dir(parent_fd, parts, error)
        try:
            os.mkdir(name, 0o755, dir_fd=parent_fd)
            self._dirs.append(parts)
        except FileExistsError:
            pass  # made meanwhile by a concurrent writer: fine if it is a directory
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as error:
            self._refuse_non_dir(parent_fd, parts, error)

    def _refuse_non_dir(self, parent_fd: int, parts: Parts, error: OSError) -> Never:
        with contextlib.suppress(OSError):
            if stat.S_ISLNK(os.stat(parts[-1], dir_fd=parent_fd, follow_symlinks=False).st_mode):
                raise UnsafePathError(
                    f"{self.rel(parts)} is a symlink: nothing is written through one",
                    path=self.rel(parts),
                ) from None
        raise self._typed(parts, error, "open directory") from error

    def _typed(self, parts: Parts, error: OSError, what: str) -> OutputPathError:
        why = error.strerror or str(error)
        if error.errno in (errno.ENOTDIR, errno.ELOOP):
            why = "an entry on the way is not a directory"
        return OutputPathError(
            f"cannot {what} {self.rel(parts)!r} in {self.path}: {why}",
            path=self.rel(parts),
            errno=error.errno,
        )

    @contextlib.contextmanager
    def _guard(self, parts: Parts, what: str) -> Iterator[None]:
        try:
            yield
        except OSError as error:
            raise self._typed(parts, error, what) from error

    def resolve(self, parts: Parts) -> Parts:
        """Return where ``parts`` leads, following symlinks but never leaving the root.

        Raises [`UnsafePathError`][aioras.exceptions.UnsafePathError] when the path leaves the
        output directory, loops, or does not exist.
        """
        todo, out, hops = list(parts), list[str](), 0
        while todo:
            name = todo.pop(0)
            if name == "..":
                if not out:
                    raise UnsafePathError(f"{self.rel(parts)} leads outside", path=self.rel(parts))
                out.pop()
                continue
            with self.directory(tuple(out), create=False) as fd:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError:
                    raise _LinkTargetMissing(
                        f"{self.rel(parts)} does not exist", path=self.rel(parts)
                    ) from None
                if stat.S_ISLNK(st.st_mode):
                    hops += 1
                    target = os.readlink(name, dir_fd=fd)
                    if hops > _MAX_LINK_HOPS or _ABSOLUTE_RE.match(target):
                        raise UnsafePathError(
                            f"{self.rel(parts)} leads outside or loops", path=self.rel(parts)
                        )
                    todo[:0] = split_parts(target)
                    continue
            if todo and not stat.S_ISDIR(st.st_mode):
                raise _LinkTargetMissing(f"{self.rel(parts)} does not exist", path=self.rel(parts))
            out.append(name)
        return tuple(out)

    # -- making entries ------------------------------------------------------------------

    def make_dir(self, parts: Parts) -> None:
        """Make directory ``parts`` (and its parents); an existing directory is fine."""
        with self._guard(parts, "create directory"), self.directory(parts, create=True):
            pass

    def write_file(
        self, parts: Parts, source: IO[bytes], *, mode: int, mtime: int, overwrite: bool
    ) -> bool:
        """Write ``source`` to ``parts``; return False when an existing entry was kept."""
        with self._guard(parts, "write"), self.directory(parts[:-1], create=True) as fd:
            if not overwrite and self._lstat(fd, parts[-1]) is not None:
                return False
            tmp = _tmp_name("part")
            out = os.open(tmp, _NEW_FILE_FLAGS, mode, dir_fd=fd)
            try:
                with open(out, "wb") as sink:
                    shutil.copyfileobj(source, sink, defaults.io_chunk_size)
                    sink.flush()
                    # mtime 0 means "none" in reproducible archives: dating files 1970 helps nobody.
                    if mtime:
                        os.utime(sink.fileno(), (mtime, mtime))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)
                raise
            return self._install(parts, fd, tmp, overwrite=overwrite)

    def make_symlink(self, parts: Parts, target: str, *, overwrite: bool) -> bool:
        """Make symlink ``parts`` -> ``target`` if the link rule allows it (see the module)."""
        destination = link_destination(parts[:-1], target)
        with self._guard(parts, "create symlink"), self.directory(parts[:-1], create=True) as fd:
            if not overwrite and self._lstat(fd, parts[-1]) is not None:
                return False
            self.resolve(destination)
            tmp = _tmp_name("link")
            os.symlink(target, tmp, dir_fd=fd)
            ident = self._ident(fd, tmp)
            placed = self._install(parts, fd, tmp, overwrite=overwrite)
        if placed:
            self._links.append((parts, ident))
        return placed

    def make_hardlink(self, parts: Parts, source: Parts, *, overwrite: bool) -> bool:
        """Make ``parts`` a hard link to the regular file ``source``."""
        with (
            self._guard(parts, "create hard link"),
            self.directory(source[:-1], create=False) as source_fd,
            self.directory(parts[:-1], create=True) as fd,
        ):
            if not overwrite and self._lstat(fd, parts[-1]) is not None:
                return False
            st = os.stat(source[-1], dir_fd=source_fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafePathError(
                    f"hard link {self.rel(parts)} must name a regular file", path=self.rel(parts)
                )
            tmp = _tmp_name("link")
            os.link(source[-1], tmp, src_dir_fd=source_fd, dst_dir_fd=fd, follow_symlinks=False)
            return self._install(parts, fd, tmp, overwrite=overwrite)

    def place_staged(self, staged: str, parts: Parts, *, overwrite: bool) -> bool:
        """Move the file ``staged`` (a name in `stage`) to ``parts``."""
        assert self._stage_fd is not None
        with self._guard(parts, "write"), self.directory(parts[:-1], create=True) as fd:
            if not overwrite and self._lstat(fd, parts[-1]) is not None:
                return False
            tmp = _tmp_name("part")
            try:
                os.rename(staged, tmp, src_dir_fd=self._stage_fd, dst_dir_fd=fd)
            except OSError as error:
                if error.errno != errno.EXDEV:
                    raise
                # A mount point inside the output directory: copy across instead.
                with open(staged, "rb", opener=self._stage_opener) as source:
                    return self.write_file(parts, source, mode=0o600, mtime=0, overwrite=overwrite)
            return self._install(parts, fd, tmp, overwrite=overwrite)

    def _stage_opener(self, name: str, flags: int) -> int:
        return os.open(name, flags | os.O_NOFOLLOW, dir_fd=self._stage_fd)

    @staticmethod
    def _ident(fd: int, name: str) -> tuple[int, int]:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        return st.st_dev, st.st_ino

    def _install(self, parts: Parts, fd: int, tmp: str, *, overwrite: bool) -> bool:
        """Put ``tmp`` at ``parts``, keeping what it replaces aside; ``tmp`` never stays.

        The new entry is linked in without clobbering: an entry a concurrent writer puts
        there meanwhile is set aside too (and put back on rollback), never lost.
        """
        name, backup = parts[-1], None
        try:
            ident = self._ident(fd, tmp)
            racing = Retrying(_INSTALL_ATTEMPTS - 1, pause=False, level=None)
            while True:
                old = self._lstat(fd, name)
                if old is not None:
                    if not overwrite:
                        return False
                    self._check_replaceable(parts, fd, old)
                    backup = self._set_aside(fd, name, backup)
                if _link_new(fd, tmp, name):
                    break
                if not racing.allows():  # another writer put an entry there meanwhile
                    raise OutputPathError(
                        f"cannot write {self.rel(parts)!r}: other writers keep replacing it",
                        path=self.rel(parts),
                        errno=errno.EEXIST,
                    )
                racing.failed()
        except BaseException:
            if backup is not None:
                with contextlib.suppress(OSError):
                    _link_new(fd, backup, name)
                    os.unlink(backup, dir_fd=fd)
            raise
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=fd)
        self._placed.append(_Placed(parts, ident, backup))
        return True

    @staticmethod
    def _lstat(fd: int, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    @staticmethod
    def _set_aside(fd: int, name: str, previous: str | None) -> str | None:
        backup = _tmp_name("old")
        try:
            os.rename(name, backup, src_dir_fd=fd, dst_dir_fd=fd)
        except FileNotFoundError:
            return previous  # a concurrent writer moved it away meanwhile
        if previous is not None:
            # What was there first has been replaced by another writer since: theirs is
            # what a rollback must restore.
            os.unlink(previous, dir_fd=fd)
        return backup

    def _check_replaceable(self, parts: Parts, fd: int, old: os.stat_result) -> None:
        if stat.S_ISDIR(old.st_mode):
            raise OutputPathError(
                f"cannot write {self.rel(parts)!r} in {self.path}: a directory is there",
                path=self.rel(parts),
                errno=errno.EISDIR,
            )
        if stat.S_ISLNK(old.st_mode):
            # Replacing never writes through the link, but one leading out is not ours to drop.
            try:
                self.resolve(link_destination(parts[:-1], os.readlink(parts[-1], dir_fd=fd)))
            except _LinkTargetMissing:
                pass
            except UnsafePathError:
                raise UnsafePathError(
                    f"{self.rel(parts)} is a symlink leading outside {self.path}",
                    path=self.rel(parts),
                ) from None

    # -- staging, commit and rollback ----------------------------------------------------

    def stage(self) -> str:
        """Make (once) a private directory inside the root for downloads; return its path."""
        if self._stage is None:
            name = _tmp_name("stage")
            with self._guard((name,), "create staging directory"):
                os.mkdir(name, 0o700, dir_fd=self.fd)
                self._stage = name
                self._stage_fd = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        return os.path.join(self.real, self._stage)

    def verify_links(self) -> None:
        """Check that every symlink made still resolves inside; raise UnsafePathError if not."""
        for parts, ident in self._links:
            with contextlib.suppress(OSError), self.directory(parts[:-1], create=False) as fd:
                if self._ident(fd, parts[-1]) != ident:
                    continue  # replaced since: whatever replaced it was checked itself
            self.resolve(parts)

    def verify_and_commit(self) -> None:
        """`verify_links`, then commit; roll back (and raise) when a link fails it.

        One call for what a pull does last, so it costs one worker-thread hop.
        """
        try:
            self.verify_links()
        except BaseException:
            self.finish(commit=False)
            raise
        self.finish(commit=True)

    def roll_back(self) -> None:
        """``finish(commit=False)``."""
        self.finish(commit=False)

    def finish(self, *, commit: bool) -> None:
        """Commit (drop what was replaced) or roll back; then remove the stage and close."""
        try:
            if commit:
                for placed in self._placed:
                    if placed.backup is not None:
                        with (
                            contextlib.suppress(OSError),
                            self.directory(placed.parts[:-1], create=False) as fd,
                        ):
                            os.unlink(placed.backup, dir_fd=fd)
            else:
                self._rollback()
            if self._stage is not None:
                assert self._stage_fd is not None
                os.close(self._stage_fd)
                shutil.rmtree(self._stage, dir_fd=self.fd, ignore_errors=True)
        finally:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            os.close(self.fd)
        if not commit and self._made_root is not None:
            self._remove_made_root(self._made_root)
        self._placed, self._dirs, self._links = [], [], []

    def _remove_made_root(self, topmost: str) -> None:
        path = self.path
        with contextlib.suppress(OSError):  # stops at the first directory not empty
            while True:
                os.rmdir(path)
                if path == topmost:
                    break
                path = os.path.dirname(path)

    def _rollback(self) -> None:
        for placed in reversed(self._placed):
            parent = placed.parts[:-1]
            with contextlib.suppress(OSError), self.directory(parent, create=False) as fd:
                name = placed.parts[-1]
                _remove_if_ours(fd, name, placed.ident)
                if placed.backup is not None:
                    # Not over an entry someone wrote since: theirs stays.
                    _link_new(fd, placed.backup, name)
                    os.unlink(placed.backup, dir_fd=fd)
        for parts in reversed(self._dirs):
            with contextlib.suppress(OSError), self.directory(parts[:-1], create=False) as fd:
                os.rmdir(parts[-1], dir_fd=fd)  # only when empty: others may have used it
