"""The HTTP transport under the pooled client: httpx's, with reads sized for blobs.

httpcore asks the network for 64 KiB per read, while asyncio hands over up to 256 KiB per
socket receive; anyio then splits each receive into four reads, copying the rest of the
buffer every time, and every read pays for HTTP parsing and a timeout scope. Asking for
1 MiB instead takes each received chunk whole. Measured on a 2-core machine pulling
8 x 64 MiB from a loopback registry: 1.57 s down to 0.89 s, client CPU 1.92 s to 1.08 s.

On plain TCP under asyncio a read also takes what the socket already holds straight from
it (`_DirectReader`), instead of anyio's one 256 KiB receive per loop wake-up with an
epoll registration around each: pulling 8 x 64 MiB, client CPU 2.36 s down to 1.69 s.

h11 (httpcore's HTTP/1.1 parser) copies every body byte four times on its way out: into its
receive buffer, into a slice it throws away, into the slice it returns, and httpcore into
``bytes``. `_BodyBuffer` hands a received chunk that is all body over whole instead:
pulling 8 x 64 MiB, about 0.6 s less client CPU (of 1.7 s).

httpcore's pool re-plans itself on every request and every closed response, asking each
connection whether it is idle once per connection; `_Pool` makes the same plan in
linear time: with 24 pooled connections, 2.2 ms of client CPU per HEAD instead of 2.7 ms.

httpx offers no public way to choose httpcore's network backend, so `http_transport`
builds httpx's own transport and swaps in a connection pool that uses one (and puts a
`_BodyBuffer` into each HTTP/1.1 connection's parser). Should a future
httpx, httpcore or anyio lay things out differently, the stock behaviour is used (slower,
never wrong); ``tests/integration/test_fast_path.py`` fails in that case, so the loss does not go
unnoticed.
"""

# The ``timeout`` parameters below are httpcore's network-backend interface, not a choice.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import os
import select
import socket
import ssl
import time
import typing
from typing import Any

import anyio.lowlevel
import httpcore
import httpx

from .._allocator import keep_large_buffers
from .._signatures import same_parameters_as

__all__ = ["READ_SIZE", "LargeReadBackend", "deadline_transport", "http_transport", "ssl_context"]

logger = logging.getLogger(__name__)

READ_SIZE = 1024 * 1024


