"""CA bundles and proxies from the environment, honoured as requests (so oras-py) honours them.

A private CA given through ``REQUESTS_CA_BUNDLE`` must verify the registry; ``HTTP_PROXY``
must carry the requests, ``NO_PROXY`` must exempt hosts; explicit arguments win.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import certifi
import httpx
import pytest

from aioras._environment import read_environment
from aioras._http.proxies import bypasses_proxy, proxy_for
from aioras.exceptions import ConnectError
from aioras.sync import Registry
from aioras.testing import LocalRegistry

if TYPE_CHECKING:
    from support.harness import TLSFiles

NETWORK_VARIABLES = (
    "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY",
    "https_proxy", "http_proxy", "all_proxy", "no_proxy",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
)  # fmt: skip


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in NETWORK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_environment_reads_the_variables_requests_reads() -> None:
    env = read_environment(
        {
            "https_proxy": "http://lower:1",
            "HTTPS_PROXY": "http://upper:1",
            "HTTP_PROXY": "http://plain:2",
            "ALL_PROXY": "socks5://all:3",
            "NO_PROXY": "internal.example,127.0.0.1",
            "CURL_CA_BUNDLE": "/curl.pem",
            "REQUESTS_CA_BUNDLE": "/requests.pem",
            "SSL_CERT_FILE": "/ssl.pem",
        }
    )
    assert env.https_proxy == "http://lower:1"  # lower case first, as urllib reads them
    assert env.http_proxy == "http://plain:2"
    assert env.all_proxy == "socks5://all:3"
    assert env.default_verify() == "/requests.pem"
    assert (
        read_environment({"CURL_CA_BUNDLE": "/c", "SSL_CERT_FILE": "/s"}).default_verify() == "/c"
    )
    assert read_environment({"SSL_CERT_DIR": "/d"}).default_verify() == "/d"
    assert read_environment({}).default_verify() is True
    assert not read_environment({}).has_proxies


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypassed"),
    [
        ("example.com", "example.com", 443, True),
        ("example.com", "reg.example.com", 443, True),
        (".example.com", "reg.example.com", 443, True),
        ("example.com", "badexample.com", 443, False),
        ("127.0.0.1:5000", "127.0.0.1", 5000, True),
        ("127.0.0.1:5000", "127.0.0.1", 5001, False),
        ("*", "anything.test", None, True),
        ("", "example.com", 443, False),
        (" a.test , b.test ", "b.test", 80, True),
    ],
)
def test_no_proxy_matching(no_proxy: str, host: str, port: int | None, bypassed: bool) -> None:
    assert bypasses_proxy(no_proxy, host, port) is bypassed


def test_proxy_for_picks_by_scheme_then_all_proxy() -> None:
    env = read_environment(
        {"HTTPS_PROXY": "http://s:1", "ALL_PROXY": "http://a:2", "NO_PROXY": "x.test"}
    )
    assert proxy_for(env, httpx.URL("https://reg.test/v2/")) == "http://s:1"
    assert proxy_for(env, httpx.URL("http://reg.test/v2/")) == "http://a:2"
    assert proxy_for(env, httpx.URL("https://x.test/v2/")) is None


def test_requests_ca_bundle_verifies_a_private_ca(
    tls_registry: LocalRegistry, tls_files: TLSFiles, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("REQUESTS_CA_BUNDLE", str(tls_files.cert))
    with Registry(tls_registry.host) as reg:
        assert reg.ping().status_code == 200


def test_explicit_tls_verify_wins_over_the_environment(
    tls_registry: LocalRegistry, tls_files: TLSFiles, clean_env: pytest.MonkeyPatch
) -> None:
    # The public CA set does not trust the registry's self-signed certificate.
    clean_env.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    with Registry(tls_registry.host) as reg, pytest.raises(ConnectError):
        reg.ping()
    with Registry(tls_registry.host, tls_verify=str(tls_files.cert)) as reg:
        assert reg.ping().status_code == 200
    with Registry(tls_registry.host, tls_verify=False) as reg:
        assert reg.ping().status_code == 200


class _RecordingProxy(socketserver.ThreadingTCPServer):
    """A forward proxy that only records request lines and answers 200 itself."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.lines: list[str] = []


class _ProxyHandler(socketserver.StreamRequestHandler):
    server: _RecordingProxy

    def handle(self) -> None:
        line = self.rfile.readline().decode("latin-1").strip()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        self.server.lines.append(line)
        body = b"{}"
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )


@pytest.fixture
def recording_proxy() -> Iterator[_RecordingProxy]:
    server = _RecordingProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_http_proxy_carries_requests_and_no_proxy_exempts_hosts(
    registry: LocalRegistry, recording_proxy: _RecordingProxy, clean_env: pytest.MonkeyPatch
) -> None:
    proxy_url = f"http://127.0.0.1:{recording_proxy.server_address[1]}"
    clean_env.setenv("HTTP_PROXY", proxy_url)
    with Registry(registry.host, insecure=True) as reg:
        assert reg.ping().status_code == 200
    assert recording_proxy.lines == [f"GET http://{registry.host}/v2/ HTTP/1.1"]

    clean_env.setenv("NO_PROXY", "127.0.0.1")
    with Registry(registry.host, insecure=True) as reg:
        response = reg.ping()
    # Answered by the registry itself this time.
    assert response.headers.get("docker-distribution-api-version") == "registry/2.0"
    assert len(recording_proxy.lines) == 1

    # An explicit proxy= argument wins over NO_PROXY.
    with Registry(registry.host, insecure=True, proxy=proxy_url) as reg:
        assert reg.ping().status_code == 200
    assert len(recording_proxy.lines) == 2
