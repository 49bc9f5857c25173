"""The registry endpoints each operation is built from, as small protocols.

[`AsyncRegistry`][aioras.registry.AsyncRegistry] satisfies `Endpoints` as it is, so its
``push`` and ``pull`` call its own methods (and an async subclass's overrides). The sync
facade hands the operations an object whose methods run a sync subclass's overrides in a
worker thread instead (see `aioras.sync`), which is how ``push()`` and ``pull()`` honour
``upload_blob``, ``download_blob``, ``get_manifest`` ... overridden on ``Registry``, as
oras-py does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import httpx

    from ..container import Container
    from ..remote.repository import Repository

__all__ = [
    "ENDPOINT_NAMES",
    "CatalogEndpoints",
    "Endpoints",
    "GraphEndpoints",
    "ManifestEndpoints",
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
    ) -> httpx.Response: ...

    async def upload_new_blob(
        self,
        blob: str | os.PathLike[str],
        container: str | Container,
        *,
        chunk_size: int | None = None,
    ) -> dict[str, Any]: ...

    async def upload_manifest(
        self,
        manifest: Mapping[str, Any],
        container: str | Container,
        *,
        reference: str | None = None,
    ) -> httpx.Response: ...

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
    ) -> str: ...
