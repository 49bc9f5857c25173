"""oras-py's auth modules and backend protocol, against a real htpasswd registry.

A backend written for oras-py answers a challenge with ``authenticate_request(original,
headers, refresh) -> (headers, retry)``; aioras must run one as it is, whether passed as an
object or written as a subclass of ``aioras.auth.token.TokenAuth``.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

import aioras.auth.basic
import aioras.auth.token
import aioras.auth.utils as auth_utils
from aioras.auth import RequestAuthAdapter
from aioras.exceptions import AuthenticationError
from aioras.sync import Registry
from aioras.testing import LocalRegistry

if TYPE_CHECKING:
    from support.harness import BasicAuthUser


def unique(name: str) -> str:
    return f"orasauth/{name}-{uuid.uuid4().hex[:10]}:v1"


class StaticBasic:
    """An oras-py style backend (no aioras base class) answering with fixed credentials."""

    def __init__(self, username: str, password: str) -> None:
        self.value = "Basic " + auth_utils.get_basic_auth(username, password)
        self.calls: list[tuple[str | None, bool]] = []

    def authenticate_request(
        self, original: Any, headers: dict[str, str], refresh: bool = False
    ) -> tuple[dict[str, str], bool]:
        self.calls.append((original.headers.get("Www-Authenticate"), refresh))
        return {**headers, "Authorization": self.value}, True


def test_oras_py_style_backend_object_answers_the_registry_challenge(
    basic_auth_registry: LocalRegistry, htpasswd_user: BasicAuthUser, tmp_cwd: Path
) -> None:
    backend = StaticBasic(htpasswd_user.username, htpasswd_user.password)
    (tmp_cwd / "f.txt").write_bytes(b"adapted")
    target = basic_auth_registry.reference(unique("object"))
    with Registry(insecure=True, auth_backend=backend) as reg:  # type: ignore[arg-type]
        assert isinstance(reg.auth, RequestAuthAdapter)
        assert reg.push(target, files=["f.txt"]).status_code == 201
        asked = len(backend.calls)
        assert reg.get_tags(target) == ["v1"]
    # Asked on the first challenges (uploads run concurrently, so perhaps more than one),
    # never to refresh; once answered, the answer was sent up front without asking again.
    assert asked >= 1
    assert len(backend.calls) == asked
    for challenge, refresh in backend.calls:
        assert challenge is not None
        assert challenge.lower().startswith("basic")
        assert refresh is False


def test_token_auth_subclass_overriding_authenticate_request_is_asked(
    basic_auth_registry: LocalRegistry, htpasswd_user: BasicAuthUser
) -> None:
    asked: list[bool] = []

    class MyBackend(aioras.auth.token.TokenAuth):
        def authenticate_request(
            self, original: Any, headers: dict[str, str] | None = None, refresh: bool = False
        ) -> tuple[dict[str, str], bool]:
            asked.append(refresh)
            raw = f"{htpasswd_user.username}:{htpasswd_user.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}, True

    with Registry(basic_auth_registry.host, insecure=True, auth_backend=MyBackend()) as reg:
        assert reg.ping().status_code == 200
    assert asked == [False]


def test_refused_answer_of_an_oras_py_backend_is_an_authentication_error(
    basic_auth_registry: LocalRegistry, htpasswd_user: BasicAuthUser
) -> None:
    backend = StaticBasic(htpasswd_user.username, "wrong-password")
    with (
        Registry(basic_auth_registry.host, insecure=True, auth_backend=backend) as reg,  # type: ignore[arg-type]
        pytest.raises(AuthenticationError),
    ):
        reg.get_tags("orasauth/none")
    # The refused answer led to one more question with refresh=True, answered the same.
    assert [refresh for _, refresh in backend.calls] == [False, True]


def test_an_object_that_is_no_backend_is_refused() -> None:
    with pytest.raises(TypeError, match="authenticate_request"):
        Registry("registry.test", auth_backend=object())  # type: ignore[arg-type]


def test_oras_py_auth_utils_and_protocol_methods() -> None:
    h = auth_utils.parse_auth_header(
        'Bearer realm="https://auth.example/token",service="reg.example",scope="repository:a:pull"'
    )
    assert (h.realm, h.service, h.scope) == (
        "https://auth.example/token",
        "reg.example",
        "repository:a:pull",
    )
    assert auth_utils.get_basic_auth("u", "p") == base64.b64encode(b"u:p").decode()

    class Response:
        headers: ClassVar[dict[str, str]] = {"Www-Authenticate": 'Basic realm="r"'}

    basic = aioras.auth.basic.BasicAuth()
    basic.set_basic_auth("u", "p")
    assert basic.authenticate_request(Response(), {"X": "1"}) == (
        {"X": "1", "Authorization": "Basic dTpw"},
        True,
    )
    token = aioras.auth.token.TokenAuth()
    assert token.authenticate_request(Response(), {}) == ({}, False)  # no credentials
    token.set_basic_auth("u", "p")
    assert token.authenticate_request(Response(), {}) == ({"Authorization": "Basic dTpw"}, True)


class HostileRealm(BaseHTTPRequestHandler):
    """A token realm answering ``GET /flood`` with 64 MiB and ``GET /deep`` nested JSON."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/slow-headers"):
            with contextlib.suppress(OSError):
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(600):  # a header byte every 0.1 s for a minute
                    self.wfile.write(b"a")
                    self.wfile.flush()
                    time.sleep(0.1)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.path.startswith("/deep"):
            body = ('{"token": "t", "x": ' + "[" * 5000 + "]" * 5000 + "}").encode()
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.end_headers()  # no length: read until the connection closes
        if self.path.startswith("/trickle"):
            with contextlib.suppress(OSError):
                for _ in range(600):  # a byte every 0.1 s for a minute
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.1)
            return
        chunk = b" " * (1 << 20)
        with contextlib.suppress(OSError):
            for _ in range(64):
                self.wfile.write(chunk)


@pytest.fixture
def hostile_realm() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HostileRealm)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_oras_py_request_token_refuses_a_flood_and_deep_json_without_raising(
    hostile_realm: str,
) -> None:
    token = aioras.auth.token.TokenAuth(insecure=True)
    deep = auth_utils.parse_auth_header(f'Bearer realm="{hostile_realm}/deep",service="s"')
    assert token.request_token(deep) is None  # not RecursionError
    flood = auth_utils.parse_auth_header(f'Bearer realm="{hostile_realm}/flood",service="s"')
    assert token.request_token(flood) is None  # not 64 MiB read and parsed


def test_oras_py_request_token_gives_up_on_a_trickling_realm(
    hostile_realm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aioras.auth.token, "TOKEN_DEADLINE", 1.0)
    token = aioras.auth.token.TokenAuth(insecure=True)
    for path in ("trickle", "slow-headers"):
        trickle = auth_utils.parse_auth_header(f'Bearer realm="{hostile_realm}/{path}",service="s"')
        started = time.monotonic()
        assert token.request_token(trickle) is None
        assert time.monotonic() - started < 10  # not the minute the realm would take
