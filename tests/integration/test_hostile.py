"""Hostile and malformed input: each refused with a typed error, nothing left behind.

A registry (played by :class:`faultproxy.FaultProxy` rewriting the real registry's answers)
or a publisher can hand aioras anything. Each test feeds one kind of poison and checks the
typed error, that no request was made where none should be, and that no file was written or
left half-written. Property-based tests (hypothesis) cover reference parsing, layer titles,
archive members and annotation files with generated input.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import string
import tarfile
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aioras import RetryPolicy, defaults
from aioras.container import Container
from aioras.exceptions import (
    DigestMismatch,
    InvalidReference,
    ManifestTooLarge,
    ManifestValidationError,
    NotFoundError,
    OutputPathError,
    RegistryError,
    ServerError,
    SizeMismatch,
    TooManyRequests,
    UnsafePathError,
)
from aioras.oci import Annotations, ManifestConfig, NewManifest
from aioras.operations.pull import plan_pull
from aioras.registry import AsyncRegistry
from aioras.utils import extract_targz
from support.faultproxy import Fault, FaultProxy, Head, generated

FAST = RetryPolicy(backoff=0.01, max_backoff=0.05, max_retry_after=0.1)
MiB = 1 << 20
anyio_mark = pytest.mark.anyio
OCI_MANIFEST = defaults.default_manifest_media_type


@pytest.fixture
async def areg(fault_proxy: FaultProxy) -> AsyncIterator[AsyncRegistry]:
    async with AsyncRegistry(
        fault_proxy.host, insecure=True, retry=FAST, timeout=httpx.Timeout(10.0)
    ) as reg:
        yield reg


def repo() -> str:
    return f"hostile/{uuid.uuid4().hex[:10]}"


def leftovers(root: Path) -> list[str]:
    """Every path under ``root``, for 'nothing was left behind' checks."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


async def push_raw(
    areg: AsyncRegistry,
    target: str,
    blob: bytes,
    *,
    annotations: dict[str, str] | None = None,
    media_type: str = "application/octet-stream",
) -> dict[str, Any]:
    """Push a one-layer artifact whose layer carries whatever a hostile publisher chose."""
    path = Path(tempfile.mkdtemp()) / "blob"
    path.write_bytes(blob)
    layer = {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
        "size": len(blob),
        "annotations": annotations or {defaults.annotation_title: "payload.bin"},
    }
    await areg.upload_blob(str(path), target, layer)
    conf, config_file = ManifestConfig()
    await areg.upload_blob(config_file, target, conf)
    manifest = NewManifest()
    manifest["layers"] = [layer]
    manifest["config"] = conf
    await areg.upload_manifest(manifest, target)
    path.unlink()
    return layer


# -- references ------------------------------------------------------------------------------

MALFORMED = [
    "",
    "UPPER/case:v1",
    "repo:tag with space",
    "repo:-leading-dash",
    "repo:" + "t" * 129,
    "a//b:v1",
    "../etc/passwd",
    "repo/./x:v1",
    "repo@sha256:abc",
    "repo@md5:d41d8cd98f00b204e9800998ecf8427e",
    "repo@sha256:" + "G" * 64,
    "repo:v1@sha256:" + "a" * 63,
    "host:99999/repo:v1",
    "repo/\x00nul:v1",
    "repo:v1\n",
]


@anyio_mark
@pytest.mark.parametrize("name", MALFORMED, ids=repr)
async def test_malformed_references_are_refused_before_any_request(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_cwd: Path, name: str
) -> None:
    (tmp_cwd / "f.txt").write_text("never sent")
    ref = name if name.startswith("host:") else f"{fault_proxy.host}/{name}"
    outdir = tmp_cwd / "out"

    with pytest.raises(InvalidReference):
        await areg.push(ref, files=["f.txt"])
    with pytest.raises(InvalidReference):
        await areg.pull(ref, outdir=str(outdir))
    with pytest.raises(InvalidReference):
        await areg.get_tags(ref)

    assert fault_proxy.requests == 0
    assert leftovers(tmp_cwd) == ["f.txt"]


# -- titles and archives ---------------------------------------------------------------------


