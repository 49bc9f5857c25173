"""Every body that is not a blob is read with a cap, and refused with a typed error past it.

A hostile registry (or token service) answers through the fault proxy, in front of the real
registry, with bodies of 128 MiB: a tag list, a catalog page, ``GET /v2/``, an upload
answer, a token and a token refusal. Each must be refused once its cap is reached (16 MiB,
1 MiB for tokens, 64 KiB kept of error bodies), with the connection dropped rather than the
flood read; where memory is the point it is measured in-process with ``tracemalloc``. A
gzip-encoded manifest inflating to 512 MiB must be refused as ``ManifestTooLarge`` without
being inflated past the 4 MiB manifest cap.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import struct
import tracemalloc
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from pathlib import Path

import httpx
import pytest

from aioras import RetryPolicy, defaults
from aioras.exceptions import (
    AuthenticationError,
    ManifestTooLarge,
    NotFoundError,
    ResponseTooLarge,
)
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry
from support.faultproxy import Fault, FaultProxy, generated

anyio_mark = pytest.mark.anyio

MiB = 1 << 20
FLOOD = 128 * MiB
SLACK = 8 * MiB  # socket buffers, one network read, the interpreter's own churn
FAST = RetryPolicy(backoff=0.01, max_backoff=0.05, max_retry_after=0.1)


@pytest.fixture
async def areg(fault_proxy: FaultProxy) -> AsyncIterator[AsyncRegistry]:
    async with AsyncRegistry(
        fault_proxy.host, insecure=True, retry=FAST, timeout=httpx.Timeout(30.0)
    ) as reg:
        yield reg


def repo() -> str:
    return f"caps/{uuid.uuid4().hex[:10]}"


def flood(
    status: int,
    head: bytes,
    piece: bytes,
    *headers: tuple[str, str],
    total: int = FLOOD,
    declared: bool = False,
) -> Fault:
    """``status`` with a body of ``head``, then ``piece`` repeated up to ``total`` bytes.

    Chunked, or with ``declared`` its length in ``Content-Length``.
    """

    async def chunks() -> AsyncIterator[bytes]:
        if head:  # an empty chunk would end a chunked body
            yield head
        sent = len(head)
        while sent < total:
            yield piece
            sent += len(piece)

    framing = ("Content-Length", str(total)) if declared else ("Transfer-Encoding", "chunked")
    return Fault("respond", responder=generated(status, [*headers, framing], chunks))


def tag_flood() -> Fault:
    # Long valid tags: a flood that is a well-formed tag list all the way.
    tags = b"".join(b'"%s",' % (b"t%05d" % i + b"x" * 122) for i in range(512))
    return flood(200, b'{"name": "x", "tags": [', tags, ("Content-Type", "application/json"))


async def peak_growth(call: Callable[[], Awaitable[object]]) -> tuple[BaseException, int]:
    """Run ``call`` (which must raise); return its error and the peak of traced memory growth."""
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        try:
            await call()
        except Exception as error:
            caught: BaseException = error
        else:
            raise AssertionError("the call did not fail")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return caught, peak - base


async def hung_up_early(fault_proxy: FaultProxy, method: str, path: str) -> None:
    """The client dropped the flood: what left the proxy is far from all of it."""
    await asyncio.sleep(0.2)
    (exchange,) = fault_proxy.requests_matching(method, path)
    assert exchange.hung_up
    assert exchange.sent < 32 * MiB


# -- tag lists, catalog pages, GET /v2/, upload answers --------------------------------------


@anyio_mark
async def test_tag_list_of_128_mib_is_refused_within_its_cap_of_memory(
    areg: AsyncRegistry, fault_proxy: FaultProxy
) -> None:
    fault_proxy.add(tag_flood(), path="/tags/list")

    error, growth = await peak_growth(lambda: areg.get_tags(fault_proxy.reference(repo())))

    assert isinstance(error, ResponseTooLarge), repr(error)
    assert error.limit == defaults.max_response_size == 16 * MiB
    assert error.status_code == 200
    assert growth < defaults.max_response_size + SLACK, f"grew by {growth / MiB:.1f} MiB"
    await hung_up_early(fault_proxy, "GET", "/tags/list")


@anyio_mark
async def test_tag_list_declaring_a_length_over_the_cap_is_refused_before_reading(
    areg: AsyncRegistry, fault_proxy: FaultProxy
) -> None:
    fault_proxy.add(
        flood(200, b'{"name": "x", "tags": ["a"', b" " * (64 * 1024), declared=True),
        path="/tags/list",
    )

    with pytest.raises(ResponseTooLarge) as info:
        await areg.get_tags(fault_proxy.reference(repo()))

    assert info.value.size == FLOOD
    await hung_up_early(fault_proxy, "GET", "/tags/list")


@anyio_mark
async def test_catalog_page_of_128_mib_is_refused(
    areg: AsyncRegistry, fault_proxy: FaultProxy
) -> None:
    fault_proxy.add(
        flood(200, b'{"repositories": [', b'"a/b",' * 10_000, ("Content-Type", "application/json")),
        path="/_catalog",
    )

    error, growth = await peak_growth(
        lambda: areg.do_request(f"http://{fault_proxy.host}/v2/_catalog?n=100")
    )

    assert isinstance(error, ResponseTooLarge), repr(error)
    assert growth < defaults.max_response_size + SLACK, f"grew by {growth / MiB:.1f} MiB"
    await hung_up_early(fault_proxy, "GET", "/_catalog")


@anyio_mark
async def test_ping_answered_with_128_mib_is_refused(
    areg: AsyncRegistry, fault_proxy: FaultProxy
) -> None:
    fault_proxy.add(flood(200, b"{", b" " * (64 * 1024)), path="^/v2/$")

    with pytest.raises(ResponseTooLarge):
        await areg.ping(fault_proxy.host)

    await hung_up_early(fault_proxy, "GET", "^/v2/$")


@anyio_mark
async def test_upload_session_answered_with_128_mib_is_refused(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    name = repo()
    fault_proxy.add(
        flood(
            202,
            b"",
            b"z" * (64 * 1024),
            ("Location", f"/v2/{name}/blobs/uploads/{uuid.uuid4()}"),
        ),
        method="POST",
        path="/blobs/uploads/",
    )
    blob = b"uploaded content"
    source = tmp_path / "blob"
    source.write_bytes(blob)
    layer = {
        "mediaType": "application/octet-stream",
        "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
        "size": len(blob),
    }

    with pytest.raises(ResponseTooLarge) as info:
        await areg.put_upload(source, fault_proxy.reference(f"{name}:v1"), layer)

    assert info.value.status_code == 202
    assert fault_proxy.requests_matching("PUT", "/blobs/uploads/") == []
    await hung_up_early(fault_proxy, "POST", "/blobs/uploads/")


# -- token answers ---------------------------------------------------------------------------


def challenge(fault_proxy: FaultProxy) -> Fault:
    realm = f"http://{fault_proxy.host}/token"

    async def nothing() -> AsyncIterator[bytes]:
        yield b""

    return Fault(
        "respond",
        responder=generated(
            401,
            [
                ("WWW-Authenticate", f'Bearer realm="{realm}",service="caps"'),
                ("Content-Length", "0"),
            ],
            nothing,
        ),
    )


@anyio_mark
@pytest.mark.parametrize("status", [200, 401], ids=["token", "refusal"])
async def test_token_service_answering_128_mib_is_refused(
    areg: AsyncRegistry, fault_proxy: FaultProxy, status: int
) -> None:
    head = b'{"token": "' if status == 200 else b'{"errors": [{"code": "DENIED", "message": "'
    fault_proxy.add(
        flood(status, head, b"t" * (64 * 1024), ("Content-Type", "application/json")),
        path="^/token",
    )
    fault_proxy.add(challenge(fault_proxy), path="/tags/list")

    error, growth = await peak_growth(lambda: areg.get_tags(fault_proxy.reference(repo())))

    assert isinstance(error, AuthenticationError), repr(error)
    if status == 200:
        assert "exceeds the 1048576-byte limit" in str(error)
    else:
        assert error.status_code == 401
    assert growth < defaults.max_token_size + SLACK, f"grew by {growth / MiB:.1f} MiB"
    await hung_up_early(fault_proxy, "GET", "^/token")


# -- gzip bombs: a manifest and an error body -------------------------------------------------


@cache
def gzip_bomb(prefix: bytes = b"", blocks: int = 512) -> bytes:
    """A gzip stream of ``prefix`` then ``blocks`` MiB of spaces (about 1 KiB per MiB).

    Each block is compressed once after a full flush, which resets the compressor, so the
    same compressed block can be repeated: built in well under a second.
    """
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = deflate.compress(prefix) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = b" " * MiB
    piece = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.flush()
    crc = zlib.crc32(prefix)
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    size = len(prefix) + blocks * MiB
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + head + piece * blocks + end + trailer


def serve_gzip(status: int, bomb: bytes, content_type: str) -> Fault:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(bomb), 64 * 1024):
            yield bomb[start : start + 64 * 1024]

    headers = [
        ("Content-Type", content_type),
        ("Content-Encoding", "gzip"),
        ("Content-Length", str(len(bomb))),
    ]
    return Fault("respond", responder=generated(status, headers, chunks))


@anyio_mark
async def test_gzip_error_body_keeps_64_kib_and_its_codes_without_inflating_the_rest(
    areg: AsyncRegistry, fault_proxy: FaultProxy
) -> None:
    bomb = gzip_bomb(b'{"errors": [{"code": "NAME_UNKNOWN", "message": "no such repository"}]}')
    assert len(bomb) < MiB
    fault_proxy.add(serve_gzip(404, bomb, "application/json"), path="/tags/list")

    error, growth = await peak_growth(lambda: areg.get_tags(fault_proxy.reference(repo())))

    assert isinstance(error, NotFoundError), repr(error)
    assert error.codes == ("NAME_UNKNOWN",)
    assert growth < defaults.max_error_body + 4 * MiB, f"grew by {growth / MiB:.1f} MiB"


@anyio_mark
async def test_gzip_manifest_inflating_to_512_mib_is_refused_within_the_4_mib_cap(
    areg: AsyncRegistry, fault_proxy: FaultProxy
) -> None:
    bomb = gzip_bomb()
    assert len(bomb) < MiB
    fault_proxy.add(
        serve_gzip(200, bomb, defaults.default_manifest_media_type),
        method="GET",
        path="/manifests/",
    )

    error, growth = await peak_growth(
        lambda: areg.get_manifest(fault_proxy.reference(f"{repo()}:v1"))
    )

    assert isinstance(error, ManifestTooLarge), repr(error)
    assert error.limit == defaults.max_manifest_size == 4 * MiB
    assert growth < defaults.max_manifest_size + 4 * MiB, f"grew by {growth / MiB:.1f} MiB"


# -- what the caps must not touch -------------------------------------------------------------


@anyio_mark
async def test_head_of_a_blob_larger_than_any_cap_is_not_refused(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    # A HEAD answer's Content-Length is the blob's size, not a body to cap.
    data = b"\x01" * (defaults.max_response_size + MiB)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    layer = {
        "mediaType": "application/octet-stream",
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    target = registry.reference(f"{repo()}:v1")
    async with AsyncRegistry(registry.host, insecure=True) as reg:
        await reg.upload_blob(source, target, layer)

        assert await reg.blob_exists(layer, target)
        head = await reg.get_blob(target, layer["digest"], head=True)

    assert int(head.headers["content-length"]) == len(data)


def encoded(coding: str, data: bytes) -> bytes:
    if coding == "gzip":
        return zlib.compress(data, wbits=zlib.MAX_WBITS | 16)
    if coding == "deflate":
        return zlib.compress(data)
    deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # raw deflate, as some servers send
    return deflate.compress(data) + deflate.flush()


@anyio_mark
@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate"])
async def test_encoded_bodies_under_their_cap_are_decoded(
    areg: AsyncRegistry, fault_proxy: FaultProxy, coding: str
) -> None:
    tags = [f"v{i}" for i in range(2000)]
    body = encoded(coding, json.dumps({"name": "x", "tags": tags}).encode())

    async def chunks() -> AsyncIterator[bytes]:
        yield body[:1]  # split, so that decoding (the deflate header too) spans reads
        for start in range(1, len(body), 100):
            await asyncio.sleep(0)
            yield body[start : start + 100]

    headers = [
        ("Content-Type", "application/json"),
        ("Content-Encoding", "deflate" if coding == "raw-deflate" else coding),
        ("Transfer-Encoding", "chunked"),
    ]
    fault_proxy.add(Fault("respond", responder=generated(200, headers, chunks)), path="/tags/")

    assert await areg.get_tags(fault_proxy.reference(repo())) == tags
