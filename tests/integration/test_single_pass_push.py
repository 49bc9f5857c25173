"""Single-pass uploads: a file hashed while it uploads, its digest named at the closing PUT.

Against the real registry (which checks the digest against what it stored), directly and
through the fault proxy: the blob round-trips byte-identical, each file is read once, and
a chunk broken or altered on the way still ends in the right blob.

The default push of a big file uses the same upload, started at once while a worker thread
hashes the file for the existence check: the layer travels once as one PATCH, a blob
already there cancels the upload and is reported skipped, and a PATCH broken off still
ends in the right blob.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from aioras import OrasError, RetryPolicy, TransferEvent, defaults
from aioras.digest import Hasher
from aioras.operations import push as push_module
from aioras.registry import AsyncRegistry
from aioras.remote import _uploads as uploads
from aioras.testing import LocalRegistry
from support.faultproxy import Fault, FaultProxy

pytestmark = pytest.mark.anyio
FAST = RetryPolicy(backoff=0.01, max_backoff=0.05, max_retry_after=2.0)
MiB = 1 << 20
UPLOADS = r"/blobs/uploads/"


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


@pytest.fixture
async def proxied(fault_proxy: FaultProxy) -> AsyncIterator[AsyncRegistry]:
    async with AsyncRegistry(
        fault_proxy.host, insecure=True, retry=FAST, timeout=httpx.Timeout(10.0)
    ) as reg:
        yield reg


async def _fetch(reg: AsyncRegistry, target: str, digest: str, size: int, out: Path) -> bytes:
    path = await reg.download_blob(target, digest, out, size=size)
    return Path(path).read_bytes()


async def test_new_blob_uploads_in_one_pass_and_round_trips(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    source = _random_file(tmp_path / "data.bin", 5 * MiB + 7)
    target = f"{registry.host}/single/{uuid.uuid4().hex[:10]}:v1"
    async with AsyncRegistry(registry.host, insecure=True) as reg:
        result = await reg.upload_new_blob(source, target, chunk_size=2 * MiB)
        assert result == {"digest": _sha256(source), "size": 5 * MiB + 7}
        data = await _fetch(reg, target, result["digest"], result["size"], tmp_path / "out")
    assert data == source.read_bytes()


async def test_single_pass_push_hashes_no_file_beforehand_and_pulls_back_identical(
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = [_random_file(tmp_path / f"layer-{i}.bin", (i + 1) * MiB + i) for i in range(3)]
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    files.append(empty)

    async def no_second_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("a single-pass push hashed a file before uploading it")

    monkeypatch.setattr(push_module, "digest_file", no_second_pass)
    target = f"{registry.host}/single/{uuid.uuid4().hex[:10]}:v1"
    async with AsyncRegistry(registry.host, insecure=True) as reg:
        await reg.push(
            target,
            files=[str(f) for f in files],
            disable_path_validation=True,
            single_pass=True,
            chunk_size=MiB,
        )
        manifest = await reg.get_manifest(target)
        out = tmp_path / "pulled"
        pulled = await reg.pull(target, outdir=out)
    layers = manifest["layers"]
    assert [(layer["digest"], layer["size"]) for layer in layers] == [
        (_sha256(f), f.stat().st_size) for f in files
    ]
    assert [Path(p).read_bytes() for p in pulled] == [f.read_bytes() for f in files]


async def test_single_pass_sends_each_byte_once_and_names_the_digest_at_the_put(
    proxied: AsyncRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    source = _random_file(tmp_path / "data.bin", 3 * MiB + 1)
    target = fault_proxy.reference(f"single/{uuid.uuid4().hex[:10]}:v1")
    result = await proxied.upload_new_blob(source, target, chunk_size=MiB)
    assert not fault_proxy.requests_matching("HEAD")  # no existence check
    patches = fault_proxy.requests_matching("PATCH")
    assert sum(e.content_length or 0 for e in patches) == source.stat().st_size
    puts = fault_proxy.requests_matching("PUT", UPLOADS)
    assert len(puts) == 1
    assert f"digest={result['digest'].replace(':', '%3A')}" in puts[0].target
    assert result["digest"] == _sha256(source)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("reset", where="request", fraction=0.5),
        Fault("reset", where="request", fraction=0.3, forward_partial=True),
        Fault("reset", where="headers"),
        Fault("corrupt", where="request", fraction=0.7),
        Fault("status", status=502, forward=True),
    ],
    ids=["dropped", "partial-body-reached-registry", "answer-lost", "byte-flipped", "502"],
)
async def test_single_pass_upload_lands_the_right_blob_whatever_happened_to_a_chunk(
    proxied: AsyncRegistry,
    fault_proxy: FaultProxy,
    tmp_path: Path,
    fault: Fault,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reread: list[int] = []  # bytes hashed from the file besides the chunks' own bodies
    original = uploads._hash_range

    def spy(path: str, hasher: Hasher, start: int, end: int) -> None:
        reread.append(end - start)
        original(path, hasher, start, end)

    monkeypatch.setattr(uploads, "_hash_range", spy)
    fault_proxy.add(fault, method="PATCH", nth=2)
    source = _random_file(tmp_path / "data.bin", 3 * MiB + 1)
    target = fault_proxy.reference(f"single/{uuid.uuid4().hex[:10]}:v1")
    result = await proxied.upload_new_blob(source, target, chunk_size=MiB)
    assert fault_proxy.injected == 1
    # The hash resumed where the registry stands: at most part of one chunk hashed again.
    assert sum(reread) < MiB
    assert result == {"digest": _sha256(source), "size": source.stat().st_size}
    data = await _fetch(proxied, target, result["digest"], result["size"], tmp_path / "out")
    assert data == source.read_bytes()


SIZE = 3 * MiB + 5


@pytest.fixture
def big_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file above the (lowered) threshold at which push hashes while uploading."""
    monkeypatch.setattr(defaults, "default_overlap_threshold", MiB)
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(SIZE))
    return path


