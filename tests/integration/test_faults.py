"""Faults between aioras and the real registry: retries, resumed uploads and downloads, timeouts.

Every test talks to the CNCF registry through :class:`faultproxy.FaultProxy`, which injects
one precise fault, and then checks both the outcome (the data landed, byte-identical, or a
typed error arrived) and, from the proxy's log, how aioras recovered.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aioras import RetryPolicy
from aioras.exceptions import (
    ConnectError,
    NotFoundError,
    PermissionDenied,
    RegistryError,
    ServerError,
    TimeoutError,
)
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry
from support.faultproxy import Exchange, Fault, FaultProxy, Head

pytestmark = pytest.mark.anyio
FAST = RetryPolicy(backoff=0.01, max_backoff=0.05, max_retry_after=2.0)
MiB = 1 << 20
BLOB_GET = r"/blobs/sha256:"
UPLOADS = r"/blobs/uploads/"


@pytest.fixture
async def areg(fault_proxy: FaultProxy) -> AsyncIterator[AsyncRegistry]:
    async with AsyncRegistry(
        fault_proxy.host, insecure=True, retry=FAST, timeout=httpx.Timeout(10.0)
    ) as reg:
        yield reg


def repo(kind: str = "faults") -> str:
    return f"{kind}/{uuid.uuid4().hex[:10]}"


def random_file(path: Path, size: int) -> dict[str, Any]:
    """Write ``size`` random bytes; return the blob's descriptor."""
    data = os.urandom(size)
    path.write_bytes(data)
    return {
        "mediaType": "application/octet-stream",
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": size,
    }


def content_ranges(log: list[Exchange]) -> list[str | None]:
    return [e.content_range for e in log if e.method == "PATCH"]


async def assert_blob_is(
    areg: AsyncRegistry, target: str, layer: dict[str, Any], source: Path, tmp: Path
) -> None:
    out = await areg.download_blob(target, layer["digest"], tmp / "check.bin", size=layer["size"])
    assert Path(out).read_bytes() == source.read_bytes()


# -- per-request retries ---------------------------------------------------------------------


async def push_small(areg: AsyncRegistry, proxy: FaultProxy, tmp_cwd: Path) -> str:
    (tmp_cwd / "small.txt").write_text("small artifact")
    target = proxy.reference(f"{repo()}:v1")
    await areg.push(target, files=["small.txt"])
    return target


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
async def test_transient_statuses_on_reads_are_retried(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_cwd: Path, status: int
) -> None:
    target = await push_small(areg, fault_proxy, tmp_cwd)
    fault_proxy.add(Fault("status", status=status), method="GET", path="/manifests/", times=2)

    manifest = await areg.get_manifest(target)

    assert manifest["layers"][0]["size"] == len("small artifact")
    gets = fault_proxy.requests_matching("GET", "/manifests/")
    assert [e.status for e in gets] == [status, status, 200]


async def test_throttling_waits_as_long_as_retry_after_says(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_cwd: Path
) -> None:
    target = await push_small(areg, fault_proxy, tmp_cwd)
    fault_proxy.add(
        Fault("status", status=429, retry_after="1", body=b"slow down"),
        method="GET",
        path="/manifests/",
        times=1,
    )

    await areg.get_manifest(target)

    first, second = fault_proxy.requests_matching("GET", "/manifests/")
    assert (first.status, second.status) == (429, 200)
    # A lower bound only: the client must not come back before the registry allowed it.
    assert second.started - first.started >= 0.9


@pytest.mark.parametrize(
    "fault",
    [
        Fault("reset", where="headers"),
        Fault("reset", where="response", fraction=0.5),
        Fault("truncate", where="response", fraction=0.3),
        Fault("corrupt", where="response"),
    ],
    ids=lambda f: f.label,
)
async def test_broken_manifest_answers_are_fetched_again(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_cwd: Path, fault: Fault
) -> None:
    target = await push_small(areg, fault_proxy, tmp_cwd)
    fault_proxy.add(fault, method="GET", path="/manifests/", times=1)

    manifest = await areg.get_manifest(target)

    assert manifest["schemaVersion"] == 2
    assert len(fault_proxy.requests_matching("GET", "/manifests/")) == 2