class _LargeReadStream(httpcore.AsyncNetworkStream):
    """A network stream whose reads ask for at least ``read_size`` bytes.

    On plain TCP under asyncio, a read first takes what the socket already holds, straight
    from the socket (`_direct_reader`); only when it holds nothing does it wait the
    usual way.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream, read_size: int) -> None:
        self._inner = inner
        self._read_size = read_size
        self._direct = _direct_reader(inner)
        # httpcore's pool asks every idle connection whether its socket is readable each
        # time it assigns a request; anyio builds a dict of all socket attributes (and
        # calls getpeername) per ask. The socket of a stream never changes: look it up once.
        # (A socket.socket, or asyncio's TransportSocket wrapper of one.)
        self._socket: typing.Any = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        size = max(max_bytes, self._read_size)
        if self._direct is not None:
            data = await self._direct.read(size)
            if data is not None:
                return data
        return await self._inner.read(size, timeout=timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout=timeout)

    async def aclose(self) -> None:
        if self._direct is not None:
            self._direct.close()
            self._direct = None
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._direct is not None:
            self._direct.close()  # TLS bytes must go through the TLS layer
            self._direct = None
        inner = await self._inner.start_tls(ssl_context, server_hostname, timeout=timeout)
        return _LargeReadStream(inner, self._read_size)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "socket" and self._socket is not None:
            return self._socket
        if info == "is_readable" and self._socket is not None:
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


def _readable(sock: typing.Any) -> bool:
    """Whether ``sock`` has bytes, or its end, to read now (a closed socket counts).

    For an idle keep-alive connection that means the server closed it (or broke protocol).
    """
    if sock.fileno() < 0:
        return True
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([sock], [], [], 0)[0])
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class _DirectReader:
    """Reads a connection's socket directly while anyio's asyncio transport is paused.

    anyio's asyncio stream receives at most 256 KiB per wake-up and registers and
    unregisters the socket with epoll around each one: per MiB, four loop wake-ups and
    eight system calls besides the reads. When the transport is paused (anyio pauses it
    between receives) and nothing it received is queued, the bytes in the socket are next
    in line: one non-blocking ``recv`` takes up to a MiB of them at once.
    """

    def __init__(self, sock: socket.socket, transport: asyncio.Transport, queue: typing.Any):
        self._sock = sock
        self._transport = transport
        self._queue = queue

    async def read(self, size: int) -> bytes | None:
        """Up to ``size`` bytes already in the socket, b"" at its end, None to wait instead."""
        await anyio.lowlevel.checkpoint()  # before the read: cancelled here, nothing is lost
        if self._transport.is_reading() or self._queue or self._transport.is_closing():
            return None
        try:
            return self._sock.recv(size)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as error:
            raise httpcore.ReadError(error) from error

    def close(self) -> None:
        self._sock.close()  # a duplicate descriptor: the connection stays open


def _direct_reader(stream: httpcore.AsyncNetworkStream) -> _DirectReader | None:
    """A `_DirectReader` for httpcore's anyio stream on asyncio plain TCP, or None.

    Relies on private attributes of httpcore's ``AnyIOStream`` and anyio's asyncio
    ``SocketStream`` (``tests/integration/test_fast_path.py`` fails should they change).
    """
    anyio_stream = getattr(stream, "_stream", None)
    transport = getattr(anyio_stream, "_transport", None)
    queue = getattr(getattr(anyio_stream, "_protocol", None), "read_queue", None)
    if not isinstance(transport, asyncio.Transport) or not isinstance(queue, collections.deque):
        return None
    if transport.get_extra_info("sslcontext") is not None:
        return None
    raw = transport.get_extra_info("socket")
    if raw is None or raw.type != socket.SOCK_STREAM:
        return None
    # A duplicate of the descriptor (asyncio hands out only a wrapper of its socket);
    # both name one connection, non-blocking like asyncio's.
    sock = socket.socket(fileno=os.dup(raw.fileno()))
    sock.setblocking(False)
    return _DirectReader(sock, transport, queue)


class LargeReadBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, its streams reading ``read_size`` bytes at a time."""

    def __init__(self, read_size: int = READ_SIZE) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._read_size = read_size
        keep_large_buffers()  # reads this large would each be mapped afresh otherwise

    # httpcore's parameters, handed on as they come.
    @same_parameters_as(httpcore.AsyncNetworkBackend.connect_tcp)
    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(*args, **kwargs)
        return _LargeReadStream(stream, self._read_size)

    @same_parameters_as(httpcore.AsyncNetworkBackend.connect_unix_socket)
    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(*args, **kwargs)
        return _LargeReadStream(stream, self._read_size)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _BodyBuffer:
    """h11's receive buffer, handing over a received chunk that is all body without a copy.

    h11 appends each chunk to a bytearray and slices every event out of it. While that
    bytearray is empty, a chunk is held as it came instead; asked for at most ``count``
    bytes of body (all a body reader asks) and ``count`` covers the chunk, h11 gets the
    chunk itself, and httpcore's ``bytes()`` of it copies nothing either. Any other request
    (header lines, chunk sizes, a body ending inside the chunk) first moves the held chunk
    into h11's own buffer and is answered there, exactly as before.
    """

    def __init__(self, inner: typing.Any) -> None:
        self._inner = inner
        self._held: bytes | None = None

    def _spill(self) -> typing.Any:
        if self._held is not None:
            self._inner += self._held
            self._held = None
        return self._inner

    def __iadd__(self, data: bytes | bytearray) -> typing.Self:
        if self._held is None and type(data) is bytes and not self._inner:
            self._held = data
        else:
            self._spill()
            self._inner += data
        return self

    def __len__(self) -> int:
        return len(self._inner) + (0 if self._held is None else len(self._held))

    def __bool__(self) -> bool:
        return len(self) > 0

    def __bytes__(self) -> bytes:
        return bytes(self._spill())

    def maybe_extract_at_most(self, count: int) -> bytes | bytearray | None:
        held = self._held
        if held is not None and count >= len(held):
            self._held = None
            return held
        result: bytearray | None = self._spill().maybe_extract_at_most(count)
        return result

    def __getattr__(self, name: str) -> typing.Any:
        return getattr(self._spill(), name)


