"""Reading what a registry sends: capped in size, bounded in time.

Every body that is not a blob (manifests, tag-list and catalog pages, token answers,
``GET /v2/``, upload answers, error bodies) is read by `read_capped`: streamed, decoded
(gzip or deflate) in bounded steps, and refused past its cap before more is held or inflated.

Time is bounded two ways, both measured in the read timeout ``T`` of the request (the
``timeout=`` option; its ``read`` part when it is an ``httpx.Timeout``):

- `Deadline`: once a request has been sent, its answer must be complete within ``T``:
  the headers, and the whole body when it is not a blob. A server that trickles bytes no
  longer holds a call by sending one just before each read would time out.
- `Paced`: a blob body must bring at least [`min_blob_rate`][aioras.defaults.min_blob_rate]
  bytes per second, counted over each window of ``T`` seconds.

Either raises ``httpx.ReadTimeout``, which callers retry, resume or map to
[`TimeoutError`][aioras.exceptions.TimeoutError] like any other timeout.

Failures become typed errors here too: `wrap_http_error` maps an httpx failure,
`raise_for_status` an error response (with its OCI error codes).
"""

from __future__ import annotations

import contextlib
import datetime
import math
import socket
import ssl
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from .. import defaults
from .. import exceptions as exc
from .headers import header_number, scrub
from .retry import parse_retry_after
from .urls import redact

__all__ = [
    "Deadline",
    "Paced",
    "buffered_response",
    "connect_failure",
    "decoded_headers",
    "is_verification_failure",
    "raise_for_status",
    "read_capped",
    "read_error_body",
    "read_paced",
    "send_within",
    "wrap_http_error",
]

# Bytes inflated per step: zlib builds each step's output twice over (blocks, then one
# bytes object), so small steps keep a capped body's memory near its cap.
_INFLATE_STEP = 64 * 1024


class Deadline:
    """The time by which the answer to one request must be complete.

    The clock starts when the request has been sent (httpcore's ``trace`` extension reports
    it; `start` starts it for transports that report nothing), so waiting for a pooled
    connection or uploading a large body does not count. ``seconds=None``: no deadline.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.at = math.inf
        self._scope: anyio.CancelScope | None = None

    @classmethod
    def of(cls, timeout: httpx.Timeout) -> Deadline:
        """The deadline for a client with ``timeout``: its read timeout."""
        return cls(timeout.read)

    def start(self) -> None:
        """Start the clock now, unless it runs already."""
        if self.seconds is not None and self.at == math.inf:
            self.at = anyio.current_time() + self.seconds
            if self._scope is not None:
                self._scope.deadline = self.at

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore ``trace`` callback: start the clock once the request body is sent."""
        if event.endswith("send_request_body.complete"):
            self.start()

    @contextmanager
    def bound(self, request: httpx.Request) -> Iterator[None]:
        """Run the block until the deadline; past it, raise ``httpx.ReadTimeout``."""
        with anyio.CancelScope(deadline=self.at) as scope:
            self._scope = scope
            try:
                yield
            finally:
                self._scope = None
        if scope.cancelled_caught:
            raise httpx.ReadTimeout(
                f"no complete answer within {self.seconds:g} s of sending the request",
                request=request,
            )


async def send_within(
    via: httpx.AsyncClient | httpx.AsyncBaseTransport, request: httpx.Request, deadline: Deadline
) -> httpx.Response:
    """Send ``request`` (body unread) with its headers due by ``deadline``.

    ``via`` is a client, or the transport under it: a request built whole (headers,
    timeout extension) goes straight to the transport, skipping the client's redirect,
    auth and cookie steps that the caller has no use for (about a third of the client's
    CPU for a bare HEAD).
    """
    request.extensions["trace"] = deadline.trace
    with deadline.bound(request):
        if isinstance(via, httpx.AsyncClient):
            response = await via.send(request, stream=True)
        else:
            response = await _dispatch(via, request)
    deadline.start()  # a transport that reports no trace events: count from the headers
    return response


