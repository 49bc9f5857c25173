"""A fault-injecting HTTP/1.1 proxy on loopback, between aioras and the real registry.

:class:`FaultProxy` listens on ``127.0.0.1`` and forwards every request to an upstream
registry over a connection of its own (one upstream connection per client connection, kept
alive like the client's). It parses just enough HTTP/1.1 to find message boundaries
(``Content-Length``, ``chunked``, read-to-close) and streams bodies through without holding
them, so it carries multi-MiB blobs in constant memory.

It rewrites nothing unless a rule says so. The registry builds ``Location`` URLs from the
``Host`` header, which the proxy forwards untouched, so upload sessions come back through
the proxy without any rewriting.

Rules (:meth:`FaultProxy.add`) pick requests by method and path regex, by position among
the matching requests (``nth``), by probability (a seeded RNG), and up to ``times``
injections; each injects one of its :class:`Fault` s (chosen by the same RNG):

=====================  =================================================================
``reset`` request      RST after reading part of the request body (optionally forwarding
                       that part upstream first)
``reset`` headers      the registry processed the request; RST before any answer byte
``reset`` response     RST after the headers and part of the body
``status``             answer 500/502/503/429 (with ``Retry-After``) instead, before or
                       after (``forward=True``) the registry saw the request
``stall``              stop answering (at request, headers or mid-body) for ``seconds``,
                       then RST; ends early once the client hangs up
``truncate``           headers and part of the body, then a clean close (FIN)
``corrupt``            flip one byte of the request or response body
``throttle``           deliver the response body at ``rate`` bytes per second
``transform``          edit the request head, or the response (head and buffered body)
``respond``            answer with a generated response, body streamed from an iterator
=====================  =================================================================

Counters: :attr:`FaultProxy.requests`, :attr:`FaultProxy.faults` (by label such as
``reset-request`` or ``status-503``), :attr:`FaultProxy.log` of every exchange, and the
peak number of requests in flight per tracked pattern (:meth:`FaultProxy.track`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import struct
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

import pytest

from aioras.testing import LocalRegistry
from support.delayproxy import chunked_pieces

__all__ = ["Exchange", "Fault", "FaultProxy", "Head", "Rule", "fault_proxy", "generated"]

_PIECE = 64 * 1024
_MAX_BUFFERED = 16 * 1024 * 1024


# -- messages ---------------------------------------------------------------------------------


@dataclass
class Head:
    """The start line and headers of a request or response, in order, names as sent."""

    start: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def set(self, name: str, value: str) -> None:
        self.remove(name)
        self.headers.append((name, value))

    def remove(self, name: str) -> None:
        lname = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lname]

    def encode(self) -> bytes:
        lines = [self.start, *(f"{k}: {v}" for k, v in self.headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    @property
    def method(self) -> str:
        return self.start.split(" ", 1)[0]

    @property
    def target(self) -> str:
        return self.start.split(" ")[1]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def status(self) -> int:
        return int(self.start.split(" ")[1])

    def content_length(self) -> int | None:
        value = self.get("content-length")
        return int(value) if value is not None and value.strip().isdigit() else None

    def chunked(self) -> bool:
        return "chunked" in (self.get("transfer-encoding") or "").lower()

    def closes(self) -> bool:
        return "close" in (self.get("connection") or "").lower()


def _parse_head(raw: bytes) -> Head:
    text = raw.decode("latin-1").rstrip("\r\n")
    start, *lines = text.split("\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return Head(start, headers)


def _status_head(status: int, reason: str, headers: Iterable[tuple[str, str]]) -> Head:
    return Head(f"HTTP/1.1 {status} {reason}", list(headers))


_REASONS = {
    200: "OK",
    206: "Partial Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    416: "Range Not Satisfiable",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


# -- faults and rules ----------------------------------------------------------------------


ResponseTransform = Callable[[Head, Head, bytes], tuple[Head, bytes]]
"""``(request, response, body) -> (response, body)``; Content-Length is fixed afterwards."""
Responder = Callable[[Head], tuple[Head, AsyncIterator[bytes]]]
"""``request -> (response head, body chunks)`` for a response the registry never sees."""


@dataclass
class Fault:
    """One kind of misbehaviour; see the module docstring for ``kind`` and ``where``."""

    kind: str
    where: str = "response"
    fraction: float = 0.5
    status: int = 503
    retry_after: str | None = None
    body: bytes = b"injected fault"
    content_type: str = "text/plain"
    forward: bool = False
    forward_partial: bool = False
    seconds: float = 30.0
    rate: float = 1 << 20
    on_request: Callable[[Head], None] | None = None
    on_response: ResponseTransform | None = None
    edit_response: Callable[[Head], None] | None = None
    """Applied to the registry's response head before any fault (e.g. drop a header)."""
    responder: Responder | None = None

    @property
    def label(self) -> str:
        if self.kind == "status":
            return f"status-{self.status}"
        if self.kind in ("throttle", "transform", "respond"):
            return self.kind
        return f"{self.kind}-{self.where}"


