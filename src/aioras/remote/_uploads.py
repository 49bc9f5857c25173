"""Blob uploads that survive faults: monolithic and chunked, resumed or restarted.

The transport never replays an upload's ``PATCH`` or closing ``PUT`` (their effect on the
session is not idempotent); recovery happens here, at the level of the whole upload:

- A chunked upload whose ``PATCH`` loses its connection, times out, or is answered 416,
  408, 429 or 5xx asks the registry where the session stands (``GET`` on the upload URL,
  whose ``Range`` says how many bytes it holds) and continues from there. A registry that
  no longer knows the session, or refuses it (the CNCF registry cancels a session asked
  about with stale state), gets a fresh session and the blob from its first byte.
- A monolithic upload (one streamed ``PUT``) that fails restarts with a new session.
- A closing ``PUT`` that got no answer, or a 5xx, may still have been committed: the blob
  is looked up (``HEAD``) before anything is sent again.
- Every abandoned session is cancelled (``DELETE`` on its URL, failures ignored), also when
  the upload is cancelled or fails for good.

- A source stream that fails its own verification (bytes read from another registry and
  altered on the way) is opened anew with a fresh session, at most
  `refetches` times.

``OCI-Chunk-Min-Length`` from the registry raises the chunk size. How often an upload is
resumed or restarted is bounded by `aioras.RetryPolicy.resumes`: that many
failures in a row with no bytes landed in between, and that many fresh sessions.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import httpx

from .. import exceptions as exc
from .._files.blobio import FileSlice
from .._http.headers import header_number
from .._http.responses import is_verification_failure, raise_for_status
from .._http.transport import Body, BodyFactory
from .._http.urls import merge_query, redact, resolve_location
from .._retry import Retrying, RetryPolicy
from ..content.store import StreamOpener
from ..digest import Hasher
from ._session import SendFn

__all__ = [
    "BlobUpload",
    "HashingUpload",
    "LateDigestUpload",
    "SliceSource",
    "StreamOpener",
    "UploadInFlight",
    "cancel_upload",
    "open_session",
    "file_source",
    "stream_source",
]

logger = logging.getLogger(__name__)


class UploadInFlight:
    """One blob upload into a repository under way, its existence check included: others
    wait for it instead of asking or sending.

    ``response`` is the registry's answer once the blob is known to be stored (the check's
    200, or the upload's 201); it stays None when that failed (a waiter then looks for
    itself).
    """

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.response: httpx.Response | None = None


_OCTET = "application/octet-stream"
# How long a cancelled or failed upload may spend telling the registry to drop its session.
_CANCEL_GRACE = 5.0
# Codes meaning "this session is beyond repair, start another": stale or unknown session,
# or content the registry refused (the file changed, or bytes were altered on the way).
_RESTART_CODES = frozenset(
    {"BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "SIZE_INVALID"}
)
# ASCII digits only (\d also takes other scripts' digits), at most 30 (int() refuses 4,300).
_RANGE = re.compile(r"^\s*(?:bytes[ =])?\s*0-([0-9]{1,30})\s*$")


SliceSource = Callable[[int, int | None], AsyncIterator[bytes]]
"""Opens a fresh stream of a blob's bytes from ``offset``, ``length`` of them (None: all)."""


def file_source(path: str | os.PathLike[str]) -> SliceSource:
    """A `SliceSource` reading slices of the file ``path`` in worker threads."""

    def open_slice(offset: int, length: int | None) -> AsyncIterator[bytes]:
        return FileSlice(path, offset=offset, length=length)

    return open_slice


class _OpenedStream:
    """An async iterator over a stream an opener yields, entered lazily, closed once.

    The opener's context is left when the stream ends, fails or is closed: a source
    response is never left open by a request that gave up half-way.
    """

    def __init__(self, opener: StreamOpener) -> None:
        self._opener = opener
        self._context: AbstractAsyncContextManager[AsyncIterator[bytes]] | None = None
        self._stream: AsyncIterator[bytes] | None = None
        self._done = False

    def __aiter__(self) -> _OpenedStream:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        if self._stream is None:
            self._context = self._opener()
            self._stream = await self._context.__aenter__()
        try:
            return await self._stream.__anext__()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Leave the opener's context; the stream yields nothing more."""
        self._done = True
        if self._context is not None:
            context, self._context = self._context, None
            with anyio.CancelScope(shield=True):
                await context.__aexit__(None, None, None)