def _fit_body_buffer(connection: httpcore.AsyncConnectionInterface) -> bool:
    """Give the h11 parser of ``connection`` a `_BodyBuffer`; False if none is found.

    Relies on private attributes of httpcore's connections and h11's parser
    (``tests/integration/test_fast_path.py`` fails should they change).
    """
    state = getattr(getattr(connection, "_connection", None), "_h11_state", None)
    buffer = getattr(state, "_receive_buffer", None)
    if isinstance(buffer, _BodyBuffer):
        return True
    if not callable(getattr(buffer, "maybe_extract_at_most", None)):
        return False
    state._receive_buffer = _BodyBuffer(buffer)  # type: ignore[union-attr]
    return True


class _FittedConnection(httpcore.AsyncConnectionInterface):
    """httpcore's connection, its HTTP/1.1 parser given a `_BodyBuffer` once it exists.

    httpcore makes the parser on the first request, after connecting; the buffer is put in
    when that request's response head has arrived, before its body is read.
    """

    def __init__(self, inner: httpcore.AsyncConnectionInterface) -> None:
        self._inner = inner
        self._fitted = False

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        response = await self._inner.handle_async_request(request)
        if not self._fitted:
            self._fitted = _fit_body_buffer(self._inner)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def info(self) -> str:
        return self._inner.info()

    def can_handle_request(self, origin: httpcore.Origin) -> bool:
        return self._inner.can_handle_request(origin)

    def is_available(self) -> bool:
        return self._inner.is_available()

    def has_expired(self) -> bool:
        return self._inner.has_expired()

    def is_idle(self) -> bool:
        return self._inner.is_idle()

    def is_closed(self) -> bool:
        return self._inner.is_closed()

    def __repr__(self) -> str:
        return repr(self._inner)


# What _Pool._assign_requests_to_connections reads of httpcore's pool and its requests.
_POOL_STATE = ("_connections", "_requests", "_max_connections", "_max_keepalive_connections")
# Seconds between two sweeps of the pool for expired connections (see _Pool). Each sweep
# polls every idle socket, and each poll lets the GIL go: every 0.1 s, 50 pulls at once
# over ~50 connections made about 600 polls, every second about 230 (most: one per reuse).
_SWEEP = 1.0


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's pool, its connections `_FittedConnection`s, assigned in linear time.

    httpcore re-plans the whole pool each time a request arrives or a response is closed,
    and its plan asks every connection whether it is idle once per connection: n squared
    calls through three wrappers (1.1 million for a 200-artifact mirror, about a tenth of
    the client's CPU). The plan here is the same (closed connections dropped, expired ones
    and idle ones beyond the keep-alive allowance closed, each queued request given the
    first free connection to its origin, else a new one, else an idle one replaced), asking
    each connection once. When no request waits, no sweep is due and the keep-alive
    allowance is not exceeded, there is nothing to plan: the plan after a response is
    closed then costs nothing (closed connections are dropped by the next full plan, before
    any new one is counted against the limit).
    """

    def __init__(self, **kwargs: typing.Any) -> None:
        super().__init__(**kwargs)
        # An httpcore laid out otherwise keeps its own plan (slower, never wrong).
        self._linear = all(hasattr(self, name) for name in _POOL_STATE)
        self._next_sweep = 0.0

    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        return _FittedConnection(super().create_connection(origin))

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        if not self._linear:
            return super()._assign_requests_to_connections()
        now = time.monotonic()
        if self._settled(now):
            return []
        closing: list[httpcore.AsyncConnectionInterface] = []
        live: list[httpcore.AsyncConnectionInterface] = []
        # Asking whether a connection has expired polls its socket when it is idle (the
        # server may have closed it). Asking all of them on every plan cost 19,000 polls
        # for 50 pulls over ~50 connections (a quarter of the client's CPU), so the sweep
        # runs at most every _SWEEP seconds; the connection a request is given is always
        # asked first (_connection_for), so none the server closed is ever used.
        sweep = now >= self._next_sweep
        if sweep:
            self._next_sweep = now + _SWEEP
        for connection in self._connections:
            if connection.is_closed():
                continue
            (closing if sweep and connection.has_expired() else live).append(connection)
        surplus = len(live) - self._max_keepalive_connections
        if surplus > 0:
            idle = [c for c in live if c.is_idle()][:surplus]
            closing.extend(idle)
            dropped = {id(c) for c in idle}
            live = [c for c in live if id(c) not in dropped]
        self._connections = live
        for pool_request in [r for r in self._requests if r.is_queued()]:
            chosen = self._connection_for(pool_request.request.url.origin, closing)
            if chosen is not None:  # else the pool is full of busy connections: it waits
                pool_request.assign_to_connection(chosen)
        return closing

    def _settled(self, now: float) -> bool:
        """Whether a plan now would change nothing (see the class)."""
        return (
            now < self._next_sweep
            and len(self._connections) <= self._max_keepalive_connections
            and not any(r.is_queued() for r in self._requests)
        )

    async def _close_connections(self, closing: list[httpcore.AsyncConnectionInterface]) -> None:
        # httpcore enters a shielded cancel scope for every plan, even with nothing to close.
        if closing:
            await super()._close_connections(closing)

    def _connection_for(
        self, origin: httpcore.Origin, closing: list[httpcore.AsyncConnectionInterface]
    ) -> httpcore.AsyncConnectionInterface | None:
        """A free connection to ``origin``: pooled, new, or new in place of an idle one."""
        chosen = None
        expired: list[httpcore.AsyncConnectionInterface] = []
        for pooled in self._connections:
            if pooled.can_handle_request(origin) and pooled.is_available():
                if not pooled.has_expired():
                    chosen = pooled
                    break
                expired.append(pooled)
        if expired:
            closing.extend(expired)
            dropped = {id(c) for c in expired}
            self._connections = [c for c in self._connections if id(c) not in dropped]
        if chosen is not None:
            return chosen
        if len(self._connections) >= self._max_connections:
            idle = next((c for c in self._connections if c.is_idle()), None)
            if idle is None:
                return None
            self._connections.remove(idle)
            closing.append(idle)
        created = self.create_connection(origin)
        self._connections.append(created)
        return created


@functools.lru_cache(maxsize=16)
def ssl_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS context for ``verify`` (True, False, or a CA bundle path), built once.

    Loading the CA bundle costs tens of milliseconds; contexts are safe to share.
    """
    if isinstance(verify, str):
        # A directory of hashed certificates (SSL_CERT_DIR, or a bundle path naming one).
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify, trust_env=False)


