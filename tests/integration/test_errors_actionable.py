"""The errors a newcomer meets first say what is wrong and what to do, and come quickly."""

from __future__ import annotations

import contextlib
import http.server
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import aioras
from aioras import exceptions as exc
from aioras.container import Container
from aioras.testing import LocalRegistry
from support.clitools import aioras as run_cli


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def resolve(reference: str, *, insecure: bool) -> None:
    async def main() -> None:
        async with aioras.AsyncRegistry(insecure=insecure) as reg:
            await reg.resolve(reference)

    anyio.run(main)


def retries_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "; retry " in r.getMessage()]


def test_connection_refused_fails_fast_saying_nothing_listens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    caplog.set_level(logging.DEBUG, logger="aioras")
    started = time.monotonic()
    with pytest.raises(exc.ConnectError) as raised:
        resolve(f"127.0.0.1:{port}/nothing/here:v1", insecure=True)
    assert time.monotonic() - started < 2.0
    assert f"nothing listens on 127.0.0.1:{port}" in str(raised.value)
    assert len(retries_logged(caplog)) <= 1


def test_unresolvable_name_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aioras")
    with pytest.raises(exc.ConnectError) as raised:
        resolve("no-such-host.invalid:5000/a/b:v1", insecure=True)
    assert "the host name no-such-host.invalid does not resolve" in str(raised.value)
    assert retries_logged(caplog) == []


@pytest.mark.integration
def test_tls_to_a_plain_http_registry_names_insecure_and_plain_http(
    registry: LocalRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aioras")
    started = time.monotonic()
    with pytest.raises(exc.ConnectError) as raised:
        resolve(f"{registry.host}/a/b:v1", insecure=False)
    assert time.monotonic() - started < 2.0
    message = str(raised.value)
    assert f"{registry.host} speaks plain http" in message
    assert "insecure=True" in message
    assert "--plain-http" in message
    assert retries_logged(caplog) == []


class _HangUp:
    """A server that accepts each connection and hangs up at once, answering nothing."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed: the test is over
            self.accepted += 1
            threading.Thread(target=self._hang_up, args=(conn,), daemon=True).start()

    @staticmethod
    def _hang_up(conn: socket.socket) -> None:
        # FIN at once, nothing written; closed once the client has gone (no RST instead).
        with conn:
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(10)
            with contextlib.suppress(OSError):
                while conn.recv(65536):
                    pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.sock.close()
        self._thread.join(5)


@pytest.fixture
def hang_up_server() -> Iterator[_HangUp]:
    server = _HangUp()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("insecure", [True, False], ids=["plain-http", "https"])
def test_a_server_that_hangs_up_fails_typed_after_one_or_two_quick_retries(
    hang_up_server: _HangUp, insecure: bool
) -> None:
    with pytest.raises(exc.ConnectError) as raised:
        resolve(f"{hang_up_server.host}/a/b:v1", insecure=insecure)
    message = str(raised.value)
    assert "closed the connection without answering" in message
    assert "is it an OCI registry" in message
    assert "Error" not in message.replace("ConnectError", "")  # no httpx class name
    # The first try and at most two retries, not the full ladder of five.
    assert 1 <= hang_up_server.accepted <= 3


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain static web server on loopback (what a wrong port often reaches)."""
    handler = lambda *a, **k: _Quiet(*a, directory=str(tmp_path), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def test_web_server_answering_404_is_not_an_oci_registry(web_server: tuple[str, Path]) -> None:
    host, _ = web_server
    with pytest.raises(exc.NotARegistry) as raised:
        resolve(f"{host}/a/b:v1", insecure=True)
    assert f"{host} is not an OCI registry" in str(raised.value)
    assert "404" in str(raised.value)


def test_web_server_answering_html_at_v2_is_not_an_oci_registry(
    web_server: tuple[str, Path],
) -> None:
    host, root = web_server
    (root / "v2").mkdir()
    (root / "v2" / "index.html").write_text("<html><body>welcome</body></html>")
    with pytest.raises(exc.NotARegistry) as raised:
        resolve(f"{host}/a/b:v1", insecure=True)
    assert f"{host} is not an OCI registry (GET /v2/ answered 200 with an HTML page)" in str(
        raised.value
    )


@pytest.mark.integration
def test_a_registry_404_stays_not_found(registry: LocalRegistry) -> None:
    with pytest.raises(exc.NotFoundError) as raised:
        resolve(f"{registry.host}/errors/absent:v1", insecure=True)
    assert not isinstance(raised.value, exc.NotARegistry)


@pytest.mark.integration
def test_push_outside_the_working_directory_names_disable_path_validation(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    async def main() -> None:
        async with aioras.AsyncRegistry(insecure=True) as reg:
            await reg.push(f"{registry.host}/errors/path:v1", files=[str(outside)])

    with pytest.raises(exc.UnsafePathError) as raised:
        anyio.run(main)
    assert "disable_path_validation=True" in str(raised.value)
    assert str(outside) in str(raised.value)


@pytest.mark.parametrize("scheme", ["http", "https", "HTTPS"])
def test_scheme_in_a_reference_says_to_drop_it_and_use_insecure(scheme: str) -> None:
    with pytest.raises(exc.InvalidReference) as raised:
        Container(f"{scheme}://localhost:5000/a/b:v1")
    assert "drop the scheme" in str(raised.value)
    assert "insecure=True" in str(raised.value)
    with pytest.raises(exc.InvalidReference, match="drop the scheme"):
        aioras.AsyncRegistry(f"{scheme}://localhost:5000").get_container("a/b:v1")


def test_cli_errors_are_one_line_with_the_hint(tmp_path: Path) -> None:
    port = free_port()
    refused = run_cli("resolve", "--plain-http", f"127.0.0.1:{port}/a/b:v1")
    assert refused.status == 1
    assert refused.stderr.count("\n") == 1
    assert f"nothing listens on 127.0.0.1:{port}" in refused.stderr
    scheme = run_cli("resolve", f"http://127.0.0.1:{port}/a/b:v1")
    assert scheme.status == 2
    assert "drop the scheme" in scheme.stderr
    assert "--plain-http" in scheme.stderr
    (tmp_path / "work").mkdir()
    (tmp_path / "f.txt").write_text("x")
    outside = run_cli(
        "push", "--plain-http", f"127.0.0.1:{port}/a/b:v1", "../f.txt", cwd=tmp_path / "work"
    )
    assert outside.status == 1
    assert "--disable-path-validation" in outside.stderr
