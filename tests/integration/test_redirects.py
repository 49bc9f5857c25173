"""Blob downloads redirected to another origin carry no ``Authorization`` header.

The CNCF registry with the filesystem driver serves blobs itself, so a small proxy on
loopback stands in front of it: it passes every request through, except that a blob GET
the registry would answer 200 is answered ``307`` to a second loopback origin, the storage
stand-in, which records the headers it receives and serves the blob's bytes.
"""

from __future__ import annotations

import base64
import http.client
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from aioras._environment import Environment
from aioras.registry import AsyncRegistry
from support.authtools import TokenRegistry, unique

if TYPE_CHECKING:
    from aioras.testing import LocalRegistry
    from support.harness import BasicAuthUser

pytestmark = pytest.mark.anyio
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "upgrade"})


@dataclass
class Seen:
    """What one stand-in server received: (method, path, headers) per request."""

    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, method: str, path: str, headers: Any) -> None:
        with self.lock:
            self.requests.append((method, path, {k.lower(): v for k, v in headers.items()}))


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


Answer = tuple[int, list[tuple[str, str]], bytes]


def upstream(port: int, method: str, path: str, headers: dict[str, str]) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


@contextmanager
def storage_stand_in(
    registry_port: int, upstream_auth: Callable[[str], str], seen: Seen
) -> Iterator[int]:
    """Serves ``/bucket/<name>/blobs/<digest>`` with bytes it fetches from the registry."""

    class Storage(_Quiet):
        def do_GET(self) -> None:
            seen.add("GET", self.path, self.headers)
            name, _, digest = (
                self.path.split("?", 1)[0].removeprefix("/bucket/").rpartition("/blobs/")
            )
            status, _, body = upstream(
                registry_port,
                "GET",
                f"/v2/{name}/blobs/{digest}",
                {"Authorization": upstream_auth(name)},
            )
            self.reply(status, [("Content-Type", "application/octet-stream")], body)

    with serving(Storage) as port:
        yield port


@contextmanager
def redirecting_proxy(registry_port: int, storage_port: int, seen: Seen) -> Iterator[int]:
    """Passes GET/HEAD through to the registry, redirecting blob GETs to the storage origin."""

    class Proxy(_Quiet):
        def forward(self) -> None:
            seen.add(self.command, self.path, self.headers)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            is_blob_get = self.command == "GET" and "/blobs/sha256:" in self.path
            status, answer_headers, body = upstream(
                registry_port, "HEAD" if is_blob_get else self.command, self.path, headers
            )
            if is_blob_get and status == 200:
                name, _, digest = self.path.removeprefix("/v2/").rpartition("/blobs/")
                location = (
                    f"http://127.0.0.1:{storage_port}/bucket/{name}/blobs/{digest}"
                    "?X-Amz-Signature=presigned"
                )
                self.reply(307, [("Location", location)], b"")
                return
            self.reply(status, answer_headers, body)

        do_GET = forward
        do_HEAD = forward

    with serving(Proxy) as port:
        yield port


@dataclass
class Setup:
    registry_port: int
    auth_header: Callable[[str], str]
    configure: Callable[[AsyncRegistry], None]


@pytest.fixture(params=["basic", "token"])
def setup(request: pytest.FixtureRequest) -> Setup:
    """A registry requiring basic auth, or bearer tokens, and how to authenticate to it."""
    if request.param == "basic":
        reg: LocalRegistry = request.getfixturevalue("basic_auth_registry")
        user: BasicAuthUser = request.getfixturevalue("htpasswd_user")
        basic = "Basic " + base64.b64encode(f"{user.username}:{user.password}".encode()).decode()
        return Setup(
            reg.port or 0,
            lambda name: basic,
            lambda c: c.set_basic_auth(user.username, user.password),
        )
    tr: TokenRegistry = request.getfixturevalue("token_registry")
    return Setup(
        tr.registry.port or 0,
        lambda name: "Bearer " + tr.issuer.mint(tr.username, [f"repository:{name}:pull"])[0],
        lambda c: c.set_basic_auth(tr.username, tr.password),
    )


async def test_blob_redirect_to_storage_drops_authorization(
    setup: Setup, docker_env: Environment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    payload = b"redirected blob " * 4096
    (work / "big.bin").write_bytes(payload)
    monkeypatch.chdir(work)
    name = f"private/{unique('redirect')}"
    direct = f"127.0.0.1:{setup.registry_port}"

    async with AsyncRegistry(direct, insecure=True, environment=docker_env) as reg:
        setup.configure(reg)
        await reg.push(f"{direct}/{name}:v1", files=["big.bin"])

    storage_seen, proxy_seen = Seen(), Seen()
    with (
        storage_stand_in(setup.registry_port, setup.auth_header, storage_seen) as storage,
        redirecting_proxy(setup.registry_port, storage, proxy_seen) as proxy,
    ):
        via_proxy = f"127.0.0.1:{proxy}"
        async with AsyncRegistry(via_proxy, insecure=True, environment=docker_env) as reg:
            setup.configure(reg)
            pulled = await reg.pull(f"{via_proxy}/{name}:v1", outdir=str(work / "out"))

    assert [Path(p).name for p in pulled] == ["big.bin"]
    assert (work / "out" / "big.bin").read_bytes() == payload
    assert storage_seen.requests, "the blob was not fetched from the storage origin"
    for _, path, headers in storage_seen.requests:
        assert "authorization" not in headers, path
    blob_gets = [h for m, p, h in proxy_seen.requests if m == "GET" and "/blobs/" in p]
    assert blob_gets
    assert all("authorization" in h for h in blob_gets[-len(storage_seen.requests) :])
