"""No secret in an exception message or a log line, ever.

A header value with CR/LF (a token pasted with its newline, a ``registrytoken`` in a Docker
config, a value given to ``set_header``) made httpx refuse the request with an error quoting
the whole header, so the secret reached ``str(exc)`` and the DEBUG retry lines. Such values
are refused when set, with an error that does not quote them; errors wrapped from httpx have
quoted values scrubbed (message, causes, traceback); ``redact_http_logs()`` covers httpcore's
DEBUG lines, which show every response header.

Each test captures every log record at DEBUG and checks the secret appears in none of them,
nor in the error's message, nor in its formatted traceback.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx
import pytest

from aioras import RetryPolicy
from aioras._environment import Environment
from aioras.auth import Authenticator, Credentials
from aioras.client import AsyncOrasClient
from aioras.exceptions import AuthenticationError, InvalidHeaderValue, OrasError, TransportError
from aioras.logger import RedactingFilter, redact_http_logs
from aioras.registry import AsyncRegistry
from support.authtools import unique
from support.catcher import catching

if TYPE_CHECKING:
    from aioras.testing import LocalRegistry

pytestmark = pytest.mark.anyio
SECRET = "s3cr3t-VALUE-0123456789"
FAST = RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.02)


def assert_nowhere(secret: str, error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    """``secret`` is in neither the message, the traceback, nor any captured log line."""
    assert secret not in str(error)
    assert secret not in "".join(traceback.format_exception(error))
    for record in caplog.records:
        assert secret not in record.getMessage(), (record.name, record.levelname)


@pytest.fixture
def everything(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every logger's records at DEBUG (aioras's, httpx's, httpcore's)."""
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.mark.parametrize("value", [f"{SECRET}\n", f"{SECRET}\r\nX-Injected: 1", f"{SECRET}\x00"])
def test_set_header_refuses_a_control_character_without_quoting_the_value(value: str) -> None:
    reg = AsyncRegistry("127.0.0.1:1", insecure=True)
    with pytest.raises(InvalidHeaderValue) as raised:
        reg.set_header("X-Api-Key", value)
    assert raised.value.name == "X-Api-Key"
    assert SECRET not in str(raised.value)
    assert "X-Api-Key" not in reg.headers
    with pytest.raises(InvalidHeaderValue) as raised:
        AsyncRegistry("127.0.0.1:1", insecure=True, headers={"X-Api-Key": value})
    assert SECRET not in str(raised.value)


async def test_a_pasted_token_with_its_newline_is_refused_when_set() -> None:
    async with AsyncOrasClient("127.0.0.1:1", insecure=True) as client:
        with pytest.raises(InvalidHeaderValue) as raised:
            client.set_token_auth(f"{SECRET}\n")
    assert SECRET not in str(raised.value)


async def test_a_registrytoken_with_a_newline_in_a_docker_config_never_shows(
    registry: LocalRegistry, docker_env: Environment, everything: pytest.LogCaptureFixture
) -> None:
    config = docker_env.docker_config_file
    config.parent.mkdir(parents=True, exist_ok=True)
    entry = {"registrytoken": f"{SECRET}\r\n"}
    config.write_text(json.dumps({"auths": {registry.host: entry}}), encoding="utf-8")
    async with AsyncRegistry(
        registry.host, insecure=True, environment=docker_env, retry=FAST
    ) as reg:
        with pytest.raises(InvalidHeaderValue) as raised:
            await reg.get_tags(f"{registry.host}/{unique('sec/cfg')}")
    assert str(config) in str(raised.value)
    assert_nowhere(SECRET, raised.value, everything)


async def test_a_token_with_a_newline_from_the_token_service_never_shows(
    docker_env: Environment, everything: pytest.LogCaptureFixture
) -> None:
    with catching(challenge='Bearer realm="{origin}/token"', token=f"{SECRET}\r\n") as hostile:
        host = f"127.0.0.1:{hostile.port}"
        async with AsyncRegistry(host, insecure=True, environment=docker_env, retry=FAST) as reg:
            with pytest.raises(AuthenticationError) as raised:
                await reg.get_tags(f"{host}/sec/token")
    assert [s.path.split("?")[0] for s in hostile.seen()] == ["/v2/sec/token/tags/list", "/token"]
    assert_nowhere(SECRET, raised.value, everything)


