"""A registry with the referrers API: a loopback proxy adding it in front of the CNCF registry.

The CNCF registry (distribution 2.8) has no referrers API. :class:`ReferrersRegistry`
forwards every request to it unchanged (the ``Host`` header too, so upload ``Location`` s
come back through the proxy) and adds what a registry with the API does:

- a manifest PUT whose body has a ``subject`` is answered with ``OCI-Subject: <digest>``
  and indexed as that subject's referrer (``artifactType``, else the config media type,
  and the manifest's annotations);
- ``GET /v2/<name>/referrers/<digest>`` answers an image index of those referrers, with
  ``?artifactType=`` applied and ``OCI-Filters-Applied: artifactType`` when
  ``filters_applied`` (else the filter is ignored, as the spec allows), in pages of
  ``page_size`` linked by ``Link: <...>; rel="next"``;
- a manifest DELETE takes the manifest out of every referrers list.

Bodies are held whole (test artifacts are small). Runs on threads, so sync peers (oras-py,
skopeo) and async tests can use it alike. ``requests`` records ``(method, path?query)``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from aioras.testing import LocalRegistry

__all__ = ["ReferrersRegistry"]

INDEX = "application/vnd.oci.image.index.v1+json"
_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/?]+)$")
_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/?]+)$")
_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length"}


class ReferrersRegistry:
    """The referrers API over a running :class:`LocalRegistry`; use as a context manager."""

    def __init__(
        self, upstream: LocalRegistry, *, filters_applied: bool = True, page_size: int = 2
    ) -> None:
        assert upstream.port is not None, "the registry is not running"
        self.upstream = ("127.0.0.1", upstream.port)
        self.filters_applied = filters_applied
        self.page_size = page_size
        self.requests: list[tuple[str, str]] = []
        # (repository, subject digest) -> referrer digest -> descriptor
        self.referrers: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    def reference(self, name: str) -> str:
        return f"{self.host}/{name.lstrip('/')}"

    def start(self) -> ReferrersRegistry:
        owner = self

        class Handler(_Handler):
            registry = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> ReferrersRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def api_calls(self) -> list[str]:
        """Paths (with queries) of the referrers API requests received."""
        return [p for m, p in self.requests if m == "GET" and "/referrers/" in p]

    # -- what the proxy adds -------------------------------------------------------------
    def record(self, name: str, media_type: str, body: bytes) -> str | None:
        """Index a stored manifest when it has a subject; return the subject's digest."""
        try:
            doc = json.loads(body)
        except ValueError:
            return None
        subject = doc.get("subject") if isinstance(doc, dict) else None
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
            return None
        digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
        entry: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(body)}
        config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
        artifact_type = doc.get("artifactType") or config.get("mediaType")
        if artifact_type:
            entry["artifactType"] = artifact_type
        if doc.get("annotations"):
            entry["annotations"] = doc["annotations"]
        with self._lock:
            self.referrers.setdefault((name, subject["digest"]), {})[digest] = entry
        return str(subject["digest"])

    def forget(self, name: str, digest: str) -> None:
        with self._lock:
            for (repo, _), entries in self.referrers.items():
                if repo == name:
                    entries.pop(digest, None)

    def page(
        self, name: str, subject: str, query: dict[str, list[str]]
    ) -> tuple[bytes, dict[str, str]]:
        with self._lock:
            entries = list(self.referrers.get((name, subject), {}).values())
        headers = {"Content-Type": INDEX}
        wanted = (query.get("artifactType") or [None])[0]
        if wanted and self.filters_applied:
            entries = [e for e in entries if e.get("artifactType") == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        start = int((query.get("page") or ["0"])[0])
        chunk = entries[start : start + self.page_size]
        if start + self.page_size < len(entries):
            params = {"page": str(start + self.page_size)}
            if wanted:
                params["artifactType"] = wanted
            headers["Link"] = (
                f'</v2/{name}/referrers/{subject}?{urllib.parse.urlencode(params)}>; rel="next"'
            )
        index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": chunk}
        return json.dumps(index).encode(), headers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    registry: ReferrersRegistry

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        owner = self.registry
        url = urllib.parse.urlsplit(self.path)
        owner.requests.append((self.command, self.path))
        body = self._body()
        found = _REFERRERS.match(url.path)
        if found and self.command == "GET":
            data, headers = owner.page(
                found["name"], found["digest"], urllib.parse.parse_qs(url.query)
            )
            self._reply(200, headers, data)
            return
        status, headers, data = self._forward(body)
        manifest = _MANIFEST.match(url.path)
        if manifest and self.command == "PUT" and status == 201:
            media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            subject = owner.record(manifest["name"], media_type, body)
            if subject:
                headers["OCI-Subject"] = subject
        if manifest and self.command == "DELETE" and status == 202:
            owner.forget(manifest["name"], manifest["ref"])
        self._reply(status, headers, data)

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(*self.registry.upstream, timeout=60)
        try:
            # Header by header: peers repeat some (skopeo sends several Accept lines).
            connection.putrequest(
                self.command, self.path, skip_host=True, skip_accept_encoding=True
            )
            for key, value in self.headers.items():
                if key.lower() not in _HOP:
                    connection.putheader(key, value)
            if body or self.command in ("PUT", "POST", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            data = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in _HOP}
            if self.command == "HEAD" and response.getheader("Content-Length"):
                # No body, but the size of the one a GET would bring.
                kept["Content-Length"] = str(response.getheader("Content-Length"))
            return response.status, kept, data
        finally:
            connection.close()