def stream_source(opener: StreamOpener) -> SliceSource:
    """A `SliceSource` over a stream read from its start (each slice opens it anew).

    Only whole-blob slices are offered: a stream cannot seek, so such a source suits a
    monolithic upload, restarted from the first byte when it breaks off.
    """

    def open_slice(offset: int, length: int | None) -> AsyncIterator[bytes]:
        if offset:
            raise ValueError("a stream source is read from its first byte only")
        return _OpenedStream(opener)

    return open_slice


async def cancel_upload(send: SendFn, location: str) -> None:
    """Tell the registry to drop an upload session; never raises, never waits long.

    Shielded from cancellation (it runs while a cancelled upload unwinds) and bounded by a
    short deadline: an abandoned session only costs the registry some storage until it
    purges it.
    """
    with anyio.move_on_after(_CANCEL_GRACE, shield=True):
        try:
            response = await send("DELETE", location, retry=False)
            await response.aclose()
        except exc.OrasError as error:
            logger.debug("cancelling upload %s failed: %s", redact(location), error)


async def open_session(
    post: Callable[[], Awaitable[httpx.Response]], send: SendFn, url: str
) -> httpx.Response:
    """``post()`` (a POST that may open an upload session at ``url``), never losing a session.

    A cancellation that arrives while the POST is under way does not cut it off: the
    registry may have opened the session already, and only its answer says where. The POST
    gets up to ``_CANCEL_GRACE`` seconds more to answer; a session it opened (202 with a
    ``Location``) is cancelled, then the cancellation goes on.
    """
    done = anyio.Event()
    answers: list[httpx.Response] = []
    errors: list[BaseException] = []
    shield = anyio.CancelScope(shield=True)

    async def run() -> None:
        with shield:
            try:
                answers.append(await post())
            except BaseException as error:  # re-raised by the caller below
                errors.append(error)
            finally:
                done.set()

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        try:
            await done.wait()
        except anyio.get_cancelled_exc_class():
            shield.deadline = anyio.current_time() + _CANCEL_GRACE
            with anyio.CancelScope(shield=True):
                await done.wait()
                location = answers[0].headers.get("location") if answers else None
                if location and answers[0].status_code == 202:
                    await cancel_upload(send, resolve_location(url, location))
            raise
    if errors:
        raise errors[0]
    return answers[0]


def _refused(error: exc.TransportError | exc.RegistryError) -> bool:
    """True when a 400 or 404 carries a restart code: only a new session helps."""
    return (
        isinstance(error, exc.RegistryError)
        and error.status_code in (400, 404)
        and bool(_RESTART_CODES.intersection(error.codes))
    )


def _min_chunk(response: httpx.Response) -> int:
    return header_number(response.headers.get("oci-chunk-min-length")) or 0


def _range_end(value: str | None) -> int | None:
    """``<end>`` of a ``Range: 0-<end>`` header (the last byte a session holds), or None.

    ``0-0`` is ambiguous: the CNCF registry says it for an empty session and for one byte.
    """
    match = _RANGE.match(value or "")
    return int(match.group(1)) if match else None


