"""``BlobStore``: the blob requests of one registry client, on a `Session`.

Existence checks, fetches, verified downloads, uploads (one per blob and repository at a
time), deletes and cross-repository mounts, each taking a parsed
[`Container`][aioras.Container] and a checked digest. The flat, overridable methods
users call (``upload_blob``, ``download_blob`` ...) are the client's; they come here. The
transfer machinery is in `aioras.remote._uploads` and `aioras.remote._downloads`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import httpx

from .._concurrency import first_error
from .._http.responses import raise_for_status
from .._http.urls import resolve_location
from ..container import Container
from ..digest import digest_file, verify_bytes
from ..exceptions import UnsupportedOperation
from ._downloads import BlobGet, RangeOptions, SharedDownload, download_verified
from ._session import Session
from ._uploads import (
    BlobUpload,
    HashingUpload,
    LateDigestUpload,
    SliceSource,
    UploadInFlight,
    cancel_upload,
    open_session,
)

__all__ = ["BlobStore"]

logger = logging.getLogger(__name__)


class BlobStore:
    """The blobs of one registry client's repositories; see the module docstring."""

    def __init__(self, session: Session) -> None:
        self.session = session
        # Blobs on their way into, or out of, a repository: (registry, repository, digest).
        self.uploading: dict[tuple[str, str, str], UploadInFlight] = {}
        self.downloading: dict[tuple[str, str, str], SharedDownload] = {}

    def _url(self, container: Container, digest: str) -> str:
        return self.session.url(container.get_blob_url(digest))

    async def exists(self, container: Container, digest: str) -> bool:
        """True when the repository holds the blob (a HEAD)."""
        return await self._head(container, digest) is not None

    async def get(
        self, container: Container, digest: str, *, stream: bool, head: bool
    ) -> httpx.Response:
        """GET (or HEAD) a blob; read and verified whole unless ``stream`` or ``head``."""
        response = await self.session.send(
            "HEAD" if head else "GET",
            self._url(container, digest),
            stream=stream and not head,
            max_body=None,  # a blob: its digest bounds what is kept, its pace the time
        )
        await raise_for_status(response, (200,), what=f"blob {digest} in {container}")
        if not head and not stream:
            verify_bytes(response.content, digest, what=f"blob {digest}")
        return response

    async def download(
        self,
        container: Container,
        digest: str,
        outfile: str | os.PathLike[str],
        *,
        size: int | None,
        ranges: RangeOptions,
        limiter: anyio.CapacityLimiter,
    ) -> str:
        """Stream a blob into ``outfile``, verified, under ``limiter``.

        While a blob of a repository is on its way, other calls for it wait and copy the
        verified file (hashed and verified again) instead of fetching the bytes again.
        """
        get = BlobGet(
            self.session.send,
            self._url(container, digest),
            digest,
            size,
            self.session.transport.retry,
            f"blob {digest} of {container.api_prefix}",
        )
        key = (container.registry, container.api_prefix, digest)
        running = self.downloading.get(key)
        if running is not None:
            running.join()
            copied = await running.copy_into(outfile, digest, size)
            if copied is not None:
                return copied
            return await self._download(get, outfile, ranges, limiter)
        shared = self.downloading[key] = SharedDownload()
        try:
            get = dataclasses.replace(get, on_verified=shared.keep)
            return await self._download(get, outfile, ranges, limiter)
        finally:
            del self.downloading[key]
            shared.finish()

    async def _download(
        self,
        get: BlobGet,
        outfile: str | os.PathLike[str],
        ranges: RangeOptions,
        limiter: anyio.CapacityLimiter,
    ) -> str:
        async with limiter:
            return await download_verified(get, outfile, ranges=ranges)

    async def upload_once(
        self,
        container: Container,
        digest: str,
        run: Callable[[], Awaitable[httpx.Response]],
        *,
        skip_existing: bool,
        limiter: anyio.CapacityLimiter,
    ) -> httpx.Response:
        """Run one blob upload under ``limiter``, unless the blob is there already.

        The existence check (``HEAD``) is part of the upload in flight: calls for the same
        blob and repository that come while it is asked wait for its answer too.
        """
        key = (container.registry, container.api_prefix, digest)
        while (running := self.uploading.get(key)) is not None:
            # The same blob is being checked or sent into the same repository: wait for
            # that rather than ask or send the bytes twice. (Two commits of one blob also
            # race in the CNCF registry, whose re-link briefly hides the blob from a
            # manifest being verified.) Its answer says the blob is stored: no need to ask
            # again (50 pushes at once, 10 repositories sharing a layer and the config:
            # 70 HEADs where there were 150); after a failure, look again.
            await running.done.wait()
            if not skip_existing:
                break
            if running.response is not None:
                return running.response
        sent = self.uploading[key] = UploadInFlight()
        try:
            if skip_existing:
                head = await self.session.send("HEAD", self._url(container, digest))
                if head.status_code == 200:
                    logger.debug("blob %s already in %s; not uploading", digest, container)
                    sent.response = head
                    return head
            async with limiter:
                sent.response = await run()
                return sent.response
        finally:
            if self.uploading.get(key) is sent:
                del self.uploading[key]
            sent.done.set()

    async def upload_overlapped(
        self,
        container: Container,
        path: str,
        size: int,
        *,
        limiter: anyio.CapacityLimiter,
        on_digest: Callable[[str], Awaitable[None]] | None = None,
    ) -> tuple[str, httpx.Response]:
        """Upload the file ``path`` while it is hashed; return its digest and the answer.

        Two things run at once: the upload (under ``limiter``) as one ``PATCH``, and the
        hash of the file in a worker thread (then ``on_digest(digest)``) followed by a
        ``HEAD``. When the
        blob turns out to be there already, or on its way in from another call, the upload
        is cancelled (its session dropped, best effort) and the existing blob's answer (200)
        returned, as `upload_once` would. Else the closing ``PUT`` waits for the hash and
        names it; the registry checks the bytes it stored against it. A ``PATCH`` refused
        as unsupported (405) leaves a monolithic ``PUT`` of the file to do instead.
        """
        known, found = anyio.Event(), list[str]()

        async def hashed() -> str:
            await known.wait()
            return found[0]

        upload = LateDigestUpload(
            self.session.send,
            path=path,
            size=size,
            uploads_url=self.session.url(container.upload_blob_url()),
            blob_url=lambda digest: self._url(container, digest),
            digest=hashed,
            policy=self.session.transport.retry,
            what=f"file {os.path.basename(path)} in {container.api_prefix}",
        )
        sent: list[httpx.Response] = []

        async def send() -> None:
            async with limiter:
                try:
                    sent.append(await upload.chunked(max(size, 1)))
                except UnsupportedOperation as error:
                    # A registry without chunked uploads (405, UNSUPPORTED): once the hash
                    # is known, the file goes as one monolithic PUT instead (below).
                    logger.info("%s; uploading %s in one PUT", error, os.path.basename(path))

        mine, key = UploadInFlight(), None
        try:
            async with _one_error(), anyio.create_task_group() as tasks:
                tasks.start_soon(send)
                digest, _ = await digest_file(path)
                found.append(digest)
                known.set()
                if on_digest is not None:
                    await on_digest(digest)
                key = (container.registry, container.api_prefix, digest)
                other = None if sent else self.uploading.get(key)
                head = None if sent or other else await self._head(container, digest)
                if sent or not (other or head):
                    # Calls for the same blob now wait for this upload (see upload_once).
                    self.uploading.setdefault(key, mine)
                else:
                    tasks.cancel_scope.cancel()
            mine.response = sent[0] if sent else None
        finally:
            if key is not None and self.uploading.get(key) is mine:
                del self.uploading[key]
            mine.done.set()
        if sent:
            return digest, sent[0]
        if head is not None:
            logger.debug("blob %s already in %s; upload cancelled", digest, container)
            return digest, head
        # Another call uploads the same blob into the same repository (wait for it), or the
        # registry refused the PATCH: a monolithic PUT, once the blob is still missing.
        run = self.upload(path, container, digest, size).monolithic
        return digest, await self.upload_once(
            container, digest, run, skip_existing=True, limiter=limiter
        )

    async def _head(self, container: Container, digest: str) -> httpx.Response | None:
        """The blob's ``HEAD`` answer (200), or None when the repository lacks it."""
        response = await self.session.send("HEAD", self._url(container, digest))
        if response.status_code == 404:
            return None
        await raise_for_status(response, (200,), what=f"blob {digest} in {container}")
        return response

    def upload(
        self,
        path: str | os.PathLike[str] | None,
        container: Container,
        digest: str,
        size: int,
        *,
        source: SliceSource | None = None,
    ) -> BlobUpload:
        """An upload of the file ``path`` (or of ``source``) as the blob ``digest``."""
        return BlobUpload(
            self.session.send,
            path=path,
            source=source,
            digest=digest,
            size=size,
            uploads_url=self.session.url(container.upload_blob_url()),
            blob_url=self._url(container, digest),
            policy=self.session.transport.retry,
            what=f"blob {digest} in {container.api_prefix}",
        )

    def upload_new(self, path: str, container: Container, size: int) -> HashingUpload:
        """An upload of the file ``path`` hashed on the way (its digest is not known yet)."""
        return HashingUpload(
            self.session.send,
            path=path,
            size=size,
            uploads_url=self.session.url(container.upload_blob_url()),
            blob_url=lambda digest: self._url(container, digest),
            policy=self.session.transport.retry,
            what=f"file {os.path.basename(path)} in {container.api_prefix}",
        )

    async def cancel(self, location: str) -> None:
        """Cancel the upload session at ``location`` (best effort)."""
        await cancel_upload(self.session.send, location)

    async def delete(self, container: Container, digest: str) -> None:
        """DELETE a blob."""
        response = await self.session.send("DELETE", self._url(container, digest))
        await raise_for_status(response, (202, 200, 204), what=f"delete blob {digest}")

    async def mount(self, container: Container, digest: str, from_repository: str) -> bool:
        """Mount a blob from another repository; False when the registry opened a session."""
        url = self.session.url(container.blob_mount_url(digest, from_repository))
        scopes = (
            f"repository:{container.api_prefix}:pull,push",
            f"repository:{from_repository}:pull",
        )
        send = self.session.send
        response = await open_session(
            lambda: send("POST", url, headers={"Content-Length": "0"}, body=b"", scopes=scopes),
            send,
            url,
        )
        if response.status_code == 201:
            return True
        if response.status_code == 202 and "location" in response.headers:
            await self.cancel(resolve_location(url, response.headers["location"]))
            return False
        await raise_for_status(response, (201,), what=f"mount of {digest} into {container}")
        return False


@asynccontextmanager
async def _one_error() -> AsyncIterator[None]:
    """Raise a task group's failure as itself (a typed error), not as an exception group."""
    try:
        yield
    except BaseExceptionGroup as group:
        raise first_error(group) from None