def tar_gz(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def member(name: str, data: bytes = b"x", **attrs: Any) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    if not info.isfile():
        info.size = 0
    return info, data if info.isfile() else None


@anyio_mark
@pytest.mark.parametrize(
    "members",
    [
        [member("pkg/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)],
        [member("pkg/sda", type=tarfile.BLKTYPE, devmajor=8, devminor=0)],
        [member("pkg/fifo", type=tarfile.FIFOTYPE)],
        [member("pkg/abs-link", type=tarfile.SYMTYPE, linkname="/etc/passwd")],
        [member("pkg/abs-hard", type=tarfile.LNKTYPE, linkname="/etc/passwd")],
        [
            member("pkg/up", type=tarfile.SYMTYPE, linkname=".."),
            member("pkg/up/escape.txt"),
        ],
        [
            member("pkg/a", type=tarfile.SYMTYPE, linkname="b"),
            member("pkg/b", type=tarfile.SYMTYPE, linkname="../../.."),
        ],
        [member("pkg/ok.txt"), member("pkg\\..\\..\\escape.txt")],
    ],
    ids=[
        "char-device",
        "block-device",
        "fifo",
        "symlink-absolute",
        "hardlink-absolute",
        "write-through-symlink",
        "symlink-chain-out",
        "backslash-dotdot",
    ],
)
async def test_archive_members_that_could_escape_are_refused(
    areg: AsyncRegistry,
    fault_proxy: FaultProxy,
    tmp_path: Path,
    members: list[tuple[tarfile.TarInfo, bytes | None]],
) -> None:
    target = fault_proxy.reference(f"{repo()}:v1")
    await push_raw(
        areg,
        target,
        tar_gz(*members),
        annotations={defaults.annotation_title: "pkg", defaults.annotation_unpack: "true"},
        media_type=defaults.default_blob_dir_media_type,
    )
    outdir = tmp_path / "jail" / "out"
    outdir.mkdir(parents=True)

    with pytest.raises(UnsafePathError):
        await areg.pull(target, outdir=str(outdir))

    assert leftovers(tmp_path / "jail") == ["out"]


@anyio_mark
@pytest.mark.parametrize("title", [".", "./", "sub/..", "./."])
@pytest.mark.parametrize("unpack", [False, True], ids=["file", "unpack"])
async def test_title_naming_the_output_directory_itself_is_refused(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path, title: str, unpack: bool
) -> None:
    # Found by the title property below: "." would replace outdir with a file, or unpack
    # an archive into outdir's parent.
    target = fault_proxy.reference(f"{repo()}:v1")
    annotations = {defaults.annotation_title: title}
    if unpack:
        annotations[defaults.annotation_unpack] = "true"
    await push_raw(
        areg,
        target,
        tar_gz(member("escaped.txt")),
        annotations=annotations,
        media_type=defaults.default_blob_dir_media_type,
    )
    outdir = tmp_path / "jail" / "out"
    outdir.mkdir(parents=True)

    with pytest.raises(UnsafePathError):
        await areg.pull(target, outdir=str(outdir))

    assert leftovers(tmp_path / "jail") == ["out"]
    assert not fault_proxy.requests_matching("GET", "/blobs/")


@anyio_mark
async def test_unpack_layer_that_is_not_an_archive_is_refused(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    target = fault_proxy.reference(f"{repo()}:v1")
    await push_raw(
        areg,
        target,
        b"\x1f\x8b this is no gzip stream",
        annotations={defaults.annotation_title: "pkg", defaults.annotation_unpack: "true"},
    )

    with pytest.raises(ManifestValidationError, match="not a readable tar archive"):
        await areg.pull(target, outdir=str(tmp_path / "out"))

    assert leftovers(tmp_path / "out") == []


# -- manifests -------------------------------------------------------------------------------


def endless(piece: bytes, total: int | None) -> Callable[[], AsyncIterator[bytes]]:
    async def chunks() -> AsyncIterator[bytes]:
        sent = 0
        cap = total if total is not None else 1 << 30
        while sent < cap:
            yield piece
            sent += len(piece)

    return chunks


@anyio_mark
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked-no-length"])
async def test_manifest_over_4_mib_is_refused_without_reading_it_all(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path, declared: bool
) -> None:
    total = 256 * MiB
    framing = ("Content-Length", str(total)) if declared else ("Transfer-Encoding", "chunked")
    fault_proxy.add(
        Fault(
            "respond",
            responder=generated(
                200,
                [("Content-Type", OCI_MANIFEST), framing],
                endless(b" " * (64 * 1024), total),
            ),
        ),
        method="GET",
        path="/manifests/",
    )
    target = fault_proxy.reference(f"{repo()}:v1")

    with pytest.raises(ManifestTooLarge) as info:
        await areg.pull(target, outdir=str(tmp_path / "out"))

    assert info.value.limit == defaults.max_manifest_size
    (exchange,) = fault_proxy.requests_matching("GET", "/manifests/")
    # The client hung up: what left the proxy is the limit plus socket buffers, not 256 MiB.
    await asyncio.sleep(0.2)
    assert exchange.hung_up
    assert exchange.sent < 32 * MiB
    assert leftovers(tmp_path / "out") == []


def rewrite_manifest(
    edit: Callable[[dict[str, Any]], Any] | None = None,
    *,
    raw: bytes | None = None,
    content_type: str | None = None,
    digest_header: str | None = "drop",
) -> Fault:
    """A transform fault replacing a manifest answer's body and headers."""

    def transform(request: Head, response: Head, body: bytes) -> tuple[Head, bytes]:
        if raw is not None:
            body = raw
        elif edit is not None:
            doc = json.loads(body)
            edited = edit(doc)
            body = json.dumps(doc if edited is None else edited).encode()
        if content_type is not None:
            response.set("Content-Type", content_type)
        if digest_header == "drop":
            response.remove("Docker-Content-Digest")
        elif digest_header == "match":
            response.set("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())
        elif digest_header is not None:
            response.set("Docker-Content-Digest", digest_header)
        return response, body

    return Fault("transform", on_response=transform)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        doc[key] = value

    return edit


def _layer(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        doc["layers"][0][key] = value

    return edit


@anyio_mark
@pytest.mark.parametrize(
    "fault",
    [
        rewrite_manifest(raw=b"<html>not json</html>"),
        rewrite_manifest(raw=b"\xff\xfe\x00garbage"),
        rewrite_manifest(raw=b"[1, 2, 3]"),
        rewrite_manifest(_set("schemaVersion", 1)),
        rewrite_manifest(_set("layers", "all of them")),
        rewrite_manifest(lambda doc: doc.pop("config")),
        rewrite_manifest(_layer("digest", "sha256:tooshort!")),
        rewrite_manifest(_layer("size", -1)),
        rewrite_manifest(_layer("size", 1.5)),
        rewrite_manifest(_layer("annotations", {"k": 1})),
        rewrite_manifest(_set("mediaType", "text/html\n")),
        rewrite_manifest(_set("layers", [{"mediaType": "x/y"}]), digest_header="match"),
    ],
    ids=[
        "html",
        "binary",
        "json-array",
        "schema-version-1",
        "layers-not-a-list",
        "no-config",
        "bad-layer-digest",
        "negative-size",
        "fractional-size",
        "non-string-annotation",
        "media-type-with-newline",
        "consistent-digest-header-but-invalid",
    ],
)
async def test_manifest_failing_its_schema_is_refused(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path, fault: Fault
) -> None:
    target = fault_proxy.reference(f"{repo()}:v1")
    await push_raw(areg, target, b"payload")
    fault_proxy.add(fault, method="GET", path="/manifests/")

    with pytest.raises(ManifestValidationError):
        await areg.pull(target, outdir=str(tmp_path / "out"))

    assert not fault_proxy.requests_matching("GET", "/blobs/")
    assert leftovers(tmp_path / "out") == []


@anyio_mark
@pytest.mark.parametrize(
    "content_type",
    [defaults.default_index_media_type, defaults.docker_manifest_media_type],
)
async def test_content_type_contradicting_media_type_is_refused(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path, content_type: str
) -> None:
    target = fault_proxy.reference(f"{repo()}:v1")
    await push_raw(areg, target, b"payload")
    fault_proxy.add(
        rewrite_manifest(content_type=content_type, digest_header=None),
        method="GET",
        path="/manifests/",
    )

    with pytest.raises(ManifestValidationError, match="contradicts"):
        await areg.pull(target, outdir=str(tmp_path / "out"))

    assert leftovers(tmp_path / "out") == []


@anyio_mark
async def test_manifest_whose_docker_content_digest_does_not_match_is_refused(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    target = fault_proxy.reference(f"{repo()}:v1")
    await push_raw(areg, target, b"payload")
    wrong = "sha256:" + "0" * 64
    fault_proxy.add(rewrite_manifest(digest_header=wrong), method="GET", path="/manifests/")

    with pytest.raises(DigestMismatch) as info:
        await areg.pull(target, outdir=str(tmp_path / "out"))

    assert info.value.expected == wrong
    assert leftovers(tmp_path / "out") == []


@anyio_mark
async def test_manifest_pulled_by_digest_must_hash_to_it(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    name = repo()
    await push_raw(areg, fault_proxy.reference(f"{name}:v1"), b"payload")
    digest = (await areg.resolve(fault_proxy.reference(f"{name}:v1")))["digest"]
    # Another valid manifest, with a Docker-Content-Digest that matches it: only the
    # digest in the reference can tell.
    fault_proxy.add(
        rewrite_manifest(_set("annotations", {"swapped": "yes"}), digest_header="match"),
        method="GET",
        path="/manifests/",
    )

    with pytest.raises(DigestMismatch) as info:
        await areg.pull(fault_proxy.reference(f"{name}@{digest}"), outdir=str(tmp_path / "out"))

    assert info.value.expected == digest
    assert leftovers(tmp_path / "out") == []


# -- blobs -------------------------------------------------------------------------------------


@anyio_mark
async def test_blob_whose_bytes_do_not_match_is_refused_and_nothing_is_kept(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    target = fault_proxy.reference(f"{repo()}:v1")
    await push_raw(areg, target, os.urandom(200_000))
    fault_proxy.add(Fault("corrupt", where="response", fraction=0.6), method="GET", path="/blobs/")
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "payload.bin").write_text("the user's own file")

    with pytest.raises(DigestMismatch):
        await areg.pull(target, outdir=str(outdir))

    assert leftovers(outdir) == ["payload.bin"]
    assert (outdir / "payload.bin").read_text() == "the user's own file"
    # One download and FAST.refetches fresh ones, then the refusal.
    assert len(fault_proxy.requests_matching("GET", "/blobs/")) == FAST.refetches + 1


@anyio_mark
async def test_blob_whose_docker_content_digest_does_not_match_is_refused(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    target = fault_proxy.reference(f"{repo()}:v1")
    await push_raw(areg, target, b"payload")

    def lie(head: Head) -> None:
        head.set("Docker-Content-Digest", "sha256:" + "1" * 64)

    fault_proxy.add(Fault("throttle", edit_response=lie), method="GET", path="/blobs/")

    with pytest.raises(DigestMismatch, match="Docker-Content-Digest"):
        await areg.pull(target, outdir=str(tmp_path / "out"))

    assert leftovers(tmp_path / "out") == []


@anyio_mark
async def test_blob_longer_than_its_descriptor_is_cut_off_and_refused(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    target = fault_proxy.reference(f"{repo()}:v1")
    await push_raw(areg, target, b"payload")

    def pad(request: Head, response: Head, body: bytes) -> tuple[Head, bytes]:
        return response, body + b"\0" * MiB

    fault_proxy.add(Fault("transform", on_response=pad), method="GET", path="/blobs/")

    with pytest.raises(SizeMismatch):
        await areg.pull(target, outdir=str(tmp_path / "out"))

    assert leftovers(tmp_path / "out") == []


# -- error bodies ------------------------------------------------------------------------------


@anyio_mark
@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, b"<html><body>Not here</body></html>", NotFoundError),
        (404, b"", NotFoundError),
        (404, bytes(range(256)) * 4, NotFoundError),
        (404, b'{"errors": "not a list"}', NotFoundError),
        (404, b'{"errors": [{"code": 42}, "x", null]}', NotFoundError),
        (404, b"null", NotFoundError),
        (500, b"Internal Server Error\n", ServerError),
        (429, b"slow down", TooManyRequests),
    ],
    ids=["html", "empty", "binary", "errors-not-list", "bad-entries", "null", "500-text", "429"],
)
async def test_error_bodies_that_are_not_oci_json_still_give_typed_errors(
    areg: AsyncRegistry,
    fault_proxy: FaultProxy,
    tmp_path: Path,
    status: int,
    body: bytes,
    error: type[RegistryError],
) -> None:
    target = fault_proxy.reference(f"{repo()}:v1")
    fault_proxy.add(Fault("status", status=status, body=body), path="/manifests/")

    with pytest.raises(error) as info:
        await areg.pull(target, outdir=str(tmp_path / "out"))

    assert info.value.status_code == status
    assert info.value.codes == ()
    assert leftovers(tmp_path / "out") == []


@anyio_mark
async def test_flood_of_an_error_body_is_not_read_whole(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.add(
        Fault(
            "respond",
            responder=generated(
                404,
                [("Content-Type", "text/plain"), ("Content-Length", str(256 * MiB))],
                endless(b"A" * (64 * 1024), 256 * MiB),
            ),
        ),
        path="/tags/list",
    )

    with pytest.raises(NotFoundError):
        await areg.get_tags(fault_proxy.reference(repo()))

    await asyncio.sleep(0.2)
    (exchange,) = fault_proxy.requests_matching("GET", "/tags/list")
    assert exchange.hung_up
    assert exchange.sent < 32 * MiB


@anyio_mark
async def test_upload_refused_with_a_non_json_body_cancels_its_session(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.add(
        Fault("status", status=400, body=b"<h1>Bad Request</h1>"),
        method="PUT",
        path="/blobs/uploads/",
    )
    source = tmp_path / "f.bin"
    source.write_bytes(b"content")
    layer = {
        "mediaType": "application/octet-stream",
        "digest": "sha256:" + hashlib.sha256(b"content").hexdigest(),
        "size": 7,
    }

    with pytest.raises(RegistryError) as info:
        await areg.put_upload(source, fault_proxy.reference(f"{repo()}:v1"), layer)

    assert info.value.status_code == 400
    assert len(fault_proxy.requests_matching("PUT", "/blobs/uploads/")) == 1
    assert len(fault_proxy.requests_matching("DELETE", "/blobs/uploads/")) == 1


# -- tag pagination ------------------------------------------------------------------------------


def tag_pages(next_link: Callable[[int], str], tags: Callable[[int], list[str]]) -> Fault:
    """A responder serving tag-list page ``k`` (counting from 0) with a Link to ``next_link(k)``."""
    served = [0]

    def respond(request: Head) -> tuple[Head, AsyncIterator[bytes]]:
        k = served[0]
        served[0] += 1
        body = json.dumps({"name": "x", "tags": tags(k)}).encode()
        head = Head(
            "HTTP/1.1 200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Link", f'<{next_link(k)}>; rel="next"'),
            ],
        )

        async def chunks() -> AsyncIterator[bytes]:
            yield body

        return head, chunks()

    return Fault("respond", responder=respond)


@anyio_mark
async def test_tag_pagination_that_never_ends_is_refused(
    areg: AsyncRegistry, fault_proxy: FaultProxy
) -> None:
    name = repo()
    fault_proxy.add(
        tag_pages(lambda k: f"/v2/{name}/tags/list?n=2&last=z{k}", lambda k: ["a", "b"]),
        path="/tags/list",
    )

    with pytest.raises(RegistryError, match="no new tag"):
        await areg.get_tags(fault_proxy.reference(name), page_size=2)

    assert len(fault_proxy.requests_matching("GET", "/tags/list")) == 4


@anyio_mark
async def test_tag_pagination_with_endless_fresh_tags_stops_at_the_page_limit(
    areg: AsyncRegistry, fault_proxy: FaultProxy
) -> None:
    name = repo()
    fault_proxy.add(
        tag_pages(lambda k: f"/v2/{name}/tags/list?n=2&last=t{k}", lambda k: [f"t{k}a", f"t{k}b"]),
        path="/tags/list",
    )

    with pytest.raises(RegistryError, match="exceeds 20 pages"):
        await areg.get_tags(fault_proxy.reference(name), page_size=2, max_pages=20)

    assert len(fault_proxy.requests_matching("GET", "/tags/list")) == 20


@anyio_mark
@pytest.mark.parametrize("where", ["other-port", "other-scheme", "seen-page"])
async def test_tag_pagination_leaving_the_registry_is_refused(
    areg: AsyncRegistry, fault_proxy: FaultProxy, where: str
) -> None:
    connections: list[int] = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    elsewhere = await asyncio.start_server(count, "127.0.0.1", 0)
    port = elsewhere.sockets[0].getsockname()[1]
    name = repo()
    links = {
        "other-port": f"http://127.0.0.1:{port}/v2/{name}/tags/list?last=b",
        "other-scheme": f"https://{fault_proxy.host}/v2/{name}/tags/list?last=b",
        "seen-page": f"/v2/{name}/tags/list",
    }
    fault_proxy.add(tag_pages(lambda k: links[where], lambda k: ["a", "b"]), path="/tags/list")
    try:
        with pytest.raises(RegistryError, match="off the registry or back to a seen page"):
            await areg.get_tags(fault_proxy.reference(name))
    finally:
        elsewhere.close()
        await elsewhere.wait_closed()

    assert connections == []
    assert len(fault_proxy.requests_matching("GET", "/tags/list")) == 1


# -- property-based --------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_as_a_reference_parses_or_raises_invalid_reference(name: str) -> None:
    try:
        container = Container(name, registry="localhost:5000")
    except InvalidReference:
        return
    # Whatever parsed must be safe to put in a URL path: no traversal, no control bytes.
    url = container.manifest_url()
    assert "/../" not in f"/{url}/"
    assert "/./" not in f"/{url}/"
    assert not any(ord(c) < 0x20 or c in " \\" for c in url)
    assert Container(container.uri) == container


_PATHISH = st.text(alphabet=string.ascii_letters + "./\\:~ \x00-_", max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_PATHISH, st.text(max_size=20)), min_size=1, max_size=4))
def test_any_layer_title_lands_inside_outdir_or_is_refused(titles: list[str]) -> None:
    manifest = {
        "layers": [
            {
                "mediaType": "x/y",
                "digest": "sha256:" + hashlib.sha256(t.encode()).hexdigest(),
                "size": 1,
                "annotations": {defaults.annotation_title: t},
            }
            for t in titles
        ]
    }
    outdir = os.path.realpath(tempfile.gettempdir()) + "/aioras-prop-out"
    try:
        plan = plan_pull(manifest, outdir)
    except (UnsafePathError, ManifestValidationError):
        return
    for item in plan:
        assert os.path.commonpath([outdir, os.path.abspath(item.outfile)]) == outdir
        assert os.path.abspath(item.outfile) != outdir


_member_names = st.lists(
    st.sampled_from(["a", "b", "..", ".", "", "/", "c d", "x\\..", "/etc", "~"]),
    min_size=1,
    max_size=4,
).map("/".join)
_kinds = st.sampled_from(
    [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_member_names, _kinds, _member_names), min_size=1, max_size=5))
def test_any_archive_extracts_inside_outdir_or_is_refused(
    entries: list[tuple[str, bytes, str]],
) -> None:
    members = []
    for name, kind, link in entries:
        info = tarfile.TarInfo(name or "empty")
        info.type = kind
        if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
            info.linkname = link
        data = b"data" if kind == tarfile.REGTYPE else None
        info.size = len(data or b"")
        members.append((info, data))
    with tempfile.TemporaryDirectory() as tmp:
        jail = os.path.join(tmp, "jail")
        out = os.path.join(jail, "out")
        os.makedirs(out)
        archive = os.path.join(tmp, "a.tar.gz")
        Path(archive).write_bytes(tar_gz(*members))
        # Typed errors only: a bare NotADirectoryError and the like was a bug.
        with contextlib.suppress(UnsafePathError, OutputPathError):
            extract_targz(archive, out)
        # Nothing may appear beside ``out``, and nothing inside may resolve outside it.
        assert sorted(os.listdir(jail)) == ["out"]
        real_out = os.path.realpath(out)
        for root, dirs, files in os.walk(out):
            for entry in dirs + files:
                path = os.path.join(root, entry)
                if os.path.islink(path) and os.path.exists(path):
                    real = os.path.realpath(path)
                    assert real == real_out or real.startswith(real_out + os.sep)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_json.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64)))
def test_any_annotation_file_loads_as_strings_or_is_refused(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "annotations.json")
        Path(path).write_bytes(content)
        try:
            annotations = Annotations(path)
        except ManifestValidationError:
            return
    for section, values in annotations.lookup.items():
        assert isinstance(section, str)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in values.items())


@anyio_mark
async def test_hostile_annotation_file_stops_a_push_before_any_request(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_cwd: Path
) -> None:
    (tmp_cwd / "f.txt").write_text("x")
    (tmp_cwd / "annotations.json").write_text('{"f.txt": {"key": ["not", "a", "string"]}}')

    with pytest.raises(ManifestValidationError):
        await areg.push(
            fault_proxy.reference(f"{repo()}:v1"),
            files=["f.txt"],
            annotation_file="annotations.json",
        )

    assert fault_proxy.requests == 0
