"""Push, pull and attach on a content store (an OCI layout, a memory store) instead of a registry.

[`StoreEndpoints`][aioras.operations.stores.StoreEndpoints] presents a
[`Target`][aioras.content.store.Target] as the `Endpoints` that push and pull are built from, so the
same code paths run: a pull from a layout has a registry pull's guarantees (titles and
archive members kept inside the output directory, every blob verified, the pull one unit,
unpacking limits), and a push or attach packs its manifest exactly as it would for a
registry. [`push_to_store`][aioras.operations.stores.push_to_store],
[`pull_from_store`][aioras.operations.stores.pull_from_store] and
[`attach_in_store`][aioras.operations.stores.attach_in_store] are the entry points.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import httpx

from .. import defaults
from .._files.blobio import FileSlice, VerifiedFile
from ..container import Container, names_digest
from ..descriptor import Descriptor, as_descriptor
from ..digest import digest_bytes, digest_file
from ..exceptions import ManifestValidationError
from ..oci import empty_config_path, manifest_bytes
from ..progress import position_reporter
from .attach import AttachOptions, attach
from .endpoints import DownloadCall, EndpointHooks, Endpoints, ManifestCall, NewBlobCall, UploadCall
from .pull import PullOptions, pull
from .push import PushFiles, PushOptions, push_artifact

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from contextlib import AbstractAsyncContextManager

    from ..content.store import Target
    from ..remote.repository import Repository

__all__ = ["StoreEndpoints", "attach_in_store", "pull_from_store", "push_to_store"]

# The name the operations see: they speak in containers, and a store has no registry. The
# ".invalid" top-level domain (RFC 2606) can name no real host.
_STORE_NAME = "store.invalid/content"


class _StoreContainer(Container):
    """A container in a store: named in messages by the store and the tag or digest."""

    store_name = "the store"

    def __str__(self) -> str:
        return (
            f"{self.store_name}@{self.digest}" if self.digest else f"{self.store_name}:{self.tag}"
        )


class _StoreRepository:
    """What push (a referrer's record) and pull (a platform check) ask of a repository."""

    def __init__(self, store: Target) -> None:
        self.store = store
        self.delete_superseded = True

    async def exists(self, descriptor: Descriptor) -> bool:
        return await self.store.exists(descriptor)

    def fetch(self, descriptor: Descriptor) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        return self.store.fetch(descriptor)

    async def fetch_manifest(self, descriptor: Descriptor) -> bytes:
        from ..content.store import read_all

        return await read_all(self.store, descriptor)

    async def record_referrer(self, descriptor: Descriptor, data: bytes, response: Any) -> None:
        # Nothing to record: a store lists referrers from their subject fields (a layout
        # reads its manifests, a memory store indexes them as they are pushed).
        return None


class StoreEndpoints(Endpoints, EndpointHooks):
    """A [`Target`][aioras.content.store.Target] as the endpoints push and pull call.

    References are the store's own: a tag or a digest (``sha256:...``), or a
    [`Container`][aioras.Container] made by
    [`get_container`][aioras.operations.stores.StoreEndpoints.get_container]. Blobs are written
    through the store's ``push`` (which verifies them) from their files, read in worker threads,
    unless the store holds them already (``upload_blob`` then answers 200, having read
    nothing); downloads stream the store's verified ``fetch`` into the file, written
    atomically, and need the blob's ``size`` (a store is read by descriptor). The
    concurrency defaults are a registry's (an operation's own option wins).
    """

    def __init__(
        self,
        store: Target,
        *,
        push_concurrency: int = defaults.default_push_concurrency,
        pull_concurrency: int = defaults.default_pull_concurrency,
    ) -> None:
        self.store = store
        self.push_concurrency, self.pull_concurrency = push_concurrency, pull_concurrency
        # Messages name the layout's path (or the store), never the placeholder host.
        self._root = _StoreContainer(_STORE_NAME)
        path = getattr(store, "path", None)
        self._root.store_name = str(path) if path is not None else type(store).__name__

    def get_container(self, name: str | Container) -> Container:
        """The container of a tag or a digest in the store (a container is taken as it is).

        Raises [`InvalidReference`][aioras.exceptions.InvalidReference] for a malformed tag or
        digest.
        """
        if isinstance(name, Container):
            return name
        if name == _STORE_NAME:
            # The store itself (attach names its target so): the default tag, not one asked for.
            return copy.copy(self._root)
        if name.startswith(_STORE_NAME):
            name = name[len(_STORE_NAME) :].lstrip(":@")
        return self._root.with_reference(name)

    def load_configs(
        self, container: str | Container | None = None, configs: list[str] | None = None
    ) -> None:
        """Nothing to do: a store needs no credentials."""

    def _check_200_response(self, response: httpx.Response) -> None:
        """Nothing to check: the store raised its typed error already."""

    def repository(self, name: str | Container) -> Repository:
        """The store, with the few repository methods push and pull use."""
        # Duck-typed: push records a referrer and pull reads an image config through it.
        return cast("Repository", _StoreRepository(self.store))

    async def resolve(
        self, container: str | Container, allowed_media_type: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The descriptor a tag or digest names; raises NotFoundError when none does."""
        return dict(await self.store.resolve(self.get_container(container).reference))

    async def get_manifest(
        self, container: str | Container, allowed_media_type: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The manifest (or index) a reference names, read verified and parsed.

        Raises [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] when it is not
        a JSON object or its media type is not among ``allowed_media_type``, and
        [`ManifestTooLarge`][aioras.exceptions.ManifestTooLarge] past the manifest size limit.
        """
        from ..content.store import read_all

        descriptor = as_descriptor(await self.resolve(container))
        if allowed_media_type and descriptor["mediaType"] not in allowed_media_type:
            raise ManifestValidationError(
                f"{descriptor['digest']} is a {descriptor['mediaType']}, "
                f"not one of {list(allowed_media_type)}"
            )
        try:
            manifest = json.loads(await read_all(self.store, descriptor))
        except ValueError as error:
            raise ManifestValidationError(f"{descriptor['digest']} is not JSON: {error}") from None
        if not isinstance(manifest, dict):
            raise ManifestValidationError(f"{descriptor['digest']} is not a JSON object")
        return manifest

    async def _download(self, call: DownloadCall) -> str:
        """Write the blob to its file, verified, atomically, from the store's ``fetch``.

        Raises [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] without
        a size (a store is read by descriptor), NotFoundError, and the verification errors.
        """
        digest, outfile, size = call.digest, call.outfile, call.size
        if size is None:
            raise ManifestValidationError(f"blob {digest} has no size to read it by")
        descriptor: Descriptor = {
            "mediaType": "application/octet-stream",
            "digest": digest,
            "size": size,
        }
        report = position_reporter()
        async with (
            VerifiedFile(outfile, digest, size) as out,
            self.store.fetch(descriptor) as stream,
        ):
            done = 0
            async for chunk in stream:
                await out.write(chunk)
                done += len(chunk)
                if report is not None:
                    await report(done)
            await out.commit()
        return os.fspath(outfile)

    async def _upload(self, call: UploadCall) -> httpx.Response:
        """Store the file (None: the empty config) as the layer; verified.

        Answers 200 when the store holds it already (nothing read), else 201. Raises the
        store's verification errors when the file is not what the layer says.
        """
        blob, layer = call.blob, call.layer
        descriptor = as_descriptor(dict(layer))
        if await self.store.exists(descriptor):
            return httpx.Response(200)
        path = os.fspath(blob) if blob is not None else empty_config_path()
        # One byte past the size: a longer file then fails the store's size check.
        content = FileSlice(path, length=descriptor["size"] + 1)
        try:
            await self.store.push(descriptor, content)
        finally:
            await content.aclose()
        return httpx.Response(201)

    async def _upload_new(self, call: NewBlobCall) -> dict[str, Any]:
        """Hash the file, store it; return ``{"digest": ..., "size": ...}``."""
        blob, container = call.blob, call.container
        digest, size = await digest_file(blob)
        layer = {"mediaType": "application/octet-stream", "digest": digest, "size": size}
        await self.upload_blob(blob, container, layer)
        return {"digest": digest, "size": size}

    async def _upload_manifest(self, call: ManifestCall) -> httpx.Response:
        """Store the manifest and tag it (the reference, else the container's tag).

        A digest as the reference (or a container naming one) stores it untagged.
        """
        manifest, container, reference = call.manifest, call.container, call.reference
        data = manifest_bytes(manifest)
        digest = digest_bytes(data)
        media_type = str(manifest.get("mediaType") or defaults.default_manifest_media_type)
        descriptor: Descriptor = {"mediaType": media_type, "digest": digest, "size": len(data)}

        async def content() -> AsyncIterator[bytes]:
            yield data

        await self.store.push(descriptor, content())
        tag = reference or self.get_container(container).reference
        if not names_digest(tag):
            await self.store.tag(descriptor, tag)
        return httpx.Response(201, headers={"docker-content-digest": digest})


async def push_to_store(
    store: Target,
    reference: str | None,
    files: PushFiles | None,
    options: PushOptions | None = None,
) -> Descriptor:
    """Push ``files`` as one artifact into ``store``, tagged ``reference``; its descriptor.

    The artifact is what `push` would send a registry (titles,
    directories packed, annotations, ``pack_version``), tagged ``reference`` (default:
    ``latest``; with a ``subject`` in ``options`` and no ``reference``, untagged). Blobs the
    store holds are not written again. Raises as push does, and the store's errors
    ([`ReadOnlyError`][aioras.exceptions.ReadOnlyError] for a layout read from a tar).
    """
    endpoints = StoreEndpoints(store)
    # Without a reference the default tag, which a referrer (with a subject) does not take.
    target = endpoints.get_container(reference or _STORE_NAME)
    _, descriptor = await push_artifact(
        endpoints, target, files, options or PushOptions(quiet=True)
    )
    return descriptor


async def pull_from_store(
    store: Target, reference: str, options: PullOptions | None = None
) -> list[str]:
    """Pull the artifact ``reference`` (a tag or digest) of ``store`` into files; the paths.

    The same pull as `pull` from a registry: titles kept
    inside ``outdir``, every blob verified, the pull rolled back on failure, archive
    layers unpacked within the limits, an index's manifest chosen by ``platform``. Raises
    as that pull does.
    """
    endpoints = StoreEndpoints(store)
    return await pull(endpoints, endpoints.get_container(reference), options or PullOptions())


async def attach_in_store(
    store: Target,
    subject: str,
    files: Sequence[str | os.PathLike[str]],
    options: AttachOptions,
) -> Descriptor:
    """Attach ``files`` in ``store`` to the manifest ``subject`` (a tag or digest) names.

    The referrer is stored untagged, packed as `attach`
    packs it for a registry; the store's ``referrers`` then lists it. Raises as attach does.
    """
    return await attach(StoreEndpoints(store), subject, files, options)
