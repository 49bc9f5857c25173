"""Blob downloads that survive faults: resumed with ``Range``, restarted, always verified.

A download streams into a `VerifiedFile` (a temporary file beside the
destination, hashed on the way). When the body breaks off (reset, truncation, a read that
times out) the download continues where it stopped with ``Range: bytes=<n>-`` if the
registry said it serves ranges (``Accept-Ranges: bytes`` or a 206 answer) and the body is
not content-encoded; otherwise, or when the registry ignores the range, it starts over.
The final size and digest are always checked, whatever pieces the file was made of; content
failing them is fetched again from scratch a bounded number of times, and never kept. A body
that comes slower than the minimum blob rate (`Paced`) counts as a
break too, so a trickling server cannot hold a download.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel
import httpx

from .. import exceptions as exc
from .._concurrency import first_error
from .._files.blobio import RangedFile, RangePart, VerifiedFile, copies_in_one_call
from .._http.headers import header_number
from .._http.responses import Paced, raise_for_status, wrap_http_error
from .._http.urls import redact
from .._retry import Retrying, RetryPolicy
from ..progress import position_reporter
from ._session import SendFn

__all__ = ["BlobGet", "RangeOptions", "SharedDownload", "download_verified"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BlobGet:
    """One blob to GET: how and where, what must arrive, and the retry policy.

    ``send`` is the registry's request function and ``url`` the blob's; ``digest`` (and
    ``size``, when known) what the file must hold; ``what`` names the blob in errors;
    ``on_verified`` is handed the verified file's descriptor (see `VerifiedFile`).
    """

    send: SendFn
    url: str
    digest: str
    size: int | None
    policy: RetryPolicy
    what: str
    on_verified: Callable[[int], object] | None = None


# ASCII digits only (\d also takes other scripts' digits), at most 30 (int() refuses 4,300).
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+([0-9]{1,30})-([0-9]{1,30})/([0-9]{1,30}|\*)\s*$")


def _range_start(response: httpx.Response) -> int | None:
    match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
    return int(match.group(1)) if match else None


def _encoded(response: httpx.Response) -> bool:
    return response.headers.get("content-encoding", "identity").strip().lower() not in (
        "",
        "identity",
    )


@dataclass(frozen=True)
class RangeOptions:
    """When and how a large blob is downloaded as parallel byte ranges.

    A blob larger than ``threshold`` bytes is fetched over at most ``parts`` connections;
    ``limiter`` (the registry's transfer limit) must have a free slot for every connection
    beyond the first, else fewer are used. The blob is cut into up to ``rounds`` ranges per
    connection, none under ``min_block`` bytes (one per connection when it is too small for
    that), and each connection takes the next range not yet taken: the ranges arrive nearly
    in order, so the hash, which must go in order, keeps up with them.
    """

    parts: int = 8
    threshold: int = 64 * 1024 * 1024
    limiter: anyio.CapacityLimiter | None = None
    rounds: int = 4
    min_block: int = 8 * 1024 * 1024

    def blocks(self, size: int, connections: int) -> int:
        """How many ranges a blob of ``size`` bytes is cut into for ``connections``."""
        per_connection = size // (connections * self.min_block)
        return min(size, connections * max(1, min(self.rounds, per_connection)))


class _RangesRefused(Exception):
    """A range was answered with the whole body, another range, or an encoded body."""


def _check_advertised(response: httpx.Response, digest: str, what: str) -> None:
    advertised = response.headers.get("docker-content-digest")
    if advertised and advertised != digest:
        raise exc.DigestMismatch(
            expected=digest, actual=advertised, what=f"Docker-Content-Digest of {what}"
        )


async def download_verified(
    get: BlobGet, outfile: str | os.PathLike[str], *, ranges: RangeOptions | None = None
) -> str:
    """GET ``get.url`` into ``outfile``, resuming and verifying; return the path written.

    ``outfile`` is replaced only by content matching ``digest`` (and ``size`` when given);
    on any failure or cancellation no file is left and ``outfile`` is untouched. With
    ``ranges``, a blob of known size above its threshold is fetched as parallel ranges
    when the registry honours ``Range`` (one stream otherwise). Raises
    [`DigestMismatch`][aioras.exceptions.DigestMismatch] or
    [`SizeMismatch`][aioras.exceptions.SizeMismatch] once ``get.policy.refetches`` fresh
    downloads all failed verification (immediately when the registry's
    ``Docker-Content-Digest`` names another digest),
    [`TransportError`][aioras.exceptions.TransportError] once the body broke off more than
    ``get.policy.resumes`` times, [`StorageError`][aioras.exceptions.StorageError] when the
    file cannot be written whole (never retried: a full disk stays full), and the registry's
    typed errors. ``get.on_verified`` is handed the verified file's descriptor before it is renamed
    into place (see `VerifiedFile`).
    """
    first: httpx.Response | None = None
    # One refetch budget for the blob, whether ranges or one stream spend it.
    policy, size = get.policy, get.size
    refetches = policy.retrying(
        policy.refetches, on=exc.IntegrityError, pause=False, level=logging.WARNING
    )
    if ranges is not None and size is not None and size > ranges.threshold and ranges.parts > 1:
        with _extra_slots(ranges.limiter, ranges.parts - 1) as extra:
            if extra:
                job = _Ranged(get, size, refetches)
                connections = min(1 + extra, size)
                blocks = ranges.blocks(size, connections)
                outcome = await job.run(outfile, connections, blocks)
                if isinstance(outcome, str):
                    return outcome
                first = outcome
    try:
        return await _stream_into(get, outfile, first, refetches)
    finally:
        if first is not None:
            await first.aclose()  # closing twice is harmless; unread, it must not leak


@contextmanager
def _extra_slots(limiter: anyio.CapacityLimiter | None, wanted: int) -> Iterator[int]:
    """Take up to ``wanted`` free slots of ``limiter`` without waiting; yield how many.

    Never waiting keeps a download that holds one slot from deadlocking with others
    that wait for more: ranges use what is free, the rest of the limit stays fair.
    """
    tokens: list[object] = []
    try:
        for _ in range(wanted):
            token = object()
            if limiter is not None:
                try:
                    limiter.acquire_on_behalf_of_nowait(token)
                except anyio.WouldBlock:
                    break
            tokens.append(token)
        yield len(tokens)
    finally:
        if limiter is not None:
            for token in tokens:
                limiter.release_on_behalf_of(token)


async def _stream_into(
    get: BlobGet,
    outfile: str | os.PathLike[str],
    first: httpx.Response | None,
    refetches: Retrying,
) -> str:
    """One stream into a VerifiedFile; ``first``, when given, is a 200 answer to use.

    Attempt after attempt (each from where the last left off, or from the start) until one
    brings the whole blob and it verifies; ``policy.resumes`` bounds the breaks and unusable
    ranges, ``refetches`` the content failing its checks, and a spent budget raises.
    """
    breaks = get.policy.retrying(get.policy.resumes, level=logging.INFO)
    async with VerifiedFile(outfile, get.digest, get.size, on_verified=get.on_verified) as sink:
        stream = _Stream(get, sink, breaks, refetches)
        while not await stream.attempt(first):
            first = None
        return os.fspath(outfile)


class _Stream:
    """The attempts of one streamed download into ``sink``: see `_stream_into`."""

    def __init__(
        self, get: BlobGet, sink: VerifiedFile, breaks: Retrying, refetches: Retrying
    ) -> None:
        self.send, self.url, self.sink = get.send, get.url, sink
        self.digest, self.size, self.what = get.digest, get.size, get.what
        self.breaks, self.refetches = breaks, refetches
        self.ranges = False  # whether the registry serves ranges, learned from its answers
        self.offset = 0
        self.report = position_reporter()

    async def attempt(self, first: httpx.Response | None) -> bool:
        """Fetch once; True when the blob arrived whole and verified, False to try again."""
        response = await self._request(first)
        try:
            if not await self._receive(response):
                return False
        except httpx.HTTPError as error:
            await self._broke_off(error)
            return False
        except exc.SizeMismatch as error:
            # Too many bytes for the descriptor: corruption or a hostile server. Either
            # way what arrived is worthless.
            await self._start_over(error)
            return False
        finally:
            await response.aclose()
        try:
            await self.sink.commit()
        except exc.IntegrityError as error:
            await self._start_over(error, note=f"{self.what} failed verification ({error})")
            return False
        return True

    async def _request(self, first: httpx.Response | None) -> httpx.Response:
        """``first``, or a GET from where the file stands (the start, without ranges)."""
        self.offset = self.sink.received
        if self.offset and not self.ranges:
            await self.sink.reset()
            self.offset = 0
        if first is not None:
            return first
        headers = {"Range": f"bytes={self.offset}-"} if self.offset else {}
        return await self.send("GET", self.url, headers=headers, stream=True)

    async def _receive(self, response: httpx.Response) -> bool:
        """Write the body into the file; False for an unusable range (take nothing of it)."""
        what, offset = self.what, self.offset
        await raise_for_status(response, (200, 206), what=what)
        _check_advertised(response, self.digest, what)
        if response.status_code == 206:
            if _range_start(response) != offset or _encoded(response):
                await self._unusable_range()
                return False
            self.ranges = True
        else:
            if offset:
                logger.debug("%s: registry ignored Range; starting over", what)
                await self.sink.reset()
                offset = self.offset = 0
            accepts = response.headers.get("accept-ranges", "").lower()
            self.ranges = "bytes" in accepts and not _encoded(response)
        length = header_number(response.headers.get("content-length"))
        if self.size is not None and length is not None and offset + length > self.size:
            raise exc.SizeMismatch(expected=self.size, actual=offset + length, what=what)
        async for chunk in Paced(response):
            await self.sink.write(chunk)
            if self.report is not None:
                await self.report(self.sink.received)
        return True

    async def _unusable_range(self) -> None:
        """A range we did not ask for: start over, unless that keeps happening."""
        if not self.breaks.allows():
            raise exc.RegistryError(
                f"{self.what}: registry keeps answering with unusable ranges",
                status_code=206,
                method="GET",
                url=redact(self.url),
            )
        self.breaks.failed(note=f"{self.what}: unusable range at byte {self.offset}")
        self.ranges = False
        await self.sink.reset()

    async def _broke_off(self, error: httpx.HTTPError) -> None:
        """Wait before resuming (or restarting) a body that broke off, within the budget."""
        what, breaks = self.what, self.breaks
        if not breaks.allows():
            raise wrap_http_error(
                error,
                "GET",
                self.url,
                what=f"download of {what} broke off {breaks.failures + 1} times",
            ) from error
        await breaks.wait(
            error,
            note=f"download of {what} broke off at byte {self.sink.received}"
            f" ({type(error).__name__}); {'resuming' if self.ranges else 'restarting'}",
        )

    async def _start_over(self, error: exc.IntegrityError, *, note: str = "") -> None:
        """Empty the file for a fresh download of content that failed its checks."""
        if not self.refetches.allows(error):
            raise error
        self.refetches.failed(error, note=note)
        await self.sink.reset()


class _Ranged:
    """One blob fetched as parallel ranges into a `RangedFile`."""

    def __init__(self, get: BlobGet, size: int, refetches: Retrying) -> None:
        self.send, self.url, self.digest, self.what = get.send, get.url, get.digest, get.what
        self.policy, self.on_verified = get.policy, get.on_verified
        self.size = size  # known: only a blob of known size is fetched in ranges
        self.refetches = refetches
        """The blob's refetch budget, shared with the single stream that may follow."""
        # Progress of the blob as a whole (what the ranges have written), when reported.
        self.report = position_reporter()

    async def run(
        self, outfile: str | os.PathLike[str], connections: int, blocks: int
    ) -> str | httpx.Response | None:
        """Download in ``blocks`` ranges over ``connections``; return the path written, or
        what to fall back on.

        Each connection takes the next range not yet taken, in order, until none is left,
        so the ranges arrive roughly in order and the hash keeps up with them instead of
        reading most of the blob back once it is all there. Falls back (returns) when the
        registry does not honour ``Range``: with its 200 answer to the first range when
        that carries the whole blob (the caller reads it as one stream), else None. Raises
        like `download_verified`.
        """
        async with RangedFile(
            outfile, self.digest, self.size, blocks, on_verified=self.on_verified
        ) as sink:
            head = sink.part(0)
            response = await self._request(head)
            if not self._honoured(response, head):
                if response.status_code == 200 and not _encoded(response):
                    logger.debug("%s: registry ignores Range; one stream", self.what)
                    return response
                await response.aclose()
                logger.debug("%s: unusable answer to a range; one stream", self.what)
                return None
            untaken = iter(range(1, len(sink.starts)))
            try:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(self._connection, sink, untaken, response)
                    for _ in range(1, min(connections, len(sink.starts))):
                        tasks.start_soon(self._connection, sink, untaken, None)
            except BaseExceptionGroup as group:
                error = first_error(group)
                if isinstance(error, _RangesRefused):
                    logger.info("%s: %s; downloading it as one stream", self.what, error)
                    return None
                raise error from None
            try:
                await sink.commit()
            except exc.IntegrityError as error:
                if not self.refetches.allows(error):
                    raise
                self.refetches.failed(error, note=f"{self.what} failed verification ({error})")
                return None
        return os.fspath(outfile)

    async def _connection(
        self, sink: RangedFile, untaken: Iterator[int], first: httpx.Response | None
    ) -> None:
        """Fill ranges one after another: the first one's answer ``first``, when given
        (range 0), then each next untaken one; ``policy.resumes`` breaks in all."""
        breaks = self.policy.retrying(self.policy.resumes, level=logging.INFO)
        if first is not None:
            await self._fill(sink.part(0), first, breaks)
        for index in untaken:
            await self._fill(sink.part(index), None, breaks)

    async def _request(self, part: RangePart) -> httpx.Response:
        offset = part.start + part.received
        headers = {"Range": f"bytes={offset}-{part.end - 1}"}
        response = await self.send("GET", self.url, headers=headers, stream=True)
        try:
            await raise_for_status(response, (200, 206), what=self.what)
            _check_advertised(response, self.digest, self.what)
        except BaseException:
            await response.aclose()
            raise
        return response

    def _honoured(self, response: httpx.Response, part: RangePart) -> bool:
        """True when ``response`` carries exactly the rest of ``part``, unencoded."""
        if response.status_code != 206 or _encoded(response):
            return False
        match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
        if match is None:
            return False
        first, last, total = match.groups()
        return (
            int(first) == part.start + part.received
            and int(last) == part.end - 1
            and total in ("*", str(self.size))
        )

    async def _fill(
        self, part: RangePart, response: httpx.Response | None, breaks: Retrying
    ) -> None:
        """Receive ``part`` whole, resuming where it broke off (within ``breaks``)."""
        while part.start + part.received < part.end:
            try:
                if response is None:
                    response = await self._request(part)
                    if not self._honoured(response, part):
                        raise _RangesRefused(
                            f"range at {part.start + part.received} answered with"
                            f" HTTP {response.status_code}"
                            f" {response.headers.get('content-range', '(no Content-Range)')}"
                        )
                # Held to the minimum blob rate like a single stream: a trickling range is a
                # timeout, resumed below like any break.
                async for chunk in Paced(response):
                    await part.write(chunk)
                    if self.report is not None:
                        await self.report(sum(part.owner.filled))
                await part.flush()
                if part.start + part.received == part.end:
                    return
                error: httpx.HTTPError = httpx.RemoteProtocolError("range body ended early")
            except httpx.HTTPError as caught:
                error = caught
            finally:
                if response is not None:
                    await response.aclose()
                    response = None
            await part.flush()  # what arrived before the break is good: keep it
            if not breaks.allows():
                raise wrap_http_error(
                    error,
                    "GET",
                    self.url,
                    what=f"range {part.index} of {self.what} broke off {breaks.failures + 1} times",
                ) from error
            await breaks.wait(
                error,
                note=f"range {part.index} of {self.what} broke off at byte"
                f" {part.start + part.received} ({type(error).__name__}); resuming",
            )


class SharedDownload:
    """One blob downloaded once for every caller that asks for it while it is on its way.

    The first caller (the leader) downloads; callers that ask for the same blob of the same
    repository meanwhile (`join`, then `copy_into`) wait for it, then copy the
    leader's verified file into their own ``outfile`` through a
    `VerifiedFile`: hashed as written and verified again,
    so each copy carries the same guarantees as a download (atomic, verified, every byte
    written). Followers woken together share one pass for a blob of up to 16 MiB: it is
    read and hashed once, and each piece written whole to every copy before it is hashed.
    The leader hands over a duplicate of its file's descriptor (`keep`, called just
    before its rename, when a follower is waiting), so the copy reads the
    verified inode even when the leader's file is moved or removed at once. When the
    leader fails, the copy does not verify (the file was changed since), or the follower
    came after the leader's file was verified, the follower downloads the blob itself.

    Pulling five tags of one repository that share a layer fetches that layer once instead
    of five times: fewer requests, and far fewer bytes through the network, the client and
    the registry.
    """

    def __init__(self) -> None:
        self._done = anyio.Event()
        self._fd: int | None = None
        self._readers = 0
        self._batch: _CopyBatch | None = None

    def keep(self, fd: int) -> None:
        """Keep a duplicate of the leader's verified file descriptor (worker thread).

        Only when a follower is waiting: most blobs have none, and a descriptor kept for
        nobody costs a ``dup`` here and a ``close`` on the event loop (60 of them for 50
        pulls at once, up to 2 ms each there). A follower that asks after this point
        downloads the blob itself.
        """
        if self._readers:  # set on the event loop; an int read is atomic
            self._fd = os.dup(fd)

    def join(self) -> None:
        """Count one more follower (before it waits: the descriptor stays open for it)."""
        self._readers += 1

    def finish(self) -> None:
        """The leader is done, successfully or not: wake the followers."""
        self._done.set()
        self._release()

    def _release(self) -> None:
        if self._readers == 0 and self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    async def copy_into(
        self, outfile: str | os.PathLike[str], digest: str, size: int | None
    ) -> str | None:
        """Wait for the leader, copy its blob into ``outfile``; None when the caller must
        download it itself (the leader failed, or the copy did not verify).

        Raises [`StorageError`][aioras.exceptions.StorageError] when the copy cannot be written.
        """
        try:
            await self._done.wait()
            if self._fd is None:
                return None
            try:
                async with VerifiedFile(outfile, digest, size) as sink:
                    if copies_in_one_call(size):
                        await self._copy_together(sink)
                    else:
                        await sink.copy_and_commit(self._fd)
            except exc.IntegrityError as error:
                logger.info("copy of %s did not verify (%s); downloading it", digest, error)
                return None
        finally:
            self._readers -= 1
            if self._done.is_set():
                self._release()
        report = position_reporter()
        if report is not None and size is not None:
            await report(size)
        return os.fspath(outfile)

    async def _copy_together(self, sink: VerifiedFile) -> None:
        """Copy with the followers woken at the same time: one read and one hash for all.

        The first to run takes the others' sinks and makes every copy in one thread call
        (`VerifiedFile.copy_and_commit_together`); the others wait for it, shielded, since
        it writes into their files. Five pulls sharing a 2 MiB layer: the four copies
        hashed 8 MiB; now 2 MiB. Raises what this sink's copy raised.
        """
        assert self._fd is not None
        batch = self._batch
        expects = (sink.verifier.expected_digest, sink.verifier.expected_size)
        # Followers may expect another size for the same digest (two manifests disagreeing):
        # each batch holds sinks expecting one size, so each copy is checked against its own.
        if batch is not None and not batch.started and batch.expects == expects:
            batch.sinks.append(sink)
            with anyio.CancelScope(shield=True):
                await batch.done.wait()
        else:
            batch = self._batch = _CopyBatch([sink], expects)
            try:
                # The followers woken with this one run before it resumes: they join.
                await anyio.lowlevel.checkpoint()
                batch.started = True
                batch.errors = await VerifiedFile.copy_and_commit_together(self._fd, batch.sinks)
            finally:
                batch.started = True
                batch.done.set()
        if batch.errors is None:  # the copier was cancelled before it copied
            await sink.copy_and_commit(self._fd)
            return
        error = batch.errors[batch.sinks.index(sink)]
        if error is not None:
            raise error


@dataclass(eq=False)
class _CopyBatch:
    """The followers of one `SharedDownload` copied in one thread call."""

    sinks: list[VerifiedFile]
    expects: tuple[str, int | None]  # the digest and size every sink expects
    started: bool = False
    done: anyio.Event = field(default_factory=anyio.Event)
    errors: list[BaseException | None] | None = None