async def _dispatch(transport: httpx.AsyncBaseTransport, request: httpx.Request) -> httpx.Response:
    """What the client's send does with ``transport`` that aioras needs.

    The request is noted on the response and on errors, and ``elapsed`` is set to the
    time the answer's headers took (what oras-py's requests reports; httpx's client
    would count until the body is closed).
    """
    started = time.perf_counter()
    try:
        response = await transport.handle_async_request(request)
    except httpx.RequestError as error:
        error.request = request  # messages and the retry classifier read it
        raise
    response.request = request
    response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
    return response


async def read_capped(
    response: httpx.Response,
    limit: int,
    *,
    truncate: bool = False,
    deadline: Deadline | None = None,
) -> bytes:
    """Read a body that is not a blob, at most ``limit`` bytes of it, and close the response.

    ``Content-Encoding`` gzip or deflate is undone in bounded steps: the limit applies to
    the decoded bytes and nothing is inflated past it (other encodings are returned as they
    came). Past the limit, with ``truncate`` (error bodies) the first ``limit`` bytes are
    returned and the rest is never read; otherwise
    [`ResponseTooLarge`][aioras.exceptions.ResponseTooLarge] is raised, before reading when the
    declared ``Content-Length`` is over the limit. A body already read is held to the same limit.
    ``deadline`` bounds the reading in time. Raises httpx errors when the body breaks off
    or the deadline passes.
    """
    try:
        try:
            body = response.content
        except httpx.ResponseNotRead:
            pass
        else:
            if len(body) > limit and not truncate:
                raise _too_large(response, len(body), limit)
            return body[:limit]
        # The length of a HEAD answer is that of the resource, not of a body.
        length = header_number(
            None if response.request.method == "HEAD" else response.headers.get("content-length")
        )
        if not truncate and length is not None and length > limit:
            raise _too_large(response, length, limit)
        with deadline.bound(response.request) if deadline else nullcontext():
            return await _read_decoded(response, limit, truncate)
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()


async def _read_decoded(response: httpx.Response, limit: int, truncate: bool) -> bytes:
    inflate = _inflater(response.headers.get("content-encoding", ""))
    chunks: list[bytes] = []
    total = 0
    async for raw in response.aiter_raw():
        data = raw
        while data:
            if inflate is None:
                piece, data = data[: limit + 1 - total], b""
            else:
                try:
                    # At most one byte past the limit: enough to know it is exceeded.
                    piece = inflate.decompress(data, min(limit + 1 - total, _INFLATE_STEP))
                except zlib.error as error:
                    raise httpx.DecodingError(
                        f"malformed {response.headers.get('content-encoding')} body: {error}",
                        request=response.request,
                    ) from error
                data = inflate.unconsumed_tail
            chunks.append(piece)
            total += len(piece)
            if total > limit:
                if truncate:
                    return b"".join(chunks)[:limit]
                raise _too_large(response, total, limit)
            if inflate is not None and inflate.eof:
                break
    return b"".join(chunks)


