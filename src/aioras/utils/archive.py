"""Reproducible tar.gz creation and safe extraction, both streamed in constant memory.

:func:`make_targz` packs a directory the way the oras CLI does (members under the directory's
basename) with every varying attribute normalised, so the same tree gives the same bytes and
the same digest on every push. :func:`extract_targz` refuses any member that could land or
point outside the output directory, checking the whole archive before writing anything.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import re
import shutil
import tarfile
from collections.abc import Iterator

from .. import defaults
from ..exceptions import UnsafePathError
from .fileio import PathLike, get_tmpfile, safe_title

__all__ = ["extract_targz", "make_targz"]

logger = logging.getLogger(__name__)

# Level 6 is gzip's and Go's default: near level 9's ratio at a fraction of its time.
_COMPRESSLEVEL = 6
# Bound on symlink expansions while resolving one path inside an archive: stops loops and
# link chains built to explode combinatorially.
_MAX_LINK_HOPS = 64
# "/x", "\\x" and "C:..." all name places outside any directory.
_ABSOLUTE_RE = re.compile(r"^(?:[/\\]|[A-Za-z]:)")


def _walk(path: str, arcname: str) -> Iterator[tuple[str, str]]:
    """Yield ``(path, arcname)`` depth-first in name order; symlinked dirs are not entered."""
    yield path, arcname
    if os.path.isdir(path) and not os.path.islink(path):
        with os.scandir(path) as it:
            names = sorted(entry.name for entry in it)
        for name in names:
            yield from _walk(os.path.join(path, name), f"{arcname}/{name}")


def _normalise(info: tarfile.TarInfo) -> None:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if info.isdir():
        info.mode = 0o755
    elif info.issym():
        info.mode = 0o777
    else:
        # Only the executable bit survives: it changes what the content means; the rest is noise.
        info.mode = 0o755 if info.mode & 0o111 else 0o644


def make_targz(source_dir: PathLike, dest_name: PathLike | None = None) -> str:
    """Pack ``source_dir`` into a reproducible tar.gz and return the archive's path.

    Members sit under the directory's basename (``dir/...``), in name order, with mtime 0,
    uid/gid 0, empty owner names and modes 0o755 (directories, executables) or 0o644; the gzip
    header has mtime 0 and no file name. Symlinks are stored as links, hard links as hard
    links; sockets, FIFOs and devices are skipped. Without ``dest_name`` a temporary file is
    created, which the caller removes. Raises ``FileNotFoundError`` when ``source_dir`` does
    not exist; a partial archive is removed on any error.
    """
    source = os.path.abspath(os.fspath(source_dir))
    if not os.path.lexists(source):
        raise FileNotFoundError(f"cannot archive {source}: no such file or directory")
    dest = os.fspath(dest_name) if dest_name else get_tmpfile(suffix=".tar.gz")
    dest_real = os.path.realpath(dest)
    try:
        with (
            open(dest, "wb") as raw,
            # filename="" keeps the archive's own name out of the gzip header.
            gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=_COMPRESSLEVEL
            ) as gz,
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path, arcname in _walk(source, os.path.basename(source)):
                if os.path.realpath(path) == dest_real:
                    continue  # the archive is being written inside the tree it packs
                info = tar.gettarinfo(path, arcname)
                if info is None or not (
                    info.isreg() or info.isdir() or info.issym() or info.islnk()
                ):
                    logger.warning("skipping %s: not a file, directory or link", path)
                    continue
                _normalise(info)
                if info.isreg():
                    with open(path, "rb") as fd:
                        tar.addfile(info, fd)
                else:
                    tar.addfile(info)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(dest)
        raise
    return dest


def _split(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part not in ("", "."))


class _Resolver:
    """Resolve paths inside the archive-to-be, following the archive's own symlinks."""

    def __init__(self, links: dict[tuple[str, ...], str]) -> None:
        self.links = links
        self.hops = 0

    def resolve(self, parts: tuple[str, ...]) -> tuple[str, ...] | None:
        """Return where ``parts`` really lands, or ``None`` if it leaves the root."""
        out: list[str] = []
        for part in parts:
            if part == "..":
                if not out:
                    return None
                out.pop()
                continue
            out.append(part)
            target = self.links.get(tuple(out))
            if target is None:
                continue
            self.hops += 1
            if self.hops > _MAX_LINK_HOPS or _ABSOLUTE_RE.match(target):
                return None
            resolved = self.resolve(tuple(out[:-1]) + _split(target))
            if resolved is None:
                return None
            out = list(resolved)
        return tuple(out)


def _refuse(member: tarfile.TarInfo, why: str) -> UnsafePathError:
    return UnsafePathError(f"refusing archive member {member.name!r}: {why}", path=member.name)


