"""A scripted registry on loopback that answers whatever a test tells it to.

For what the real registry will never send: tag and repository names with ESC and OSC
sequences, referrers with hostile ``artifactType`` s, error bodies whose ``message`` steers
the terminal, endless listings. ``answer(method, path, query)`` returns ``(status, headers,
body)`` (a dict or list body is sent as JSON); ``/v2/`` answers 200 unless the script says
otherwise. Runs on threads, so the CLI (a subprocess) and async tests can use it alike;
``requests`` records ``(method, path?query)``.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Answer", "Hostile", "Script", "hostile_registry", "json_answer"]

Answer = tuple[int, dict[str, str], Any]
Script = Callable[[str, str, str], Answer | None]


def json_answer(doc: Any, status: int = 200, **headers: str) -> Answer:
    """A JSON answer (``headers`` given with ``_`` for ``-``)."""
    return status, {k.replace("_", "-"): v for k, v in headers.items()}, doc


@dataclass
class Hostile:
    """The running server: its ``host`` (``127.0.0.1:PORT``) and what it was asked."""

    host: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)

    def ref(self, name: str) -> str:
        return f"{self.host}/{name}"


@contextmanager
def hostile_registry(script: Script) -> Iterator[Hostile]:
    """Serve ``script`` on 127.0.0.1 until the block ends; unscripted paths answer 404."""
    state = Hostile()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            state.requests.append((self.command, self.path))
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            answer = script(self.command, url.path, url.query)
            if answer is None and url.path == "/v2/":
                answer = json_answer({})
            status, headers, body = answer or json_answer(
                {"errors": [{"code": "NAME_UNKNOWN", "message": "unscripted"}]}, 404
            )
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            headers = {"Content-Type": "application/json", **headers}
            for key, value in headers.items():
                # Latin-1, as HTTP carries it: C1 controls (\x9b CSI) travel in header values.
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.host = f"127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
