"""A network in a box: a TCP proxy on loopback that puts a registry some milliseconds away.

:class:`DelayProxy` listens on ``127.0.0.1`` and forwards every connection to a real registry
(``host:port``) over a connection of its own. What it models, per connection:

- **Latency.** Each direction is one pipe: a reader task reads what arrives, stamps each chunk
  with its due time (arrival + ``delay``) and queues it; a writer task delivers the chunks in
  order at their due times. Reads never wait for deliveries, only for room: each pipe holds at
  most ``window`` bytes (the bytes "in flight", like a TCP window), so backpressure stays
  bounded and one pipe carries at most ``window / delay`` bytes per second.
- **Connection set-up.** No byte of a new connection is delivered before one round trip
  (``2 x delay``) after it was accepted, as if a TCP handshake came first: a request sent at
  once reaches the registry ``3 x delay`` after ``connect()``.
- **Bandwidth** (optional): each pipe of each connection delivers at most ``bandwidth`` bytes
  per second.
- **A registry that minds** (optional :class:`RateRule`): the requests of each client
  connection are parsed as HTTP/1.1 (request line, headers, ``Content-Length`` or ``chunked``
  body; keep-alive). A client (its source IP) may send ``per_second`` requests in any sliding
  ``window`` seconds (1 s): requests timestamped when they reach the proxy, counting only the
  forwarded ones. Above that, the request is not forwarded: its body is read and dropped, and
  ``429 Too Many Requests`` with ``Retry-After`` and an OCI error body comes back one round trip
  later. Clients must not pipeline (no registry client does): the answer is queued behind what
  the registry already sent on that connection.

Counters (:class:`ProxyStats`, :attr:`DelayProxy.stats`): connections, requests forwarded and
answered 429, bytes delivered each way. The module needs nothing beyond the standard library:
``benchmarks/bench.py`` runs it as a process of its own (``python delayproxy.py PORT ...``;
see :func:`main`), and ``support.wanfixtures`` gives the tests a ``wan_proxy`` factory.

The WAN names (:data:`WAN_HOSTS`) are ``/etc/hosts`` aliases of 127.0.0.1 that
``scripts/bootstrap`` adds: a client reaching a registry by one of them runs with the defaults
it gives a remote host, not loopback's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import socket
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "HOSTS_FIX",
    "WAN_HOSTS",
    "DelayProxy",
    "ProxyStats",
    "RateRule",
    "chunked_pieces",
    "unresolved",
]

WAN_HOSTS = ("aioras-wan-a.test", "aioras-wan-b.test", "aioras-wan-c.test")
"""Names of 127.0.0.1 that are not loopback names to a client (``/etc/hosts``)."""
HOSTS_FIX = "sudo scripts/bootstrap --hosts"
"""The command that adds :data:`WAN_HOSTS` to ``/etc/hosts``."""

_PIECE = 256 * 1024
_HEAD_LIMIT = 256 * 1024
_TOO_MANY = json.dumps(
    {
        "errors": [
            {
                "code": "TOOMANYREQUESTS",
                "message": "too many requests",
                "detail": "the delay proxy's rate rule",
            }
        ]
    }
).encode()


def unresolved(names: tuple[str, ...] = WAN_HOSTS) -> list[str]:
    """The names among ``names`` that do not resolve to a loopback address."""
    bad = []
    for name in names:
        try:
            address = socket.gethostbyname(name)
        except OSError:
            bad.append(name)
            continue
        if not ipaddress.ip_address(address).is_loopback:
            bad.append(name)
    return bad


@dataclass(frozen=True)
class RateRule:
    """At most ``per_second`` requests per client in any ``window`` seconds; 429 above."""

    per_second: int
    retry_after: int = 1
    window: float = 1.0


@dataclass
class ProxyStats:
    """What went through the proxy (read them any time; :meth:`DelayProxy.reset` zeroes)."""

    connections: int = 0
    forwarded: int = 0
    """Requests forwarded to the registry (and streams that are not HTTP/1.1, one each)."""
    rejected: int = 0
    """Requests answered 429 by the rate rule, never forwarded."""
    bytes_up: int = 0
    """Bytes delivered to the registry."""
    bytes_down: int = 0
    """Bytes delivered to the clients (served)."""

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class _Window:
    """The sliding window of each client's forwarded requests."""

    def __init__(self, rule: RateRule) -> None:
        self.rule = rule
        self.seen: dict[str, deque[float]] = {}

    def admit(self, client: str, now: float) -> bool:
        times = self.seen.setdefault(client, deque())
        while times and times[0] <= now - self.rule.window:
            times.popleft()
        if len(times) >= self.rule.per_second * self.rule.window:
            return False
        times.append(now)
        return True


