"""OCI image layouts as a single tar: reading one in place, writing one atomically.

Reading never extracts: :func:`scan_tar` checks every member header once and records where
each blob's bytes sit in the (uncompressed) archive, so blobs are later streamed straight
from their offsets. Writing (:class:`TarWriter`) goes to a temporary file beside the
destination, verifying each blob as it is copied in, and renames it into place at the end.
All functions here block: callers run them in worker threads.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .. import defaults
from .._files.blobio import fsync_directory
from .._files.writes import FdWriter, storage_error
from ..digest import Verifier
from ..exceptions import InvalidLayout, SizeMismatch, UnsafePathError
from ..utils.fileio import safe_title
from ._layout_files import MARKER_LIMIT
from ._layout_index import blob_digest, parse_index, parse_layout_marker

__all__ = ["TarLayout", "TarMember", "TarWriter", "scan_tar"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TarMember:
    """Where a file's bytes sit in the archive."""

    offset: int
    size: int


@dataclass(frozen=True)
class TarLayout:
    """What :func:`scan_tar` found: the blobs by digest, and the parsed layout files."""

    path: str
    blobs: dict[str, TarMember]
    index: dict[str, Any]
    index_bytes: bytes
    marker_bytes: bytes


def _refuse(member: tarfile.TarInfo, why: str) -> UnsafePathError:
    return UnsafePathError(f"refusing archive member {member.name!r}: {why}", path=member.name)


def _member_name(member: tarfile.TarInfo) -> str:
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    if name in ("", "."):
        return ""
    try:
        safe_title(name)
    except UnsafePathError as error:
        raise _refuse(member, str(error)) from None
    return name.rstrip("/")


