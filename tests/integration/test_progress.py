"""Progress events: one TransferEvent type for copy, push and pull, throttled bytes events."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import aioras
from aioras import AsyncRegistry, MemoryStore, TransferEvent
from aioras import progress as progress_module
from aioras.descriptor import Descriptor
from aioras.digest import digest_bytes
from aioras.exceptions import DigestMismatch
from aioras.progress import ProgressReporter
from aioras.testing import LocalRegistry

pytestmark = pytest.mark.anyio

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


def describe(data: bytes, media_type: str) -> Descriptor:
    return {"mediaType": media_type, "digest": digest_bytes(data), "size": len(data)}


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def staged(layers: list[bytes]) -> tuple[MemoryStore, Descriptor]:
    store = MemoryStore()
    config = describe(b"{}", EMPTY)
    await store.push(config, once(b"{}"))
    descs = []
    for data in layers:
        descs.append(describe(data, LAYER))
        await store.push(descs[-1], once(data))
    doc = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": descs}
    data = json.dumps(doc).encode()
    root = describe(data, MANIFEST)
    await store.push(root, once(data))
    await store.tag(root, "v1")
    return store, root


async def test_bytes_events_are_throttled_to_about_ten_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter(i * 0.01 for i in range(10_000))  # each reading 10 ms later than the last
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    events: list[TransferEvent] = []
    reporter = ProgressReporter(events.append)
    desc = describe(b"x" * 1000, LAYER)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(1000):
            yield b"x"

    got = b"".join([c async for c in reporter.counted(desc, chunks())])
    assert got == b"x" * 1000
    # 1000 chunks over 10 simulated seconds: about one event per 100 ms, not per chunk.
    assert 90 <= len(events) <= 100
    assert all(e.kind == "bytes" and e.total == 1000 for e in events)
    assert [e.done for e in events] == sorted(e.done for e in events)


async def test_copy_reports_resolve_and_done_children_first_to_an_async_callback() -> None:
    src, root = await staged([os.urandom(3 << 20), b"small"])
    events: list[TransferEvent] = []

    async def record(event: TransferEvent) -> None:
        events.append(event)

    await aioras.copy(src, "v1", MemoryStore(), progress=record)
    assert events[0].kind == "resolve"
    assert events[0].digest == root["digest"]
    done = {e.digest for e in events if e.kind == "done"}
    assert len(done) == 4  # config, two layers, manifest
    for event in events:
        if event.kind == "done":
            assert event.done == event.total == event.descriptor["size"]
    assert events[-1].kind == "done"
    assert events[-1].digest == root["digest"]  # children before the parent


async def test_copy_reports_skipped_for_what_the_destination_has() -> None:
    src, _ = await staged([b"one", b"two"])
    dst = MemoryStore()
    await aioras.copy(src, "v1", dst, "other")
    events: list[TransferEvent] = []
    await aioras.copy(src, "v1", dst, progress=events.append)
    assert {e.kind for e in events} == {"resolve", "skipped"}


class Tampered(MemoryStore):
    """A store whose fetch hands out other bytes than it holds, unverified."""

    @asynccontextmanager
    async def fetch(self, descriptor: Descriptor) -> AsyncIterator[AsyncIterator[bytes]]:
        data = self._get(descriptor["digest"])
        if descriptor["mediaType"] == LAYER:
            data = bytes(reversed(data))
        yield once(data)


async def test_copy_reports_an_error_event_and_raises() -> None:
    src = Tampered()
    good, root = await staged([b"abcdef"])
    for digest, data in good._blobs.items():
        await src.push(good._descriptors[digest], once(data))
    await src.tag(root, "v1")
    events: list[TransferEvent] = []
    with pytest.raises(DigestMismatch):
        await aioras.copy(src, "v1", MemoryStore(), progress=events.append)
    errors = [e for e in events if e.kind == "error"]
    assert errors
    assert isinstance(errors[0].error, DigestMismatch)


async def test_push_and_pull_report_progress(
    registry: LocalRegistry, tmp_cwd: Path, tmp_path: Path
) -> None:
    Path("a.bin").write_bytes(os.urandom(100_000))
    Path("b.txt").write_bytes(b"hello")
    ref = f"{registry.host}/progress/pushpull:v1"
    pushed: list[TransferEvent] = []
    async with AsyncRegistry(registry.host, insecure=True) as reg:
        await reg.push(ref, files=["a.bin", "b.txt"], progress=pushed.append)
        assert [e.kind for e in pushed].count("start") == 3  # two files and the config
        assert [e.kind for e in pushed][-1] == "done"
        again: list[TransferEvent] = []
        await reg.push(ref, files=["a.bin", "b.txt"], progress=again.append)
        assert [e.kind for e in again].count("skipped") == 3
        pulled: list[TransferEvent] = []
        await reg.pull(ref, outdir=str(tmp_path / "out"), progress=pulled.append)
    assert pulled[0].kind == "resolve"
    assert pulled[0].digest == pushed[-1].digest
    # Between start and done each layer may report "bytes" as it arrives.
    milestones = sorted(e.kind for e in pulled[1:] if e.kind != "bytes")
    assert milestones == ["done", "done", "start", "start"]