class _Pipe:
    """One direction of one connection: chunks queued with due times, delivered in order."""

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        *,
        delay: float,
        not_before: float,
        window: int,
        bandwidth: float | None,
        count: Callable[[int], None],
    ) -> None:
        self.writer = writer
        self.delay = delay
        self.not_before = not_before
        self.window = window
        self.bandwidth = bandwidth
        self.count = count
        self.queue: deque[tuple[float, bytes | None]] = deque()
        self.queued = 0
        self.loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self._room = asyncio.Event()

    def due(self, trips: int = 1) -> float:
        return max(self.loop.time(), self.not_before) + trips * self.delay

    def put(self, data: bytes | None, due: float | None = None) -> None:
        """Queue ``data`` (None: end of stream) for delivery at ``due`` (default: one delay)."""
        self.queue.append((self.due() if due is None else due, data))
        self.queued += len(data or b"")
        self._ready.set()

    async def room(self) -> None:
        """Wait until the pipe holds less than its window."""
        while self.queued >= self.window:
            self._room.clear()
            await self._room.wait()

    async def run(self) -> None:
        """Deliver until the end of the stream; half-close the destination then."""
        started: float | None = None
        sent = 0
        while True:
            while not self.queue:
                self._ready.clear()
                await self._ready.wait()
            wait = self.queue[0][0] - self.loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            now = self.loop.time()
            # Everything already due goes out in one write (at most one piece when capped).
            cap = max(4096, int(self.bandwidth / 50)) if self.bandwidth else 1 << 62
            batch: list[bytes] = []
            size = 0
            end = False
            while self.queue and self.queue[0][0] <= now and size < cap:
                due, data = self.queue.popleft()
                if data is None:
                    end = True
                    break
                if size + len(data) > cap:
                    self.queue.appendleft((due, data[cap - size :]))
                    data = data[: cap - size]
                batch.append(data)
                size += len(data)
            if size:
                self.queued -= size
                self._room.set()
                self.writer.write(b"".join(batch))
                await self.writer.drain()
                self.count(size)
                if self.bandwidth:
                    started = now if started is None else started
                    sent += size
                    ahead = started + sent / self.bandwidth - self.loop.time()
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            if end:
                with contextlib.suppress(OSError, RuntimeError):
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                return


@dataclass
class _Request:
    head: bytes
    length: int
    chunked: bool
    expects_continue: bool


def _parse_request(head: bytes) -> _Request:
    lines = head.decode("latin-1").split("\r\n")
    if len(lines[0].split(" ")) != 3:
        raise ValueError(f"not an HTTP/1.1 request line: {lines[0][:80]!r}")
    length, chunked, expects = 0, False, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "expect":
            expects = value == "100-continue"
    return _Request(head, length, chunked, expects)