def _inflater(encoding: str) -> Any:
    """A bounded zlib decompressor for ``encoding``, or None to take the bytes as they are."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if codings in (["gzip"], ["x-gzip"]):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if codings == ["deflate"]:
        # Meant as zlib-wrapped; some servers send raw deflate.
        return _Deflate()
    return None


class _Deflate:
    """``deflate`` as servers send it: zlib-wrapped, or raw when no zlib header comes."""

    def __init__(self) -> None:
        self._inner: Any = None
        self._pending = b""

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._inner is None:
            data = self._pending + data
            if len(data) < 2:  # the header decides: wait for its two bytes
                self._pending = data
                return b""
            # A zlib header: compression method 8 and a 16-bit check divisible by 31.
            wrapped = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._inner = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        out: bytes = self._inner.decompress(data, max_length)
        return out

    @property
    def unconsumed_tail(self) -> bytes:
        tail: bytes = self._inner.unconsumed_tail if self._inner is not None else b""
        return tail

    @property
    def eof(self) -> bool:
        return self._inner is not None and bool(self._inner.eof)


def _too_large(response: httpx.Response, size: int, limit: int) -> exc.ResponseTooLarge:
    request = response.request
    url = redact(str(request.url))
    return exc.ResponseTooLarge(
        f"{request.method} {url}: body of {'at least ' if size == limit + 1 else ''}"
        f"{size} bytes exceeds the {limit}-byte limit",
        size=size,
        limit=limit,
        status_code=response.status_code,
        method=request.method,
        url=url,
    )


class Paced:
    """A blob body's decoded chunks, refused when they come slower than ``min_rate``.

    Each window of the request's read timeout must bring ``min_rate`` bytes per second of it
    (the read timeout itself bounds a silence). Falling behind raises ``httpx.ReadTimeout``,
    so a download treats it like a break: resumed, restarted, or given up as a
    [`TimeoutError`][aioras.exceptions.TimeoutError]. Without a read timeout nothing is checked.
    """

    def __init__(self, response: httpx.Response, *, min_rate: int = defaults.min_blob_rate):
        timeouts = response.request.extensions.get("timeout", {})
        self.window: float | None = timeouts.get("read")
        self.min_rate = min_rate
        self.request = response.request
        self._chunks = response.aiter_bytes()
        self._start = anyio.current_time()
        self._got = 0

    def __aiter__(self) -> Paced:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._chunks.__anext__()
        if self.window:
            self._got += len(chunk)
            now = anyio.current_time()
            if self._got >= self.min_rate * self.window:
                self._start, self._got = now, 0  # this window's quota is met: a new one
            elif now - self._start > self.window:
                raise httpx.ReadTimeout(
                    f"blob body slower than {self.min_rate} bytes/s over {self.window:g} s",
                    request=self.request,
                )
        return chunk


async def read_paced(response: httpx.Response) -> bytes:
    """Read a whole blob body held to `Paced`'s rate, and close the response."""
    try:
        return b"".join([chunk async for chunk in Paced(response)])
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()


# -- error mapping ----------------------------------------------------------------------


