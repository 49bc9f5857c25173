"""Parallel ranged downloads of large blobs: against the real registry, through faults.

A blob above ``range_threshold`` comes as ``download_ranges`` byte ranges over separate
connections, written at their offsets and verified whole. These tests check, from the
fault proxy's log, which requests were made, and always that the file is byte-identical
and nothing else is left in the output directory.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aioras import RetryPolicy
from aioras.exceptions import DigestMismatch, TransportError
from aioras.registry import AsyncRegistry
from aioras.remote import _blob_store as blob_store_module
from aioras.remote import client as client_module
from aioras.remote._downloads import RangeOptions
from aioras.testing import LocalRegistry
from support import faultproxy
from support.faultproxy import Fault, FaultProxy, Head, generated

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(backoff=0.01, max_backoff=0.05, max_retry_after=2.0)
MiB = 1 << 20
SIZE = 4 * MiB + 12345  # not a multiple of the range count: the last range is shorter
BLOB_GET = r"/blobs/sha256:"
_RANGE = re.compile(r"bytes=(\d+)-(\d+)?")


def _options(**kwargs: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "insecure": True,
        "retry": FAST,
        "timeout": httpx.Timeout(10.0),
        "range_threshold": MiB,
        "download_ranges": 4,
    }
    base.update(kwargs)
    return base


@pytest.fixture
async def blob(
    registry: LocalRegistry, tmp_path: Path
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A random blob of SIZE bytes pushed to a fresh repository: (repository, descriptor)."""
    data = os.urandom(SIZE)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    layer = {
        "mediaType": "application/octet-stream",
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": SIZE,
    }
    name = f"ranged/{uuid.uuid4().hex[:10]}"
    async with AsyncRegistry(registry.host, insecure=True) as reg:
        await reg.upload_blob(source, f"{registry.host}/{name}:v1", layer)
    source.unlink()  # the tests' output directory is tmp_path: only their file remains
    return name, layer


def _blob_gets(proxy: FaultProxy) -> list[faultproxy.Exchange]:
    return proxy.requests_matching("GET", BLOB_GET)


def _span(value: str | None) -> tuple[int, int | None]:
    match = _RANGE.fullmatch(value or "")
    assert match is not None, value
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


async def _download(host: str, name: str, layer: dict[str, Any], out: Path, **kwargs: Any) -> Path:
    async with AsyncRegistry(host, **_options(**kwargs)) as reg:
        path = await reg.download_blob(
            f"{host}/{name}:v1", layer["digest"], out / "blob.bin", size=layer["size"]
        )
    return Path(path)


def _assert_only_blob(out: Path, layer: dict[str, Any]) -> None:
    assert [p.name for p in out.iterdir()] == ["blob.bin"]  # no temporary file left
    data = (out / "blob.bin").read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"]


