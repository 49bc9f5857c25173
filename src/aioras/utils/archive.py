"""Reproducible tar.gz creation and safe extraction, both streamed in constant memory.

`make_targz` packs a directory the way the oras CLI does (members under the directory's
basename) with every varying attribute normalised, so the same tree gives the same bytes and
the same digest on every push. `extract_targz` refuses any member that could land or
point outside the output directory, checking the whole archive before writing anything, within
limits on what it may expand to; then it writes through `OutDir`,
which never follows a symlink and undoes everything if a member fails.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import logging
import lzma
import os
import re
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from .. import defaults
from ..exceptions import (
    OutputPathError,
    UnpackLimitExceeded,
    UnreadableArchive,
    UnsafePathError,
)
from .fileio import PathLike, get_tmpfile, safe_title
from .outdir import NO_HARD_LINKS, OutDir, Parts, link_destination, split_parts

__all__ = ["UnpackBudget", "UnpackLimits", "extract_targz", "make_targz", "unpack_into"]

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
            resolved = self.resolve(tuple(out[:-1]) + split_parts(target))
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
        parts = split_parts(member.name)
        if member.issym():
            links[parts] = member.linkname
        entries.append((member, parts))

    files: set[tuple[str, ...]] = set()
    for member, parts in entries:
        if any(parts[:i] in links for i in range(1, len(parts))):
            raise _refuse(member, "its path goes through a symlink of the archive")
        if member.issym():
            target = member.linkname
            try:
                link_destination(parts[:-1], target)
            except UnsafePathError as exc:
                raise _refuse(member, str(exc)) from None
            if _Resolver(links).resolve(parts[:-1] + split_parts(target)) is None:
                raise _refuse(member, f"symlink target {target!r} leaves the output directory")
        elif member.islnk():
            try:
                safe_title(member.linkname)
            except UnsafePathError as exc:
                raise _refuse(member, f"hard link target: {exc}") from None
            if split_parts(member.linkname) not in files:
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


@dataclass(frozen=True)
class UnpackLimits:
    """What unpacking the archive layers of one pull may produce (see
    [`aioras.defaults`][aioras.defaults]).

    ``max_bytes`` bounds the uncompressed tar stream of all archives together and
    ``max_members`` their entries; past ``ratio_allowance`` bytes, one archive may expand to
    at most ``max_ratio`` times its compressed size.
    """

    max_bytes: int = defaults.unpack_max_bytes
    max_members: int = defaults.unpack_max_members
    max_ratio: float = defaults.unpack_max_ratio
    ratio_allowance: int = defaults.unpack_ratio_allowance


class UnpackBudget:
    """What the archives of one pull may still produce; shared by all of them."""

    def __init__(self, limits: UnpackLimits | None = None) -> None:
        self.limits = limits or UnpackLimits()
        self.bytes = 0
        self.members = 0

    def stream_limit(self, compressed: int, what: str) -> tuple[int, UnpackLimitExceeded]:
        """How far one archive of ``compressed`` bytes may expand, and the error past it."""
        limits = self.limits
        by_ratio = max(limits.ratio_allowance, int(limits.max_ratio * compressed))
        remaining = limits.max_bytes - self.bytes
        if by_ratio < remaining:
            return by_ratio, UnpackLimitExceeded(
                f"{what} expands past {by_ratio} bytes, over {limits.max_ratio:g} times its"
                f" {compressed} compressed bytes (unpack_max_ratio)",
                what="ratio",
                limit=limits.max_ratio,
            )
        return remaining, UnpackLimitExceeded(
            f"{what} expands past the pull's unpack_max_bytes ({limits.max_bytes} bytes)",
            what="bytes",
            limit=limits.max_bytes,
        )


class _Stream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def tell(self) -> int: ...


class _Bounded:
    """A decompressed stream that refuses to be read or skipped past ``limit`` bytes.

    Seeking forward in a compressed stream decompresses up to there, so both count: a
    decompression bomb is stopped at the limit while its headers are being read.
    """

    def __init__(self, raw: _Stream, limit: int, error: UnpackLimitExceeded) -> None:
        self._raw = raw
        self._limit = limit
        self._error = error
        self.end = 0

    def read(self, size: int = -1) -> bytes:
        pos = self._raw.tell()
        room = self._limit + 1 - pos  # one byte more than allowed tells a stream past it
        data = self._raw.read(room if size < 0 else min(size, room))
        if pos + len(data) > self._limit:
            raise self._error
        self.end = max(self.end, pos + len(data))
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        target = offset + (self._raw.tell() if whence == os.SEEK_CUR else 0)
        if whence == os.SEEK_END or target > self._limit:
            raise self._error
        return self._raw.seek(target)

    def tell(self) -> int:
        return self._raw.tell()


def _decompressed(raw: BinaryIO) -> _Stream:
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    return raw


def _open_checked(
    stack: contextlib.ExitStack, archive: PathLike, budget: UnpackBudget, what: str
) -> tuple[tarfile.TarFile, list[tarfile.TarInfo]]:
    """Open ``archive`` within the budget and read every header; charge the budget."""
    raw = stack.enter_context(open(archive, "rb"))  # noqa: SIM115 - closed by the stack
    limit, error = budget.stream_limit(os.fstat(raw.fileno()).st_size, what)
    try:
        bounded = _Bounded(_decompressed(raw), limit, error)
        tar = stack.enter_context(tarfile.open(fileobj=bounded, mode="r:"))  # type: ignore[call-overload]  # noqa: SIM115
        members = []
        for member in tar:
            members.append(member)
            if budget.members + len(members) > budget.limits.max_members:
                raise UnpackLimitExceeded(
                    f"{what} has more entries than the pull's unpack_max_members"
                    f" ({budget.limits.max_members})",
                    what="members",
                    limit=budget.limits.max_members,
                )
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        raise UnreadableArchive(
            f"{what} is marked for unpacking but is not a readable tar archive: {exc}"
        ) from exc
    budget.bytes += bounded.end
    budget.members += len(members)
    return tar, members


def _link_order(links: dict[Parts, str]) -> list[Parts]:
    """Order symlinks so that one whose target goes through another is made after it."""
    deps: dict[Parts, list[Parts]] = {}
    for parts, target in links.items():
        dest = link_destination(parts[:-1], target)
        deps[parts] = [dest[:i] for i in range(1, len(dest) + 1) if dest[:i] in links]
    order: list[Parts] = []
    seen: set[Parts] = set()
    for start in links:
        if start in seen:
            continue
        seen.add(start)
        stack = [(start, iter(deps[start]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                order.append(node)
            elif child not in seen:  # a cycle is left to fail when its link is made
                seen.add(child)
                stack.append((child, iter(deps[child])))
    return order


def _hardlink(target: OutDir, parts: Parts, source: Parts, overwrite: bool) -> bool:
    """Make a hard link; False where the file system has none (the content is copied then)."""
    try:
        return target.make_hardlink(parts, source, overwrite=overwrite)
    except OutputPathError as error:
        if error.errno in NO_HARD_LINKS:
            return False
        raise


def _write_members(
    tar: tarfile.TarFile,
    plan: list[tuple[tarfile.TarInfo, Parts]],
    target: OutDir,
    base: Parts,
    overwrite: bool,
) -> None:
    # Symlinks come last, once what they point at exists; the plan already refused every
    # member path going through one.
    links: dict[Parts, str] = {}
    written: set[Parts] = set()
    for member, parts in plan:
        if not parts:
            continue  # "." or "./": the output directory itself
        full = base + parts
        links.pop(full, None)  # a later member of the same name wins
        if member.issym():
            links[full] = member.linkname
        elif member.isdir():
            target.make_dir(full)
        elif (
            member.islnk()
            and base + split_parts(member.linkname) in written
            and _hardlink(target, full, base + split_parts(member.linkname), overwrite)
        ):
            written.add(full)
        else:
            # A regular file, or a hard link whose source was kept: its content from the archive.
            source = tar.extractfile(member)
            assert source is not None
            mode = 0o755 if member.mode & 0o111 else 0o644
            with source:
                if target.write_file(
                    full, source, mode=mode, mtime=int(member.mtime), overwrite=overwrite
                ):
                    written.add(full)
    for parts in _link_order(links):
        target.make_symlink(parts, links[parts], overwrite=overwrite)


def unpack_into(
    archive: PathLike,
    target: OutDir,
    base: Parts,
    *,
    budget: UnpackBudget,
    overwrite: bool = True,
    what: str = "archive",
) -> list[Parts]:
    """Extract ``archive`` into directory ``base`` of ``target``; return the top entries.

    Every member is checked before anything is written (see `extract_targz`); then
    members are made through ``target``, which never follows a symlink and journals every
    change for its owner to commit or roll back. With ``overwrite=False`` existing entries
    are kept. Raises [`UnsafePathError`][aioras.exceptions.UnsafePathError],
    [`OutputPathError`][aioras.exceptions.OutputPathError],
    [`UnpackLimitExceeded`][aioras.exceptions.UnpackLimitExceeded] and
    [`UnreadableArchive`][aioras.exceptions.UnreadableArchive].
    """
    with contextlib.ExitStack() as stack:
        tar, members = _open_checked(stack, archive, budget, what)
        plan = _plan(members, os.path.join(target.real, *base))
        _write_members(tar, plan, target, base, overwrite)
    tops: dict[Parts, None] = {}
    for _member, parts in plan:
        if parts:
            tops[parts[:1]] = None
    return list(tops)


def extract_targz(
    targz: PathLike,
    outdir: PathLike,
    numeric_owner: bool = False,
    *,
    overwrite: bool = True,
    limits: UnpackLimits | None = None,
) -> list[str]:
    """Extract a tar archive (plain, gzip, bzip2 or xz) into ``outdir``; return the top paths.

    The whole archive is checked before anything is written. Refused with
    [`UnsafePathError`][aioras.exceptions.UnsafePathError]: absolute member names, ``..``
    components, control characters, paths through a symlink of the archive or of ``outdir``,
    symlinks whose target is absolute, climbs after a name (``a/..``), leaves the archive or does
    not exist once the other members are out, hard links to anything but a regular file earlier in
    the archive, and devices, FIFOs or other special files. Nothing is written through a symlink.
    Files get mode 0o755 or 0o644 (the executable bit kept) and their mtime unless it is 0; no owner
    is restored (``numeric_owner`` is accepted for oras-py compatibility and ignored). With
    ``overwrite=False`` existing entries are kept. ``limits`` bound what the archive may
    expand to ([`UnpackLimitExceeded`][aioras.exceptions.UnpackLimitExceeded], raised before
    anything is written). On any error everything is as before the call: what it made is removed,
    what it replaced is put back. Raises [`UnreadableArchive`][aioras.exceptions.UnreadableArchive]
    (a ``tarfile.ReadError``) for an unreadable archive and
    [`OutputPathError`][aioras.exceptions.OutputPathError] when an entry cannot be made (a directory
    in the way ...).
    """
    target = OutDir(outdir)
    ok = False
    try:
        tops = unpack_into(
            targz,
            target,
            (),
            budget=UnpackBudget(limits),
            overwrite=overwrite,
            what=os.fspath(targz),
        )
        target.verify_links()
        ok = True
    finally:
        target.finish(commit=ok)
    return [os.path.join(target.path, *parts) for parts in tops]