def is_verification_failure(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(error)


def wrap_http_error(
    error: httpx.HTTPError, method: str, url: str, *, what: str = ""
) -> exc.TransportError:
    """The typed aioras error for an httpx failure (raise it ``from error``).

    Timeouts become [`TimeoutError`][aioras.exceptions.TimeoutError], failed connections
    [`ConnectError`][aioras.exceptions.ConnectError], anything else
    [`TransportError`][aioras.exceptions.TransportError]. ``what`` replaces ``METHOD URL`` at the
    start of the message; the URL is redacted either way. Quoted values (the header line
    or value httpx and h11 choke on, which may hold a token) are scrubbed from the message
    and from ``error`` and its causes, so a traceback shows none either.
    """
    where = what or f"{method} {redact(url)}"
    _scrub_chain(error)
    if isinstance(error, httpx.TimeoutException):
        return exc.TimeoutError(
            f"{where}: timed out ({type(error).__name__})", method=method, url=redact(url)
        )
    if hung_up(error):
        return exc.ConnectError(
            f"{where}: {_hang_up_hint(error, url)}", method=method, url=redact(url)
        )
    if isinstance(error, httpx.ConnectError):
        hint = _connect_hint(connect_failure(error), url)
        if hint:
            return exc.ConnectError(f"{where}: {hint}", method=method, url=redact(url))
        if is_verification_failure(error):
            return exc.ConnectError(
                f"{where}: TLS certificate verification failed; pass tls_verify=<CA bundle path>"
                " to trust a private CA, or tls_verify=False to skip verification",
                method=method,
                url=redact(url),
            )
        return exc.ConnectError(
            f"{where}: cannot connect ({error})", method=method, url=redact(url)
        )
    return exc.TransportError(
        f"{where}: {type(error).__name__}: {error}", method=method, url=redact(url)
    )


# What OpenSSL says when the peer answered a ClientHello in plain http.
_PLAIN_HTTP_SIGNS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST")


def connect_failure(error: BaseException) -> str:
    """Why a connection failed: ``"refused"``, ``"unresolved"``, ``"plain-http"`` or ``""``."""
    seen: BaseException | None = error
    depth = 0
    while seen is not None and depth < 16:
        if isinstance(seen, ConnectionRefusedError):
            return "refused"
        if isinstance(seen, socket.gaierror):
            return "unresolved"
        if isinstance(seen, ssl.SSLError) and any(s in str(seen) for s in _PLAIN_HTTP_SIGNS):
            return "plain-http"
        seen = seen.__cause__ or seen.__context__
        depth += 1
    return ""


def hung_up(error: BaseException) -> bool:
    """Whether the server took the connection and closed it before any byte of an answer.

    A clean close where the response should start (h11's "Server disconnected without
    sending a response"), or, for https, the connection closed or reset in the middle of
    the TLS handshake. Something that is not a registry (or not one speaking this scheme)
    does that every time; a pooled connection that went stale does it once.
    """
    if isinstance(error, httpx.RemoteProtocolError):
        return "without sending a response" in str(error)
    if not isinstance(error, httpx.ConnectError):
        return False
    seen: BaseException | None = error
    depth = 0
    while seen is not None and depth < 16:
        if isinstance(seen, (ssl.SSLEOFError, ConnectionResetError, anyio.EndOfStream)):
            return True
        seen = seen.__cause__ or seen.__context__
        depth += 1
    return False


def _hang_up_hint(error: BaseException, url: str) -> str:
    parts = urlsplit(redact(url))
    host = parts.netloc.rpartition("@")[2]
    if isinstance(error, httpx.ConnectError):
        return (
            f"{host} closed the connection without answering, during the TLS handshake; "
            "is it an OCI registry, and does it speak https? For a plain http registry "
            "pass insecure=True (--plain-http on the command line)"
        )
    return (
        f"{host} closed the connection without answering; is it an OCI registry? (A TLS "
        "server spoken to in plain http may do this: drop insecure=True / --plain-http)"
    )


def _connect_hint(kind: str, url: str) -> str:
    parts = urlsplit(redact(url))
    host = parts.netloc.rpartition("@")[2]
    if kind == "refused":
        return (
            f"nothing listens on {host} (connection refused); check the host and port, "
            "and that the registry is running"
        )
    if kind == "unresolved":
        return f"the host name {parts.hostname} does not resolve; check the registry's name"
    if kind == "plain-http":
        return (
            f"TLS handshake failed: {host} speaks plain http, not https; pass insecure=True "
            "(--plain-http on the command line) to use http"
        )
    return ""


def _scrub_chain(error: BaseException) -> None:
    """Scrub quoted values from the messages of ``error`` and the exceptions behind it."""
    seen: BaseException | None = error
    depth = 0
    while seen is not None and depth < 16:
        if not isinstance(seen, OSError) and seen.args and isinstance(seen.args[0], str):
            seen.args = (scrub(seen.args[0]), *seen.args[1:])
        seen = seen.__cause__ or seen.__context__
        depth += 1


def buffered_response(response: httpx.Response, body: bytes) -> httpx.Response:
    """A closed ``response`` again, holding ``body`` (read capped, and decoded)."""
    kept = httpx.Response(
        response.status_code,
        headers=decoded_headers(response.headers),
        content=body,
        request=response.request,
        extensions=response.extensions,
    )
    with contextlib.suppress(RuntimeError):  # unset for a body that came already read
        kept.elapsed = response.elapsed
    return kept


def decoded_headers(headers: httpx.Headers) -> httpx.Headers:
    """``headers`` for a body kept decoded: no ``Content-Encoding``, no stale length."""
    kept = httpx.Headers(headers)
    if kept.pop("content-encoding", None) is not None:
        kept.pop("content-length", None)
    return kept


async def read_error_body(response: httpx.Response, deadline: Deadline | None = None) -> bytes:
    """The first 64 KiB of an error body; nothing when it breaks off.

    A broken error body must not hide the status that matters.
    """
    try:
        return await read_capped(
            response, defaults.max_error_body, truncate=True, deadline=deadline
        )
    except httpx.HTTPError:
        return b""


async def raise_for_status(
    response: httpx.Response,
    expected: tuple[int, ...] = (200,),
    *,
    what: str = "",
) -> None:
    """Raise the typed error for ``response`` unless its status is one of ``expected``.

    Reads at most 64 KiB of the error body (for its OCI error codes) and closes the
    response before raising.
    """
    if response.status_code in expected:
        return
    body = await read_error_body(response)
    raise exc.error_for_status(
        response.status_code,
        method=response.request.method,
        url=redact(str(response.request.url)),
        body=body,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        what=what,
    )