async def test_manifest_put_is_replayed_after_resets(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_cwd: Path
) -> None:
    fault_proxy.add(Fault("reset", where="request"), method="PUT", path="/manifests/", nth=1)
    fault_proxy.add(Fault("reset", where="headers"), method="PUT", path="/manifests/", nth=2)
    target = await push_small(areg, fault_proxy, tmp_cwd)

    assert (await areg.get_manifest(target))["layers"]
    puts = fault_proxy.requests_matching("PUT", "/manifests/")
    assert [e.fault for e in puts] == ["reset-request", "reset-headers", None]


async def test_retries_are_bounded_and_end_in_a_typed_error(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_cwd: Path
) -> None:
    target = await push_small(areg, fault_proxy, tmp_cwd)
    fault_proxy.add(Fault("status", status=503, body=b"<html>down</html>"), path="/manifests/")

    with pytest.raises(ServerError) as info:
        await areg.get_manifest(target)

    assert info.value.status_code == 503
    assert len(fault_proxy.requests_matching("GET", "/manifests/")) == FAST.attempts + 1


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "MANIFEST_INVALID", RegistryError),
        (403, "DENIED", PermissionDenied),
        (404, "MANIFEST_UNKNOWN", NotFoundError),
    ],
)
async def test_client_errors_are_not_retried(
    areg: AsyncRegistry,
    fault_proxy: FaultProxy,
    tmp_cwd: Path,
    status: int,
    code: str,
    error: type[Exception],
) -> None:
    target = await push_small(areg, fault_proxy, tmp_cwd)
    body = f'{{"errors":[{{"code":"{code}","message":"no"}}]}}'.encode()
    fault_proxy.add(
        Fault("status", status=status, body=body, content_type="application/json"),
        path="/manifests/",
    )

    with pytest.raises(error) as info:
        await areg.get_manifest(target)

    assert isinstance(info.value, RegistryError)
    assert info.value.codes == (code,)
    assert len(fault_proxy.requests_matching("GET", "/manifests/")) == 1


async def test_retry_policy_is_configurable(fault_proxy: FaultProxy, tmp_cwd: Path) -> None:
    async with AsyncRegistry(fault_proxy.host, insecure=True, retry=FAST) as reg:
        target = await push_small(reg, fault_proxy, tmp_cwd)
    fault_proxy.add(Fault("status", status=502), path="/manifests/")

    async with AsyncRegistry(fault_proxy.host, insecure=True, retry=RetryPolicy(attempts=0)) as reg:
        with pytest.raises(ServerError):
            await reg.get_manifest(target)
    assert len(fault_proxy.requests_matching("GET", "/manifests/")) == 1

    only_503 = RetryPolicy(attempts=3, backoff=0.01, statuses=frozenset({503}))
    async with AsyncRegistry(fault_proxy.host, insecure=True, retry=only_503) as reg:
        with pytest.raises(ServerError):
            await reg.get_manifest(target)
    assert len(fault_proxy.requests_matching("GET", "/manifests/")) == 2


