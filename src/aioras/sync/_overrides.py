"""Push and pull through a sync ``Registry`` subclass's overridden endpoint methods.

The built-in operations run in the async core. When a subclass of the sync
[`Registry`][aioras.sync.Registry] (or one instance, by assignment) overrides one of the
endpoint methods they use, the facade hands them an `OverridingEndpoints` instead of
its [`AsyncRegistry`][aioras.registry.AsyncRegistry]: each overridden method runs in a worker thread
(it may block, and may call the facade's own methods, which wait on the loop thread), every
other method is the core's. Without an override nothing changes and nothing is paid.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
import httpx

from ..container import Container
from ..operations.endpoints import (
    ENDPOINT_NAMES,
    DownloadCall,
    EndpointHooks,
    Endpoints,
    ManifestCall,
    NewBlobCall,
    UploadCall,
)

if TYPE_CHECKING:
    from ..remote.repository import Repository
    from .registry import Registry

__all__ = ["OverridingEndpoints", "overridden_endpoints"]

T = TypeVar("T")


def overridden_endpoints(facade: Registry, base: type) -> frozenset[str]:
    """The endpoint names ``facade`` defines differently from ``base`` (class or instance)."""
    found = set()
    for name in ENDPOINT_NAMES:
        if name in vars(facade) or getattr(type(facade), name) is not getattr(base, name):
            found.add(name)
    return frozenset(found)


class OverridingEndpoints(Endpoints, EndpointHooks):
    """The `Endpoints` of a facade with overrides.

    ``names`` are the overridden methods: those are called on ``facade`` (sync, in a worker
    thread), the rest on its async core. An overridden ``blob_exists`` is asked before an
    upload the way oras-py asks it: a true answer skips the upload.
    """

    def __init__(self, facade: Registry, names: frozenset[str]) -> None:
        self._facade = facade
        self._core = facade.aregistry
        self._names = names
        self.push_concurrency = self._core.push_concurrency
        self.pull_concurrency = self._core.pull_concurrency

    async def _in_thread(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))

    def get_container(self, name: str | Container) -> Container:
        """The facade's ``get_container`` when overridden (no I/O: called directly)."""
        if "get_container" in self._names:
            container: Container = self._facade.get_container(name)
            return container
        return self._core.get_container(name)

    def load_configs(
        self, container: str | Container | None = None, configs: list[str] | None = None
    ) -> None:
        """Read credentials from these Docker config files too."""
        self._facade.load_configs(container, configs)

    def _check_200_response(self, response: httpx.Response) -> None:
        if "_check_200_response" in self._names:
            self._facade._check_200_response(response)
        else:
            self._core._check_200_response(response)

    async def _upload(self, call: UploadCall) -> httpx.Response:
        """Upload through the override, or ask an overridden ``blob_exists`` first."""
        blob, container, layer = call.blob, call.container, call.layer
        if "upload_blob" in self._names:
            # As oras-py calls it; an unset chunk size leaves the override's own default.
            options: dict[str, Any] = {"do_chunked": call.do_chunked}
            if call.chunk_size is not None:
                options["chunk_size"] = call.chunk_size
            return await self._in_thread(
                self._facade.upload_blob, blob, container, layer, **options
            )
        if "blob_exists" in self._names and await self._in_thread(
            self._facade.blob_exists, layer, container
        ):
            return httpx.Response(200)
        return await self._core.upload_blob(
            blob, container, layer, call.do_chunked, call.chunk_size
        )

    async def _upload_manifest(self, call: ManifestCall) -> httpx.Response:
        """PUT the manifest through the override when there is one.

        The override is called as oras-py calls it, so a reference (a referrer pushed by
        digest) reaches it as the container's reference.
        """
        manifest, container, reference = call.manifest, call.container, call.reference
        if "upload_manifest" in self._names:
            if reference is not None:
                container = self.get_container(container).with_reference(reference)
            return await self._in_thread(self._facade.upload_manifest, manifest, container)
        return await self._core.upload_manifest(manifest, container, reference=reference)

    def repository(self, name: str | Container) -> Repository:
        """The core's store of one repository (for the referrers index a push keeps)."""
        return self._core.repository(name)

    async def resolve(
        self, container: str | Container, allowed_media_type: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The descriptor a reference points at (the core's)."""
        return await self._core.resolve(container, allowed_media_type)

    async def get_manifest(
        self, container: str | Container, allowed_media_type: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Fetch the manifest through the override when there is one."""
        if "get_manifest" in self._names:
            return await self._in_thread(self._facade.get_manifest, container, allowed_media_type)
        return await self._core.get_manifest(container, allowed_media_type)

    async def _upload_new(self, call: NewBlobCall) -> dict[str, Any]:
        """Single-pass uploads have no oras-py counterpart to override: the core's."""
        return await self._core.upload_new_blob(
            call.blob, call.container, chunk_size=call.chunk_size
        )

    async def _download(self, call: DownloadCall) -> str:
        """Download through the override (called as oras-py calls it) when there is one."""
        container, digest, outfile = call.container, call.digest, call.outfile
        if "download_blob" in self._names:
            return await self._in_thread(self._facade.download_blob, container, digest, outfile)
        return await self._core.download_blob(container, digest, outfile, size=call.size)
