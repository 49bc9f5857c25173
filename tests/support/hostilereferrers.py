"""A hostile registry serving the referrers API over generated graphs, counting what it is asked.

No CNCF registry behind it: every manifest is made up on the spot, from the digest asked
about, so a walk can be led as far as the server likes. One repository, ``graph``; the root
manifest is tagged ``v1``; every manifest's config and one layer are the empty blob ``{}``.

Shapes (``shape=``):

- ``"endless"``: every digest has one referrer, fresh each level (its subject is that
  digest), forever;
- ``"chain"``: the same, ``length`` referrers long, then none;
- ``"dag"``: ``levels`` levels of two manifests below the root; each manifest of a level
  lists both of the next level as its referrers, so the graph has ``1 + 2 * levels``
  distinct manifests but ``2 ** (levels + 1) - 1`` paths from the root.

``requests`` records ``(method, path)``; :meth:`manifest_fetches` and
:meth:`referrer_listings` count the kinds a walk makes. Runs on threads, like
:class:`~support.referrersregistry.ReferrersRegistry`.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["HostileReferrers"]

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
ARTIFACT = "application/vnd.example.generated"
_EMPTY = b"{}"
EMPTY = {
    "mediaType": EMPTY_TYPE,
    "digest": "sha256:" + hashlib.sha256(_EMPTY).hexdigest(),
    "size": len(_EMPTY),
}
_PATH = re.compile(r"^/v2/graph/(?P<kind>manifests|blobs|referrers)/(?P<ref>[^/?]+)")


def _manifest(subject: dict[str, Any] | None, label: str) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": ARTIFACT,
        "config": EMPTY,
        "layers": [EMPTY],
        "annotations": {"label": label},
    }
    if subject is not None:
        doc["subject"] = subject
    return json.dumps(doc).encode()


class HostileReferrers:
    """The hostile registry; use as a context manager. ``host`` is ``127.0.0.1:PORT``."""

    def __init__(self, shape: str, *, length: int = 0, levels: int = 0) -> None:
        assert shape in ("endless", "chain", "dag")
        self.shape, self.length, self.levels = shape, length, levels
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        # digest -> (bytes, depth below the root, position in its level)
        self.manifests: dict[str, tuple[bytes, int, int]] = {}
        self._dag: list[list[dict[str, Any]]] = []
        self.root = self._store(_manifest(None, "root"), 0, 0)
        if shape == "dag":
            self._dag = [[self.root]]
            for level in range(1, levels + 1):
                subject = self._dag[-1][0]
                self._dag.append(
                    [self._store(_manifest(subject, f"{level}.{i}"), level, i) for i in (0, 1)]
                )
        self._server: ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    def _store(self, data: bytes, depth: int, position: int) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with self._lock:
            self.manifests[digest] = (data, depth, position)
        return {"mediaType": MANIFEST, "digest": digest, "size": len(data)}

    def _descriptor(self, digest: str) -> dict[str, Any]:
        data, _, _ = self.manifests[digest]
        return {"mediaType": MANIFEST, "digest": digest, "size": len(data)}

    def referrers_of(self, digest: str) -> list[dict[str, Any]]:
        """What the referrers API lists for ``digest`` (generating it on demand)."""
        if digest not in self.manifests:
            return []
        _, depth, _ = self.manifests[digest]
        if self.shape == "dag":
            below = self._dag[depth + 1] if depth < self.levels else []
            return [{**d, "artifactType": ARTIFACT} for d in below]
        if self.shape == "chain" and depth >= self.length:
            return []
        made = self._store(_manifest(self._descriptor(digest), str(depth + 1)), depth + 1, 0)
        return [{**made, "artifactType": ARTIFACT}]

    def manifest_fetches(self) -> int:
        return sum(1 for m, p in self.requests if m == "GET" and "/manifests/" in p)

    def referrer_listings(self) -> int:
        return sum(1 for m, p in self.requests if m == "GET" and "/referrers/" in p)

    def __enter__(self) -> HostileReferrers:
        owner = self

        class Handler(_Handler):
            registry = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write (flushed after each request): written apart, the
    # client's delayed ACK holds every answer back by tens of milliseconds.
    wbufsize = 1 << 16
    registry: HostileReferrers

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.registry
        with owner._lock:
            owner.requests.append((self.command, self.path))
        found = _PATH.match(self.path)
        if self.path.rstrip("/") == "/v2":
            self._reply(200, "application/json", b"{}")
        elif found is None:
            self._reply(404, "application/json", b'{"errors": [{"code": "NAME_UNKNOWN"}]}')
        elif found["kind"] == "blobs" and found["ref"] == EMPTY["digest"]:
            self._reply(200, "application/octet-stream", _EMPTY, found["ref"])
        elif found["kind"] == "referrers":
            index = {
                "schemaVersion": 2,
                "mediaType": INDEX,
                "manifests": owner.referrers_of(found["ref"]),
            }
            self._reply(200, INDEX, json.dumps(index).encode())
        elif found["kind"] == "manifests":
            ref = found["ref"]
            digest = owner.root["digest"] if ref == "v1" else ref
            entry = owner.manifests.get(digest)
            if entry is None:
                self._reply(404, "application/json", b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}')
            else:
                self._reply(200, MANIFEST, entry[0], digest)
        else:
            self._reply(404, "application/json", b'{"errors": [{"code": "BLOB_UNKNOWN"}]}')

    do_HEAD = do_GET

    def _reply(self, status: int, content_type: str, body: bytes, digest: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if digest:
            self.send_header("Docker-Content-Digest", digest)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