async def chunked_pieces(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """Yield the raw framing of a chunked body, piece by piece, through its trailer."""
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            trailer = line
            while True:
                more = await reader.readuntil(b"\r\n")
                trailer += more
                if more == b"\r\n":
                    break
            yield trailer
            return
        yield line + await reader.readexactly(size + 2)


async def _body(reader: asyncio.StreamReader, request: _Request) -> AsyncIterator[bytes]:
    if request.chunked:
        async for piece in chunked_pieces(reader):
            yield piece
        return
    remaining = request.length
    while remaining:
        data = await reader.read(min(_PIECE, remaining))
        if not data:
            raise asyncio.IncompleteReadError(b"", remaining)
        remaining -= len(data)
        yield data


def _too_many(rule: RateRule, *, close: bool, head: bool) -> bytes:
    headers = [
        "HTTP/1.1 429 Too Many Requests",
        "Content-Type: application/json",
        f"Content-Length: {len(_TOO_MANY)}",
        f"Retry-After: {rule.retry_after}",
        "Docker-Distribution-API-Version: registry/2.0",
    ]
    if close:
        headers.append("Connection: close")
    # The answer to a HEAD has no body: bytes after it would be read as the next answer.
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + (b"" if head else _TOO_MANY)


class DelayProxy:
    """A delaying TCP proxy on 127.0.0.1 in front of ``upstream`` (``host:port`` or a port).

    Use it as an async context manager in the loop of its clients, or :meth:`running` (a
    sync context manager) to serve from a thread of its own, which clients that block
    (oras-py, subprocesses) need. :attr:`host` is what a client dials.
    """

    def __init__(
        self,
        upstream: str | int,
        *,
        delay: float = 0.020,
        bandwidth: float | None = None,
        rate_rule: RateRule | None = None,
        window: int = 8 << 20,
        name: str = "127.0.0.1",
    ) -> None:
        if isinstance(upstream, int):
            self.upstream = ("127.0.0.1", upstream)
        else:
            host, _, port = upstream.rpartition(":")
            self.upstream = (host, int(port))
        self.delay = delay
        self.bandwidth = bandwidth
        self.rate_rule = rate_rule
        self.window = window
        self.name = name
        self.stats = ProxyStats()
        self.port = 0
        self._limits = _Window(rate_rule) if rate_rule else None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def host(self) -> str:
        """``name:port``: what a client dials (``name``: one of :data:`WAN_HOSTS`, say)."""
        return f"{self.name}:{self.port}"

    def reset(self) -> None:
        """Zero the counters and forget every client's recent requests."""
        self.stats = ProxyStats()
        if self.rate_rule:
            self._limits = _Window(self.rate_rule)

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> DelayProxy:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, limit=_HEAD_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> DelayProxy:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @contextlib.contextmanager
    def running(self) -> Iterator[DelayProxy]:
        """Serve from a daemon thread with a loop of its own while the block runs."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="delay-proxy", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=30)
            yield self
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.aclose(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()

    # -- connections -----------------------------------------------------------------------------
    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(cwriter)
        self.stats.connections += 1
        loop = asyncio.get_running_loop()
        not_before = loop.time() + 2 * self.delay
        uwriter: asyncio.StreamWriter | None = None
        try:
            ureader, uwriter = await asyncio.open_connection(*self.upstream, limit=_HEAD_LIMIT)
            self._writers.add(uwriter)

            def pipe(writer: asyncio.StreamWriter, count: Callable[[int], None]) -> _Pipe:
                return _Pipe(
                    writer,
                    delay=self.delay,
                    not_before=not_before,
                    window=self.window,
                    bandwidth=self.bandwidth,
                    count=count,
                )

            up = pipe(uwriter, self._count_up)
            down = pipe(cwriter, self._count_down)
            peer = cwriter.get_extra_info("peername")
            client = str(peer[0]) if peer else "?"
            async with asyncio.TaskGroup() as group:
                group.create_task(up.run())
                group.create_task(down.run())
                group.create_task(self._requests(creader, up, down, client))
                group.create_task(_raw(ureader, down))
        except* (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # a reset or a malformed request: both connections are dropped below
        finally:
            for writer in (cwriter, uwriter):
                if writer is not None:
                    self._writers.discard(writer)
                    writer.transport.abort()
            self._tasks.discard(task)

    def _count_up(self, n: int) -> None:
        self.stats.bytes_up += n

    def _count_down(self, n: int) -> None:
        self.stats.bytes_down += n

    async def _requests(
        self, reader: asyncio.StreamReader, up: _Pipe, down: _Pipe, client: str
    ) -> None:
        """Client to registry, one HTTP/1.1 request at a time: forwarded, or answered 429."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                first = await reader.readexactly(1)
            except asyncio.IncompleteReadError:
                up.put(None)  # the client closed between requests
                return
            if not first.isupper():
                # Not a request line (a TLS ClientHello, say: skopeo tries https first):
                # passed through unparsed, so the registry answers it as it would directly.
                self.stats.forwarded += 1
                up.put(first)
                await _raw(reader, up)
                return
            head = first + await reader.readuntil(b"\r\n\r\n")
            request = _parse_request(head)
            limits = self._limits
            if limits is None or limits.admit(client, loop.time()):
                self.stats.forwarded += 1
                up.put(head)
                async for piece in _body(reader, request):
                    await up.room()
                    up.put(piece)
                continue
            assert self.rate_rule is not None
            self.stats.rejected += 1
            # A client waiting for "100 Continue" sends no body after a final answer, so that
            # connection ends with the answer; otherwise the body is read and dropped.
            answer = _too_many(
                self.rate_rule, close=request.expects_continue, head=head.startswith(b"HEAD ")
            )
            down.put(answer, down.due(2))
            if request.expects_continue:
                down.put(None, down.due(2))
                up.put(None)
                return
            async for _ in _body(reader, request):
                pass


async def _raw(reader: asyncio.StreamReader, pipe: _Pipe) -> None:
    """Registry to client: bytes as they come, unparsed."""
    while data := await reader.read(_PIECE):
        await pipe.room()
        pipe.put(data)
    pipe.put(None)


# -- a process of its own (the bench) --------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """``delayproxy.py UPSTREAM [--delay S] [--bandwidth B] [--rate N --retry-after S]``.

    Prints ``PORT <n>``, then answers each line read on stdin: ``stats`` with
    ``STATS {json}``, ``reset`` with ``RESET``. Exits at the end of stdin.
    """
    parser = argparse.ArgumentParser(description="A delaying TCP proxy on 127.0.0.1.")
    parser.add_argument("upstream", help="host:port or port of the registry")
    parser.add_argument("--delay", type=float, default=0.020, help="seconds, each way")
    parser.add_argument("--bandwidth", type=float, default=None, help="bytes/s per connection")
    parser.add_argument("--rate", type=int, default=None, help="requests/s per client; 429 above")
    parser.add_argument("--retry-after", type=int, default=1, help="seconds, in the 429")
    parser.add_argument("--port", type=int, default=0, help="listening port (default: free)")
    ns = parser.parse_args(argv)
    upstream: str | int = int(ns.upstream) if ns.upstream.isdigit() else ns.upstream
    rule = RateRule(ns.rate, retry_after=ns.retry_after) if ns.rate else None
    proxy = DelayProxy(upstream, delay=ns.delay, bandwidth=ns.bandwidth, rate_rule=rule)
    proxy.port = ns.port
    with proxy.running():
        print(f"PORT {proxy.port}", flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                print("STATS " + json.dumps(proxy.stats.as_dict()), flush=True)
            elif command == "reset":
                proxy.reset()
                print("RESET", flush=True)


if __name__ == "__main__":
    main()
