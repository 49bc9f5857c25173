"""MemoryStore: verified push, fetch, tags, referrers and deletes, all in memory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from aioras import MemoryStore
from aioras.content.store import Deleter, ReferrerLister, Target, read_all
from aioras.descriptor import Descriptor
from aioras.digest import digest_bytes
from aioras.exceptions import DigestMismatch, NotFoundError, SizeMismatch

pytestmark = pytest.mark.anyio

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def describe(data: bytes, media_type: str = "application/octet-stream") -> Descriptor:
    return {"mediaType": media_type, "digest": digest_bytes(data), "size": len(data)}


async def chunks(data: bytes, size: int = 3) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def referrer_manifest(subject: Descriptor, artifact_type: str) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": artifact_type,
        "config": describe(b"{}", "application/vnd.oci.empty.v1+json"),
        "layers": [],
        "subject": subject,
        "annotations": {"kind": artifact_type},
    }
    return json.dumps(doc).encode()


def test_memory_store_implements_target_referrer_lister_and_deleter() -> None:
    store = MemoryStore()
    assert isinstance(store, Target)
    assert isinstance(store, ReferrerLister)
    assert isinstance(store, Deleter)


async def test_pushed_content_is_fetched_back_verified() -> None:
    store = MemoryStore()
    data = b"hello memory store" * 1000
    desc = describe(data)
    assert not await store.exists(desc)
    await store.push(desc, chunks(data, 1000))
    assert await store.exists(desc)
    assert await read_all(store, desc, max_size=len(data)) == data


async def test_push_refuses_content_that_does_not_match_and_keeps_nothing() -> None:
    store = MemoryStore()
    desc = describe(b"right bytes")
    with pytest.raises(DigestMismatch):
        await store.push(desc, chunks(b"wrong bytes"))
    with pytest.raises(SizeMismatch):
        await store.push(desc, chunks(b"right bytes and more"))
    assert not await store.exists(desc)
    assert len(store) == 0


async def test_tag_and_resolve_by_tag_and_digest() -> None:
    store = MemoryStore()
    data = b'{"schemaVersion":2}'
    desc = describe(data, MANIFEST)
    with pytest.raises(NotFoundError):
        await store.tag(desc, "v1")
    await store.push(desc, chunks(data))
    await store.tag(desc, "v1")
    assert (await store.resolve("v1"))["digest"] == desc["digest"]
    assert (await store.resolve(desc["digest"]))["mediaType"] == MANIFEST
    with pytest.raises(NotFoundError):
        await store.resolve("v2")


async def test_fetch_of_missing_content_raises_not_found() -> None:
    store = MemoryStore()
    with pytest.raises(NotFoundError):
        async with store.fetch(describe(b"absent")):
            pass


async def test_referrers_are_indexed_on_push_and_filtered_by_artifact_type() -> None:
    store = MemoryStore()
    subject = describe(b"{}", MANIFEST)
    sig = referrer_manifest(subject, "application/vnd.example.signature")
    sbom = referrer_manifest(subject, "application/vnd.example.sbom")
    for data in (sig, sbom):
        await store.push(describe(data, MANIFEST), chunks(data))
    found = await store.referrers(subject)
    assert {d["digest"] for d in found} == {digest_bytes(sig), digest_bytes(sbom)}
    only = await store.referrers(subject, artifact_type="application/vnd.example.sbom")
    assert [d["digest"] for d in only] == [digest_bytes(sbom)]
    assert only[0]["annotations"] == {"kind": "application/vnd.example.sbom"}


async def test_delete_removes_content_tags_and_referrer_entry() -> None:
    store = MemoryStore()
    subject = describe(b"{}", MANIFEST)
    sig = referrer_manifest(subject, "application/vnd.example.signature")
    desc = describe(sig, MANIFEST)
    await store.push(desc, chunks(sig))
    await store.tag(desc, "sig")
    await store.delete(desc)
    assert not await store.exists(desc)
    assert await store.referrers(subject) == []
    with pytest.raises(NotFoundError):
        await store.resolve("sig")
    with pytest.raises(NotFoundError):
        await store.delete(desc)