async def test_large_blob_comes_as_parallel_ranges_that_tile_it(
    fault_proxy: FaultProxy, blob: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    name, layer = blob
    fault_proxy.track("blob", method="GET", path=BLOB_GET)
    await _download(fault_proxy.host, name, layer, tmp_path)
    _assert_only_blob(tmp_path, layer)
    gets = _blob_gets(fault_proxy)
    assert all(e.status == 206 for e in gets)
    spans = sorted(_span(e.range) for e in gets)
    assert len(spans) == 4
    # Contiguous, covering every byte once.
    assert spans[0][0] == 0
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end is not None
        assert start == end + 1
    assert spans[-1][1] == SIZE - 1
    assert fault_proxy.peak["blob"] > 1  # ranges really overlapped in time


async def test_ranged_download_from_the_registry_directly(
    registry: LocalRegistry, blob: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    name, layer = blob
    await _download(registry.host, name, layer, tmp_path)
    _assert_only_blob(tmp_path, layer)


async def test_small_blob_and_ranges_off_use_one_stream(
    fault_proxy: FaultProxy, blob: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    name, layer = blob
    await _download(fault_proxy.host, name, layer, tmp_path, range_threshold=SIZE)
    (tmp_path / "blob.bin").unlink()
    await _download(fault_proxy.host, name, layer, tmp_path, download_ranges=1)
    _assert_only_blob(tmp_path, layer)
    assert [e.range for e in _blob_gets(fault_proxy)] == [None, None]


async def test_range_cut_midway_resumes_where_it_stopped(
    fault_proxy: FaultProxy, blob: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    name, layer = blob
    # The third range request delivers half its body, then the connection closes.
    fault_proxy.add(Fault("truncate", fraction=0.5), method="GET", path=BLOB_GET, nth=3)
    await _download(fault_proxy.host, name, layer, tmp_path)
    _assert_only_blob(tmp_path, layer)
    gets = _blob_gets(fault_proxy)
    assert len(gets) == 5
    cut = next(e for e in gets if e.fault == "truncate-response")
    start, end = _span(cut.range)
    assert end is not None
    again = [e for e in gets if e is not cut and _span(e.range)[1] == end]
    assert again == [gets[-1]]  # the cut range, asked for once more
    # Exactly the bytes that had arrived are not asked for again.
    assert _span(again[0].range)[0] == start + cut.sent
    assert cut.sent == (end - start + 1) // 2


async def test_range_answered_with_the_whole_body_falls_back_to_one_stream(
    fault_proxy: FaultProxy, blob: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    name, layer = blob
    data = os.urandom(SIZE)  # whatever the server sends in its whole-body answer is unused

    async def whole() -> AsyncIterator[bytes]:
        yield data

    headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(SIZE))]
    fault_proxy.add(
        Fault("respond", responder=generated(200, headers, whole)),
        method="GET",
        path=BLOB_GET,
        nth=2,
    )
    await _download(fault_proxy.host, name, layer, tmp_path)
    _assert_only_blob(tmp_path, layer)
    gets = _blob_gets(fault_proxy)
    assert any(e.fault == "respond" for e in gets)
    assert gets[-1].range is None
    assert gets[-1].status == 200  # one stream, from byte 0


async def test_range_answered_with_another_content_range_falls_back_to_one_stream(
    fault_proxy: FaultProxy, blob: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    name, layer = blob

    def shift(request: Head, response: Head, body: bytes) -> tuple[Head, bytes]:
        # The bytes asked for, labelled as a range one byte further on.
        start, end = _span(request.get("range"))
        assert end is not None
        response.set("Content-Range", f"bytes {start + 1}-{end + 1}/{SIZE}")
        return response, body

    fault_proxy.add(Fault("transform", on_response=shift), method="GET", path=BLOB_GET, nth=3)
    await _download(fault_proxy.host, name, layer, tmp_path)
    _assert_only_blob(tmp_path, layer)
    gets = _blob_gets(fault_proxy)
    assert any(e.fault == "transform" for e in gets)
    assert gets[-1].range is None
    assert gets[-1].status == 200


async def test_registry_ignoring_range_is_read_as_one_stream_from_its_first_answer(
    fault_proxy: FaultProxy, blob: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    name, layer = blob

    def drop_range(request: Head) -> None:
        request.remove("Range")  # the registry now answers 200 with the whole blob

    fault_proxy.add(Fault("transform", on_request=drop_range), method="GET", path=BLOB_GET)
    await _download(fault_proxy.host, name, layer, tmp_path)
    _assert_only_blob(tmp_path, layer)
    gets = _blob_gets(fault_proxy)
    # The probe's 200 answer is the download: no second request for the same bytes.
    assert len(gets) == 1
    assert gets[0].status == 200
    assert gets[0].sent == SIZE


async def test_corrupted_range_fails_verification_and_is_fetched_again(
    fault_proxy: FaultProxy, blob: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    name, layer = blob
    fault_proxy.add(Fault("corrupt", fraction=0.3), method="GET", path=BLOB_GET, nth=2)
    await _download(fault_proxy.host, name, layer, tmp_path)
    _assert_only_blob(tmp_path, layer)
    assert _blob_gets(fault_proxy)[-1].range is None  # fetched again as one stream


async def test_corrupted_range_without_refetches_leaves_nothing(
    fault_proxy: FaultProxy, blob: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    name, layer = blob
    fault_proxy.add(Fault("corrupt", fraction=0.3), method="GET", path=BLOB_GET, nth=4)
    with pytest.raises(DigestMismatch):
        await _download(
            fault_proxy.host, name, layer, tmp_path, retry=RetryPolicy(backoff=0.01, refetches=0)
        )
    assert list(tmp_path.iterdir()) == []


async def test_range_that_keeps_breaking_fails_typed_and_leaves_nothing(
    fault_proxy: FaultProxy, blob: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    name, layer = blob
    (tmp_path / "blob.bin").write_bytes(b"keep me")
    fault_proxy.add(Fault("reset", fraction=0.2), method="GET", path=BLOB_GET, nth=range(2, 100))
    with pytest.raises(TransportError):
        await _download(
            fault_proxy.host,
            name,
            layer,
            tmp_path,
            retry=RetryPolicy(backoff=0.01, max_backoff=0.02, resumes=2),
        )
    assert [p.name for p in tmp_path.iterdir()] == ["blob.bin"]
    assert (tmp_path / "blob.bin").read_bytes() == b"keep me"


async def test_ranges_take_only_free_transfer_slots(
    fault_proxy: FaultProxy, blob: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    name, layer = blob
    fault_proxy.track("blob", method="GET", path=BLOB_GET)
    await _download(fault_proxy.host, name, layer, tmp_path, max_transfers=2)
    _assert_only_blob(tmp_path, layer)
    assert len(_blob_gets(fault_proxy)) == 2
    assert fault_proxy.peak["blob"] <= 2


async def test_large_blob_comes_as_more_ranges_than_connections_taken_in_order(
    fault_proxy: FaultProxy,
    blob: tuple[str, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ranges of at least 256 KiB: the 4 MiB blob is cut into 4 rounds of 4 ranges.
    small = functools.partial(RangeOptions, min_block=256 * 1024)
    monkeypatch.setattr(client_module, "RangeOptions", small)
    name, layer = blob
    fault_proxy.track("blob", method="GET", path=BLOB_GET)
    asked: list[int] = []
    real = blob_store_module.download_verified

    async def recording(get: Any, outfile: Any, **kwargs: Any) -> str:
        send = get.send

        async def sending(method: str, url: str, **options: Any) -> httpx.Response:
            asked.append(_span((options.get("headers") or {}).get("Range"))[0])
            return await send(method, url, **options)

        return await real(dataclasses.replace(get, send=sending), outfile, **kwargs)

    monkeypatch.setattr(blob_store_module, "download_verified", recording)
    await _download(fault_proxy.host, name, layer, tmp_path)
    _assert_only_blob(tmp_path, layer)
    spans = sorted(_span(e.range) for e in _blob_gets(fault_proxy))
    assert len(spans) == 16
    assert spans[0][0] == 0
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start == end + 1  # contiguous, every byte once
    assert spans[-1][1] == SIZE - 1
    # Each connection takes the next range not yet taken: asked for in the blob's order,
    # so the hash follows close behind instead of reading most of the blob back at the end.
    assert asked == sorted(asked)
    assert 1 < fault_proxy.peak["blob"] <= 4
