"""oras-py's OCI image layout API: ``Layout``, ``NewLayout``, ``NewLayoutFromRegistry``.

A :class:`Layout` is a directory in the OCI image layout format (``oci-layout``,
``index.json``, ``blobs/<algorithm>/<hex>``). It can be pushed to a registry (every blob of a
tagged image or index, in dependency order, manifests byte for byte so that digests hold)
and filled from one (an image or an index with all it references). Calls are synchronous
and take a :class:`~aioras.sync.Registry` as ``provider``, as in oras-py; pulls store
through :class:`aioras.OCILayout` (verified, atomic blob writes and locked ``index.json``
edits), on the provider's event loop.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from .. import defaults, schemas
from .._http.responses import Paced, wrap_http_error
from .._jsondoc import load_json
from ..container import Container
from ..content.layout import OCILayout
from ..descriptor import Descriptor
from ..digest import digest_bytes, parse_digest, verify_bytes
from ..exceptions import DigestMismatch, InvalidDigest, ManifestValidationError
from ..remote.registry import AsyncRegistry
from ..sync import Registry
from .validation import validate_layout

__all__ = ["Layout", "NewLayout", "NewLayoutFromRegistry"]

logger = logging.getLogger(__name__)

_MANIFEST_TYPES = (defaults.default_manifest_media_type, defaults.default_index_media_type)


def NewLayout(path: str, validate: bool = True) -> Layout:
    """The :class:`Layout` at ``path`` (validated unless ``validate`` is false)."""
    return Layout(path, validate=validate)


def NewLayoutFromRegistry(
    path: str, provider: Registry, target: str, tag: str = "latest"
) -> Layout:
    """Pull ``target`` into a new layout at ``path`` and return it.

    ``path`` must not exist or be an empty directory. ``tag`` is the name the image gets in
    the layout's ``index.json``. Raises :class:`ValueError` when ``path`` is a file,
    :class:`FileExistsError` when it is a non-empty directory, and what
    :meth:`Layout.pull_from_registry` raises.
    """
    directory = Path(path)
    if directory.exists():
        if not directory.is_dir():
            raise ValueError(f"OCI layout path is not a directory: {path}")
        if any(directory.iterdir()):
            raise FileExistsError(f"OCI layout directory is not empty: {path}")
    layout = Layout(path, validate=False)
    layout.pull_from_registry(provider=provider, target=target, tag=tag)
    return layout


def _unsupported(media_type: object) -> ManifestValidationError:
    return ManifestValidationError(
        f"unsupported manifest mediaType {media_type!r}: expected "
        f"{defaults.default_manifest_media_type} or {defaults.default_index_media_type}"
    )


class Layout:
    """An OCI image layout directory; ``validate`` checks it at construction."""

    def __init__(self, path: str, validate: bool = True) -> None:
        self._oci_layout_path = path
        if validate:
            self.validate()

    def __repr__(self) -> str:
        return f"Layout({self._oci_layout_path!r})"

    @property
    def path(self) -> Path:
        """The layout's directory."""
        return Path(self._oci_layout_path)

    def validate(self) -> str:
        """Check the directory is an OCI image layout; return its absolute path.

        Raises :class:`FileNotFoundError` for a missing directory, ``blobs/``,
        ``oci-layout`` or ``index.json``, :class:`ValueError` for a malformed one.
        """
        return str(validate_layout(self._oci_layout_path))

    @staticmethod
    def is_oci_layout(path: str) -> bool:
        """True when ``path`` is a valid OCI image layout."""
        try:
            validate_layout(path)
        except (OSError, ValueError):
            return False
        return True

    # -- blobs on disk ---------------------------------------------------------------
    def digest_to_blob_path(self, digest: str) -> Path:
        """``blobs/<algorithm>/<hex>`` of ``digest`` in this layout.

        Raises :class:`~aioras.exceptions.InvalidDigest` (a ValueError) for a malformed
        digest, so no name can point outside ``blobs/``.
        """
        algorithm, encoded = parse_digest(digest)
        return self.path / defaults.oci_blobs_dir / algorithm / encoded

    def blob_exists(self, digest: str) -> bool:
        """True when the layout holds a blob for ``digest`` (False for a malformed one)."""
        try:
            return self.digest_to_blob_path(digest).is_file()
        except InvalidDigest:
            return False

    def _read_document(self, digest: str) -> tuple[bytes, dict[str, Any] | None]:
        """The blob's bytes, verified, and its JSON object when it is one."""
        path = self.digest_to_blob_path(digest)
        if not path.is_file():
            raise FileNotFoundError(f"blob not found in OCI layout: {path}")
        data = path.read_bytes()
        verify_bytes(data, digest, what=f"blob {digest} of layout {self._oci_layout_path}")
        try:
            doc = load_json(data)
        except ValueError:  # not JSON, not text, or nested too deep
            return data, None
        return data, doc if isinstance(doc, dict) else None

    def _tagged(self, tag: str) -> str:
        index = load_json((self.path / defaults.oci_image_index_file).read_bytes())
        for entry in index.get("manifests") or []:
            if (entry.get("annotations") or {}).get(defaults.oci_ref_name_annotation) == tag:
                return str(entry["digest"])
        raise ValueError(f"Tag '{tag}' not found in index of {self._oci_layout_path}")

    def get_ordered_blobs(self, tag: str = "latest") -> list[str]:
        """The digests of everything image ``tag`` needs, each before what refers to it.

        For a manifest: layers, config, the manifest. For an index: each manifest in that
        order, then the index. No digest appears twice. Raises :class:`ValueError` when no
        ``index.json`` entry carries ``tag``, :class:`FileNotFoundError` for a missing blob.
        """
        ordered: list[str] = []
        self._collect(self._tagged(tag), ordered)
        return ordered

    def _collect(self, digest: str, ordered: list[str]) -> None:
        _, doc = self._read_document(digest)
        media_type = (doc or {}).get("mediaType")
        if doc is None or media_type not in _MANIFEST_TYPES:
            raise _unsupported(media_type)
        if media_type == defaults.default_manifest_media_type:
            children = [layer["digest"] for layer in doc.get("layers") or []]
            config = (doc.get("config") or {}).get("digest")
            children += [config] if config else []
            ordered.extend(d for d in dict.fromkeys(children) if d not in ordered)
        else:
            for entry in doc.get("manifests") or []:
                self._collect(entry["digest"], ordered)
        if digest not in ordered:
            ordered.append(digest)

    # -- push --------------------------------------------------------------------------
    def push_to_registry(
        self,
        provider: Registry,
        target: str,
        tag: str = "latest",
        do_chunked: bool = False,
        chunk_size: int = defaults.default_chunksize,
    ) -> httpx.Response:
        """Push image ``tag`` of this layout to ``target`` (which must name a tag).

        Blobs go first, then manifests by digest, and the top manifest or index under the
        target's tag, byte for byte as stored. Returns the response of that last PUT.
        Raises :class:`ValueError` for a target without a tag or an unknown ``tag``,
        :class:`FileNotFoundError` for a missing blob,
        :class:`~aioras.exceptions.DigestMismatch` for a blob whose bytes are not its name's.
        """
        if ":" not in target.rsplit("/", 1)[-1] or target.endswith(":"):
            raise ValueError(f"target must name a tag (registry/repository:tag): {target!r}")
        container = provider.get_container(target)
        ordered = self.get_ordered_blobs(tag)
        response: httpx.Response | None = None
        for position, digest in enumerate(ordered):
            is_top = position == len(ordered) - 1
            response = self._push_one(provider, container, digest, is_top, do_chunked, chunk_size)
            provider._check_200_response(response)
        assert response is not None  # a tagged entry always yields at least itself
        logger.debug("pushed %d blobs of layout %s to %s", len(ordered), self, target)
        return response

    def _push_one(
        self,
        provider: Registry,
        container: Container,
        digest: str,
        is_top: bool,
        do_chunked: bool,
        chunk_size: int,
    ) -> httpx.Response:
        path = self.digest_to_blob_path(digest)
        data, doc = self._read_document(digest)
        media_type = (doc or {}).get("mediaType")
        if doc is not None and media_type in _MANIFEST_TYPES:
            schemas.validate(doc, str(media_type))
            reference = container.reference if is_top else digest
            logger.debug("Uploading manifest %s as %s", digest, reference)
            response = provider.do_request(
                f"{provider.prefix}://{container.manifest_url(reference)}",
                "PUT",
                data=data,
                headers={"Content-Type": str(media_type)},
            )
            stored = response.headers.get("docker-content-digest")
            if response.status_code in (200, 201) and stored and stored != digest:
                raise DigestMismatch(expected=digest, actual=stored, what="manifest stored")
            return response
        logger.debug("Uploading blob %s", digest)
        layer = {
            "mediaType": media_type or defaults.default_blob_media_type,
            "digest": digest,
            "size": len(data),
        }
        return provider.upload_blob(str(path), container, layer, do_chunked, chunk_size)

    # -- pull --------------------------------------------------------------------------
    def pull_from_registry(self, provider: Registry, target: str, tag: str = "latest") -> None:
        """Fill this layout with ``target`` (a tag or digest reference) and all it refers to.

        Stored through :class:`aioras.OCILayout`: every blob is streamed, verified by
        digest and renamed into place; blobs already in the layout are not fetched again;
        ``index.json`` then names the pulled manifest or index as ``tag``. Raises
        :class:`ValueError` (:class:`~aioras.exceptions.InvalidReference`) for a malformed
        target, :class:`~aioras.exceptions.ManifestValidationError` for content that is
        neither an OCI image manifest nor an OCI index, and the registry's typed errors.
        """
        container = provider.get_container(target)
        provider._call(self._pull, provider.aregistry, container, tag)
        logger.debug("pulled %s into layout %s as %s", target, self, tag)

    async def _pull(self, registry: AsyncRegistry, container: Container, tag: str) -> None:
        store = OCILayout(self.path)
        reference = container.digest or container.reference
        top = await _copy_manifest(registry, store, container, reference)
        await store.tag(top, tag)