def _plan(
    members: list[tarfile.TarInfo], root: str
) -> list[tuple[tarfile.TarInfo, tuple[str, ...]]]:
    """Check every member; return them with their path components, or raise."""
    entries: list[tuple[tarfile.TarInfo, tuple[str, ...]]] = []
    links: dict[tuple[str, ...], str] = {}
    for member in members:
        try:
            safe_title(member.name)
        except UnsafePathError as exc:
            raise _refuse(member, str(exc)) from None
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise _refuse(member, "devices, FIFOs and other special files are not extracted")
        parts = _split(member.name)
        if member.issym():
            links[parts] = member.linkname
        entries.append((member, parts))

    files: set[tuple[str, ...]] = set()
    for member, parts in entries:
        if any(parts[:i] in links for i in range(1, len(parts))):
            raise _refuse(member, "its path goes through a symlink of the archive")
        if member.issym():
            target = member.linkname
            if not target or "\x00" in target or _ABSOLUTE_RE.match(target):
                raise _refuse(member, f"symlink target {target!r} is absolute or empty")
            if _Resolver(links).resolve(parts[:-1] + _split(target)) is None:
                raise _refuse(member, f"symlink target {target!r} leaves the output directory")
        elif member.islnk():
            try:
                safe_title(member.linkname)
            except UnsafePathError as exc:
                raise _refuse(member, f"hard link target: {exc}") from None
            if _split(member.linkname) not in files:
                raise _refuse(member, "hard link target is not a file earlier in the archive")
        if member.isreg():
            files.add(parts)
        # The standard library's own policy where it exists: a second opinion, never the only one.
        data_filter = getattr(tarfile, "data_filter", None)
        if data_filter is not None:
            try:
                data_filter(member, root)
            except tarfile.FilterError as exc:
                raise _refuse(member, str(exc)) from None
    return entries


def _check_inside(root: str, path: str) -> None:
    real = os.path.realpath(path)
    if real != root and not real.startswith(root + os.sep):
        raise UnsafePathError(f"{path} resolves to {real}, outside {root}", path=path)


def _make_dirs(root: str, parts: tuple[str, ...], created: list[str]) -> str:
    path = root
    for part in parts:
        path = os.path.join(path, part)
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            # Existing entries may be symlinks left by someone else: never create through one
            # that leads out.
            _check_inside(root, path)
            if not os.path.isdir(path):
                raise NotADirectoryError(f"{path} exists and is not a directory") from None
        else:
            created.append(path)
    return path


def _remove_existing(path: str) -> None:
    if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
        os.unlink(path)


def _extract_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    parts: tuple[str, ...],
    root: str,
    created: list[str],
) -> None:
    if not parts:
        return  # "." or "./": the output directory itself
    if member.isdir():
        _make_dirs(root, parts, created)
        return
    parent = _make_dirs(root, parts[:-1], created)
    dest = os.path.join(parent, parts[-1])
    _remove_existing(dest)
    if member.issym():
        _check_inside(root, os.path.join(parent, member.linkname))
        os.symlink(member.linkname, dest)
        created.append(dest)
        return
    if member.islnk():
        source = os.path.join(root, *_split(member.linkname))
        _check_inside(root, source)
        try:
            os.link(source, dest, follow_symlinks=False)
            created.append(dest)
            return
        except OSError:
            pass  # file systems without hard links: fall through and copy the content
    mode = 0o755 if member.mode & 0o111 else 0o644
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(dest, flags, mode)
    created.append(dest)
    with open(fd, "wb") as out:
        src = tar.extractfile(member)
        if src is not None:
            with src:
                shutil.copyfileobj(src, out, defaults.io_chunk_size)
    # mtime 0 is what reproducible archives (make_targz's included) put there to say "none";
    # restoring it would date every pulled file 1970.
    if member.mtime:
        os.utime(dest, (member.mtime, member.mtime))


def _undo(created: list[str]) -> None:
    for path in reversed(created):
        with contextlib.suppress(OSError):
            if os.path.islink(path) or not os.path.isdir(path):
                os.unlink(path)
            else:
                # Everything inside a directory this call made was made by this call too.
                shutil.rmtree(path)


def extract_targz(targz: PathLike, outdir: PathLike, numeric_owner: bool = False) -> list[str]:
    """Extract a tar archive (gzip or not) into ``outdir``; return the top-level paths made.

    The whole archive is checked before anything is written. Refused with
    :class:`UnsafePathError`: absolute member names, ``..`` components, paths through a
    symlink of the archive, symlinks or hard links whose target resolves outside ``outdir``,
    hard links to anything but a regular file earlier in the archive, and devices, FIFOs or
    other special files. While extracting, existing symlinks in ``outdir`` are never followed
    out of it. Files get mode 0o755 or 0o644 (the executable bit kept) and their mtime unless
    it is 0; no owner is restored (``numeric_owner`` is accepted for oras-py compatibility and
    ignored). On any error, what this call created is removed (files it overwrote stay
    overwritten). Raises ``tarfile.ReadError`` for an unreadable archive.
    """
    out = os.path.abspath(os.fspath(outdir))
    with tarfile.open(os.fspath(targz), "r:*") as tar:
        # Checking needs every header first: one decompression pass, headers only in memory.
        members = tar.getmembers()
        plan = _plan(members, os.path.realpath(out) if os.path.isdir(out) else out)

        created: list[str] = []
        if not os.path.isdir(out):
            # Remember the topmost directory made, so a failure leaves no empty parents behind.
            topmost = out
            while not os.path.exists(os.path.dirname(topmost)):
                topmost = os.path.dirname(topmost)
            os.makedirs(out)
            created.append(topmost)
        root = os.path.realpath(out)
        try:
            for member, parts in plan:
                _extract_member(tar, member, parts, root, created)
        except BaseException:
            _undo(created)
            raise

    tops: dict[str, None] = {}
    for _member, parts in plan:
        if parts:
            tops[os.path.join(out, parts[0])] = None
    return list(tops)
