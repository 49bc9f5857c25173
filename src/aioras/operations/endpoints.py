"""The endpoint methods push and pull are built from, as a protocol.

:class:`~aioras.registry.AsyncRegistry` satisfies :class:`Endpoints` as it is, so its
``push`` and ``pull`` call its own methods (and an async subclass's overrides). The sync
facade hands the operations an object whose methods run a sync subclass's overrides in a
worker thread instead (see :mod:`aioras.sync`), which is how ``push()`` and ``pull()`` honour
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

__all__ = ["ENDPOINT_NAMES", "Endpoints"]

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
