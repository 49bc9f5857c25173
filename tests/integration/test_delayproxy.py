"""The delay proxy itself, with the real registry behind it (``support.delayproxy``).

Timing is checked only from below (a delay or a bandwidth cap can only make things slower),
and from the proxy's own counters; never with an upper bound.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from aioras import AsyncRegistry
from aioras.testing import LocalRegistry
from support.delayproxy import RateRule
from support.mirrortools import LAYER, put
from support.wanfixtures import WanProxyFactory

MiB = 1 << 20


def _name() -> str:
    return f"delayproxy/{uuid.uuid4().hex[:10]}"


def _get_blob(client: httpx.Client, name: str, digest: str) -> tuple[str, int]:
    """GET a blob through the client; return the sha256 digest and size of what came."""
    h = hashlib.sha256()
    size = 0
    with client.stream("GET", f"/v2/{name}/blobs/{digest}") as response:
        assert response.status_code == 200, response.status_code
        for chunk in response.iter_bytes():
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


@pytest.fixture
def client_of() -> Iterator[list[httpx.Client]]:
    clients: list[httpx.Client] = []
    yield clients
    for client in clients:
        client.close()


def _client(clients: list[httpx.Client], host: str) -> httpx.Client:
    client = httpx.Client(base_url=f"http://{host}", trust_env=False, timeout=60)
    clients.append(client)
    return client


def test_a_new_connection_waits_a_round_trip_then_each_way_one_delay(
    registry: LocalRegistry, wan_proxy: WanProxyFactory, client_of: list[httpx.Client]
) -> None:
    delay = 0.15
    proxy = wan_proxy(registry, delay=delay)
    client = _client(client_of, proxy.host)
    started = time.monotonic()
    response = client.get("/v2/")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert proxy.stats.forwarded == 1
    assert proxy.stats.connections == 1
    # Set-up (one round trip), the request (one way), the answer (the other way).
    assert elapsed >= 4 * delay
    started = time.monotonic()
    assert client.get("/v2/").status_code == 200
    # Kept alive: no new set-up, still a round trip.
    assert time.monotonic() - started >= 2 * delay
    assert proxy.stats.connections == 1
    assert proxy.stats.forwarded == 2


@pytest.mark.anyio
async def test_a_large_blob_keeps_its_byte_order_both_ways(
    registry: LocalRegistry, wan_proxy: WanProxyFactory, client_of: list[httpx.Client]
) -> None:
    # A window far smaller than the blob: the readers wait for room again and again.
    proxy = wan_proxy(registry, delay=0.005, window=256 * 1024)
    data = os.urandom(24 * MiB + 12345)
    name = _name()
    async with AsyncRegistry(proxy.host, insecure=True) as reg:
        # The registry checks the digest of what it received: the upload direction is in order.
        desc = await put(reg.repository(f"{proxy.host}/{name}"), data, LAYER)
    assert proxy.stats.bytes_up >= len(data)
    digest, size = _get_blob(_client(client_of, proxy.host), name, desc["digest"])
    assert (digest, size) == (desc["digest"], len(data))
    assert proxy.stats.bytes_down >= len(data)


def test_the_rate_rule_answers_429_with_retry_after_and_forwards_nothing_above_it(
    registry: LocalRegistry, wan_proxy: WanProxyFactory, client_of: list[httpx.Client]
) -> None:
    proxy = wan_proxy(registry, delay=0.001, rate_rule=RateRule(5, retry_after=2))
    client = _client(client_of, proxy.host)
    name = _name()
    statuses = [client.get("/v2/").status_code for _ in range(5)]
    assert statuses == [200] * 5
    # Bodies of both framings: a rejected request's body is read and dropped, and the next
    # request on the same connection is parsed where it starts.
    rejected = []
    for i in range(6):
        if i % 2:
            content: bytes | Iterator[bytes] = iter([b"x" * 70000, b"y" * 5])
        else:
            content = b"z" * 100000
        response = client.post(f"/v2/{name}/blobs/uploads/", content=content)
        if response.status_code == 429:
            rejected.append(response)
    assert client.get("/v2/").status_code in (200, 429)
    assert rejected, "nothing answered 429 above 5 requests per second"
    for response in rejected:
        assert response.headers["retry-after"] == "2"
        assert response.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert proxy.stats.rejected >= len(rejected)
    assert proxy.stats.forwarded + proxy.stats.rejected == 12
    assert proxy.stats.connections == 1


def test_a_rejected_head_gets_no_body_and_the_connection_stays_in_step(
    registry: LocalRegistry, wan_proxy: WanProxyFactory, client_of: list[httpx.Client]
) -> None:
    proxy = wan_proxy(registry, delay=0.001, rate_rule=RateRule(1, retry_after=1))
    client = _client(client_of, proxy.host)
    assert client.get("/v2/").status_code == 200
    assert client.head("/v2/").status_code == 429
    # A body after the HEAD's answer would be read as this answer's status line.
    followed = client.get("/v2/")
    assert followed.status_code in (200, 429)
    assert proxy.stats.connections == 1


def test_a_rejected_request_waiting_for_continue_ends_its_connection(
    registry: LocalRegistry, wan_proxy: WanProxyFactory
) -> None:
    proxy = wan_proxy(registry, delay=0.001, rate_rule=RateRule(1, retry_after=1))
    host, port = proxy.host.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = f"GET /v2/ HTTP/1.1\r\nHost: {proxy.host}\r\n\r\n".encode()
        sock.sendall(head)
        first = b""
        while not first.endswith(b"\r\n\r\n{}"):  # no pipelining: the answer comes first
            first += sock.recv(65536)
        put_head = (
            f"PUT /v2/x/blobs/uploads/u HTTP/1.1\r\nHost: {proxy.host}\r\n"
            "Content-Length: 10\r\nExpect: 100-continue\r\n\r\n"
        ).encode()
        sock.sendall(put_head)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert first.startswith(b"HTTP/1.1 200")
    # The rule's answer, and then the end (the body the client held back never came).
    assert received.startswith(b"HTTP/1.1 429 Too Many Requests")
    assert b"Connection: close" in received
    assert proxy.stats.rejected == 1
    assert proxy.stats.forwarded == 1


def _exchange_raw(host: str, data: bytes) -> bytes:
    """Send ``data``, half-close, and return everything the other side says until it closes."""
    name, port = host.rsplit(":", 1)
    with socket.create_connection((name, int(port)), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_a_stream_that_is_not_http_gets_the_registrys_own_answer(
    registry: LocalRegistry, wan_proxy: WanProxyFactory
) -> None:
    # The start of a TLS ClientHello, as skopeo sends when it tries https first: no request
    # line, no blank line. Waiting for one would hang the client until its timeout.
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64)
    proxy = wan_proxy(registry, delay=0.001)
    answer = _exchange_raw(proxy.host, hello)
    assert answer == _exchange_raw(registry.host, hello)
    assert answer.startswith(b"HTTP/1.1 400")
    assert proxy.stats.forwarded == 1


def test_the_bandwidth_cap_holds_from_below(
    registry: LocalRegistry, wan_proxy: WanProxyFactory, client_of: list[httpx.Client]
) -> None:
    direct = _client(client_of, registry.host)
    name = _name()
    data = os.urandom(MiB)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = direct.post(f"/v2/{name}/blobs/uploads/")
    location = start.headers["location"]
    assert direct.put(f"{location}&digest={digest}", content=data).status_code == 201
    bandwidth = 512 * 1024
    proxy = wan_proxy(registry, delay=0.001, bandwidth=bandwidth)
    client = _client(client_of, proxy.host)
    started = time.monotonic()
    assert _get_blob(client, name, digest) == (digest, len(data))
    # 1 MiB at 512 KiB/s; less one pacing piece (1/50 s) of slack.
    assert time.monotonic() - started >= 0.95 * len(data) / bandwidth
