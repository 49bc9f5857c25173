"""push_to_store, pull_from_store and attach_in_store: the registry operations on a store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aioras import MemoryStore, OCILayout
from aioras.descriptor import Descriptor
from aioras.digest import digest_bytes
from aioras.exceptions import (
    DigestMismatch,
    PlatformNotFound,
    ReadOnlyError,
    UnsafePathError,
)
from aioras.operations.attach import AttachOptions
from aioras.operations.pull import PullOptions
from aioras.operations.push import PushOptions
from aioras.operations.stores import attach_in_store, pull_from_store, push_to_store

pytestmark = pytest.mark.anyio

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def describe(data: bytes, media_type: str = "application/octet-stream") -> Descriptor:
    return {"mediaType": media_type, "digest": digest_bytes(data), "size": len(data)}


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def store_artifact(store: MemoryStore, layer: bytes, title: str, tag: str) -> Descriptor:
    """A manifest of one layer titled ``title``, put in ``store`` by hand."""
    config, blob = describe(b"{}", "application/vnd.oci.empty.v1+json"), describe(layer)
    blob["annotations"] = {"org.opencontainers.image.title": title}
    data = json.dumps(
        {"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": [blob]}
    ).encode()
    manifest = describe(data, MANIFEST)
    for descriptor, content in ((config, b"{}"), (blob, layer), (manifest, data)):
        await store.push(descriptor, once(content))
    await store.tag(manifest, tag)
    return manifest


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "a.txt").write_text("hello\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_text("inside\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def test_push_to_a_layout_then_pull_gives_back_the_files(work: Path) -> None:
    layout = OCILayout(work / "layout")
    pushed = await push_to_store(layout, "v1", ["a.txt", "d"])
    assert (await layout.resolve("v1"))["digest"] == pushed["digest"]
    paths = await pull_from_store(layout, "v1", PullOptions(outdir=work / "out"))
    assert [Path(p).name for p in paths] == ["a.txt", "d"]
    assert (work / "out" / "a.txt").read_text() == "hello\n"
    assert (work / "out" / "d" / "b.txt").read_text() == "inside\n"


async def test_push_to_a_store_without_a_reference_tags_latest(work: Path) -> None:
    store = MemoryStore()
    pushed = await push_to_store(store, None, ["a.txt"])
    assert store.tags["latest"]["digest"] == pushed["digest"]


async def test_push_to_a_layout_read_from_a_tar_is_refused(work: Path) -> None:
    layout = OCILayout(work / "layout")
    await push_to_store(layout, "v1", ["a.txt"])
    await layout.save_tar(work / "x.tar")
    with pytest.raises(ReadOnlyError):
        await push_to_store(await OCILayout.from_tar(work / "x.tar"), "v2", ["a.txt"])


async def test_pull_from_a_store_refuses_a_title_outside_the_output_directory(
    work: Path,
) -> None:
    store = MemoryStore()
    await store_artifact(store, b"evil", "../escaped", "v1")
    with pytest.raises(UnsafePathError):
        await pull_from_store(store, "v1", PullOptions(outdir=work / "out"))
    assert not (work / "escaped").exists()


async def test_pull_from_a_layout_with_altered_bytes_fails_and_writes_nothing(
    work: Path,
) -> None:
    layout = OCILayout(work / "layout")
    pushed = await push_to_store(layout, "v1", ["a.txt"])
    manifest = json.loads((work / "layout/blobs/sha256" / pushed["digest"][7:]).read_bytes())
    blob = work / "layout/blobs/sha256" / manifest["layers"][0]["digest"][7:]
    blob.write_text("HELLO\n")  # same size, other bytes
    out = work / "out"
    out.mkdir()
    with pytest.raises(DigestMismatch):
        await pull_from_store(layout, "v1", PullOptions(outdir=out))
    assert list(out.iterdir()) == []


async def test_attach_in_a_layout_is_listed_as_a_referrer(work: Path) -> None:
    layout = OCILayout(work / "layout")
    subject = await push_to_store(layout, "v1", ["a.txt"])
    referrer = await attach_in_store(
        layout, "v1", ["a.txt"], AttachOptions(artifact_type="application/x.sig")
    )
    found = await layout.referrers(subject)
    assert [(r["digest"], r.get("artifactType")) for r in found] == [
        (referrer["digest"], "application/x.sig")
    ]
    assert await layout.tags() == ["v1"]  # the referrer goes untagged


async def test_push_to_a_store_with_options_keeps_them(work: Path) -> None:
    store = MemoryStore()
    options = PushOptions(manifest_annotations={"k": "v"}, artifact_type="application/x.t")
    pushed = await push_to_store(store, "v1", ["a.txt"], options)
    async with store.fetch(pushed) as stream:
        manifest = json.loads(b"".join([chunk async for chunk in stream]))
    assert manifest["annotations"] == {"k": "v"}
    assert manifest["artifactType"] == "application/x.t"


async def test_pull_from_a_layout_checks_the_platform_and_names_the_layout(work: Path) -> None:
    layout = OCILayout(work / "layout")
    await push_to_store(layout, "v1", ["a.txt"])
    with pytest.raises(PlatformNotFound) as caught:
        await pull_from_store(
            layout, "v1", PullOptions(outdir=work / "out", platform="linux/arm64")
        )
    assert f"{work / 'layout'}:v1" in str(caught.value)
    assert "store.invalid" not in str(caught.value)


async def test_push_to_a_store_with_a_subject_and_no_reference_stays_untagged(work: Path) -> None:
    store = MemoryStore()
    subject = await push_to_store(store, "v1", ["a.txt"])
    options = PushOptions(subject=subject, artifact_type="application/x.sig", pack_version="1.1")
    referrer = await push_to_store(store, None, ["a.txt"], options)
    assert set(store.tags) == {"v1"}
    assert [r["digest"] for r in await store.referrers(subject)] == [referrer["digest"]]
