"""The registry endpoints each operation is built from, as small protocols.

[`AsyncRegistry`][aioras.registry.AsyncRegistry] satisfies `Endpoints` as it is, so its
``push`` and ``pull`` call its own methods (and an async subclass's overrides). The sync
facade hands the operations an object whose methods run a sync subclass's overrides in a
worker thread instead (see `aioras.sync`), which is how ``push()`` and ``pull()`` honour
``upload_blob``, ``download_blob``, ``get_manifest`` ... overridden on ``Registry``, as
oras-py does.

The endpoints made here (a content store's, a sync facade's overrides) subclass `Endpoints`
and `EndpointHooks`. They inherit ``upload_blob``, ``upload_new_blob``, ``upload_manifest``
and ``download_blob``, so each signature is written once: the method hands its arguments
on in one object (`UploadCall`, `NewBlobCall`, `ManifestCall`, `DownloadCall`) to the
subclass's ``_upload``, ``_upload_new``, ``_upload_manifest`` or ``_download``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from .. import defaults
from ..digest import digest_file

if TYPE_CHECKING:
    import httpx

    from ..container import Container
    from ..remote.repository import Repository

__all__ = [
    "ENDPOINT_NAMES",
    "CatalogEndpoints",
    "DownloadCall",
    "EndpointHooks",
    "Endpoints",
    "GraphEndpoints",
    "ManifestCall",
    "ManifestEndpoints",
    "NewBlobCall",
    "UploadCall",
]

ENDPOINT_NAMES = (
    "get_container",
    "_check_200_response",
    "blob_exists",
    "upload_blob",
    "upload_manifest",
    "get_manifest",
    "download_blob",
)
"""The overridable methods that push and pull call (``load_configs`` and ``resolve`` too)."""


class GraphEndpoints(Protocol):
    """What the graph operations (discover, attach, index, mirror) need of a registry.

    Names become containers, references resolve to descriptors, and a repository is
    reached as a [`Repository`][aioras.remote.repository.Repository] store.
    """

    pull_concurrency: int

    def get_container(self, name: str | Container) -> Container: ...

    def repository(self, name: str | Container) -> Repository: ...

    async def resolve(
        self,
        container: str | Container,
        allowed_media_type: Sequence[str] | None = None,
        *,
        platform: str | None = None,
    ) -> dict[str, Any]: ...


class ManifestEndpoints(GraphEndpoints, Protocol):
    """Graph endpoints plus manifests moved as exact bytes (what index editing needs)."""

    async def fetch_manifest_bytes(
        self, container: str | Container, allowed_media_type: Sequence[str] | None = None
    ) -> tuple[bytes, dict[str, Any]]: ...

    async def push_manifest_bytes(
        self,
        data: bytes,
        container: str | Container,
        *,
        media_type: str,
        reference: str | None = None,
    ) -> httpx.Response: ...


class CatalogEndpoints(GraphEndpoints, Protocol):
    """Graph endpoints plus tag and repository listing (what a mirror plan expands with)."""

    async def get_tags(self, container: str | Container, N: int | None = None) -> list[str]: ...

    async def list_repositories(
        self, hostname: str | None = None, N: int | None = None, *, page_size: int | None = None
    ) -> list[str]: ...


class Endpoints(Protocol):
    """What push and pull need of a registry: concurrency limits and a few endpoints."""

    push_concurrency: int
    pull_concurrency: int

    def get_container(self, name: str | Container) -> Container: ...

    def load_configs(
        self, container: str | Container | None = None, configs: list[str] | None = None
    ) -> None: ...

    def _check_200_response(self, response: httpx.Response) -> None: ...

    async def upload_blob(
        self,
        blob: str | os.PathLike[str] | None,
        container: str | Container,
        layer: Mapping[str, Any],
        do_chunked: bool = False,
        chunk_size: int | None = None,
    ) -> httpx.Response:
        """Upload the file ``blob`` (None: the empty config) as the blob ``layer`` describes.

        ``do_chunked`` asks for ``PATCH`` chunks of ``chunk_size`` bytes where the endpoint
        sends bytes over HTTP. Answers 200 when the blob was there already (nothing sent),
        201 when it was written. Answered in ``_upload``: raises what the store or registry
        behind it raises.
        """
        call = UploadCall(blob, container, layer, do_chunked, chunk_size)
        return await cast("EndpointHooks", self)._upload(call)

    async def upload_new_blob(
        self,
        blob: str | os.PathLike[str],
        container: str | Container,
        *,
        chunk_size: int | None = None,
    ) -> dict[str, Any]:
        """Upload the file ``blob`` in one pass, hashing it; return ``{"digest", "size"}``.

        For blobs not expected to be there (no existence check before). Answered in
        ``_upload_new``: raises what the store or registry behind it raises.
        """
        call = NewBlobCall(blob, container, chunk_size)
        return await cast("EndpointHooks", self)._upload_new(call)

    async def upload_file(
        self,
        blob: str | os.PathLike[str],
        container: str | Container,
        *,
        on_digest: Callable[[str], Awaitable[None]] | None = None,
    ) -> tuple[str, int, httpx.Response]:
        """Upload the file ``blob`` unless it is there; return its digest, size and the answer.

        Here: hash the file, then `upload_blob` (200 when the blob was there). A registry
        client overlaps the two instead. ``on_digest`` is awaited with the digest as soon as
        it is known. Raises what `upload_blob` raises.
        """
        digest, size = await digest_file(blob)
        if on_digest is not None:
            await on_digest(digest)
        layer = {"mediaType": defaults.default_blob_media_type, "digest": digest, "size": size}
        return digest, size, await self.upload_blob(blob, container, layer)

    async def upload_manifest(
        self,
        manifest: Mapping[str, Any],
        container: str | Container,
        *,
        reference: str | None = None,
    ) -> httpx.Response:
        """Store ``manifest`` and tag it ``reference`` (default: the container's reference).

        A digest as the reference stores it untagged. Answered in ``_upload_manifest``:
        raises what the store or registry behind it raises.
        """
        call = ManifestCall(manifest, container, reference)
        return await cast("EndpointHooks", self)._upload_manifest(call)

    def repository(self, name: str | Container) -> Repository: ...

    async def resolve(
        self, container: str | Container, allowed_media_type: Sequence[str] | None = None
    ) -> dict[str, Any]: ...

    async def get_manifest(
        self, container: str | Container, allowed_media_type: Sequence[str] | None = None
    ) -> dict[str, Any]: ...

    async def download_blob(
        self,
        container: str | Container,
        digest: str,
        outfile: str | os.PathLike[str],
        *,
        size: int | None = None,
    ) -> str:
        """Write the blob ``digest`` (of ``size`` bytes, when known) to ``outfile``; the path.

        The bytes are verified and the file appears whole or not at all. Answered in
        ``_download``: raises what the store or registry behind it raises.
        """
        call = DownloadCall(container, digest, outfile, size)
        return await cast("EndpointHooks", self)._download(call)


@dataclass(frozen=True, slots=True)
class UploadCall:
    """The arguments of one ``upload_blob`` of `Endpoints`, in one object."""

    blob: str | os.PathLike[str] | None
    container: str | Container
    layer: Mapping[str, Any]
    do_chunked: bool
    chunk_size: int | None


@dataclass(frozen=True, slots=True)
class DownloadCall:
    """The arguments of one ``download_blob`` of `Endpoints`, in one object."""

    container: str | Container
    digest: str
    outfile: str | os.PathLike[str]
    size: int | None


@dataclass(frozen=True, slots=True)
class NewBlobCall:
    """The arguments of one ``upload_new_blob`` of `Endpoints`, in one object."""

    blob: str | os.PathLike[str]
    container: str | Container
    chunk_size: int | None


@dataclass(frozen=True, slots=True)
class ManifestCall:
    """The arguments of one ``upload_manifest`` of `Endpoints`, in one object."""

    manifest: Mapping[str, Any]
    container: str | Container
    reference: str | None


class EndpointHooks(Protocol):
    """What a subclass of `Endpoints` defines to answer the four calls it inherits.

    The subclass names it as a base too (``class StoreEndpoints(Endpoints, EndpointHooks)``),
    so that the type checker holds a subclass without all four abstract. Not part of
    `Endpoints` itself: a registry satisfies that protocol with its own ``upload_blob``,
    ``download_blob`` ... and has no such methods.
    """

    async def _upload_new(self, call: NewBlobCall) -> dict[str, Any]: ...

    async def _upload_manifest(self, call: ManifestCall) -> httpx.Response: ...

    async def _upload(self, call: UploadCall) -> httpx.Response: ...

    async def _download(self, call: DownloadCall) -> str: ...