async def _push(reg: AsyncRegistry, target: str, path: Path) -> list[TransferEvent]:
    events: list[TransferEvent] = []
    await reg.push(target, files=[str(path)], disable_path_validation=True, progress=events.append)
    return events


async def _layer_round_trips(reg: AsyncRegistry, target: str, path: Path, out: Path) -> None:
    """The manifest names the file's digest and size, and pulling gives the same bytes."""
    manifest = await reg.get_manifest(target)
    [layer] = manifest["layers"]
    assert (layer["digest"], layer["size"]) == (_sha256(path), SIZE)
    [pulled] = await reg.pull(target, outdir=out)
    assert Path(pulled).read_bytes() == path.read_bytes()


async def test_big_file_push_sends_the_layer_once_as_one_patch_named_at_the_put(
    proxied: AsyncRegistry, fault_proxy: FaultProxy, big_file: Path, tmp_path: Path
) -> None:
    target = fault_proxy.reference(f"overlap/{uuid.uuid4().hex[:10]}:v1")
    events = await _push(proxied, target, big_file)
    [patch] = fault_proxy.requests_matching("PATCH")
    assert patch.received == SIZE
    layer_puts = [e for e in fault_proxy.requests_matching("PUT", UPLOADS) if e.content_length == 0]
    digest = _sha256(big_file)
    assert [digest.replace(":", "%3A") in e.target for e in layer_puts] == [True]
    assert [e.kind for e in events if e.digest == digest and e.kind != "bytes"] == ["start", "done"]
    await _layer_round_trips(proxied, target, big_file, tmp_path / "out")


async def test_big_file_push_of_a_blob_already_there_drops_its_upload_and_reports_skipped(
    proxied: AsyncRegistry, fault_proxy: FaultProxy, big_file: Path, tmp_path: Path
) -> None:
    repository = f"overlap/{uuid.uuid4().hex[:10]}"
    await _push(proxied, fault_proxy.reference(f"{repository}:first"), big_file)
    fault_proxy.log.clear()
    # The PATCH gets no answer: only the existence check can end this push.
    fault_proxy.add(Fault("stall", where="request", seconds=20.0), method="PATCH")
    target = fault_proxy.reference(f"{repository}:second")
    events = await _push(proxied, target, big_file)
    assert sum(e.received for e in fault_proxy.log) < SIZE // 2
    # Bytes sent before the check answered may be reported ("bytes"), never a "done".
    kinds = [e.kind for e in events if e.digest == _sha256(big_file) and e.kind != "bytes"]
    assert kinds == ["start", "skipped"]
    # The upload had started before the hash ended; its session was dropped.
    [post] = fault_proxy.requests_matching("POST", UPLOADS)
    assert fault_proxy.requests_matching("DELETE", UPLOADS)
    assert post.status == 202
    await _layer_round_trips(proxied, target, big_file, tmp_path / "out")


async def test_big_file_push_resumes_a_patch_broken_off_and_lands_the_right_blob(
    proxied: AsyncRegistry,
    fault_proxy: FaultProxy,
    big_file: Path,
    tmp_path: Path,
) -> None:
    fault_proxy.add(
        Fault("reset", where="request", fraction=0.5, forward_partial=True),
        method="PATCH",
        nth=1,
    )
    target = fault_proxy.reference(f"overlap/{uuid.uuid4().hex[:10]}:v1")
    await _push(proxied, target, big_file)
    assert fault_proxy.injected == 1
    # The registry was asked where the session stood (this one drops a session that broke
    # off, so the upload starts over with a new one and sends the whole file again).
    assert fault_proxy.requests_matching("GET", UPLOADS)
    assert fault_proxy.requests_matching("PATCH")[-1].received == SIZE
    fault_proxy.clear()
    await _layer_round_trips(proxied, target, big_file, tmp_path / "out")


async def test_big_file_upload_refused_raises_the_registrys_typed_error(
    proxied: AsyncRegistry, fault_proxy: FaultProxy, big_file: Path
) -> None:
    fault_proxy.add(Fault("status", status=403), method="PATCH")
    target = fault_proxy.reference(f"overlap/{uuid.uuid4().hex[:10]}:v1")
    with pytest.raises(OrasError) as caught:
        await proxied.upload_file(big_file, target)
    assert fault_proxy.injected == 1
    assert "403" in str(caught.value) or "denied" in str(caught.value).lower()


async def test_big_file_push_to_a_registry_refusing_patch_falls_back_to_one_put(
    proxied: AsyncRegistry, fault_proxy: FaultProxy, big_file: Path, tmp_path: Path
) -> None:
    fault_proxy.add(Fault("status", status=405), method="PATCH")
    target = fault_proxy.reference(f"overlap/{uuid.uuid4().hex[:10]}:v1")
    events = await _push(proxied, target, big_file)
    assert fault_proxy.injected == 1
    digest = _sha256(big_file)
    # The file went again, whole, in the PUT that names its digest.
    [put] = [
        e
        for e in fault_proxy.requests_matching("PUT", UPLOADS)
        if digest.replace(":", "%3A") in e.target
    ]
    assert put.received == SIZE
    assert [e.kind for e in events if e.digest == digest and e.kind != "bytes"] == ["start", "done"]
    await _layer_round_trips(proxied, target, big_file, tmp_path / "out")