@dataclass
class Rule:
    """Which requests get which faults."""

    faults: Sequence[Fault]
    method: str | None = None
    path: str | None = None
    nth: frozenset[int] | None = None
    probability: float = 1.0
    times: int | None = None
    matched: int = 0
    injected: int = 0

    def matches(self, request: Head) -> bool:
        if self.method and not re.fullmatch(self.method, request.method):
            return False
        return not (self.path and not re.search(self.path, request.target))


@dataclass
class Exchange:
    """One request as the proxy saw it."""

    method: str
    target: str
    fault: str | None
    status: int | None = None
    range: str | None = None
    content_range: str | None = None
    content_length: int | None = None
    started: float = field(default_factory=time.monotonic)
    sent: int = 0
    """Body bytes delivered to the client (for ``respond``: how much it actually took)."""
    received: int = 0
    """Request body bytes passed on to the registry (so far, for a body cut off)."""
    hung_up: bool = False
    """The client closed the connection before a generated body was all sent."""


class _Hangup(Exception):
    """The exchange ended the connection on purpose."""


# -- the proxy ----------------------------------------------------------------------------------


class FaultProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 injecting faults by rule; use as an async context."""

    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1", seed: int = 0):
        self.upstream = (upstream_host, upstream_port)
        self.rng = random.Random(seed)
        self.rules: list[Rule] = []
        self.requests = 0
        self.faults: Counter[str] = Counter()
        self.log: list[Exchange] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections: dict[asyncio.Task[None], list[asyncio.StreamWriter]] = {}
        self._trackers: dict[str, tuple[str, str]] = {}
        self._in_flight: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def reference(self, name: str) -> str:
        return f"{self.host}/{name.lstrip('/')}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        # Dropping the sockets ends every handler on its own; cancelling handler tasks
        # would make asyncio's stream callback log the cancellation as an error.
        for writers in list(self._connections.values()):
            for writer in writers:
                _abort(writer)
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=5)
            for task in pending:
                task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- configuration -----------------------------------------------------------------------
    def add(
        self,
        *faults: Fault,
        method: str | None = None,
        path: str | None = None,
        nth: int | Iterable[int] | None = None,
        probability: float = 1.0,
        times: int | None = None,
    ) -> Rule:
        """Add a rule; the first matching rule that fires decides the request's fault."""
        rule = Rule(
            faults=faults,
            method=method,
            path=path,
            nth=frozenset([nth] if isinstance(nth, int) else nth) if nth is not None else None,
            probability=probability,
            times=times,
        )
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def track(self, name: str, *, method: str = ".*", path: str = ".*") -> None:
        """Count requests in flight matching ``method``/``path``; peak in ``peak[name]``."""
        self._trackers[name] = (method, path)

    def requests_matching(self, method: str = ".*", path: str = ".*") -> list[Exchange]:
        return [
            e
            for e in self.log
            if re.fullmatch(method, e.method) and re.search(path, e.target) is not None
        ]

    @property
    def injected(self) -> int:
        return sum(self.faults.values())

    def _choose(self, request: Head) -> Fault | None:
        # Every matching rule counts the request (so ``nth`` means the nth request the rule
        # matches, whatever other rules did with it); the first rule that fires wins.
        chosen: Fault | None = None
        for rule in self.rules:
            if not rule.matches(request):
                continue
            rule.matched += 1
            if chosen is not None:
                continue
            if rule.times is not None and rule.injected >= rule.times:
                continue
            if rule.nth is not None and rule.matched not in rule.nth:
                continue
            if rule.probability < 1.0 and self.rng.random() >= rule.probability:
                continue
            rule.injected += 1
            chosen = self.rng.choice(list(rule.faults))
        return chosen

    # -- connections ---------------------------------------------------------------------------
    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._connections[task] = [cwriter]
        try:
            while True:
                try:
                    raw = await creader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    break
                request = _parse_head(raw)
                self.requests += 1
                fault = self._choose(request)
                exchange = Exchange(
                    request.method,
                    request.target,
                    None,  # set when the fault is actually injected
                    range=request.get("range"),
                    content_range=request.get("content-range"),
                    content_length=request.content_length(),
                )
                self.log.append(exchange)
                names = [
                    n
                    for n, (m, p) in self._trackers.items()
                    if re.fullmatch(m, request.method) and re.search(p, request.target)
                ]
                for name in names:
                    self._in_flight[name] += 1
                    self.peak[name] = max(self.peak[name], self._in_flight[name])
                try:
                    keep = await self._exchange(
                        request, exchange, fault, creader, cwriter, upstream
                    )
                finally:
                    for name in names:
                        self._in_flight[name] -= 1
                if not keep:
                    break
        except _Hangup:
            pass
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            for _, writer in upstream:
                _abort(writer)
            if not cwriter.is_closing():
                cwriter.close()
            self._tasks.discard(task)
            self._connections.pop(task, None)

    async def _upstream(
        self, upstream: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if upstream and not upstream[0][1].is_closing() and not upstream[0][0].at_eof():
            return upstream[0]
        for _, writer in upstream:
            _abort(writer)
        upstream.clear()
        upstream.append(await asyncio.open_connection(*self.upstream))
        task = asyncio.current_task()
        if task in self._connections:
            self._connections[task] = [self._connections[task][0], upstream[0][1]]
        return upstream[0]

    def _count(self, fault: Fault, exchange: Exchange) -> None:
        self.faults[fault.label] += 1
        exchange.fault = fault.label

    async def _exchange(
        self,
        request: Head,
        exchange: Exchange,
        fault: Fault | None,
        creader: asyncio.StreamReader,
        cwriter: asyncio.StreamWriter,
        upstream: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]],
    ) -> bool:
        """Handle one request; return whether the client connection stays open."""
        length = request.content_length()
        chunked = request.chunked()
        kind = fault.kind if fault else None
        where = fault.where if fault else None

        if fault and kind == "stall" and where == "request":
            self._count(fault, exchange)
            await _stall(creader, fault.seconds)
            _abort(cwriter)
            raise _Hangup
        if fault and kind == "reset" and where == "request":
            self._count(fault, exchange)
            part = int((length or 0) * fault.fraction)
            data = await creader.readexactly(part) if part else b""
            if fault.forward_partial:
                ureader, uwriter = await self._upstream(upstream)
                uwriter.write(request.encode() + data)
                await uwriter.drain()
                await asyncio.sleep(0.05)  # let the registry start on the partial body
            _abort(cwriter)
            raise _Hangup
        if fault and kind in ("status", "respond") and not fault.forward:
            self._count(fault, exchange)
            await _discard_body(creader, length, chunked)
            if kind == "respond":
                assert fault.responder is not None
                head, chunks = fault.responder(request)
                exchange.status = head.status
                complete = await _send_generated(cwriter, head, chunks, exchange)
                return complete and not request.closes()
            head = self._status_response(fault)
            exchange.status = fault.status
            cwriter.write(head.encode() + fault.body)
            await cwriter.drain()
            return not request.closes()

        # Forward the request.
        if fault and kind == "transform" and fault.on_request is not None:
            fault.on_request(request)
        ureader, uwriter = await self._upstream(upstream)
        uwriter.write(request.encode())
        flip = (
            int((length or 0) * fault.fraction)
            if fault and kind == "corrupt" and where == "request" and length
            else None
        )
        if fault and flip is not None:
            self._count(fault, exchange)
        await _copy_body(creader, uwriter, length, chunked, flip_at=flip, exchange=exchange)

        raw = await ureader.readuntil(b"\r\n\r\n")
        response = _parse_head(raw)
        if fault and fault.edit_response is not None:
            fault.edit_response(response)
        exchange.status = response.status
        body_kind = _body_kind(request, response)
        closes = request.closes() or response.closes() or body_kind == "close"

        if fault and kind == "status":  # forward=True: the registry did the work
            self._count(fault, exchange)
            await _discard_body(ureader, response.content_length(), response.chunked(), body_kind)
            head = self._status_response(fault)
            exchange.status = fault.status
            cwriter.write(head.encode() + fault.body)
            await cwriter.drain()
            return not closes
        if fault and kind in ("stall", "reset") and where == "headers":
            self._count(fault, exchange)
            if kind == "stall":
                await _stall(creader, fault.seconds)
            _abort(cwriter)
            raise _Hangup
        if fault and kind == "transform" and fault.on_response is not None:
            self._count(fault, exchange)
            body = await _read_body(ureader, response, body_kind)
            response, body = fault.on_response(request, response, body)
            if request.method != "HEAD":
                response.remove("transfer-encoding")
                response.set("Content-Length", str(len(body)))
            exchange.status = response.status
            cwriter.write(response.encode() + (b"" if request.method == "HEAD" else body))
            await cwriter.drain()
            return not closes
        if fault and kind == "transform":
            self._count(fault, exchange)

        if fault and kind in ("reset", "stall", "truncate", "corrupt") and where == "response":
            return await self._damaged_response(
                fault, request, response, body_kind, ureader, cwriter, creader, exchange
            )
        rate = fault.rate if fault and kind == "throttle" else None
        cwriter.write(response.encode())
        exchange.sent = await _copy_response_body(ureader, cwriter, response, body_kind, rate)
        return not closes

    def _status_response(self, fault: Fault) -> Head:
        headers = [
            ("Content-Type", fault.content_type),
            ("Content-Length", str(len(fault.body))),
        ]
        if fault.retry_after is not None:
            headers.append(("Retry-After", fault.retry_after))
        return _status_head(fault.status, _REASONS.get(fault.status, "Fault"), headers)

    async def _damaged_response(
        self,
        fault: Fault,
        request: Head,
        response: Head,
        body_kind: str,
        ureader: asyncio.StreamReader,
        cwriter: asyncio.StreamWriter,
        creader: asyncio.StreamReader,
        exchange: Exchange,
    ) -> bool:
        """Deliver the response with a reset, stall, truncation or flipped byte in its body."""
        self._count(fault, exchange)
        length = response.content_length() or 0
        if body_kind == "length" and length:
            # Streamed: blobs of many MiB pass without being held.
            cut = min(max(int(length * fault.fraction), 0), length - 1)
            cwriter.write(response.encode())
            if fault.kind == "corrupt":
                await _copy_body(ureader, cwriter, length, False, flip_at=cut)
                exchange.sent = length
                return not (request.closes() or response.closes())
            await _copy_body(ureader, cwriter, cut, False)
            exchange.sent = cut
            await self._hang_up(fault, creader, cwriter)
        body = await _read_body(ureader, response, body_kind)
        head = response.encode()
        if not body:
            # Nothing to damage in the body: break the head instead (a corrupt byte in an
            # empty body would be no fault at all, so it becomes a reset).
            if fault.kind == "corrupt":
                self.faults[fault.label] -= 1
                self.faults["reset-response"] += 1
                exchange.fault = "reset-response"
                fault = Fault("reset")
            cwriter.write(head[: len(head) // 2])
            await self._hang_up(fault, creader, cwriter)
        cut = min(max(int(len(body) * fault.fraction), 0), len(body) - 1)
        if fault.kind == "corrupt":
            damaged = bytearray(body)
            damaged[cut] ^= 0x5A
            if response.chunked():
                response.remove("transfer-encoding")
                response.set("Content-Length", str(len(damaged)))
                head = response.encode()
            cwriter.write(head + bytes(damaged))
            await cwriter.drain()
            exchange.sent = len(damaged)
            return not (request.closes() or response.closes() or body_kind == "close")
        if response.chunked():
            response.remove("transfer-encoding")
            response.set("Content-Length", str(len(body)))
            head = response.encode()
        cwriter.write(head + body[:cut])
        await cwriter.drain()
        exchange.sent = cut
        await self._hang_up(fault, creader, cwriter)

    async def _hang_up(
        self, fault: Fault, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter
    ) -> NoReturn:
        await cwriter.drain()
        if fault.kind == "stall":
            await _stall(creader, fault.seconds)
        if fault.kind == "truncate":
            cwriter.close()
        else:
            _abort(cwriter)
        raise _Hangup


# -- body plumbing ------------------------------------------------------------------------------


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a dropped connection looks to the peer."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _stall(creader: asyncio.StreamReader, seconds: float) -> None:
    """Say nothing for ``seconds``, or until the client hangs up (what it sends is dropped)."""
    with contextlib.suppress(TimeoutError, ConnectionError, OSError):
        async with asyncio.timeout(seconds):
            while await creader.read(_PIECE):
                pass


def _body_kind(request: Head, response: Head) -> str:
    if request.method == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200:
        return "none"
    if response.chunked():
        return "chunked"
    if response.content_length() is not None:
        return "length"
    return "close"


async def _discard_body(
    reader: asyncio.StreamReader, length: int | None, chunked: bool, kind: str | None = None
) -> None:
    if kind == "none":
        return
    if chunked:
        async for _ in chunked_pieces(reader):
            pass
    elif length:
        remaining = length
        while remaining:
            data = await reader.read(min(_PIECE, remaining))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(data)
    elif kind == "close":
        while await reader.read(_PIECE):
            pass


def _dechunk(raw: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        end = raw.index(b"\r\n", pos)
        size = int(raw[pos:end].split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            return bytes(out)
        out += raw[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2


async def _copy_body(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    length: int | None,
    chunked: bool,
    *,
    flip_at: int | None = None,
    exchange: Exchange | None = None,
) -> None:
    if chunked:
        async for piece in chunked_pieces(reader):
            writer.write(piece)
            await writer.drain()
        return
    done = 0
    remaining = length or 0
    while remaining:
        data = await reader.read(min(_PIECE, remaining))
        if not data:
            raise asyncio.IncompleteReadError(b"", remaining)
        if flip_at is not None and done <= flip_at < done + len(data):
            damaged = bytearray(data)
            damaged[flip_at - done] ^= 0x5A
            data = bytes(damaged)
        writer.write(data)
        await writer.drain()
        done += len(data)
        remaining -= len(data)
        if exchange is not None:
            exchange.received = done


async def _read_body(reader: asyncio.StreamReader, response: Head, kind: str) -> bytes:
    if kind == "none":
        return b""
    if kind == "chunked":
        raw = b"".join([piece async for piece in chunked_pieces(reader)])
        return _dechunk(raw)
    if kind == "length":
        length = response.content_length() or 0
        if length > _MAX_BUFFERED:
            raise ValueError(f"refusing to buffer a {length}-byte body")
        return await reader.readexactly(length)
    return await reader.read(_MAX_BUFFERED)


async def _copy_response_body(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    response: Head,
    kind: str,
    rate: float | None,
) -> int:
    sent = 0
    if kind == "none":
        await writer.drain()
        return 0
    if kind == "chunked":
        async for piece in chunked_pieces(reader):
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
        return sent
    remaining = response.content_length() if kind == "length" else None
    piece_size = _PIECE if rate is None else max(1, min(_PIECE, int(rate / 20)))
    while remaining is None or remaining > 0:
        want = piece_size if remaining is None else min(piece_size, remaining)
        data = await reader.read(want)
        if not data:
            if remaining:
                raise asyncio.IncompleteReadError(b"", remaining)
            break
        writer.write(data)
        await writer.drain()
        sent += len(data)
        if remaining is not None:
            remaining -= len(data)
        if rate is not None:
            await asyncio.sleep(len(data) / rate)
    if kind == "close":
        writer.close()
    return sent


async def _send_generated(
    writer: asyncio.StreamWriter, head: Head, chunks: AsyncIterator[bytes], exchange: Exchange
) -> bool:
    """Send a generated response, counting body bytes in ``exchange.sent``; False if cut off."""
    chunked = head.chunked()
    try:
        writer.write(head.encode())
        async for chunk in chunks:
            if chunked:
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            else:
                writer.write(chunk)
            await writer.drain()
            exchange.sent += len(chunk)
        if chunked:
            writer.write(b"0\r\n\r\n")
        await writer.drain()
    except (ConnectionError, OSError):
        exchange.hung_up = True
        return False
    return True


def generated(
    status: int,
    headers: Iterable[tuple[str, str]],
    chunks: Callable[[], AsyncIterator[bytes]],
) -> Responder:
    """A :class:`Fault` responder answering ``status``/``headers`` with ``chunks()``."""

    def respond(request: Head) -> tuple[Head, AsyncIterator[bytes]]:
        return _status_head(status, _REASONS.get(status, "Generated"), headers), chunks()

    return respond


# -- pytest fixtures ----------------------------------------------------------------------------


@pytest.fixture
async def fault_proxy(registry: LocalRegistry) -> AsyncIterator[FaultProxy]:
    """A :class:`FaultProxy` of the test's own in front of the session registry (no rules)."""
    async with FaultProxy(_port(registry)) as proxy:
        yield proxy


def _port(registry: LocalRegistry) -> int:
    assert registry.port is not None, "the registry is not running"
    return registry.port