async def _count_connections(
    upstream_port: int,
) -> tuple[asyncio.Server, list[int]]:
    """A plain TCP relay to ``upstream_port`` that counts the connections it carries."""
    seen: list[int] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def relay(creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        seen.append(1)
        ureader, uwriter = await asyncio.open_connection("127.0.0.1", upstream_port)
        await asyncio.gather(pipe(creader, uwriter), pipe(ureader, cwriter))

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    return server, seen


async def test_tls_verification_failure_is_not_retried(tls_registry: LocalRegistry) -> None:
    assert tls_registry.port is not None
    server, seen = await _count_connections(tls_registry.port)
    port = server.sockets[0].getsockname()[1]
    try:
        async with AsyncRegistry(f"127.0.0.1:{port}", retry=FAST) as reg:
            with pytest.raises(ConnectError) as info:
                await reg.get_tags(f"127.0.0.1:{port}/tls/none")
        assert "verification failed" in str(info.value)
        assert len(seen) == 1
    finally:
        server.close()
        await server.wait_closed()


# -- uploads -------------------------------------------------------------------------------------


async def chunked(
    areg: AsyncRegistry, proxy: FaultProxy, tmp_path: Path, size: int, chunk: int = MiB
) -> tuple[str, dict[str, Any], Path]:
    source = tmp_path / "upload.bin"
    layer = random_file(source, size)
    target = proxy.reference(f"{repo('uploads')}:v1")
    response = await areg.chunked_upload(source, target, layer, chunk_size=chunk)
    assert response.status_code in (200, 201)
    return target, layer, source


async def test_chunked_upload_continues_where_the_registry_stands_after_a_drop(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.add(Fault("reset", where="request", fraction=0.5), method="PATCH", nth=2)

    target, layer, source = await chunked(areg, fault_proxy, tmp_path, 4 * MiB)

    assert content_ranges(fault_proxy.log) == [
        "0-1048575",
        "1048576-2097151",  # dropped half-way, before the registry saw it
        "1048576-2097151",  # resumed after GET said 0-1048575
        "2097152-3145727",
        "3145728-4194303",
    ]
    assert len(fault_proxy.requests_matching("POST", UPLOADS)) == 1
    status = fault_proxy.requests_matching("GET", UPLOADS)
    assert [e.status for e in status] == [204]
    assert not fault_proxy.requests_matching("DELETE")
    await assert_blob_is(areg, target, layer, source, tmp_path)


async def test_chunked_upload_asks_where_it_stands_after_416(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.add(Fault("status", status=416), method="PATCH", nth=3)

    target, layer, source = await chunked(areg, fault_proxy, tmp_path, 3 * MiB + 5)

    ranges = content_ranges(fault_proxy.log)
    assert ranges[2] == ranges[3] == "2097152-3145727"
    assert len(fault_proxy.requests_matching("POST", UPLOADS)) == 1
    await assert_blob_is(areg, target, layer, source, tmp_path)


async def test_chunked_upload_starts_over_when_the_registry_refuses_the_session(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    # The registry stores chunk 2 but its answer is lost: the status request then carries
    # stale state, which the CNCF registry refuses (and drops the session). The only way on
    # is a new session.
    fault_proxy.add(Fault("reset", where="headers"), method="PATCH", nth=2)

    target, layer, source = await chunked(areg, fault_proxy, tmp_path, 3 * MiB)

    # 400 BLOB_UPLOAD_INVALID or 404 BLOB_UPLOAD_UNKNOWN, depending on how far it got.
    assert [e.status for e in fault_proxy.requests_matching("GET", UPLOADS)] in ([400], [404])
    assert len(fault_proxy.requests_matching("POST", UPLOADS)) == 2
    await assert_blob_is(areg, target, layer, source, tmp_path)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("reset", where="request", fraction=0.3, forward_partial=True),
        Fault("reset", where="response"),
        Fault("corrupt", where="request", fraction=0.7),
        Fault("status", status=502, forward=True),
    ],
    ids=["partial-body-reached-registry", "answer-lost", "byte-flipped", "502-after-storing"],
)
async def test_chunked_upload_lands_whatever_happened_to_a_chunk(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path, fault: Fault
) -> None:
    fault_proxy.add(fault, method="PATCH", nth=2)

    target, layer, source = await chunked(areg, fault_proxy, tmp_path, 3 * MiB + 1)

    await assert_blob_is(areg, target, layer, source, tmp_path)


async def test_chunked_upload_waits_out_throttling(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.add(Fault("status", status=429, retry_after="1"), method="PATCH", nth=2)

    target, layer, source = await chunked(areg, fault_proxy, tmp_path, 2 * MiB)

    patches = fault_proxy.requests_matching("PATCH")
    assert patches[1].status == 429
    assert patches[2].started - patches[1].started >= 0.9
    await assert_blob_is(areg, target, layer, source, tmp_path)


async def test_lost_answer_to_a_commit_is_checked_with_head_not_resent(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.add(Fault("reset", where="headers"), method="PUT", path=UPLOADS, nth=1)

    target, layer, source = await chunked(areg, fault_proxy, tmp_path, 2 * MiB)

    assert len(fault_proxy.requests_matching("PUT", UPLOADS)) == 1
    heads = fault_proxy.requests_matching("HEAD", BLOB_GET)
    assert [e.status for e in heads] == [200]
    await assert_blob_is(areg, target, layer, source, tmp_path)


async def monolithic(
    areg: AsyncRegistry, proxy: FaultProxy, tmp_path: Path, size: int
) -> tuple[httpx.Response, str, dict[str, Any], Path]:
    source = tmp_path / "upload.bin"
    layer = random_file(source, size)
    target = proxy.reference(f"{repo('uploads')}:v1")
    response = await areg.put_upload(source, target, layer)
    return response, target, layer, source


@pytest.mark.parametrize(
    "fault",
    [
        Fault("reset", where="request", fraction=0.5),
        Fault("reset", where="request", fraction=0.5, forward_partial=True),
        Fault("status", status=503, retry_after="0"),
        Fault("corrupt", where="request", fraction=0.25),
    ],
    ids=["dropped", "partial-body-reached-registry", "503", "byte-flipped"],
)
async def test_failed_monolithic_upload_restarts_its_session(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path, fault: Fault
) -> None:
    fault_proxy.add(fault, method="PUT", path=UPLOADS, nth=1)

    response, target, layer, source = await monolithic(areg, fault_proxy, tmp_path, 3 * MiB)

    assert response.status_code == 201
    assert len(fault_proxy.requests_matching("POST", UPLOADS)) == 2
    # The first session was abandoned: it is cancelled (its answer does not matter).
    assert len(fault_proxy.requests_matching("DELETE", UPLOADS)) == 1
    await assert_blob_is(areg, target, layer, source, tmp_path)


@pytest.mark.parametrize(
    "fault",
    [Fault("status", status=500, forward=True), Fault("reset", where="headers")],
    ids=["500-after-storing", "answer-lost"],
)
async def test_monolithic_upload_stored_despite_the_failure_is_not_sent_again(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path, fault: Fault
) -> None:
    fault_proxy.add(fault, method="PUT", path=UPLOADS, nth=1)

    response, target, layer, source = await monolithic(areg, fault_proxy, tmp_path, MiB)

    assert response.request.method == "HEAD"
    assert response.status_code == 200
    assert len(fault_proxy.requests_matching("PUT", UPLOADS)) == 1
    await assert_blob_is(areg, target, layer, source, tmp_path)


async def test_registry_minimum_chunk_length_is_respected(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    def minimum(request: Head, response: Head, body: bytes) -> tuple[Head, bytes]:
        response.set("OCI-Chunk-Min-Length", str(2 * MiB))
        return response, body

    fault_proxy.add(Fault("transform", on_response=minimum), method="POST", path=UPLOADS)

    target, layer, source = await chunked(areg, fault_proxy, tmp_path, 5 * MiB, chunk=256 * 1024)

    lengths = [e.content_length for e in fault_proxy.requests_matching("PATCH")]
    assert lengths == [2 * MiB, 2 * MiB, MiB]
    await assert_blob_is(areg, target, layer, source, tmp_path)


async def test_failed_upload_cancels_its_session_even_when_cancelling_fails(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    denied = b'{"errors":[{"code":"DENIED","message":"quota exceeded"}]}'
    fault_proxy.add(
        Fault("status", status=403, body=denied, content_type="application/json"),
        method="PATCH",
        nth=2,
    )
    fault_proxy.add(Fault("status", status=500), method="DELETE")

    with pytest.raises(PermissionDenied) as info:
        await chunked(areg, fault_proxy, tmp_path, 3 * MiB)

    assert info.value.codes == ("DENIED",)
    deletes = fault_proxy.requests_matching("DELETE", UPLOADS)
    assert [e.status for e in deletes] == [500]
    assert len(fault_proxy.requests_matching("PATCH")) == 2


async def test_upload_recovery_is_bounded(fault_proxy: FaultProxy, tmp_path: Path) -> None:
    policy = RetryPolicy(attempts=1, backoff=0.01, resumes=3)
    fault_proxy.add(Fault("status", status=503), method="PATCH")
    async with AsyncRegistry(fault_proxy.host, insecure=True, retry=policy) as reg:
        with pytest.raises(ServerError):
            await chunked(reg, fault_proxy, tmp_path, MiB)

    assert len(fault_proxy.requests_matching("PATCH")) == policy.resumes + 1
    assert len(fault_proxy.requests_matching("DELETE", UPLOADS)) >= 1


async def test_upload_that_keeps_advancing_is_not_failed_by_faults_adding_up(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    # Every other PATCH fails: five failures in all, more than the two allowed in a row,
    # but each comes after a chunk landed, so the upload finishes.
    policy = RetryPolicy(attempts=1, backoff=0.01, resumes=2)
    fault_proxy.add(Fault("status", status=503), method="PATCH", nth={2, 4, 6, 8, 10})
    async with AsyncRegistry(fault_proxy.host, insecure=True, retry=policy) as reg:
        target, layer, source = await chunked(reg, fault_proxy, tmp_path, 6 * MiB)
        stored = await reg.get_blob(target, layer["digest"])

    assert stored.content == source.read_bytes()
    assert [e.status for e in fault_proxy.requests_matching("PATCH")].count(503) == 5


async def test_upload_restarts_when_the_refusal_breaks_off_before_its_codes(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    # A flipped byte in the first chunk makes the registry refuse the commit with
    # DIGEST_INVALID; the connection then drops half-way through that answer. Without its
    # codes the answer is unknown, so the upload starts over in a new session.
    fault_proxy.add(Fault("corrupt", where="request", fraction=0.8), method="PATCH", nth=1)
    fault_proxy.add(Fault("reset", where="response", fraction=0.4), method="PUT", nth=1)

    target, layer, source = await chunked(areg, fault_proxy, tmp_path, 3 * MiB)

    stored = await areg.get_blob(target, layer["digest"])
    assert stored.content == source.read_bytes()
    assert fault_proxy.faults == {"corrupt-request": 1, "reset-response": 1}
    assert len(fault_proxy.requests_matching("POST", UPLOADS)) == 2


# -- downloads -----------------------------------------------------------------------------------


async def stored_blob(
    areg: AsyncRegistry, proxy: FaultProxy, tmp_path: Path, size: int = 3 * MiB
) -> tuple[str, dict[str, Any], Path]:
    source = tmp_path / "stored.bin"
    layer = random_file(source, size)
    target = proxy.reference(f"{repo('downloads')}:v1")
    await areg.put_upload(source, target, layer)
    proxy.log.clear()
    return target, layer, source


async def download(areg: AsyncRegistry, target: str, layer: dict[str, Any], tmp_path: Path) -> Path:
    out = tmp_path / "out" / "blob.bin"
    path = await areg.download_blob(target, layer["digest"], out, size=layer["size"])
    assert sorted(p.name for p in out.parent.iterdir()) == ["blob.bin"]
    return Path(path)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("reset", where="response", fraction=0.4),
        Fault("truncate", where="response", fraction=0.7),
    ],
    ids=lambda f: f.label,
)
async def test_broken_download_resumes_with_range(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path, fault: Fault
) -> None:
    target, layer, source = await stored_blob(areg, fault_proxy, tmp_path)
    fault_proxy.add(fault, method="GET", path=BLOB_GET, times=2)

    path = await download(areg, target, layer, tmp_path)

    assert path.read_bytes() == source.read_bytes()
    gets = fault_proxy.requests_matching("GET", BLOB_GET)
    assert [(e.range is None, e.status) for e in gets] == [(True, 200), (False, 206), (False, 206)]
    starts = [int(e.range.removeprefix("bytes=").rstrip("-")) for e in gets[1:] if e.range]
    # Each resume starts where the client's bytes end: at the proxy's cut after a clean
    # close; at or before it after a reset, which may discard bytes still in flight.
    cuts = [int(layer["size"] * fault.fraction)]
    cuts.append(starts[0] + int((layer["size"] - starts[0]) * fault.fraction))
    if fault.kind == "truncate":
        assert starts == cuts
    else:
        assert 0 < starts[0] <= cuts[0]
        assert starts[0] < starts[1] <= cuts[1]


def drop_accept_ranges(head: Head) -> None:
    head.remove("Accept-Ranges")


async def test_download_starts_over_when_the_registry_offers_no_ranges(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    target, layer, source = await stored_blob(areg, fault_proxy, tmp_path)
    fault_proxy.add(
        Fault("reset", where="response", edit_response=drop_accept_ranges),
        method="GET",
        path=BLOB_GET,
        nth=1,
    )

    path = await download(areg, target, layer, tmp_path)

    assert path.read_bytes() == source.read_bytes()
    gets = fault_proxy.requests_matching("GET", BLOB_GET)
    assert [(e.range, e.status) for e in gets] == [(None, 200), (None, 200)]


async def test_download_starts_over_when_the_registry_ignores_range(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    def forget_range(request: Head) -> None:
        request.remove("Range")

    target, layer, source = await stored_blob(areg, fault_proxy, tmp_path)
    fault_proxy.add(Fault("reset", where="response"), method="GET", path=BLOB_GET, nth=1)
    fault_proxy.add(Fault("transform", on_request=forget_range), method="GET", path=BLOB_GET)

    path = await download(areg, target, layer, tmp_path)

    assert path.read_bytes() == source.read_bytes()
    gets = fault_proxy.requests_matching("GET", BLOB_GET)
    assert [e.status for e in gets] == [200, 200]
    assert gets[1].range is not None  # asked for a range, got the whole blob, used it


async def test_altered_download_is_fetched_again_from_scratch(
    areg: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    target, layer, source = await stored_blob(areg, fault_proxy, tmp_path)
    fault_proxy.add(Fault("corrupt", where="response", fraction=0.9), path=BLOB_GET, nth=1)

    path = await download(areg, target, layer, tmp_path)

    assert path.read_bytes() == source.read_bytes()
    gets = fault_proxy.requests_matching("GET", BLOB_GET)
    assert [(e.range, e.status) for e in gets] == [(None, 200), (None, 200)]


# -- timeouts ----------------------------------------------------------------------------------


async def test_stalled_download_times_out_and_resumes(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    async with AsyncRegistry(
        fault_proxy.host, insecure=True, retry=FAST, timeout=httpx.Timeout(1.0)
    ) as reg:
        target, layer, source = await stored_blob(reg, fault_proxy, tmp_path)
        fault_proxy.add(
            Fault("stall", where="response", fraction=0.5, seconds=30),
            method="GET",
            path=BLOB_GET,
            nth=1,
        )
        with anyio.fail_after(20):
            path = await download(reg, target, layer, tmp_path)

    assert path.read_bytes() == source.read_bytes()
    gets = fault_proxy.requests_matching("GET", BLOB_GET)
    assert [e.range for e in gets] == [None, f"bytes={layer['size'] // 2}-"]


@pytest.mark.parametrize(
    ("method", "path", "where"),
    [
        ("GET", "/manifests/", "request"),
        ("GET", "/manifests/", "response"),
        ("HEAD", BLOB_GET, "headers"),
        ("PUT", UPLOADS, "request"),
        ("PATCH", UPLOADS, "headers"),
    ],
)
async def test_a_stalled_registry_ends_in_a_timeout_error_not_a_hang(
    fault_proxy: FaultProxy, tmp_cwd: Path, method: str, path: str, where: str
) -> None:
    policy = RetryPolicy(attempts=1, backoff=0.01, resumes=1)
    async with AsyncRegistry(
        fault_proxy.host, insecure=True, retry=policy, timeout=httpx.Timeout(0.5)
    ) as reg:
        target = await push_small(reg, fault_proxy, tmp_cwd)
        layer = (await reg.get_manifest(target))["layers"][0]
        fault_proxy.add(
            Fault("stall", where=where, fraction=0.5, seconds=60), method=method, path=path
        )
        source = tmp_cwd / "stalled.bin"
        big = random_file(source, 2 * MiB)
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "GET": lambda: reg.get_manifest(target),
            "HEAD": lambda: reg.blob_exists(layer, target),
            "PUT": lambda: reg.put_upload(source, target, big),
            "PATCH": lambda: reg.chunked_upload(source, target, big, chunk_size=MiB),
        }
        with anyio.fail_after(15), pytest.raises(TimeoutError):
            await calls[method]()
    assert fault_proxy.faults[f"stall-{where}"] >= 1
