"""Guards for the speed-ups that rest on private details of httpx/httpcore.

:mod:`aioras._http.netbackend` swaps the connection pool inside httpx's transport for one whose
network streams read a MiB at a time. Should a new httpx lay its transport out differently,
aioras falls back to the stock pool: still correct, only slower, and silent at run time.
These tests fail in that case, so the loss is seen when httpx is upgraded (the same for the
receive buffer fitted into h11, and for direct socket reads).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest

from aioras._http import netbackend
from aioras._http.netbackend import READ_SIZE, LargeReadBackend, http_transport, ssl_context
from aioras._http.transport import DEFAULT_LIMITS, Transport
from aioras._retry import NO_RETRY
from aioras.auth import TokenAuth
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry

pytestmark = pytest.mark.anyio


async def _round_trip(
    registry: LocalRegistry, tmp_path: Path, size: int, *, before_download: Callable[[], None]
) -> None:
    """Upload ``size`` random bytes, call ``before_download``, download them (one stream)."""
    data = os.urandom(size)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    layer = {
        "mediaType": "application/octet-stream",
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    target = f"{registry.host}/fastpath/{uuid.uuid4().hex[:10]}:v1"
    async with AsyncRegistry(registry.host, insecure=True, download_ranges=1) as reg:
        await reg.upload_blob(source, target, layer)
        before_download()
        await reg.download_blob(target, layer["digest"], tmp_path / "out.bin", size=len(data))
    assert (tmp_path / "out.bin").read_bytes() == data


def test_http_transport_installs_the_large_read_pool() -> None:
    transport = http_transport(verify=ssl_context(True), limits=DEFAULT_LIMITS)
    pool = getattr(transport, "_pool", None)
    assert pool is not None, "httpx's transport no longer keeps its pool in _pool"
    assert isinstance(getattr(pool, "_network_backend", None), LargeReadBackend)


async def test_blob_download_reads_through_large_read_streams(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    original = netbackend._LargeReadStream.read

    async def spy(
        self: netbackend._LargeReadStream,
        max_bytes: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's stream interface
    ) -> bytes:
        asked.append(max(max_bytes, self._read_size))
        return await original(self, max_bytes, timeout)

    monkeypatch.setattr(netbackend._LargeReadStream, "read", spy)
    await _round_trip(registry, tmp_path, 2 * READ_SIZE, before_download=asked.clear)
    # Every read of the download went through the large-read stream, asking for a MiB.
    assert asked, "the download did not read through LargeReadBackend's streams"
    assert set(asked) == {READ_SIZE}


async def test_plain_tcp_download_reads_the_socket_directly(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct: list[int] = []
    original = netbackend._DirectReader.read

    async def spy(self: netbackend._DirectReader, size: int) -> bytes | None:
        data = await original(self, size)
        if data:
            direct.append(len(data))
        return data

    monkeypatch.setattr(netbackend._DirectReader, "read", spy)
    await _round_trip(registry, tmp_path, 8 * READ_SIZE, before_download=direct.clear)
    # Reads straight from the socket happened: anyio's and httpcore's private layout still
    # lets the stream find its socket (the rest of the bytes come the usual way).
    assert direct, "no read went straight to the socket: the direct-read fast path fell away"


async def test_idle_stream_is_readable_only_once_the_server_closes_it() -> None:
    # httpcore's pool asks this of every idle connection before reusing one; the stream
    # answers from the socket it looked up once.
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        host, port = server.getsockname()
        stream = await LargeReadBackend().connect_tcp(host, port)
        peer, _ = server.accept()
        try:
            assert stream.get_extra_info("socket").getpeername() == (host, port)
            assert stream.get_extra_info("is_readable") is False
            peer.close()
            # The FIN reaches the loopback socket at once.
            assert stream.get_extra_info("is_readable") is True
        finally:
            peer.close()
            await stream.aclose()


async def test_body_chunks_leave_the_http_parser_without_copies(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole: list[int] = []
    original = netbackend._BodyBuffer.maybe_extract_at_most

    def spy(self: netbackend._BodyBuffer, count: int) -> bytes | bytearray | None:
        held = self._held
        data = original(self, count)
        if data is not None and data is held:
            whole.append(len(data))
        return data

    monkeypatch.setattr(netbackend._BodyBuffer, "maybe_extract_at_most", spy)
    await _round_trip(registry, tmp_path, 8 * READ_SIZE, before_download=whole.clear)
    # Received chunks went from the socket to the download as the very objects received:
    # httpcore's connections and h11's parser still let the pool fit its receive buffer.
    assert sum(whole) > 4 * READ_SIZE, "body chunks were copied out of h11's own buffer"


def _events(stream: list[bytes], *, fitted: bool) -> list[object]:
    """What h11 makes of ``stream`` (two responses), with or without the body buffer."""
    conn = h11.Connection(h11.CLIENT)
    if fitted:
        conn._receive_buffer = netbackend._BodyBuffer(conn._receive_buffer)  # type: ignore[assignment]
    seen: list[object] = []
    pieces = iter(stream)
    for _ in range(2):
        conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(next(pieces))
                continue
            seen.append((type(event).__name__, bytes(getattr(event, "data", b""))))
            if isinstance(event, h11.Response):
                seen.append(event.headers)
            if isinstance(event, h11.EndOfMessage):
                break
        conn.start_next_cycle()
    return seen


@pytest.mark.parametrize("cut", [1, 7, 40, 64, 70, 101, 150])
def test_body_buffer_parses_exactly_as_h11(cut: int) -> None:
    body = os.urandom(60)
    wire = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n"
        + body
        + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    pieces = [wire[i : i + cut] for i in range(0, len(wire), cut)]
    assert _events(pieces, fitted=True) == _events(pieces, fitted=False)


def _pool(transport: Transport) -> Any:
    return transport.client._transport._pool  # type: ignore[attr-defined]


async def _idle_pool(transport: Transport, url: str, count: int) -> Any:
    """The pool after ``count`` answers held open at once: ``count`` idle connections."""
    held = [await transport.send("GET", url, stream=True) for _ in range(count)]
    for response in held:
        await response.aread()  # read to the end: the connection goes back to the pool
    return _pool(transport)


async def _twenty_requests(transport: Transport, url: str) -> None:
    """Send 20 GETs one after another, each answered 200."""
    for _ in range(20):
        response = await transport.send("GET", url)
        assert response.status_code == 200


def _count_calls(monkeypatch: pytest.MonkeyPatch, method: str) -> list[int]:
    """Count calls of ``_FittedConnection.<method>`` from now on; ``[count]``, kept current."""
    count = [0]
    original = getattr(netbackend._FittedConnection, method)

    def counting(self: netbackend._FittedConnection) -> bool:
        count[0] += 1
        result: bool = original(self)
        return result

    monkeypatch.setattr(netbackend._FittedConnection, method, counting)
    return count


async def test_pool_asks_each_connection_about_idleness_a_bounded_number_of_times(
    registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpcore's own plan asks every connection once per connection (n squared per request).
    asked = _count_calls(monkeypatch, "is_idle")
    async with AsyncRegistry(registry.host, insecure=True) as reg:
        url = f"{registry.url}/v2/"
        pool = await _idle_pool(reg._transport, url, 24)
        assert pool._linear, "httpcore's pool no longer has the state _Pool plans with"
        connections = len(pool._connections)
        assert connections == 24
        asked[0] = 0
        await _twenty_requests(reg._transport, url)
    # Each request re-plans the pool a few times; each plan asks each connection once.
    assert asked[0] <= 20 * 4 * connections, (asked, connections)


async def test_pool_polls_idle_connections_once_per_request_not_all_per_plan(
    registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whether a connection expired polls its socket when idle: asking every pooled
    # connection on every plan cost 19,000 polls for 50 pulls over ~50 connections.
    asked = _count_calls(monkeypatch, "has_expired")
    async with AsyncRegistry(registry.host, insecure=True) as reg:
        url = f"{registry.url}/v2/"
        pool = await _idle_pool(reg._transport, url, 24)
        connections = len(pool._connections)
        assert connections == 24
        monkeypatch.setattr(netbackend, "_SWEEP", 3600.0)  # no sweep but the next one
        asked[0] = 0
        await _twenty_requests(reg._transport, url)
    # One sweep, then the connection each request is given (a few plans per request).
    assert asked[0] <= connections + 20 * 4, (asked, connections)


async def test_plans_with_no_request_waiting_ask_no_connection_anything(
    registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpcore plans the pool again when a response is closed; with nothing waiting, that
    # plan has nothing to assign, and asked every connection whether it was closed.
    async with AsyncRegistry(registry.host, insecure=True) as reg:
        url = f"{registry.url}/v2/"
        pool = await _idle_pool(reg._transport, url, 24)
        connections = len(pool._connections)
        assert connections == 24
        monkeypatch.setattr(netbackend, "_SWEEP", 3600.0)  # no sweep but the next one
        asked = _count_calls(monkeypatch, "is_closed")
        await _twenty_requests(reg._transport, url)
    # One plan per request (it waits for a connection), none when its response is closed.
    assert asked[0] <= 21 * connections, (asked, connections)


async def test_a_connection_the_server_closed_while_idle_is_never_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A server that answers once per connection, then closes it (keep-alive promised).
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(netbackend, "_SWEEP", 3600.0)  # only the first plan sweeps
    transport = Transport(authenticator=TokenAuth(insecure=True), retry=NO_RETRY)
    try:
        for _ in range(5):
            response = await transport.send("GET", f"http://127.0.0.1:{port}/v2/")
            assert response.status_code == 200
            await asyncio.sleep(0.2)  # the server has closed the idle connection by now
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()


async def test_pool_keeps_at_most_the_keep_alive_allowance_of_idle_connections(
    registry: LocalRegistry,
) -> None:
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=3)
    transport = Transport(authenticator=TokenAuth(insecure=True), limits=limits)
    url = f"{registry.url}/v2/"
    try:
        pool = await _idle_pool(transport, url, 12)
        await transport.send("GET", url)  # a plan made with all of them idle
        live = [c for c in pool._connections if not c.is_closed()]
        assert 1 <= len(live) <= 3
    finally:
        await transport.aclose()


async def test_head_answers_keep_their_length_and_give_the_connection_back(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    data = os.urandom(3000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    layer = {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)}
    (tmp_path / "blob").write_bytes(data)
    target = f"{registry.host}/fastpath/head:v1"
    async with AsyncRegistry(registry.host, insecure=True) as reg:
        await reg.upload_blob(tmp_path / "blob", target, layer)
        url = f"{registry.url}/v2/fastpath/head/blobs/{digest}"
        for _ in range(5):
            response = await reg._transport.send("HEAD", url)
            assert response.status_code == 200
            assert response.headers["content-length"] == str(len(data))
            assert response.content == b""
        pool = _pool(reg._transport)
        # One connection served the upload and every HEAD after it.
        assert len(pool._connections) == 1
        assert pool._connections[0].is_idle()