class BlobUpload:
    """One blob's upload from a file or a stream into one repository, with its recovery.

    ``send`` is the registry's request function; ``path`` the file to upload, or ``source``
    a `SliceSource` of the bytes (`stream_source` for a stream: monolithic
    uploads only); ``uploads_url`` the repository's
    ``/blobs/uploads/`` URL and ``blob_url`` the blob's own URL (for the existence check
    after an uncertain commit); ``what`` names the blob in errors.
    """

    def __init__(
        self,
        send: SendFn,
        *,
        path: str | os.PathLike[str] | None = None,
        source: SliceSource | None = None,
        digest: str,
        size: int,
        uploads_url: str,
        blob_url: str,
        policy: RetryPolicy,
        what: str,
    ) -> None:
        if (path is None) == (source is None):
            raise ValueError("BlobUpload needs either a path or a source")
        self.send = send
        self.path = os.fspath(path) if path is not None else None
        self.source = source if source is not None else file_source(os.fspath(path or ""))
        self._bodies: list[AsyncIterator[bytes]] = []
        self.digest = digest
        self.size = size
        self.uploads_url = uploads_url
        self.blob_url = blob_url
        self.policy = policy
        self.what = what
        self.location: str | None = None
        self.offset = 0
        self.chunk_size = 0
        self.sessions = 0
        """Upload sessions opened so far (more than one means the upload was restarted)."""
        self._opening = False

    # -- the two upload shapes ---------------------------------------------------------------
    async def monolithic(self) -> httpx.Response:
        """Open a session and stream the whole file in one ``PUT``; restart on failure.

        Returns the ``PUT``'s 201 response, or the ``HEAD`` response (200) when the blob
        turned out to be committed although the answer was lost. Raises the typed error of
        the last failure once it is not recoverable or ``policy.resumes`` is spent.
        """
        return await self._run(self._monolithic_once)

    async def chunked(self, chunk_size: int) -> httpx.Response:
        """Upload in ``PATCH`` chunks of ``chunk_size`` bytes (or the registry's minimum).

        Resumes where the registry says the session stands after a broken chunk; restarts
        with a new session when the registry lost or refused the session. Returns as
        `monolithic` does.
        """
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self.chunk_size = chunk_size
        return await self._run(self._chunked_once)

    async def _monolithic_once(self) -> httpx.Response:
        if self.location is None:
            await self._open()
        assert self.location is not None
        return await self._commit(self._body(0, self.size), self.size)

    async def _chunked_once(self) -> httpx.Response:
        if self.location is None:
            await self._open()
        while self.offset < self.size:
            await self._patch()
        return await self._commit(b"", 0)

    # -- recovery loop -------------------------------------------------------------------------
    async def _run(self, attempt: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        # Bounded two ways, so an upload always ends: failures in a row with no bytes landed
        # in between (``breaks`` renews its budget when the upload moved forward), and
        # sessions opened. A long chunked upload that keeps advancing is not failed merely
        # because faults added up over its length.
        breaks = self.policy.retrying(self.policy.resumes, level=logging.INFO)
        refetches = self.policy.retrying(
            self.policy.refetches, on=exc.IntegrityError, pause=False, level=logging.WARNING
        )
        mismatch: exc.IntegrityError | None = None
        try:
            while True:
                try:
                    return await attempt()
                except exc.StreamConsumed:
                    # A one-shot source cannot be read again: content that did not match
                    # is the error to report, not the spent stream.
                    if mismatch is not None:
                        raise mismatch from None
                    raise
                except exc.IntegrityError as error:
                    mismatch = error
                    await self._refetch(refetches, error)
                except (exc.TransportError, exc.RegistryError) as error:
                    if self._opening or not self._recoverable(error):
                        # A POST that failed has had the transport's retries already.
                        raise
                    recovered = await self._resume(breaks, error)
                    if recovered is not None:
                        return recovered
        finally:
            if self.location is not None:
                location, self.location = self.location, None
                await cancel_upload(self.send, location)

    async def _refetch(self, refetches: Retrying, error: exc.IntegrityError) -> None:
        """After a verified source stream read altered bytes: drop the session, read anew."""
        if not refetches.allows(error):
            raise error
        await refetches.wait(error, note=f"{self.what}: {error}; sending it again")
        if self.location is not None:
            location, self.location = self.location, None
            await cancel_upload(self.send, location)

    async def _resume(
        self, breaks: Retrying, error: exc.TransportError | exc.RegistryError
    ) -> httpx.Response | None:
        """Pause, then find where the upload stands; the blob's HEAD if it is stored already.

        Raises ``error`` once ``breaks`` gives up, or when a restart would open more than
        ``resumes`` sessions.
        """
        breaks.advance(self.offset)
        if not breaks.allows(error):
            raise error
        await breaks.wait(
            error, note=f"upload of {self.what} broke off at byte {self.offset} ({error})"
        )
        recovered = await self._recover(error)
        if recovered is None and self.location is None and self.sessions > self.policy.resumes:
            # The next attempt would open a new session and start from byte 0.
            raise error
        breaks.advance(self.offset if self.location is not None else 0)
        return recovered

    def _recoverable(self, error: exc.TransportError | exc.RegistryError) -> bool:
        if isinstance(error, exc.TransportError):
            cause = error.__cause__
            return not (cause is not None and is_verification_failure(cause))
        if error.status_code in self.policy.statuses or error.status_code == 416:
            return True
        return _refused(error)

    async def _recover(
        self, error: exc.TransportError | exc.RegistryError
    ) -> httpx.Response | None:
        """Find out where the upload stands; return the blob's HEAD if it is already stored."""
        uncertain = isinstance(error, exc.TransportError) or error.status_code >= 500
        if self.offset >= self.size and uncertain:
            # The closing PUT (or a monolithic upload) may have been committed unseen.
            present = await self._present()
            if present is not None:
                logger.info("%s was stored although the answer was lost", self.what)
                self.location = None  # a committed session is gone already
                return present
        if self.location is None:
            return None  # no session open: the next attempt opens one
        if self.chunk_size and not _refused(error):
            held = await self._status()
            if held is not None:
                if held != self.offset:
                    logger.debug(
                        "%s: registry holds %d bytes, not %d", self.what, held, self.offset
                    )
                self.offset = held
                return None
        # Monolithic, or the session is lost or refused: drop it and start over.
        location, self.location = self.location, None
        await cancel_upload(self.send, location)
        return None

    # -- requests ------------------------------------------------------------------------------
    async def _open(self) -> None:
        """``POST`` a new session (retried by the transport: a lost one only leaks)."""
        self._opening = True
        response = await open_session(
            lambda: self.send(
                "POST", self.uploads_url, headers={"Content-Length": "0"}, body=b"", retry=True
            ),
            self.send,
            self.uploads_url,
        )
        await raise_for_status(response, (202,), what=f"upload session for {self.what}")
        self._opening = False
        location = response.headers.get("location")
        if not location:
            raise exc.RegistryError(
                f"registry gave no Location for the upload session of {self.what}",
                status_code=response.status_code,
                method="POST",
                url=redact(self.uploads_url),
            )
        self.location = resolve_location(self.uploads_url, location)
        self.offset = 0
        self.sessions += 1
        if self.chunk_size:
            minimum = _min_chunk(response)
            if minimum > self.chunk_size:
                logger.debug("registry wants chunks of at least %d bytes", minimum)
                self.chunk_size = minimum

    async def _patch(self) -> None:
        assert self.location is not None
        offset = self.offset
        length = min(self.chunk_size, self.size - offset)
        headers = {
            "Content-Type": _OCTET,
            "Content-Length": str(length),
            "Content-Range": f"{offset}-{offset + length - 1}",
        }
        try:
            response = await self.send(
                "PATCH",
                self.location,
                headers=headers,
                body=self._body(offset, length),
                retry=False,
            )
        finally:
            await self._close_bodies()
        await raise_for_status(response, (202, 201, 204), what=f"chunk at {offset} of {self.what}")
        if "location" in response.headers:
            self.location = resolve_location(self.location, response.headers["location"])
        sent = offset + length
        end = _range_end(response.headers.get("range"))
        # The registry's count wins when it is plausible and unambiguous: it knows what it
        # kept. Were ours wrong, the next PATCH gets 416 and the status request settles it.
        self.offset = end + 1 if end is not None and 0 < end < sent else sent

    def _body(self, offset: int, length: int) -> BodyFactory:
        """A body factory over the slice; every stream it opens is closed after the request."""

        def make() -> AsyncIterator[bytes]:
            body = self.source(offset, length)
            self._bodies.append(body)
            return body

        return make

    async def _close_bodies(self) -> None:
        bodies, self._bodies = self._bodies, []
        for body in bodies:
            close = getattr(body, "aclose", None)
            if close is not None:
                await close()

    async def _commit(self, body: Body, length: int) -> httpx.Response:
        assert self.location is not None
        url = merge_query(self.location, {"digest": self.digest})
        headers = {"Content-Type": _OCTET, "Content-Length": str(length)}
        if length:
            self.offset = self.size  # everything goes in this request
        try:
            response = await self.send("PUT", url, headers=headers, body=body, retry=False)
        finally:
            await self._close_bodies()
        await raise_for_status(response, (201,), what=f"{self.what} upload")
        self.location = None  # the session ends with the commit
        returned = response.headers.get("docker-content-digest")
        if returned and returned != self.digest:
            raise exc.DigestMismatch(
                expected=self.digest,
                actual=returned,
                what="digest the registry stored for the blob",
            )
        return response

    async def _present(self) -> httpx.Response | None:
        """The blob's ``HEAD`` response when the registry holds it whole, else None."""
        try:
            response = await self.send("HEAD", self.blob_url)
        except exc.TransportError:
            return None
        length = header_number(response.headers.get("content-length"))
        if response.status_code == 200 and length in (None, self.size):
            return response
        return None

    async def _status(self) -> int | None:
        """Bytes the session holds (``GET`` on its URL), or None when it is lost or unclear.

        Raises [`TransportError`][aioras.exceptions.TransportError] when the registry cannot be
        reached and the typed error for 401/403.
        """
        assert self.location is not None
        response = await self.send("GET", self.location)
        if response.status_code in (401, 403):
            await raise_for_status(response, (204,), what=f"upload status of {self.what}")
        if response.status_code not in (200, 204):
            logger.debug(
                "upload status of %s: HTTP %d; starting over", self.what, response.status_code
            )
            return None
        if "location" in response.headers:
            self.location = resolve_location(self.location, response.headers["location"])
        end = _range_end(response.headers.get("range"))
        if end is None or end >= self.size:
            return None  # unknown or nonsense: cheaper to start over than to guess
        if end == 0:
            # "0-0": one byte, or none. Only a session known to hold one byte is kept.
            return 1 if self.offset == 1 else None
        return end + 1


class _HashingSlice(FileSlice):
    """A file slice that feeds what it reads to ``hasher``, in the same worker thread."""

    def __init__(self, path: str, hasher: Hasher, *, offset: int, length: int) -> None:
        super().__init__(path, offset=offset, length=length)
        self.hasher = hasher

    def _read(self, want: int) -> bytes:
        chunk = super()._read(want)
        self.hasher.update(chunk)
        return chunk


def _hash_range(path: str, hasher: Hasher, start: int, end: int) -> None:
    """Feed ``path[start:end]`` to ``hasher`` (worker thread; only after a fault)."""
    with open(path, "rb", buffering=0) as fd:
        fd.seek(start)
        while start < end:
            chunk = fd.read(min(1 << 20, end - start))
            if not chunk:
                raise exc.SizeMismatch(expected=end, actual=start, what=f"file {path}")
            hasher.update(chunk)
            start += len(chunk)


class LateDigestUpload(BlobUpload):
    """A chunked upload of a file whose digest is computed elsewhere while it uploads.

    The ``PATCH`` bodies are plain slices of the file (resumed as in `BlobUpload`); the
    closing ``PUT`` waits for ``digest()`` and names it, and the registry checks the bytes
    it stored against it. For a file hashed anyway (for an existence check): hashing it in
    the upload as well would cost the CPU twice.
    """

    def __init__(
        self,
        send: SendFn,
        *,
        path: str | os.PathLike[str],
        size: int,
        uploads_url: str,
        blob_url: Callable[[str], str],
        digest: Callable[[], Awaitable[str]],
        policy: RetryPolicy,
        what: str,
    ) -> None:
        super().__init__(
            send,
            path=path,
            digest="",
            size=size,
            uploads_url=uploads_url,
            blob_url="",
            policy=policy,
            what=what,
        )
        self._blob_url, self._digest = blob_url, digest

    async def _chunked_once(self) -> httpx.Response:
        if self.location is None:
            await self._open()
        while self.offset < self.size:
            await self._patch()
        return await self._close()

    async def _close(self) -> httpx.Response:
        """The closing ``PUT``, once the digest is known."""
        if not self.digest:
            self.digest = await self._digest()
            self.blob_url = self._blob_url(self.digest)
        return await self._commit(b"", 0)


class HashingUpload(LateDigestUpload):
    """A chunked upload of a file whose digest is computed on the way (read once).

    Each ``PATCH`` body hashes the bytes it reads; the hash state advances only with what
    the registry acknowledged, so a resumed or restarted session re-reads just the bytes
    it must (from the file, and only after a fault). The closing ``PUT`` names the digest
    of exactly the bytes sent; the registry checks it against what it stored. ``blob_url``
    builds the blob's URL from its digest (for the existence check after an uncertain
    commit).
    """

    def __init__(self, send: SendFn, *, algorithm: str = "sha256", **upload: Any) -> None:
        # The rest as LateDigestUpload takes it (path, size, uploads_url, blob_url, ...).
        super().__init__(send, digest=self._hashed, **upload)
        self._algorithm = algorithm
        self._state = Hasher(algorithm)  # the hash of path[:self._state.size]
        self._pending: Hasher | None = None

    async def _hash_to(self, offset: int) -> None:
        """Bring the hash state to ``offset`` (re-reading the file only after a fault)."""
        if self._state.size > offset:
            self._state = Hasher(self._algorithm)
        if self._state.size < offset:
            assert self.path is not None
            await anyio.to_thread.run_sync(
                _hash_range, self.path, self._state, self._state.size, offset
            )

    async def _chunked_once(self) -> httpx.Response:
        if self.location is None:
            await self._open()
        while self.offset < self.size:
            await self._hash_to(self.offset)
            await self._patch()
            if self._pending is not None and self._pending.size == self.offset:
                self._state = self._pending  # the registry holds exactly what was hashed
            self._pending = None
        return await self._close()

    async def _hashed(self) -> str:
        await self._hash_to(self.size)
        return self._state.digest

    def _body(self, offset: int, length: int) -> BodyFactory:
        assert self.path is not None
        path = self.path

        def make() -> AsyncIterator[bytes]:
            # A replayed body (after an auth challenge) starts again from the saved state.
            self._pending = self._state.copy()
            body = _HashingSlice(path, self._pending, offset=offset, length=length)
            self._bodies.append(body)
            return body

        return make
