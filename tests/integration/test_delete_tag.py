"""``delete_tag``: OCI 1.1 tag deletion first, the manifest only where that is refused.

The CNCF registry cannot delete a tag alone (it answers ``DELETE /v2/<name>/manifests/<tag>``
with 400 DIGEST_INVALID, or 405 UNSUPPORTED when deletes are disabled), so there the manifest
goes and a warning names the other tags that went with it. A small loopback registry that does
support tag deletion (202) shows that the manifest stays where the registry can untag.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from aioras import Registry
from aioras.exceptions import NotFoundError, UnsupportedOperation
from aioras.testing import LocalRegistry
from support.harness import RegistryFactory

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"


def repo() -> str:
    return f"deltag/{uuid.uuid4().hex[:10]}"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def push_tags(reg: Registry, name: str, tmp_path: Path) -> str:
    """Push ``v1`` and ``v2`` (one manifest) and ``v3`` (another); return v1's digest."""
    (tmp_path / "a.txt").write_text("shared by v1 and v2\n")
    (tmp_path / "b.txt").write_text("v3 alone\n")
    reg.push(f"{name}:v1", files=[str(tmp_path / "a.txt")], disable_path_validation=True)
    reg.push(f"{name}:v3", files=[str(tmp_path / "b.txt")], disable_path_validation=True)
    manifest = reg.get_manifest(f"{name}:v1")
    reg.upload_manifest(manifest, f"{name}:v2")
    digest = reg.resolve(f"{name}:v1")["digest"]
    assert reg.resolve(f"{name}:v2")["digest"] == digest
    return str(digest)


@pytest.fixture
def reg(registry: LocalRegistry) -> Iterator[Registry]:
    with Registry(registry.host, insecure=True) as r:
        yield r


def test_cncf_registry_deletes_the_manifest_and_warns_with_the_tags_it_took(
    reg: Registry, registry: LocalRegistry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = registry.reference(repo())
    digest = push_tags(reg, name, tmp_path)
    caplog.set_level(logging.WARNING, logger="aioras")

    assert reg.delete_tag(name, "v1") is True

    assert reg.get_tags(name) == ["v3"]  # v2 pointed at the same manifest: gone too
    with pytest.raises(NotFoundError):
        reg.resolve(f"{name}@{digest}")
    [message] = warnings_of(caplog)
    assert "v1" in message
    assert digest in message
    assert re.search(r"\bv2\b", message)
    assert not re.search(r"\bv3\b", message)


def test_cncf_registry_tag_alone_on_its_manifest_goes_without_warning(
    reg: Registry, registry: LocalRegistry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = registry.reference(repo())
    push_tags(reg, name, tmp_path)
    caplog.set_level(logging.WARNING, logger="aioras")

    assert reg.delete_tag(name, "v3") is True
    assert reg.delete_tag(name, "v3") is False
    assert reg.delete_tag(name, "never-pushed") is False
    assert sorted(reg.get_tags(name)) == ["v1", "v2"]
    assert warnings_of(caplog) == []


def test_cncf_registry_with_deletes_disabled_raises_and_keeps_every_tag(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    readonly = registry_factory(delete_enabled=False)
    with Registry(readonly.host, insecure=True) as r:
        name = readonly.reference(repo())
        push_tags(r, name, tmp_path)
        with pytest.raises(UnsupportedOperation):
            r.delete_tag(name, "v1")
        assert sorted(r.get_tags(name)) == ["v1", "v2", "v3"]


# -- a registry that can delete a tag alone ------------------------------------------------


class TaggingRegistry(ThreadingHTTPServer):
    """The manifest endpoints of one in-memory repository, with OCI 1.1 tag deletion.

    ``DELETE /v2/<name>/manifests/<tag>`` removes the tag alone (202); by digest it removes
    the manifest and every tag pointing at it. Every request is noted in :attr:`requests`.
    """

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.manifests: dict[str, bytes] = {}
        self.tags: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def put(self, tag: str, manifest: dict[str, object]) -> str:
        body = json.dumps(manifest).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        with self.lock:
            self.manifests[digest] = body
            self.tags[tag] = digest
        return digest


class _Handler(BaseHTTPRequestHandler):
    server: TaggingRegistry
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _unknown(self) -> None:
        errors = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
        self._answer(404, json.dumps(errors).encode(), {"Content-Type": "application/json"})

    def _route(self) -> tuple[str, str] | None:
        self.server.requests.append((self.command, self.path))
        match = re.fullmatch(r"/v2/(.+)/(manifests|tags)/([^/?]+)(\?.*)?", self.path)
        return (match.group(2), match.group(3)) if match else None

    def do_GET(self) -> None:
        route = self._route()
        if self.path == "/v2/":
            self._answer(200, b"{}", {"Content-Type": "application/json"})
        elif route and route[0] == "tags":
            with self.server.lock:
                tags = sorted(self.server.tags)
            self._answer(200, json.dumps({"name": "x", "tags": tags}).encode())
        elif route:
            with self.server.lock:
                digest = self.server.tags.get(route[1], route[1])
                body = self.server.manifests.get(digest)
            if body is None:
                self._unknown()
                return
            headers = {"Content-Type": MANIFEST_MEDIA_TYPE, "Docker-Content-Digest": digest}
            self._answer(200, body, headers)
        else:
            self._answer(404)

    do_HEAD = do_GET

    def do_DELETE(self) -> None:
        route = self._route()
        ref = route[1] if route and route[0] == "manifests" else ""
        with self.server.lock:
            if ref in self.server.tags:
                del self.server.tags[ref]
            elif ref in self.server.manifests:
                del self.server.manifests[ref]
                for tag in [t for t, d in self.server.tags.items() if d == ref]:
                    del self.server.tags[tag]
            else:
                ref = ""
        if ref:
            self._answer(202)
        else:
            self._unknown()


@pytest.fixture
def tagging_registry() -> Iterator[TaggingRegistry]:
    server = TaggingRegistry()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_registry_with_tag_deletion_loses_only_the_tag(
    tagging_registry: TaggingRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "size": 2,
        },
        "layers": [],
    }
    digest = tagging_registry.put("v1", manifest)
    tagging_registry.put("v2", manifest)
    caplog.set_level(logging.WARNING, logger="aioras")
    name = f"{tagging_registry.host}/{repo()}"

    with Registry(tagging_registry.host, insecure=True) as r:
        assert r.delete_tag(name, "v1") is True
        assert r.get_tags(name) == ["v2"]
        assert r.resolve(f"{name}@{digest}")["digest"] == digest
        assert r.delete_tag(name, "v1") is False

    deletes = [path for method, path in tagging_registry.requests if method == "DELETE"]
    assert [path.rsplit("/", 1)[1] for path in deletes] == ["v1", "v1"]
    assert tagging_registry.manifests.keys() == {digest}
    assert warnings_of(caplog) == []
