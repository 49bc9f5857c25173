"""copy asks the stores' capabilities (Mounter, ReferencePusher, RestartablePusher), never
their classes: any store offering one gets it used, and a store without it is copied to
with the plain verbs. Memory stores stand in for both ends. (TransferBudget: test_copy.)"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

import aioras
from aioras import MemoryStore
from aioras.content.store import (
    Mounter,
    ReferencePusher,
    RestartablePusher,
    StreamOpener,
    Target,
)
from aioras.descriptor import Descriptor
from aioras.operations.copy import HELD, UP_TO_DATE, CopyOptions, Skipped, copy_graph
from support.mirrortools import LAYER, MANIFEST, describe

pytestmark = pytest.mark.anyio

EMPTY = "application/vnd.oci.empty.v1+json"


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def artifact(store: MemoryStore, layers: int) -> tuple[Descriptor, list[Descriptor]]:
    """A manifest tagged v1 with a config and ``layers`` layers; (root, its blobs)."""
    blobs = [describe(b"{}", EMPTY)]
    await store.push(blobs[0], once(b"{}"))
    for i in range(layers):
        data = f"layer {i} ".encode() * 200
        blobs.append(describe(data, LAYER))
        await store.push(blobs[-1], once(data))
    doc = {"schemaVersion": 2, "mediaType": MANIFEST, "config": blobs[0], "layers": blobs[1:]}
    data = json.dumps(doc).encode()
    root = describe(data, MANIFEST)
    await store.push(root, once(data))
    await store.tag(root, "v1")
    return root, blobs


class RecordingStore(MemoryStore):
    """A memory store recording what was pushed through the plain verbs."""

    def __init__(self) -> None:
        super().__init__()
        self.pushed: list[str] = []
        self.tagged: list[str] = []

    async def push(self, descriptor: Descriptor, content: AsyncIterator[bytes]) -> None:  # type: ignore[override]
        self.pushed.append(descriptor["digest"])
        await super().push(descriptor, content)

    async def tag(self, descriptor: Descriptor, reference: str) -> None:
        self.tagged.append(reference)
        await super().tag(descriptor, reference)


class MountingStore(RecordingStore):
    """A Mounter that can link in blobs of one given store (as a registry host does)."""

    def __init__(self, linked: MemoryStore) -> None:
        super().__init__()
        self.linked = linked
        self.mounts: list[tuple[str, str]] = []

    def mount_source(self, source: object) -> str | None:
        return "team/source" if source is self.linked else None

    async def mount(self, descriptor: Descriptor, from_repository: str) -> bool:
        self.mounts.append((descriptor["digest"], from_repository))
        async with self.linked.fetch(descriptor) as stream:
            await MemoryStore.push(self, descriptor, stream)
        return True


async def test_a_store_with_the_mounter_capability_gets_blobs_mounted_not_sent() -> None:
    src = MemoryStore()
    root, blobs = await artifact(src, 3)
    dst = MountingStore(src)
    assert isinstance(dst, Mounter)
    result = await copy_graph(src, "v1", dst, None, CopyOptions())
    assert sorted(dst.mounts) == sorted((b["digest"], "team/source") for b in blobs)
    assert dst.pushed == [root["digest"]]  # only the manifest travelled
    assert sorted(d["digest"] for d in result.mounted) == sorted(b["digest"] for b in blobs)
    assert result.copied == [root]
    assert result.bytes_mounted == sum(b["size"] for b in blobs)
    for blob in blobs:
        assert await dst.exists(blob)


async def test_a_store_without_the_mounter_capability_is_copied_to_without_mounting() -> None:
    src = MemoryStore()
    root, blobs = await artifact(src, 2)
    other = MemoryStore()
    dst = MountingStore(other)  # it can mount, but not from this source
    result = await copy_graph(src, "v1", dst, None, CopyOptions())
    assert dst.mounts == []
    assert result.mounted == []
    plain = RecordingStore()
    assert not isinstance(plain, Mounter)
    result = await copy_graph(src, "v1", plain, None, CopyOptions())
    assert sorted(plain.pushed) == sorted(d["digest"] for d in [root, *blobs])
    assert result.mounted == []
    assert result.bytes_copied == sum(d["size"] for d in [root, *blobs])


class ReferenceStore(RecordingStore):
    """A ReferencePusher: a manifest and its tag in one push."""

    def __init__(self) -> None:
        super().__init__()
        self.by_reference: list[tuple[str, str | None]] = []

    async def push_manifest(
        self, descriptor: Descriptor, data: bytes, *, reference: str | None = None
    ) -> None:
        self.by_reference.append((descriptor["digest"], reference))
        await MemoryStore.push(self, descriptor, once(data))
        if reference is not None:
            await MemoryStore.tag(self, descriptor, reference)


async def test_a_reference_pusher_gets_the_root_manifest_and_its_tag_in_one_push() -> None:
    src = MemoryStore()
    root, _ = await artifact(src, 1)
    dst = ReferenceStore()
    assert isinstance(dst, ReferencePusher)
    assert not isinstance(RecordingStore(), ReferencePusher)
    await aioras.copy(src, "v1", dst, "v2")
    assert dst.by_reference == [(root["digest"], "v2")]
    assert dst.tagged == []  # no separate tag step
    assert (await dst.resolve("v2"))["digest"] == root["digest"]


class RestartingStore(RecordingStore):
    """A RestartablePusher whose first upload of each blob breaks off and starts over."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: dict[str, int] = {}

    async def push_from(
        self, descriptor: Descriptor, source: StreamOpener, *, skip_existing: bool = True
    ) -> None:
        assert skip_existing is False  # copy asked exists() just before
        async with source() as stream:
            async for _ in stream:
                break  # the transfer "fails" after the first chunk
        self.opened[descriptor["digest"]] = 1
        async with source() as stream:  # opened anew, from its first byte
            await MemoryStore.push(self, descriptor, stream)
        self.opened[descriptor["digest"]] += 1


async def test_a_restartable_pusher_gets_a_source_it_can_open_again() -> None:
    src = MemoryStore()
    _, blobs = await artifact(src, 2)
    dst = RestartingStore()
    assert isinstance(dst, RestartablePusher)
    await aioras.copy(src, "v1", dst)
    assert dst.opened == {b["digest"]: 2 for b in blobs}
    for blob in blobs:
        assert await dst.exists(blob)


async def test_copy_result_names_what_was_copied_skipped_and_why() -> None:
    src = MemoryStore()
    root, blobs = await artifact(src, 2)
    dst: Target = MemoryStore()
    await dst.push(blobs[1], once(b"layer 0 " * 200))  # one layer there already
    first = await copy_graph(src, "v1", dst, "v1", CopyOptions())
    assert first.root == root
    assert first.source_root == root
    assert sorted(d["digest"] for d in first.copied) == sorted(
        d["digest"] for d in [root, blobs[0], blobs[2]]
    )
    assert first.skipped == [Skipped(blobs[1], HELD)]
    assert first.bytes_skipped == blobs[1]["size"]
    assert not first.up_to_date
    again = await copy_graph(src, "v1", dst, "v1", CopyOptions())
    assert again.up_to_date
    assert again.skipped == [Skipped(root, UP_TO_DATE)]
    assert again.copied == []
    assert again.bytes_copied == 0
