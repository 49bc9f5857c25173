"""A hostile origin on loopback that records what it is sent: the credential catcher.

:func:`catching` starts a threaded HTTP/1.1 server on ``127.0.0.1`` (or ``127.0.0.2``, also
loopback) that plays the second origin of the security tests: the server an upload
``Location``, a mount answer or a redirect points to. It records every request (method,
path, headers), answers ``/token`` with an anonymous token, and answers anything else with
``401`` and the configured challenge until it is shown the anonymous token, then with
``status``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ANON_TOKEN", "Catcher", "Seen", "catching"]

ANON_TOKEN = "anonymous-token-from-the-catcher"


@dataclass(frozen=True)
class Seen:
    """One request the catcher received; header names lower-cased."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Catcher:
    """The running catcher: where it listens, what it answers, what it saw."""

    host: str
    challenge: str | None
    status: int
    extra_headers: list[tuple[str, str]]
    body: bytes
    token: str = ANON_TOKEN
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.origin}{path}"

    def record(self, method: str, path: str, headers: Any) -> None:
        with self.lock:
            self.requests.append(Seen(method, path, {k.lower(): v for k, v in headers.items()}))

    def seen(self) -> list[Seen]:
        with self.lock:
            return list(self.requests)

    def headers_seen(self) -> str:
        """Every header line received, as one text (for "the secret appears nowhere")."""
        return "\n".join(f"{k}: {v}" for s in self.seen() for k, v in s.headers.items())


def _handler(catcher: Catcher) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def handle_any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            catcher.record(self.command, self.path, self.headers)
            if self.path.startswith("/token"):
                doc = {"token": catcher.token, "expires_in": 300}
                self.answer(200, [("Content-Type", "application/json")], json.dumps(doc).encode())
                return
            shown = self.headers.get("Authorization") == f"Bearer {ANON_TOKEN}"
            if catcher.challenge and not shown:
                self.answer(401, [("WWW-Authenticate", catcher.challenge)], b"")
                return
            self.answer(catcher.status, catcher.extra_headers, catcher.body)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    return Handler


@contextmanager
def catching(
    *,
    host: str = "127.0.0.1",
    challenge: str | None = None,
    status: int = 404,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    token: str = ANON_TOKEN,
) -> Iterator[Catcher]:
    """Run a catcher; ``challenge`` may name ``{origin}`` (its own ``http://host:port``).

    ``token`` is what its ``/token`` answers (the anonymous token by default).
    """
    catcher = Catcher(host, challenge, status, list(headers or []), body, token)
    server = ThreadingHTTPServer((host, 0), _handler(catcher))
    server.daemon_threads = True
    catcher.port = int(server.server_address[1])
    if catcher.challenge:
        catcher.challenge = catcher.challenge.replace("{origin}", catcher.origin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield catcher
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