async def _fetch_manifest(
    registry: AsyncRegistry, container: Container, reference: str
) -> tuple[Descriptor, bytes, dict[str, Any]]:
    """GET a manifest or index by tag or digest, verified; its descriptor, bytes and JSON."""
    response = await registry.do_request(
        f"{registry.prefix}://{container.manifest_url(reference)}",
        "GET",
        headers={"Accept": ", ".join(_MANIFEST_TYPES)},
    )
    registry._check_200_response(response)
    data = response.content
    if len(data) > defaults.max_manifest_size:
        raise ManifestValidationError(f"manifest {reference} is larger than allowed")
    digest = reference if ":" in reference else response.headers.get("docker-content-digest")
    digest = digest or digest_bytes(data)
    verify_bytes(data, digest, what=f"manifest {reference}")
    try:
        doc = load_json(data)
    except ValueError as error:  # not JSON, not text, or nested too deep
        raise ManifestValidationError(f"manifest {reference} is not JSON") from error
    if not isinstance(doc, dict) or doc.get("mediaType") not in _MANIFEST_TYPES:
        raise _unsupported(doc.get("mediaType") if isinstance(doc, dict) else None)
    schemas.validate(doc, doc["mediaType"])
    descriptor: Descriptor = {"mediaType": doc["mediaType"], "digest": digest, "size": len(data)}
    return descriptor, data, doc


