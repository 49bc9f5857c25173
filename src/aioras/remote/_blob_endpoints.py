"""``BlobMixin``: the blob endpoints of :class:`~aioras.remote.registry.AsyncRegistry`.

Existence checks, fetches and verified downloads, uploads (monolithic, chunked, from a
stream, or hashed on the way), each blob sent into a repository once at a time, deletes
and cross-repository mounts. The transfer machinery is in :mod:`aioras.remote._uploads` and
:mod:`aioras.remote._downloads`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx

from .. import defaults
from .. import exceptions as exc
from .._http.responses import raise_for_status
from .._http.urls import resolve_location
from ..container import Container
from ..digest import validate_digest, verify_bytes
from ..oci import empty_config_path
from ._core import ContainerLike, RegistryCore
from ._downloads import RangeOptions, SharedDownload, download_verified
from ._uploads import (
    BlobUpload,
    HashingUpload,
    SliceSource,
    StreamOpener,
    UploadInFlight,
    cancel_upload,
    open_session,
    stream_source,
)

__all__ = ["BlobMixin"]

logger = logging.getLogger(__name__)


class BlobMixin(RegistryCore):
    """The blob endpoints: ``blob_exists`` ... ``mount_blob``."""

    # -- blobs ---------------------------------------------------------------------------
    async def blob_exists(self, layer: Mapping[str, Any], container: ContainerLike) -> bool:
        """True when the repository holds the blob of ``layer`` (a descriptor dict)."""
        container = self.get_container(container)
        digest = validate_digest(layer["digest"])
        response = await self._send("HEAD", self._url(container.get_blob_url(digest)))
        if response.status_code == 404:
            return False
        await raise_for_status(response, (200,), what=f"blob {digest} in {container}")
        return True

    async def get_blob(
        self,
        container: ContainerLike,
        digest: str,
        stream: bool = False,
        head: bool = False,
    ) -> httpx.Response:
        """Fetch a blob (or only its headers with ``head=True``).

        Without ``stream`` the whole body is read and checked against ``digest``: use it
        for small blobs. With ``stream=True`` the body is left unread and unchecked and
        the caller must close the response; prefer :meth:`stream_blob` or
        :meth:`download_blob`. Raises :class:`~aioras.exceptions.NotFoundError` when the
        blob is unknown and :class:`~aioras.exceptions.DigestMismatch` for altered bytes.
        """
        container = self.get_container(container)
        validate_digest(digest)
        method = "HEAD" if head else "GET"
        response = await self._send(
            method,
            self._url(container.get_blob_url(digest)),
            stream=stream and not head,
            max_body=None,  # a blob: its digest bounds what is kept, its pace the time
        )
        await raise_for_status(response, (200,), what=f"blob {digest} in {container}")
        if not head and not stream:
            verify_bytes(response.content, digest, what=f"blob {digest}")
        return response

    @asynccontextmanager
    async def stream_blob(
        self, container: ContainerLike, digest: str
    ) -> AsyncIterator[httpx.Response]:
        """Open a blob for streaming: ``async with reg.stream_blob(c, d) as r:``.

        The response is closed on exit. Bytes are not verified here: hash them as they
        arrive (:class:`aioras.digest.Verifier`) or use :meth:`download_blob`.
        """
        response = await self.get_blob(container, digest, stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    async def download_blob(
        self,
        container: ContainerLike,
        digest: str,
        outfile: str | os.PathLike[str],
        *,
        size: int | None = None,
    ) -> str:
        """Stream a blob into ``outfile``, verified; return the path written.

        Bytes go to a temporary file beside ``outfile``, hashed on the way, and replace
        ``outfile`` only when digest (and ``size``, when given) match. A body that breaks
        off is resumed with ``Range`` where the registry serves ranges, restarted
        otherwise; content failing verification is fetched again (``retry.refetches``
        times) and never kept. While this object downloads a blob of a repository, other
        calls for the same blob and repository wait for it and copy the verified file
        (hashed and verified again) instead of fetching the bytes a second time. With
        ``size`` above ``range_threshold``, the blob comes as ``download_ranges`` parallel
        ranges written at their offsets (each resumed on its
        own), or as one stream when the registry does not honour ``Range``. On any
        failure, or cancellation, no file is left and ``outfile`` is untouched. Raises
        :class:`~aioras.exceptions.DigestMismatch` or
        :class:`~aioras.exceptions.SizeMismatch` for content that does not match,
        :class:`~aioras.exceptions.StorageError` when the file cannot be written whole
        (a full disk: the bytes hashed are the bytes written), and
        :class:`~aioras.exceptions.TransportError` once ``retry.resumes`` is spent.
        """
        container = self.get_container(container)
        validate_digest(digest)
        key = (container.registry, container.api_prefix, digest)
        running = self._downloading.get(key)
        if running is not None:
            # The blob is on its way already: copy it once it is verified, rather than
            # fetch the same bytes again.
            running.join()
            copied = await running.copy_into(outfile, digest, size)
            if copied is not None:
                return copied
            return await self._download(container, digest, outfile, size, None)
        shared = self._downloading[key] = SharedDownload()
        try:
            return await self._download(container, digest, outfile, size, shared.keep)
        finally:
            del self._downloading[key]
            shared.finish()

    async def _download(
        self,
        container: Container,
        digest: str,
        outfile: str | os.PathLike[str],
        size: int | None,
        on_verified: Callable[[int], object] | None,
    ) -> str:
        limiter = await self._limiter()
        ranges = RangeOptions(self.download_ranges, self.range_threshold, limiter)
        async with limiter:
            return await download_verified(
                self._send,
                self._url(container.get_blob_url(digest)),
                digest=digest,
                outfile=outfile,
                size=size,
                policy=self._transport.retry,
                what=f"blob {digest} of {container.api_prefix}",
                ranges=ranges,
                on_verified=on_verified,
            )

    async def upload_blob(
        self,
        blob: str | os.PathLike[str] | None,
        container: ContainerLike,
        layer: Mapping[str, Any],
        do_chunked: bool = False,
        chunk_size: int | None = None,
        *,
        skip_existing: bool = True,
    ) -> httpx.Response:
        """Upload the file ``blob`` as the blob that ``layer`` describes.

        ``blob=None`` uploads the empty config (``{}``). When the registry already has the
        blob, nothing is sent and the existence check's response is returned
        (``skip_existing=False`` uploads anyway). While this object uploads a blob into a
        repository, other calls for the same blob and repository wait for it, then check
        again instead of sending the bytes a second time. Monolithic by default (POST, then one
        streamed PUT); ``do_chunked`` uses PATCH chunks of ``chunk_size`` bytes. Raises
        :class:`~aioras.exceptions.SizeMismatch` when the file's size is not the
        descriptor's, and the registry's typed errors.
        """
        container = self.get_container(container)
        path = os.fspath(blob) if blob is not None else empty_config_path()
        digest = validate_digest(layer["digest"])
        size = int(layer["size"])
        actual_size = await anyio.to_thread.run_sync(os.path.getsize, path)
        if actual_size != size:
            raise exc.SizeMismatch(expected=size, actual=actual_size, what=f"file {path}")
        return await self._upload_once(
            container,
            digest,
            skip_existing,
            lambda: (
                self.chunked_upload(
                    path, container, layer, chunk_size=chunk_size or self.chunk_size
                )
                if do_chunked
                else self.put_upload(path, container, layer)
            ),
        )

    async def upload_blob_stream(
        self,
        source: StreamOpener,
        container: ContainerLike,
        layer: Mapping[str, Any],
        *,
        skip_existing: bool = True,
    ) -> httpx.Response:
        """Upload the blob ``layer`` describes from a stream, with no file in between.

        ``source`` opens the bytes from their start (``lambda: store.fetch(descriptor)``);
        it is called again when the upload restarts after a fault, so a stream that broke
        off is read anew rather than resumed. The bytes go out in one streamed ``PUT``
        (monolithic) and the registry checks them against the digest. Existing blobs and
        uploads already under way are handled as in :meth:`upload_blob`. Raises the
        registry's typed errors, and what ``source`` raises (e.g.
        :class:`~aioras.exceptions.DigestMismatch` from a verified stream).
        """
        container = self.get_container(container)
        digest = validate_digest(layer["digest"])
        upload = self._blob_upload(None, container, layer, source=stream_source(source))
        return await self._upload_once(container, digest, skip_existing, upload.monolithic)

    async def _upload_once(
        self,
        container: Container,
        digest: str,
        skip_existing: bool,
        run: Callable[[], Awaitable[httpx.Response]],
    ) -> httpx.Response:
        """Run one blob upload under the transfer limit, unless the blob is there already."""
        key = (container.registry, container.api_prefix, digest)
        while True:
            running = self._uploading.get(key)
            if running is None and skip_existing:
                head = await self._send("HEAD", self._url(container.get_blob_url(digest)))
                if head.status_code == 200:
                    logger.debug("blob %s already in %s; not uploading", digest, container)
                    return head
                running = self._uploading.get(key)
            if running is None:
                break
            # The same blob is on its way into the same repository: wait for that upload
            # rather than send the bytes twice. (Two commits of one blob also race in the
            # CNCF registry, whose re-link briefly hides the blob from a manifest being
            # verified.) Its answer says the blob is stored: no need to ask again (pushing
            # 5 tags that share a layer, 4 HEADs fewer per shared blob); after a failure,
            # look again.
            await running.done.wait()
            if running.response is not None and skip_existing:
                return running.response
            if not skip_existing:
                break
        sent = self._uploading[key] = UploadInFlight()
        try:
            async with await self._limiter():
                sent.response = await run()
                return sent.response
        finally:
            if self._uploading.get(key) is sent:
                del self._uploading[key]
            sent.done.set()

    def _blob_upload(
        self,
        blob: str | os.PathLike[str] | None,
        container: Container,
        layer: Mapping[str, Any],
        *,
        source: SliceSource | None = None,
    ) -> BlobUpload:
        digest = validate_digest(layer["digest"])
        return BlobUpload(
            self._send,
            path=blob,
            source=source,
            digest=digest,
            size=int(layer["size"]),
            uploads_url=self._url(container.upload_blob_url()),
            blob_url=self._url(container.get_blob_url(digest)),
            policy=self._transport.retry,
            what=f"blob {digest} in {container.api_prefix}",
        )

    async def upload_new_blob(
        self,
        blob: str | os.PathLike[str],
        container: ContainerLike,
        *,
        chunk_size: int | None = None,
    ) -> dict[str, Any]:
        """Upload the file ``blob`` in one pass, hashing it on the way; return its digest and size.

        For blobs the registry is not expected to hold: there is no existence check (the
        digest is not known before the upload), and the file is read once instead of
        twice. The upload is chunked (POST, ``PATCH`` chunks of ``chunk_size`` bytes,
        default this object's ``chunk_size``) and the closing ``PUT`` names the digest of
        exactly the bytes sent, which the registry checks. Broken chunks are resumed as in
        :meth:`chunked_upload`, re-reading only the bytes they must. Returns
        ``{"digest": ..., "size": ...}``. Raises the registry's typed errors, or
        :class:`~aioras.exceptions.TransportError` when it cannot be reached.
        """
        container = self.get_container(container)
        path = os.fspath(blob)
        size = await anyio.to_thread.run_sync(os.path.getsize, path)
        upload = HashingUpload(
            self._send,
            path=path,
            size=size,
            uploads_url=self._url(container.upload_blob_url()),
            blob_url=lambda digest: self._url(container.get_blob_url(digest)),
            policy=self._transport.retry,
            what=f"file {os.path.basename(path)} in {container.api_prefix}",
        )
        async with await self._limiter():
            await upload.chunked(chunk_size or self.chunk_size)
        return {"digest": upload.digest, "size": size}

    async def _cancel_upload(self, location: str) -> None:
        await cancel_upload(self._send, location)

    async def put_upload(
        self, blob: str | os.PathLike[str], container: ContainerLike, layer: Mapping[str, Any]
    ) -> httpx.Response:
        """Monolithic upload: open a session (POST), then stream the whole file in one PUT.

        A failed upload restarts with a new session (at most ``retry.resumes`` times); a
        PUT whose answer was lost is checked with HEAD before anything is sent again, and
        the blob's HEAD response (200) is returned when it was stored. Abandoned sessions
        are cancelled. Raises the registry's typed errors, or
        :class:`~aioras.exceptions.TransportError` when it cannot be reached.
        """
        container = self.get_container(container)
        return await self._blob_upload(blob, container, layer).monolithic()

    async def chunked_upload(
        self,
        blob: str | os.PathLike[str],
        container: ContainerLike,
        layer: Mapping[str, Any],
        chunk_size: int = defaults.default_chunksize,
    ) -> httpx.Response:
        """Chunked upload: POST, one PATCH per ``chunk_size`` bytes, then a closing PUT.

        Each PATCH carries ``Content-Range`` and follows the ``Location`` the previous
        answer gave; the registry's ``OCI-Chunk-Min-Length`` raises the chunk size. After
        a lost connection, a timeout, 416, 408, 429 or 5xx the registry is asked where the
        session stands (GET on the upload URL) and the upload continues from there; a
        session the registry lost or refuses is cancelled and the upload starts over (at
        most ``retry.resumes`` recoveries in all). Returns as :meth:`put_upload` does.
        """
        container = self.get_container(container)
        return await self._blob_upload(blob, container, layer).chunked(chunk_size)

    async def delete_blob(self, container: ContainerLike, digest: str) -> None:
        """Delete a blob. Raises UnsupportedOperation when deletes are disabled."""
        container = self.get_container(container)
        validate_digest(digest)
        response = await self._send("DELETE", self._url(container.get_blob_url(digest)))
        await raise_for_status(response, (202, 200, 204), what=f"delete blob {digest}")

    async def mount_blob(self, container: ContainerLike, digest: str, from_repository: str) -> bool:
        """Ask the registry to mount a blob from another repository; True when it did.

        A registry that answers with an upload session instead (202) did not mount; the
        session is cancelled and False returned, so the caller uploads normally.
        """
        container = self.get_container(container)
        validate_digest(digest)
        url = self._url(container.blob_mount_url(digest, from_repository))
        scopes = (
            f"repository:{container.api_prefix}:pull,push",
            f"repository:{from_repository}:pull",
        )
        response = await open_session(
            lambda: self._send(
                "POST", url, headers={"Content-Length": "0"}, body=b"", scopes=scopes
            ),
            self._send,
            url,
        )
        if response.status_code == 201:
            return True
        if response.status_code == 202 and "location" in response.headers:
            await self._cancel_upload(resolve_location(url, response.headers["location"]))
            return False
        await raise_for_status(response, (201,), what=f"mount of {digest} into {container}")
        return False
