"""OCI image layouts (image-spec ``image-layout.md``) as a store: a directory, or a tar.

``OCILayout(path)`` is a read-write directory: ``oci-layout``, ``index.json`` and
``blobs/<alg>/<encoded>``; tags are ``org.opencontainers.image.ref.name`` annotations of
``index.json`` entries. ``await OCILayout.from_tar(path)`` reads a layout tar in place,
read-only; ``await layout.save_tar(path)`` writes any layout as a tar.

Crash safety: a blob is written to a temporary file in its ``blobs/<alg>/`` directory,
verified, flushed and renamed into place before ``index.json`` may name it, and
``index.json`` is itself replaced through a temporary file. Every edit of ``index.json``
reads, edits and writes it under a lock per directory in the process and an advisory
``flock`` of the directory, so concurrent pushes and tags lose no entry, whether they go
through one object, several, or several aioras processes (tools that do not take the lock,
such as skopeo, may still race an aioras edit).
"""

from __future__ import annotations

import logging
import os
import stat
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from .. import defaults, schemas
from .._files.blobio import FileSlice, VerifiedFile, fsync_directory
from ..descriptor import Descriptor, as_descriptor
from ..digest import parse_digest
from ..exceptions import (
    InvalidDigest,
    InvalidLayout,
    InvalidReference,
    NotFoundError,
    ReadOnlyError,
    SizeMismatch,
)
from ..utils.fileio import write_file
from . import _layout_index as idx
from ._layout_files import (
    MARKER_LIMIT,
    BlobSource,
    Stamp,
    blob_size_at,
    directory_blobs,
    directory_lock,
    open_blob_directory,
    process_lock,
    read_small,
    unlink_durably,
)
from ._layout_tar import TarLayout, TarWriter, scan_tar
from .store import Deleter, ReferrerLister, Target, read_all, verified

__all__ = ["OCILayout"]

logger = logging.getLogger(__name__)

_MANIFEST_TYPES = defaults.manifest_media_types | defaults.index_media_types
_OCTET_STREAM = "application/octet-stream"
# Parsed manifests are content addressed, so cached facts never go stale; the bound only
# keeps a long-lived layout object's memory in check.
_NODE_CACHE_SIZE = 4096
_Edit = Callable[[list[idx.Entry]], list[idx.Entry]]


@dataclass(frozen=True)
class _Node:
    """What the graph walks need from one manifest or index."""

    children: list[Descriptor] = field(default_factory=list)
    subject: str | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class _IndexState:
    doc: dict[str, Any]
    raw: bytes
    stamp: Stamp | None


def _is_digest(reference: str) -> bool:
    try:
        parse_digest(reference)
    except InvalidDigest:
        return False
    return True


def _node_of(descriptor: Descriptor, data: bytes) -> _Node:
    doc = idx.parse_json(data, what=f"manifest {descriptor['digest']}")
    schemas.validate(doc, descriptor["mediaType"])
    subject = doc.get("subject")
    artifact_type = doc.get("artifactType")
    if artifact_type is None and isinstance(doc.get("config"), dict):
        artifact_type = doc["config"].get("mediaType")
    return _Node(
        children=[as_descriptor(c) for c in doc.get("manifests", [])],
        subject=subject["digest"] if subject else None,
        artifact_type=artifact_type,
        annotations=dict(doc.get("annotations") or {}),
    )


def _sniff_media_type(data: bytes) -> str:
    """The media type of a blob found by digest alone (oras-go answers octet-stream too)."""
    try:
        doc = idx.parse_json(data, what="blob")
    except InvalidLayout:
        return _OCTET_STREAM
    if not isinstance(doc, dict):
        return _OCTET_STREAM
    declared = doc.get("mediaType")
    if declared in _MANIFEST_TYPES:
        return str(declared)
    if doc.get("schemaVersion") == 2 and isinstance(doc.get("manifests"), list):
        return defaults.default_index_media_type
    if doc.get("schemaVersion") == 2 and isinstance(doc.get("config"), dict):
        return defaults.default_manifest_media_type
    return _OCTET_STREAM