async def _copy_manifest(
    registry: AsyncRegistry, store: OCILayout, container: Container, reference: str
) -> Descriptor:
    """Copy a manifest (or index) and everything under it into ``store``; its descriptor.

    Children are stored before their parent, so a manifest present in the store is complete
    and is not walked again.
    """
    descriptor, data, doc = await _fetch_manifest(registry, container, reference)
    if await store.exists(descriptor):
        return descriptor
    if descriptor["mediaType"] == defaults.default_manifest_media_type:
        blobs = [*(doc.get("layers") or []), *([doc["config"]] if doc.get("config") else [])]
        for blob in {b["digest"]: b for b in blobs}.values():
            child: Descriptor = {
                "mediaType": blob["mediaType"],
                "digest": blob["digest"],
                "size": blob["size"],
            }
            if not await store.exists(child):
                await _copy_blob(registry, store, container, child)
    else:
        for entry in doc.get("manifests") or []:
            await _copy_manifest(registry, store, container, entry["digest"])
    await store.push(descriptor, _chunks(data))
    return descriptor


async def _copy_blob(
    registry: AsyncRegistry, store: OCILayout, container: Container, blob: Descriptor
) -> None:
    """Stream one blob into ``store``, through the registry's cache when it has one."""
    if registry.cache is None:
        async with _origin_blob(registry, container, blob) as stream:
            await store.push(blob, stream)
        return
    async with registry.cache.fetch(
        blob, lambda: _origin_blob(registry, container, blob)
    ) as stream:
        await store.push(blob, stream)


@asynccontextmanager
async def _origin_blob(
    registry: AsyncRegistry, container: Container, blob: Descriptor
) -> AsyncIterator[Paced]:
    """The blob from the registry, held to the minimum blob rate as download_blob is."""
    async with registry.stream_blob(container, blob["digest"]) as response:
        try:
            yield Paced(response)
        except httpx.HTTPError as error:  # broke off, or trickled
            url = str(response.request.url)
            raise wrap_http_error(error, "GET", url, what=f"blob {blob['digest']}") from error


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data