def _collect(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """The archive's regular files by normalised name; refuses anything a layout never has."""
    files: dict[str, tarfile.TarInfo] = {}
    for member in tar:
        name = _member_name(member)
        if member.issym() or member.islnk():
            raise _refuse(member, "an OCI layout archive holds no links")
        if member.isdir():
            continue
        if not member.isreg():
            raise _refuse(member, "devices, FIFOs and other special files are refused")
        if member.issparse():
            raise InvalidLayout(f"archive member {member.name!r} is sparse", path=member.name)
        if name in files:
            raise InvalidLayout(f"archive member {name!r} appears twice", path=member.name)
        files[name] = member
    return files


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise InvalidLayout(
            f"{member.name} of {member.size} bytes exceeds the {limit}-byte limit",
            path=member.name,
        )
    stream = tar.extractfile(member)
    assert stream is not None  # a regular file always has a stream
    with stream:
        return stream.read()


def _required(files: dict[str, tarfile.TarInfo], name: str, path: str) -> tarfile.TarInfo:
    member = files.get(name)
    if member is None:
        raise InvalidLayout(f"{path} is not an OCI layout: it has no {name}", path=name)
    return member


def scan_tar(path: str | os.PathLike[str], max_index_size: int) -> TarLayout:
    """Check an uncompressed layout tar and locate its blobs.

    Raises :class:`UnsafePathError` for members that are absolute, climb with ``..``, are
    links or special files; :class:`InvalidLayout` for a compressed or unreadable archive,
    sparse or repeated members, blob names that are not digests, and a missing, malformed or
    oversized ``oci-layout`` or ``index.json``.
    """
    where = os.fspath(path)
    try:
        tar = tarfile.open(where, "r:")  # noqa: SIM115 - closed below
    except tarfile.ReadError as error:
        raise InvalidLayout(f"{where} is not an uncompressed tar: {error}", path=where) from None
    with tar:
        try:
            files = _collect(tar)
        except tarfile.TarError as error:
            raise InvalidLayout(f"{where} is a damaged tar: {error}", path=where) from None
        blobs: dict[str, TarMember] = {}
        for name, member in files.items():
            if name.startswith(defaults.oci_blobs_dir + "/"):
                digest = blob_digest(name)
                if digest is not None:
                    blobs[digest] = TarMember(member.offset_data, member.size)
        marker_member = _required(files, defaults.oci_layout_file, where)
        marker = _read_member(tar, marker_member, MARKER_LIMIT)
        parse_layout_marker(marker)
        index_member = _required(files, defaults.oci_image_index_file, where)
        index_bytes = _read_member(tar, index_member, max_index_size)
    return TarLayout(where, blobs, parse_index(index_bytes), index_bytes, marker)


class _VerifyingReader:
    """A file object handing ``size`` bytes to tarfile while hashing them."""

    def __init__(self, fd: IO[bytes], digest: str, size: int) -> None:
        self.fd = fd
        self.verifier = Verifier(digest, size)
        self.remaining = size

    def read(self, n: int = -1) -> bytes:
        want = self.remaining if n < 0 else min(n, self.remaining)
        data = self.fd.read(want)
        if want and not data:
            raise SizeMismatch(
                expected=self.verifier.expected_size or 0,
                actual=self.verifier.size,
                what=f"blob {self.verifier.expected_digest}",
            )
        self.verifier.update(data)
        self.remaining -= len(data)
        return data


def _info(name: str, *, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    # Fixed metadata: the same layout always gives the same archive bytes.
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = size
        info.mode = 0o644
    return info


class TarWriter:
    """Build a layout tar beside ``destination``; :meth:`commit` renames it into place.

    Until then ``destination`` is untouched; :meth:`discard` removes the temporary file.
    Every byte goes through :class:`~aioras._files.writes.FdWriter` (written whole or
    refused), and an ``OSError`` while creating, writing, flushing or renaming the archive
    is raised as :class:`~aioras.exceptions.StorageError`.
    """

    def __init__(self, destination: str | os.PathLike[str]) -> None:
        self.destination = Path(destination)
        self._tmp: Path | None = None
        self._fd: int | None = None
        self._out: FdWriter | None = None
        self._tar: tarfile.TarFile | None = None

    def open(self) -> None:
        """Create the temporary archive."""
        try:
            fd, name = tempfile.mkstemp(
                dir=self.destination.parent,
                prefix=f".{self.destination.name}.",
                suffix=".aioras-part",
            )
        except OSError as error:
            raise storage_error(error, self.destination, "creating a temporary file for") from error
        self._tmp = Path(name)
        self._fd = fd
        self._out = FdWriter(fd, name)
        self._tar = tarfile.TarFile(
            fileobj=self._out,  # type: ignore[arg-type]  # write and tell are all it uses
            mode="w",
            format=tarfile.PAX_FORMAT,
            copybufsize=defaults.io_chunk_size,
        )

    def add_dir(self, name: str) -> None:
        """Add a directory entry."""
        assert self._tar is not None
        self._tar.addfile(_info(name, directory=True))

    def add_bytes(self, name: str, data: bytes) -> None:
        """Add a small file from memory."""
        assert self._tar is not None
        self._tar.addfile(_info(name, size=len(data)), io.BytesIO(data))

    def add_blob(self, name: str, source: str, offset: int, size: int, digest: str) -> None:
        """Copy ``size`` bytes of ``source`` from ``offset``, verified against ``digest``.

        Raises :class:`~aioras.exceptions.DigestMismatch` or
        :class:`~aioras.exceptions.SizeMismatch` when the bytes are not the blob.
        """
        assert self._tar is not None
        with open(source, "rb") as fd:
            fd.seek(offset)
            reader = _VerifyingReader(fd, digest, size)
            self._tar.addfile(_info(name, size=size), reader)
        reader.verifier.verify(what=f"blob {digest}")

    def commit(self) -> Path:
        """Finish the archive, flush it to disk and rename it over the destination."""
        assert self._tar is not None
        assert self._out is not None
        assert self._fd is not None
        assert self._tmp is not None
        self._tar.close()  # the end-of-archive blocks, through the writer
        try:
            on_disk = os.fstat(self._fd).st_size
            if on_disk != self._out.written:
                raise SizeMismatch(expected=self._out.written, actual=on_disk, what=str(self._tmp))
            os.fsync(self._fd)
            fd, self._fd = self._fd, None
            os.close(fd)
            os.chmod(self._tmp, 0o644)
            os.replace(self._tmp, self.destination)
            self._tmp = None
            fsync_directory(self.destination.parent)
        except OSError as error:
            raise storage_error(error, self.destination, "storing") from error
        return self.destination

    def discard(self) -> None:
        """Remove the temporary archive (after a failure); a no-op after :meth:`commit`.

        The file is removed even when closing it fails (a full disk may fail the close too).
        """
        self._tar = None  # never closed here: that would write its end blocks
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._tmp is not None:
            tmp, self._tmp = self._tmp, None
            try:
                tmp.unlink(missing_ok=True)
            except OSError as error:
                logger.warning("cannot remove %s: %s", tmp, error)