class _PastedToken(Authenticator):
    """A custom backend whose token kept its newline."""

    async def authorize(
        self, client: httpx.AsyncClient, host: str, scopes: tuple[str, ...]
    ) -> str | None:
        return f"Bearer {SECRET}\n"


async def test_a_custom_backend_authorization_with_a_newline_never_shows(
    registry: LocalRegistry, docker_env: Environment, everything: pytest.LogCaptureFixture
) -> None:
    async with AsyncRegistry(
        registry.host,
        insecure=True,
        environment=docker_env,
        retry=FAST,
        auth_backend=_PastedToken(),
    ) as reg:
        with pytest.raises(InvalidHeaderValue) as raised:
            await reg.get_tags(f"{registry.host}/{unique('sec/custom')}")
    assert raised.value.name == "Authorization"
    assert_nowhere(SECRET, raised.value, everything)


@pytest.fixture
def redacting() -> Iterator[None]:
    """``redact_http_logs()`` for one test; the filters it installed are removed after."""
    names = [n for n in logging.root.manager.loggerDict if n in ("httpx",) or "httpcore" in n]
    names += ["httpx", "httpcore.http11", "httpcore.connection"]
    before = {n: list(logging.getLogger(n).filters) for n in set(names)}
    redact_http_logs()
    try:
        yield
    finally:
        for name in before:
            target = logging.getLogger(name)
            target.filters[:] = [
                f for f in target.filters if not isinstance(f, RedactingFilter)
            ] + [f for f in before[name] if isinstance(f, RedactingFilter)]


@contextmanager
def malformed_header_server() -> Iterator[int]:
    """Answers every request with a header line that has no colon and holds the secret."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nX-Session " + SECRET.encode() + b"\r\n"
                        b"Content-Length: 0\r\n\r\n"
                    )
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


async def test_a_wrapped_transport_error_never_quotes_a_header(
    docker_env: Environment, everything: pytest.LogCaptureFixture, redacting: None
) -> None:
    # redact_http_logs() for httpcore's own DEBUG line of the failure; aioras's retry
    # lines and the error need no help.
    with malformed_header_server() as port:
        host = f"127.0.0.1:{port}"
        async with AsyncRegistry(host, insecure=True, environment=docker_env, retry=FAST) as reg:
            with pytest.raises(TransportError) as raised:
                await reg.get_tags(f"{host}/sec/line")
    assert "RemoteProtocolError" in str(raised.value)
    retries = [r for r in everything.records if "retry" in r.getMessage()]
    assert len(retries) == FAST.attempts
    assert_nowhere(SECRET, raised.value, everything)


async def test_redact_http_logs_hides_a_presigned_location_in_httpcore_debug_lines(
    docker_env: Environment, everything: pytest.LogCaptureFixture, redacting: None
) -> None:
    signature = f"X-Amz-Signature={SECRET}"
    with catching(status=200, body=b"blob bytes") as storage:
        location = storage.url(f"/bucket/blob?{signature}")
        with catching(status=307, headers=[("Location", location)]) as registry:
            host = f"127.0.0.1:{registry.port}"
            async with AsyncRegistry(host, insecure=True, environment=docker_env) as reg:
                response = await reg.do_request(f"http://{host}/v2/sec/blobs/sha256:{'a' * 64}")
    assert response.content == b"blob bytes"
    lines = [r.getMessage() for r in everything.records if r.name.startswith("httpcore")]
    assert any("receive_response_headers.complete" in line for line in lines)
    assert any(f"{storage.origin}/bucket/blob" in line for line in lines)
    for record in everything.records:
        assert SECRET not in record.getMessage(), record.name


def test_errors_here_are_oras_errors() -> None:
    # Catching OrasError catches the refusals above: they are part of the one tree.
    assert issubclass(InvalidHeaderValue, OrasError)
    assert issubclass(InvalidHeaderValue, ValueError)
    with pytest.raises(InvalidHeaderValue):
        Credentials(registry_token=f"{SECRET}\n")