def http_transport(
    *,
    verify: ssl.SSLContext,
    limits: httpx.Limits,
    proxy: str | None = None,
) -> httpx.AsyncBaseTransport:
    """httpx's HTTP/1.1 transport with `LargeReadBackend` under its pool.

    The pool's connections read bodies through a `_BodyBuffer`.

    Through a proxy the stock transport is used as it is.
    """
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits, proxy=proxy)
    if proxy is not None:
        return transport
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        logger.debug("httpx transport layout unknown; using its default network backend")
        return transport
    transport._pool = _Pool(
        ssl_context=verify,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=LargeReadBackend(),
    )
    return transport


# -- a whole-answer deadline for blocking requests (oras-py's request_token) ---------------


class _DeadlineStream(httpcore.NetworkStream):
    """A blocking stream whose every wait ends by one deadline, not only each read's own."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def _left(self, timeout: float | None) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the answer did not complete within its deadline")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout=self._left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout=self._left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, timeout=self._left(timeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's blocking backend, its streams held to ``deadline`` (``time.monotonic``)."""

    def __init__(self, deadline: float) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline

    # httpcore's parameters, handed on as they come.
    @same_parameters_as(httpcore.NetworkBackend.connect_tcp)
    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_tcp(*args, **kwargs), self._deadline)

    @same_parameters_as(httpcore.NetworkBackend.connect_unix_socket)
    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(*args, **kwargs), self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def deadline_transport(*, verify: bool | str, deadline: float) -> httpx.HTTPTransport:
    """httpx's blocking transport, every connection, read and write of it over by ``deadline``.

    A server trickling its answer, headers included, cannot hold a call past ``deadline``
    (``time.monotonic``): the wait past it raises ``httpx.ReadTimeout``. Should httpx lay
    its transport out otherwise, the stock one is returned (each read still bounded).
    """
    transport = httpx.HTTPTransport(verify=ssl_context(verify))
    pool = getattr(transport, "_pool", None)
    if isinstance(pool, httpcore.ConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = _DeadlineBackend(deadline)
    else:
        logger.debug("httpx transport layout unknown; token answers have per-read timeouts only")
    return transport
