"""Blob downloads that survive faults: resumed with ``Range``, restarted, always verified.

A download streams into a :class:`~aioras.blobio.VerifiedFile` (a temporary file beside the
destination, hashed on the way). When the body breaks off (reset, truncation, a read that
times out) the download continues where it stopped with ``Range: bytes=<n>-`` if the
registry said it serves ranges (``Accept-Ranges: bytes`` or a 206 answer) and the body is
not content-encoded; otherwise, or when the registry ignores the range, it starts over.
The final size and digest are always checked, whatever pieces the file was made of; content
failing them is fetched again from scratch a bounded number of times, and never kept. A body
that comes slower than the minimum blob rate (:class:`~aioras.bodies.Paced`) counts as a
break too, so a trickling server cannot hold a download.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Mapping
from typing import Protocol

import anyio
import httpx

from . import exceptions as exc
from .blobio import VerifiedFile
from .bodies import Paced
from .progress import position_reporter
from .transport import RetryPolicy, raise_for_status, wrap_http_error
from .urls import redact

__all__ = ["download_verified"]

logger = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$")


class GetFn(Protocol):
    """The shape of the registry's request function, as used here."""

    def __call__(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Awaitable[httpx.Response]: ...


def _range_start(response: httpx.Response) -> int | None:
    match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
    return int(match.group(1)) if match else None


def _encoded(response: httpx.Response) -> bool:
    return response.headers.get("content-encoding", "identity").strip().lower() not in (
        "",
        "identity",
    )


async def download_verified(
    send: GetFn,
    url: str,
    *,
    digest: str,
    outfile: str | os.PathLike[str],
    size: int | None,
    policy: RetryPolicy,
    what: str,
) -> str:
    """GET ``url`` into ``outfile``, resuming and verifying; return the path written.

    ``outfile`` is replaced only by content matching ``digest`` (and ``size`` when given);
    on any failure or cancellation no file is left and ``outfile`` is untouched. Raises
    :class:`~aioras.exceptions.DigestMismatch` or :class:`~aioras.exceptions.SizeMismatch`
    once ``policy.refetches`` fresh downloads all failed verification (immediately when
    the registry's ``Docker-Content-Digest`` names another digest),
    :class:`~aioras.exceptions.TransportError` once the body broke off more than
    ``policy.resumes`` times, and the registry's typed errors.
    """
    breaks = refetches = 0
    ranges = False  # learned from the registry's answers
    report = position_reporter()
    async with VerifiedFile(outfile, digest, size) as sink:
        while True:
            offset = sink.received
            if offset and not ranges:
                await sink.reset()
                offset = 0
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            response = await send("GET", url, headers=headers, stream=True)
            try:
                await raise_for_status(response, (200, 206), what=what)
                advertised = response.headers.get("docker-content-digest")
                if advertised and advertised != digest:
                    raise exc.DigestMismatch(
                        expected=digest, actual=advertised, what=f"Docker-Content-Digest of {what}"
                    )
                if response.status_code == 206:
                    start = _range_start(response)
                    if start != offset or _encoded(response):
                        # A range we did not ask for: take nothing from it, start over.
                        if breaks >= policy.resumes:
                            raise exc.RegistryError(
                                f"{what}: registry keeps answering with unusable ranges",
                                status_code=206,
                                method="GET",
                                url=redact(url),
                            )
                        breaks += 1
                        ranges = False
                        await sink.reset()
                        continue
                    ranges = True
                else:
                    if offset:
                        logger.debug("%s: registry ignored Range; starting over", what)
                        await sink.reset()
                        offset = 0
                    ranges = "bytes" in response.headers.get(
                        "accept-ranges", ""
                    ).lower() and not _encoded(response)
                length = response.headers.get("content-length", "")
                if size is not None and length.isdigit() and offset + int(length) > size:
                    raise exc.SizeMismatch(expected=size, actual=offset + int(length), what=what)
                async for chunk in Paced(response):
                    await sink.write(chunk)
                    if report is not None:
                        await report(sink.received)
            except httpx.HTTPError as error:
                if breaks >= policy.resumes:
                    raise wrap_http_error(
                        error, "GET", url, what=f"download of {what} broke off {breaks + 1} times"
                    ) from error
                delay = policy.delay(breaks)
                breaks += 1
                logger.info(
                    "download of %s broke off at byte %d (%s); %s in %.2fs",
                    what,
                    sink.received,
                    type(error).__name__,
                    "resuming" if ranges else "restarting",
                    delay,
                )
                await anyio.sleep(delay)
                continue
            except exc.SizeMismatch:
                # Too many bytes for the descriptor: corruption or a hostile server. Either
                # way what arrived is worthless.
                if refetches >= policy.refetches:
                    raise
                refetches += 1
                await sink.reset()
                continue
            finally:
                await response.aclose()
            try:
                await sink.commit()
            except exc.IntegrityError as error:
                if refetches >= policy.refetches:
                    raise
                refetches += 1
                logger.warning("%s failed verification (%s); downloading it again", what, error)
                await sink.reset()
                continue
            return os.fspath(outfile)