class OCILayout:
    """An OCI image layout: a directory (read-write) or a tar (read-only), as a store.

    It implements :class:`~aioras.content.store.Target` (``exists``, ``fetch``, ``push``,
    ``resolve``, ``tag``), :class:`~aioras.content.store.ReferrerLister` and
    :class:`~aioras.content.store.Deleter`. A directory need not exist: it is created, with
    ``oci-layout``, on the first write. ``max_index_size`` bounds ``index.json``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_index_size: int = defaults.max_layout_index_size,
    ) -> None:
        self.path = Path(path)
        self.max_index_size = max_index_size
        self._tar: TarLayout | None = None
        self._lock = anyio.Lock()
        self._index_state: _IndexState | None = None
        self._ready_algorithms: set[str] = set()
        self._nodes: dict[str, _Node] = {}

    @classmethod
    async def from_tar(
        cls,
        path: str | os.PathLike[str],
        *,
        max_index_size: int = defaults.max_layout_index_size,
    ) -> OCILayout:
        """Open an uncompressed layout tar (skopeo's ``oci-archive``) read-only, in place.

        Every member header is checked once, up front; blobs are then streamed from their
        offsets in the archive, never extracted. Writes raise :class:`ReadOnlyError`.
        Raises :class:`~aioras.exceptions.UnsafePathError` for members that are absolute,
        climb with ``..``, or are links or special files, and
        :class:`~aioras.exceptions.InvalidLayout` for a compressed or damaged tar, blob
        names that are not digests, repeated members, and a missing, malformed or oversized
        ``oci-layout`` or ``index.json``.
        """
        layout = cls(path, max_index_size=max_index_size)
        layout._tar = await anyio.to_thread.run_sync(scan_tar, layout.path, max_index_size)
        return layout

    @property
    def read_only(self) -> bool:
        """Whether writes are refused (a layout read from a tar)."""
        return self._tar is not None

    def __repr__(self) -> str:
        kind = "tar" if self._tar is not None else "directory"
        return f"OCILayout({str(self.path)!r}, {kind})"

    def _writable(self) -> None:
        if self._tar is not None:
            raise ReadOnlyError(f"OCI layout {self.path} was opened from a tar, read-only")

    def _not_found(self, what: str) -> NotFoundError:
        return NotFoundError(f"{what} not found in OCI layout {self.path}", status_code=404)

    def _blob_path(self, digest: str) -> Path:
        algorithm, encoded = parse_digest(digest)
        return self.path / defaults.oci_blobs_dir / algorithm / encoded

    # -- blobs ------------------------------------------------------------------------------

    def _blob_size_sync(self, digest: str) -> int | None:
        if self._tar is not None:
            parse_digest(digest)
            member = self._tar.blobs.get(digest)
            return None if member is None else member.size
        path = self._blob_path(digest)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(st.st_mode):
            raise InvalidLayout(f"blob {path} is not a regular file", path=str(path))
        return st.st_size

    async def _blob_size(self, digest: str) -> int | None:
        return await anyio.to_thread.run_sync(self._blob_size_sync, digest)

    async def exists(self, descriptor: Descriptor) -> bool:
        """Whether the layout holds a blob of the descriptor's digest and size.

        Raises :class:`~aioras.exceptions.InvalidDigest` for a malformed digest and
        :class:`~aioras.exceptions.InvalidLayout` when the blob is not a regular file.
        """
        return await self._blob_size(descriptor["digest"]) == descriptor["size"]

    def _blob_stream(self, digest: str, size: int) -> FileSlice:
        if self._tar is not None:
            member = self._tar.blobs[digest]
            return FileSlice(self._tar.path, offset=member.offset, length=size)
        return FileSlice(self._blob_path(digest), length=size + 1)

    @asynccontextmanager
    async def fetch(self, descriptor: Descriptor) -> AsyncIterator[AsyncIterator[bytes]]:
        """Open a verified stream of a blob, read from disk in worker threads.

        Raises :class:`~aioras.exceptions.NotFoundError` when the layout lacks the blob;
        :class:`~aioras.exceptions.SizeMismatch` (at once) when the stored blob has another
        size; while iterating, :class:`~aioras.exceptions.DigestMismatch` when its bytes are
        not the descriptor's.
        """
        digest = descriptor["digest"]
        size = await self._blob_size(digest)
        if size is None:
            raise self._not_found(f"blob {digest}")
        if size != descriptor["size"]:
            raise SizeMismatch(expected=descriptor["size"], actual=size, what=f"blob {digest}")
        source = self._blob_stream(digest, size)
        stream = verified(descriptor, source, what=f"blob {digest}")
        try:
            yield stream
        finally:
            try:
                await stream.aclose()
            finally:
                await source.aclose()

    async def push(self, descriptor: Descriptor, content: AsyncIterable[bytes]) -> None:
        """Store a blob from a stream, verified; list it in ``index.json`` if a manifest.

        The bytes go to a temporary file in ``blobs/<alg>/``, hashed on the way, flushed to
        disk and renamed into place only once size and digest match; an interrupted or
        mismatching push leaves nothing. ``blobs/`` and ``blobs/<alg>/`` are opened anew for
        every push without following a link, and the file is made and renamed inside the
        directory so opened. A blob already present is not written again (and ``content``
        is not read). A manifest or index is then listed in ``index.json``,
        untagged, as oras-go does, so that it and its referrers can be found. Raises
        :class:`~aioras.exceptions.DigestMismatch` or
        :class:`~aioras.exceptions.SizeMismatch` on mismatch,
        :class:`~aioras.exceptions.StorageError` when the disk is full (or the blob cannot
        be written whole for another reason), :class:`~aioras.exceptions.InvalidLayout` when
        ``blobs/`` or ``blobs/<alg>/`` is a symbolic link or not a directory, and
        :class:`~aioras.exceptions.ReadOnlyError` for a layout read from a tar.
        """
        self._writable()
        digest = descriptor["digest"]
        path = self._blob_path(digest)
        algorithm, encoded = parse_digest(digest)
        await self._ensure_layout(algorithm)
        # Opened anew for every push, link by link: see open_blob_directory. Shielded: a
        # descriptor opened by a thread whose caller was cancelled would leak.
        with anyio.CancelScope(shield=True):
            directory = await anyio.to_thread.run_sync(open_blob_directory, self.path, algorithm)
        try:
            present = await anyio.to_thread.run_sync(blob_size_at, directory, encoded, path)
            if present == descriptor["size"]:
                logger.debug("%s already holds blob %s: not written again", self, digest)
            else:
                async with VerifiedFile(
                    path, digest, descriptor["size"], durable=True, mode=0o644, directory=directory
                ) as out:
                    async for chunk in content:
                        await out.write(chunk)
                    await out.commit()
        finally:
            os.close(directory)
        if descriptor["mediaType"] in _MANIFEST_TYPES:
            await self._edit_index(lambda entries: idx.with_untagged(entries, descriptor))

    async def delete(self, descriptor: Descriptor) -> None:
        """Remove a blob, and every ``index.json`` entry (tag) naming it, index first.

        Raises :class:`~aioras.exceptions.NotFoundError` when the layout lacks the blob and
        :class:`~aioras.exceptions.ReadOnlyError` for a layout read from a tar.
        """
        self._writable()
        digest = descriptor["digest"]
        path = self._blob_path(digest)

        def edit(entries: list[idx.Entry]) -> list[idx.Entry]:
            if self._blob_size_sync(digest) is None:
                raise self._not_found(f"blob {digest}")
            return idx.without_digest(entries, digest)

        await self._edit_index(edit, after=lambda: unlink_durably(path))
        self._nodes.pop(digest, None)

    # -- layout files -----------------------------------------------------------------------

    def _check_not_file(self) -> None:
        if self.path.is_file():
            raise InvalidLayout(
                f"{self.path} is a file, not a layout directory (open a tar with from_tar)",
                path=str(self.path),
            )

    def _prepare_sync(self, algorithm: str) -> None:
        self._check_not_file()
        self.path.mkdir(parents=True, exist_ok=True)
        marker_path = self.path / defaults.oci_layout_file
        marker = read_small(marker_path, MARKER_LIMIT)
        if marker is None:
            write_file(marker_path, idx.layout_marker(), "wb")
            fsync_directory(self.path)
        else:
            idx.parse_layout_marker(marker[0])
        blobs = self.path / defaults.oci_blobs_dir
        for directory in (blobs, blobs / algorithm):
            directory.mkdir(exist_ok=True)
            # Never write through a link: blobs must land inside the layout.
            if directory.is_symlink() or not directory.is_dir():
                raise InvalidLayout(f"{directory} is not a directory", path=str(directory))

    async def _ensure_layout(self, algorithm: str) -> None:
        if algorithm not in self._ready_algorithms:
            await anyio.to_thread.run_sync(self._prepare_sync, algorithm)
            self._ready_algorithms.add(algorithm)

    def _load_index_sync(self, cached: _IndexState | None) -> _IndexState:
        if self._tar is not None:
            return _IndexState(self._tar.index, self._tar.index_bytes, None)
        self._check_not_file()
        found = read_small(self.path / defaults.oci_image_index_file, self.max_index_size)
        if found is None:
            return _IndexState(idx.empty_index(), b"", None)
        data, stamp = found
        if cached is not None and cached.stamp == stamp:
            return cached
        marker = read_small(self.path / defaults.oci_layout_file, MARKER_LIMIT)
        if marker is not None:
            idx.parse_layout_marker(marker[0])
        return _IndexState(idx.parse_index(data), data, stamp)

    async def _index(self) -> _IndexState:
        state = await anyio.to_thread.run_sync(self._load_index_sync, self._index_state)
        self._index_state = state
        return state

    def _write_index_sync(self, data: bytes) -> Stamp:
        path = self.path / defaults.oci_image_index_file
        write_file(path, data, "wb")
        fsync_directory(self.path)
        st = os.stat(path)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _edit_index_sync(self, edit: _Edit, after: Callable[[], None] | None) -> _IndexState:
        # Read, edit and write under a lock per directory for this process (other objects
        # and event loops included) and an advisory lock against other aioras processes.
        with process_lock(self.path), directory_lock(self.path):
            state = self._load_index_sync(self._index_state)
            entries = edit(list(state.doc["manifests"]))
            if entries != state.doc["manifests"]:
                doc = {**state.doc, "manifests": entries}
                data = idx.serialise(doc)
                if len(data) > self.max_index_size:
                    raise InvalidLayout(
                        f"index.json would exceed the {self.max_index_size}-byte limit",
                        path=defaults.oci_image_index_file,
                    )
                state = _IndexState(doc, data, self._write_index_sync(data))
            if after is not None:
                after()
            return state

    async def _edit_index(self, edit: _Edit, *, after: Callable[[], None] | None = None) -> None:
        """Apply ``edit`` to the entries of ``index.json`` and replace it atomically.

        ``edit`` runs in a worker thread under the locks and may raise to cancel the edit;
        ``after`` runs there too, once the new index is on disk.
        """
        # The object's own lock queues its tasks here rather than in blocked worker threads.
        async with self._lock:
            self._index_state = await anyio.to_thread.run_sync(self._edit_index_sync, edit, after)

    # -- references -------------------------------------------------------------------------

    async def tags(self) -> list[str]:
        """The tags of the layout (``ref.name`` annotations), in ``index.json`` order."""
        state = await self._index()
        return [name for e in state.doc["manifests"] if (name := idx.ref_name(e)) is not None]

    async def tag(self, descriptor: Descriptor, reference: str) -> None:
        """Point ``reference`` at ``descriptor``, which the layout must hold.

        The entry that held the tag keeps its place, untagged (oras-go's choice: it stays a
        root, so it and its referrers remain listed; skopeo drops it) unless another entry
        lists its digest. ``reference`` may be a ``ref.name`` (a tag or a full reference)
        or the descriptor's own digest (listing it untagged). Raises
        :class:`~aioras.exceptions.NotFoundError` when the layout lacks the blob,
        :class:`~aioras.exceptions.InvalidReference` for a malformed reference and
        :class:`~aioras.exceptions.ReadOnlyError` for a layout read from a tar.
        """
        self._writable()
        digest = descriptor["digest"]
        if _is_digest(reference) and reference != digest:
            raise InvalidReference(
                f"cannot tag {digest} as another digest {reference}", part="tag", value=reference
            )
        by_digest = reference == digest
        if not by_digest:
            idx.validate_ref_name(reference)
        await self._ensure_layout(parse_digest(digest)[0])

        def edit(entries: list[idx.Entry]) -> list[idx.Entry]:
            if self._blob_size_sync(digest) != descriptor["size"]:
                raise self._not_found(f"blob {digest} of {descriptor['size']} bytes")
            if by_digest:
                return idx.with_untagged(entries, descriptor)
            return idx.with_tag(entries, descriptor, reference)

        await self._edit_index(edit)

    async def resolve(self, reference: str) -> Descriptor:
        """The descriptor a tag or a digest names.

        A tag is looked up in ``index.json``; a digest among its entries, then among the
        children of the indexes it lists (read from their blobs), then among the blobs
        (a manifest by its content, anything else as ``application/octet-stream``). Raises
        :class:`~aioras.exceptions.NotFoundError` when nothing matches.
        """
        state = await self._index()
        entries = state.doc["manifests"]
        entry = idx.find_tag(entries, reference)
        if entry is None and _is_digest(reference):
            entry = idx.find_digest(entries, reference)
            if entry is None:
                return await self._resolve_digest(entries, reference)
        if entry is None:
            raise self._not_found(f"reference {reference!r}")
        return idx.entry_descriptor(entry)

    async def _resolve_digest(self, entries: list[idx.Entry], digest: str) -> Descriptor:
        for descriptor, _node in await self._reachable(entries):
            if descriptor["digest"] == digest:
                return as_descriptor(dict(descriptor))
        size = await self._blob_size(digest)
        if size is None:
            raise self._not_found(f"digest {digest}")
        found: Descriptor = {"mediaType": _OCTET_STREAM, "digest": digest, "size": size}
        if size <= defaults.max_manifest_size:
            found["mediaType"] = _sniff_media_type(await read_all(self, found))
        return found

    # -- graph ------------------------------------------------------------------------------

    async def _node(self, descriptor: Descriptor) -> _Node | None:
        digest = descriptor["digest"]
        node = self._nodes.get(digest)
        if node is None:
            if not await self.exists(descriptor):
                return None  # a partial layout (e.g. one platform of an index) is normal
            node = _node_of(descriptor, await read_all(self, descriptor))
            if len(self._nodes) >= _NODE_CACHE_SIZE:
                self._nodes.clear()
            self._nodes[digest] = node
        return node

    async def _reachable(self, entries: list[idx.Entry]) -> list[tuple[Descriptor, _Node]]:
        """Every manifest and index listed in ``index.json`` or below a listed index."""
        queue = deque(idx.entry_descriptor(e) for e in entries)
        seen: set[str] = set()
        out: list[tuple[Descriptor, _Node]] = []
        while queue:
            descriptor = queue.popleft()
            if descriptor["digest"] in seen or descriptor["mediaType"] not in _MANIFEST_TYPES:
                continue
            seen.add(descriptor["digest"])
            node = await self._node(descriptor)
            if node is not None:
                out.append((descriptor, node))
                queue.extend(node.children)
        return out

    async def referrers(
        self, descriptor: Descriptor, *, artifact_type: str | None = None
    ) -> list[Descriptor]:
        """Descriptors of the manifests in the layout whose ``subject`` is ``descriptor``.

        A layout has no referrers API: every manifest listed in ``index.json``, and every
        child of a listed index, is read (once per layout object) and its ``subject``
        compared. Each result carries the referrer's ``artifactType`` (its config media
        type when it has none) and annotations; ``artifact_type`` filters on it.
        """
        state = await self._index()
        out: list[Descriptor] = []
        for found, node in await self._reachable(state.doc["manifests"]):
            if node.subject != descriptor["digest"]:
                continue
            if artifact_type is not None and node.artifact_type != artifact_type:
                continue
            referrer: Descriptor = {
                "mediaType": found["mediaType"],
                "digest": found["digest"],
                "size": found["size"],
            }
            if node.artifact_type:
                referrer["artifactType"] = node.artifact_type
            if node.annotations:
                referrer["annotations"] = dict(node.annotations)
            out.append(referrer)
        return out

    # -- tar --------------------------------------------------------------------------------

    def _blob_sources_sync(self) -> list[BlobSource]:
        """``(digest, file, offset, size)`` of every blob, in name order."""
        if self._tar is not None:
            tar = self._tar
            return [(d, tar.path, m.offset, m.size) for d, m in sorted(tar.blobs.items())]
        return directory_blobs(self.path / defaults.oci_blobs_dir)

    async def save_tar(self, path: str | os.PathLike[str]) -> Path:
        """Write the layout as an uncompressed tar (skopeo's ``oci-archive``) at ``path``.

        The archive holds ``oci-layout``, ``index.json`` and every blob, with fixed owners,
        modes and times (the same layout gives the same bytes). It is built in a temporary
        file beside ``path``, each blob verified as it is copied, and renamed into place
        only when complete; it holds the ``index.json`` read at the start and the blobs
        present then (deleting one of them meanwhile makes the save fail). Returns ``path``. Raises
        :class:`~aioras.exceptions.DigestMismatch` for a damaged blob and
        :class:`~aioras.exceptions.InvalidLayout` for files in ``blobs/`` whose names are
        not digests; ``path`` is left as it was on any error.
        """
        async with self._lock:
            state, sources = await anyio.to_thread.run_sync(self._snapshot_sync)
        marker = self._tar.marker_bytes if self._tar is not None else idx.layout_marker()
        index_bytes = state.raw or idx.serialise(state.doc)
        writer = TarWriter(path)
        try:
            await anyio.to_thread.run_sync(writer.open)
            await anyio.to_thread.run_sync(_write_head, writer, marker, index_bytes, sources)
            for digest, source, offset, size in sources:
                name = "/".join((defaults.oci_blobs_dir, *parse_digest(digest)))
                await anyio.to_thread.run_sync(writer.add_blob, name, source, offset, size, digest)
            with anyio.CancelScope(shield=True):
                saved = await anyio.to_thread.run_sync(writer.commit)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(writer.discard)
        return saved

    def _snapshot_sync(self) -> tuple[_IndexState, list[BlobSource]]:
        if self._tar is not None:
            return self._load_index_sync(None), self._blob_sources_sync()
        # Blobs are listed after index.json is read: every blob it names is already there.
        with process_lock(self.path), directory_lock(self.path):
            return self._load_index_sync(self._index_state), self._blob_sources_sync()


def _write_head(
    writer: TarWriter, marker: bytes, index_bytes: bytes, sources: list[BlobSource]
) -> None:
    writer.add_bytes(defaults.oci_layout_file, marker)
    writer.add_bytes(defaults.oci_image_index_file, index_bytes)
    writer.add_dir(defaults.oci_blobs_dir)
    for algorithm in sorted({parse_digest(s[0])[0] for s in sources}):
        writer.add_dir(f"{defaults.oci_blobs_dir}/{algorithm}")


if TYPE_CHECKING:

    def _conforms(layout: OCILayout) -> tuple[Target, ReferrerLister, Deleter]:
        """Never called: mypy checks here that OCILayout meets the store protocols."""
        return layout, layout, layout
