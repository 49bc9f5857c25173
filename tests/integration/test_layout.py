"""OCILayout: an OCI image layout directory (and tar) as a store, checked on disk."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import aioras
from aioras import OCILayout, defaults, schemas
from aioras.content.store import Deleter, ReferrerLister, Target, read_all
from aioras.descriptor import Descriptor
from aioras.exceptions import (
    DigestMismatch,
    InvalidDigest,
    InvalidLayout,
    InvalidReference,
    NotFoundError,
    ReadOnlyError,
    SizeMismatch,
    UnsafePathError,
)

pytestmark = pytest.mark.anyio

MANIFEST = defaults.default_manifest_media_type
INDEX = defaults.default_index_media_type
LAYER = defaults.default_blob_media_type
CONFIG = defaults.default_config_media_type
REF = defaults.oci_ref_name_annotation
SIG = "application/vnd.example.signature"
SBOM = "application/vnd.example.sbom"


def describe(data: bytes, media_type: str = LAYER, **extra: Any) -> Descriptor:
    out: dict[str, Any] = {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
        **extra,
    }
    return out  # type: ignore[return-value]


async def chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def manifest_bytes(
    config: Descriptor,
    layers: list[Descriptor],
    *,
    subject: Descriptor | None = None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config,
        "layers": layers,
    }
    if artifact_type:
        doc["artifactType"] = artifact_type
    if subject:
        doc["subject"] = {k: subject[k] for k in ("mediaType", "digest", "size")}  # type: ignore[literal-required]
    if annotations:
        doc["annotations"] = annotations
    return json.dumps(doc).encode()


async def push(layout: OCILayout, data: bytes, media_type: str = LAYER) -> Descriptor:
    descriptor = describe(data, media_type)
    await layout.push(descriptor, chunks(data))
    return descriptor


async def push_image(layout: OCILayout, seed: bytes = b"") -> tuple[Descriptor, bytes]:
    """Push a config, a 3 MiB layer and a manifest; return the manifest's descriptor, bytes."""
    config = await push(layout, b'{"seed":"' + seed.hex().encode() + b'"}', CONFIG)
    layer = await push(layout, os.urandom(3 * (1 << 20) + 7) + seed)
    data = manifest_bytes(config, [layer])
    return await push(layout, data, MANIFEST), data


async def push_artifact(
    layout: OCILayout, subject: Descriptor, artifact_type: str, text: bytes
) -> Descriptor:
    empty = await push(layout, b"{}", defaults.empty_media_type)
    layer = await push(layout, text)
    data = manifest_bytes(
        empty, [layer], subject=subject, artifact_type=artifact_type, annotations={"k": "v"}
    )
    return await push(layout, data, MANIFEST)


async def fetch(layout: OCILayout, descriptor: Descriptor) -> bytes:
    out = bytearray()
    async with layout.fetch(descriptor) as stream:
        async for chunk in stream:
            out += chunk
    return bytes(out)


def index_doc(root: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((root / "index.json").read_bytes())
    return doc


def blob_files(root: Path) -> list[str]:
    """Every file under blobs/, temporary ones included."""
    return sorted(str(p.relative_to(root)) for p in (root / "blobs").rglob("*") if p.is_file())


def entries(root: Path) -> list[tuple[str, str | None]]:
    return [
        (e["digest"], (e.get("annotations") or {}).get(REF)) for e in index_doc(root)["manifests"]
    ]


# -- round trips --------------------------------------------------------------------------


async def test_pushed_image_resolves_by_tag_and_fetches_verified(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    manifest, data = await push_image(layout)
    await layout.tag(manifest, "v1")

    assert await layout.resolve("v1") == manifest
    assert await layout.resolve(manifest["digest"]) == manifest
    assert await read_all(layout, manifest) == data
    layer = json.loads(data)["layers"][0]
    blob = root / "blobs" / "sha256" / layer["digest"].split(":")[1]
    assert await fetch(layout, layer) == blob.read_bytes()
    assert await layout.exists(layer)
    assert not await layout.exists({**layer, "size": layer["size"] + 1})
    assert await layout.tags() == ["v1"]


async def test_layout_files_follow_the_image_spec(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    manifest, _ = await push_image(layout)
    await layout.tag(manifest, "v1")

    assert json.loads((root / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    doc = index_doc(root)
    schemas.validate_index(doc)
    assert doc["mediaType"] == INDEX
    assert doc["manifests"] == [{**manifest, "annotations": {REF: "v1"}}]
    for name in blob_files(root):
        path = root / name
        algorithm, encoded = name.split("/")[1:]
        assert hashlib.new(algorithm, path.read_bytes()).hexdigest() == encoded
        assert path.stat().st_mode & 0o777 == 0o644


def open_files_under(root: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    found = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(root)):
            found.append(target)
    return found


async def test_fetch_left_early_closes_its_file(tmp_path: Path) -> None:
    layout = OCILayout(tmp_path / "layout")
    layer = await push(layout, os.urandom(4 << 20))
    archive = await OCILayout.from_tar(await layout.save_tar(tmp_path / "x.tar"))
    for store in (layout, archive):
        async with store.fetch(layer) as stream:
            async for _chunk in stream:
                assert open_files_under(tmp_path) != []
                break
        assert open_files_under(tmp_path) == []


async def test_layout_is_a_target_referrer_lister_and_deleter(tmp_path: Path) -> None:
    layout = OCILayout(tmp_path)
    assert isinstance(layout, Target)
    assert isinstance(layout, ReferrerLister)
    assert isinstance(layout, Deleter)


async def test_reading_a_missing_directory_creates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "absent"
    layout = OCILayout(root)
    assert await layout.tags() == []
    assert not await layout.exists(describe(b"x"))
    with pytest.raises(NotFoundError):
        await layout.resolve("v1")
    assert not root.exists()


async def test_push_of_a_present_blob_does_not_read_the_stream(tmp_path: Path) -> None:
    layout = OCILayout(tmp_path)
    descriptor = await push(layout, b"already here")

    async def must_not_be_read() -> AsyncIterator[bytes]:
        raise AssertionError("the stream was read")
        yield b""  # pragma: no cover

    await layout.push(descriptor, must_not_be_read())
    assert await fetch(layout, descriptor) == b"already here"


# -- atomicity ----------------------------------------------------------------------------


class Interrupted(Exception):
    pass


async def test_push_interrupted_mid_stream_leaves_no_blob_and_no_index_entry(
    tmp_path: Path,
) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    kept, _ = await push_image(layout)
    await layout.tag(kept, "kept")
    before_blobs, before_index = blob_files(root), (root / "index.json").read_bytes()
    data = manifest_bytes(describe(b"{}", CONFIG), []) + b" " * (3 << 20)

    async def breaks_off() -> AsyncIterator[bytes]:
        yield data[: 2 << 20]
        raise Interrupted

    with pytest.raises(Interrupted):
        await layout.push(describe(data, MANIFEST), breaks_off())

    assert blob_files(root) == before_blobs
    assert (root / "index.json").read_bytes() == before_index


async def test_cancelled_push_leaves_no_blob_and_no_index_entry(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    data = os.urandom(2 << 20)
    started = anyio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield data[: 1 << 20]
        started.set()
        await anyio.sleep_forever()
        yield data  # pragma: no cover

    async with anyio.create_task_group() as tg:
        tg.start_soon(layout.push, describe(data, MANIFEST), stalls())
        await started.wait()
        tg.cancel_scope.cancel()

    assert blob_files(root) == []
    assert not (root / "index.json").exists()


@pytest.mark.parametrize("wrong", ["digest", "too-long", "too-short"])
async def test_mismatching_content_stores_nothing(tmp_path: Path, wrong: str) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    data = os.urandom(1 << 20)
    sent = {
        "digest": data[:-1] + bytes([data[-1] ^ 0xFF]),
        "too-long": data + b"!",
        "too-short": data[:-1],
    }[wrong]
    expected = DigestMismatch if wrong == "digest" else SizeMismatch

    with pytest.raises(expected):
        await layout.push(describe(data, MANIFEST), chunks(sent))

    assert blob_files(root) == []
    assert not (root / "index.json").exists()


async def test_failed_index_write_keeps_the_previous_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    first, _ = await push_image(layout, b"1")
    await layout.tag(first, "v1")
    before = (root / "index.json").read_bytes()
    real_replace = os.replace

    def failing_replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if os.fspath(dst).endswith("index.json"):
            raise OSError("disk full")
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        await push_image(layout, b"2")  # its blobs land; listing the manifest fails
    with pytest.raises(OSError, match="disk full"):
        await layout.tag(first, "v2")

    assert (root / "index.json").read_bytes() == before
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
    monkeypatch.undo()
    assert await layout.tags() == ["v1"]


async def test_concurrent_tags_and_pushes_keep_every_entry(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    config = await push(layout, b"{}", CONFIG)
    manifests = []
    for n in range(24):
        layer = await push(layout, f"layer {n}".encode())
        manifests.append(describe(manifest_bytes(config, [layer]), MANIFEST))

    async def push_and_tag(n: int) -> None:
        data = manifest_bytes(config, [describe(f"layer {n}".encode())])
        await layout.push(manifests[n], chunks(data))
        await layout.tag(manifests[n], f"t{n}")
        await layout.tag(manifests[n], f"u{n}")

    async with anyio.create_task_group() as tg:
        for n in range(len(manifests)):
            tg.start_soon(push_and_tag, n)

    found = entries(root)
    assert sorted(tag for _, tag in found if tag) == sorted(
        [f"t{n}" for n in range(24)] + [f"u{n}" for n in range(24)]
    )
    assert {d for d, _ in found} == {m["digest"] for m in manifests}
    assert all(tag is not None for _, tag in found)  # no untagged leftovers beside the tags


async def test_two_objects_on_one_directory_keep_every_entry(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    first, second = OCILayout(root), OCILayout(root)
    image, _ = await push_image(first)

    async with anyio.create_task_group() as tg:
        for n in range(16):
            tg.start_soon(first.tag, image, f"a{n}")
            tg.start_soon(second.tag, image, f"b{n}")

    assert sorted(await OCILayout(root).tags()) == sorted(
        [f"a{n}" for n in range(16)] + [f"b{n}" for n in range(16)]
    )


TAGGER = """
import json, sys, time
from pathlib import Path
import anyio
from aioras import OCILayout

async def main() -> None:
    layout = OCILayout(sys.argv[1])
    go = Path(sys.argv[1]).parent / "go"
    while not go.exists():  # start together, so the edits overlap
        time.sleep(0.01)
    for n in range(40):
        await layout.tag(json.loads(sys.argv[3]), f"{sys.argv[2]}{n}")

anyio.run(main)
"""


async def test_two_processes_tagging_one_directory_keep_every_entry(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    image, _ = await push_image(OCILayout(root))
    env = {**os.environ, "PYTHONPATH": str(Path(aioras.__file__).parent.parent)}
    command = [sys.executable, "-c", TAGGER, str(root)]
    processes = [await anyio.open_process([*command, p, json.dumps(image)], env=env) for p in "pqr"]
    (tmp_path / "go").touch()
    for process in processes:
        async with process:
            assert await process.wait() == 0

    assert sorted(await OCILayout(root).tags()) == sorted(
        f"{prefix}{n}" for prefix in "pqr" for n in range(40)
    )


# -- tags ---------------------------------------------------------------------------------


async def test_pushed_manifests_are_listed_untagged_until_tagged(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    manifest, _ = await push_image(layout)
    assert entries(root) == [(manifest["digest"], None)]
    await layout.tag(manifest, "v1")
    assert entries(root) == [(manifest["digest"], "v1")]


async def test_moving_a_tag_keeps_the_old_manifest_listed_untagged(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    old, _ = await push_image(layout, b"old")
    new, _ = await push_image(layout, b"new")
    await layout.tag(old, "v1")
    await layout.tag(new, "v1")

    assert await layout.resolve("v1") == new
    assert entries(root) == [(old["digest"], None), (new["digest"], "v1")]


async def test_moving_a_tag_adds_no_untagged_duplicate_of_a_still_tagged_manifest(
    tmp_path: Path,
) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    old, _ = await push_image(layout, b"old")
    new, _ = await push_image(layout, b"new")
    await layout.tag(old, "v1")
    await layout.tag(old, "stable")
    await layout.tag(new, "v1")

    assert entries(root) == [(new["digest"], "v1"), (old["digest"], "stable")]
    assert await layout.resolve("stable") == old


async def test_tagging_keeps_other_index_fields(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    manifest, _ = await push_image(layout)
    doc = index_doc(root)
    doc["annotations"] = {"org.example": "kept"}
    (root / "index.json").write_text(json.dumps(doc))
    await layout.tag(manifest, "v1")
    assert index_doc(root)["annotations"] == {"org.example": "kept"}


async def test_tag_of_an_absent_blob_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    await push_image(layout)
    before = (root / "index.json").read_bytes()
    with pytest.raises(NotFoundError):
        await layout.tag(describe(b"not pushed", MANIFEST), "v1")
    assert (root / "index.json").read_bytes() == before


@pytest.mark.parametrize("reference", ["", "has space", "-lead", "a/../b", "x" * 5000])
async def test_malformed_reference_is_refused(tmp_path: Path, reference: str) -> None:
    layout = OCILayout(tmp_path / "layout")
    manifest, _ = await push_image(layout)
    with pytest.raises(InvalidReference):
        await layout.tag(manifest, reference)


async def test_full_reference_is_a_valid_tag(tmp_path: Path) -> None:
    layout = OCILayout(tmp_path / "layout")
    manifest, _ = await push_image(layout)
    await layout.tag(manifest, "example.com/repo:v1.0")
    assert await layout.resolve("example.com/repo:v1.0") == manifest


# -- resolve and referrers ----------------------------------------------------------------


def write_by_hand(root: Path, blobs: list[bytes], listed: list[dict[str, Any]]) -> None:
    """A layout as another tool might write it: these blobs, these index.json entries."""
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for data in blobs:
        (root / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()).write_bytes(data)
    doc = {"schemaVersion": 2, "mediaType": INDEX, "manifests": listed}
    (root / "index.json").write_text(json.dumps(doc))


async def test_digest_of_a_child_of_a_listed_index_resolves(tmp_path: Path) -> None:
    config = b"{}"
    child = manifest_bytes(describe(config, CONFIG), [])
    platform = {"os": "linux", "architecture": "arm64"}
    child_entry = {**describe(child, MANIFEST), "platform": platform}
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [child_entry]})
    write_by_hand(
        tmp_path,
        [config, child, index.encode()],
        [{**describe(index.encode(), INDEX), "annotations": {REF: "multi"}}],
    )
    layout = OCILayout(tmp_path)

    assert await layout.resolve(child_entry["digest"]) == child_entry
    assert await read_all(layout, await layout.resolve(child_entry["digest"])) == child


async def test_digest_of_an_unlisted_blob_resolves_by_its_content(tmp_path: Path) -> None:
    config = b'{"architecture":"amd64"}'
    manifest = manifest_bytes(describe(config, CONFIG), [])
    write_by_hand(tmp_path, [config, manifest], [])
    layout = OCILayout(tmp_path)

    assert await layout.resolve(describe(manifest)["digest"]) == describe(manifest, MANIFEST)
    assert await layout.resolve(describe(config)["digest"]) == describe(
        config, "application/octet-stream"
    )
    with pytest.raises(NotFoundError):
        await layout.resolve(describe(b"absent")["digest"])
    with pytest.raises(NotFoundError):
        await layout.resolve("no-such-tag")


async def test_referrers_are_found_by_their_subject(tmp_path: Path) -> None:
    layout = OCILayout(tmp_path / "layout")
    image, _ = await push_image(layout)
    await layout.tag(image, "v1")
    signature = await push_artifact(layout, image, SIG, b"signed")
    sbom = await push_artifact(layout, image, SBOM, b"sbom")
    countersign = await push_artifact(layout, signature, SIG, b"counter")

    found = await layout.referrers(image)
    assert sorted(d["digest"] for d in found) == sorted([signature["digest"], sbom["digest"]])
    for descriptor in found:
        assert descriptor["annotations"] == {"k": "v"}
        assert descriptor["artifactType"] in (SIG, SBOM)
    assert [d["digest"] for d in await layout.referrers(image, artifact_type=SBOM)] == [
        sbom["digest"]
    ]
    assert [d["digest"] for d in await layout.referrers(signature)] == [countersign["digest"]]
    assert await layout.referrers(sbom) == []


async def test_referrers_of_an_index_child_are_found_below_a_listed_index(
    tmp_path: Path,
) -> None:
    config = b"{}"
    child = manifest_bytes(describe(config, CONFIG), [])
    child_d = describe(child, MANIFEST)
    signature = manifest_bytes(describe(config, CONFIG), [], subject=child_d, artifact_type=SIG)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": [child_d, describe(signature, MANIFEST)],
        }
    ).encode()
    write_by_hand(
        tmp_path,
        [config, child, signature, index],
        [{**describe(index, INDEX), "annotations": {REF: "v1"}}],
    )
    found = await OCILayout(tmp_path).referrers(child_d)
    assert found == [{**describe(signature, MANIFEST), "artifactType": SIG}]


# -- delete -------------------------------------------------------------------------------


async def test_delete_removes_the_blob_and_every_tag_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    kept, _ = await push_image(layout, b"kept")
    gone, _ = await push_image(layout, b"gone")
    await layout.tag(kept, "kept")
    await layout.tag(gone, "a")
    await layout.tag(gone, "b")

    await layout.delete(gone)

    assert entries(root) == [(kept["digest"], "kept")]
    assert not await layout.exists(gone)
    with pytest.raises(NotFoundError):
        await layout.resolve("a")
    with pytest.raises(NotFoundError):
        await layout.delete(gone)


# -- hostile directories ------------------------------------------------------------------


async def test_corrupted_blob_fails_its_digest_when_read(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    layer = await push(layout, os.urandom(2 << 20))
    path = root / "blobs" / "sha256" / layer["digest"].split(":")[1]
    path.write_bytes(os.urandom(layer["size"]))
    with pytest.raises(DigestMismatch):
        await fetch(layout, layer)
    path.write_bytes(b"short")
    with pytest.raises(SizeMismatch):
        await fetch(layout, layer)


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"schemaVersion": 2, "manifests": [{"mediaType": "x", "size": 1}]}',
        b'{"schemaVersion": 2, "manifests": [{"mediaType": "x", "size": 1, "digest": "md5:ab"}]}',
        b"[" * 200_000 + b"]" * 200_000,
    ],
    ids=["not-json", "not-object", "entry-without-digest", "unverifiable-digest", "deep"],
)
async def test_malformed_index_json_is_refused(tmp_path: Path, content: bytes) -> None:
    write_by_hand(tmp_path, [], [])
    (tmp_path / "index.json").write_bytes(content)
    with pytest.raises(InvalidLayout):
        await OCILayout(tmp_path).resolve("v1")


async def test_index_json_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    write_by_hand(tmp_path, [], [])
    with (tmp_path / "index.json").open("ab") as fd:
        fd.write(b" " * 4096)
    with pytest.raises(InvalidLayout, match="limit"):
        await OCILayout(tmp_path, max_index_size=1024).tags()


async def test_unsupported_layout_version_is_refused(tmp_path: Path) -> None:
    write_by_hand(tmp_path, [], [])
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion":"2.0.0"}')
    with pytest.raises(InvalidLayout, match="version"):
        await OCILayout(tmp_path).tags()
    with pytest.raises(InvalidLayout, match="version"):
        await push(OCILayout(tmp_path), b"x")


async def test_special_files_in_place_of_layout_files_are_refused(tmp_path: Path) -> None:
    write_by_hand(tmp_path, [], [])
    (tmp_path / "index.json").unlink()
    os.mkfifo(tmp_path / "index.json")  # reading it would block forever
    with pytest.raises(InvalidLayout):
        await OCILayout(tmp_path).tags()
    (tmp_path / "index.json").unlink()
    (tmp_path / "elsewhere.json").write_text('{"schemaVersion":2,"manifests":[]}')
    (tmp_path / "index.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(InvalidLayout):
        await OCILayout(tmp_path).tags()


async def test_symlinked_blob_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"secret")
    root = tmp_path / "layout"
    write_by_hand(root, [], [])
    descriptor = describe(b"secret")
    (root / "blobs" / "sha256" / descriptor["digest"].split(":")[1]).symlink_to(secret)
    with pytest.raises(InvalidLayout):
        await fetch(OCILayout(root), descriptor)


async def test_blobs_directory_leading_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "layout"
    root.mkdir()
    (root / "blobs").symlink_to(outside)
    with pytest.raises(InvalidLayout):
        await push(OCILayout(root), b"data")
    assert list(outside.rglob("*")) == []


@pytest.mark.parametrize("swapped", ["blobs", "blobs/sha256"])
async def test_push_after_a_blobs_directory_is_swapped_for_a_symlink_writes_nothing_outside(
    tmp_path: Path, swapped: str
) -> None:
    outside = tmp_path / "outside"
    (outside / "sha256").mkdir(parents=True)
    root = tmp_path / "layout"
    layout = OCILayout(root)
    await push(layout, b"first")  # the same object has written there before the swap
    (root / swapped).rename(tmp_path / "moved-away")
    (root / swapped).symlink_to(outside if swapped == "blobs" else outside / "sha256")

    with pytest.raises(InvalidLayout):
        await push(layout, b"second")
    assert list(outside.rglob("*")) == [outside / "sha256"]


async def test_malformed_descriptor_digest_is_refused(tmp_path: Path) -> None:
    layout = OCILayout(tmp_path)
    bad: Descriptor = {"mediaType": LAYER, "digest": "sha256:../../etc/passwd", "size": 1}
    with pytest.raises(InvalidDigest):
        await layout.exists(bad)
    with pytest.raises(InvalidDigest):
        await layout.push(bad, chunks(b"x"))
    assert list(tmp_path.iterdir()) == []


async def test_a_file_given_as_the_layout_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "layout.tar"
    path.write_bytes(b"x")
    with pytest.raises(InvalidLayout, match="from_tar"):
        await OCILayout(path).tags()


# -- tar ----------------------------------------------------------------------------------


async def test_tar_round_trip_reads_every_blob_back(tmp_path: Path) -> None:
    layout = OCILayout(tmp_path / "layout")
    image, image_bytes = await push_image(layout)
    await layout.tag(image, "v1")
    signature = await push_artifact(layout, image, SIG, b"signed")
    saved = await layout.save_tar(tmp_path / "layout.tar")

    opened = await OCILayout.from_tar(saved)
    assert opened.read_only
    assert await opened.tags() == ["v1"]
    assert await opened.resolve("v1") == image
    assert await read_all(opened, image) == image_bytes
    for blob in json.loads(image_bytes)["layers"]:
        assert await fetch(opened, blob) == await fetch(layout, blob)
    assert [d["digest"] for d in await opened.referrers(image)] == [signature["digest"]]


async def test_saved_tar_is_reproducible_and_lists_the_layout_files(tmp_path: Path) -> None:
    layout = OCILayout(tmp_path / "layout")
    image, _ = await push_image(layout)
    await layout.tag(image, "v1")
    first = (await layout.save_tar(tmp_path / "a.tar")).read_bytes()
    again = (await layout.save_tar(tmp_path / "b.tar")).read_bytes()
    resaved = await (await OCILayout.from_tar(tmp_path / "a.tar")).save_tar(tmp_path / "c.tar")

    assert first == again == resaved.read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        names = tar.getnames()
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
    assert names[:2] == ["oci-layout", "index.json"]
    assert sorted(n for n in names if n.count("/") == 2) == blob_files(tmp_path / "layout")


async def test_layout_read_from_a_tar_refuses_writes(tmp_path: Path) -> None:
    layout = OCILayout(tmp_path / "layout")
    image, _ = await push_image(layout)
    opened = await OCILayout.from_tar(await layout.save_tar(tmp_path / "x.tar"))
    before = (tmp_path / "x.tar").read_bytes()
    with pytest.raises(ReadOnlyError):
        await opened.push(describe(b"new"), chunks(b"new"))
    with pytest.raises(ReadOnlyError):
        await opened.tag(image, "v2")
    with pytest.raises(ReadOnlyError):
        await opened.delete(image)
    assert (tmp_path / "x.tar").read_bytes() == before


async def test_save_tar_of_a_corrupted_layout_leaves_no_file(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    layout = OCILayout(root)
    image, _ = await push_image(layout)
    await layout.tag(image, "v1")
    layer = next(p for p in (root / "blobs" / "sha256").iterdir() if p.stat().st_size > 1 << 20)
    layer.write_bytes(os.urandom(layer.stat().st_size))
    previous = tmp_path / "out.tar"
    previous.write_bytes(b"previous archive")

    with pytest.raises(DigestMismatch):
        await layout.save_tar(previous)
    assert previous.read_bytes() == b"previous archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layout", "out.tar"]


def build_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def layout_members(*, extra: list[tuple[tarfile.TarInfo, bytes | None]]) -> list[Any]:
    index = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    return [
        file_member("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
        file_member("index.json", index),
        *extra,
    ]


def link_member(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def device_member(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    return info, None


HEX = "ab" * 32


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ([file_member("../escape", b"x")], UnsafePathError),
        ([file_member("/etc/passwd", b"x")], UnsafePathError),
        ([link_member(f"blobs/sha256/{HEX}", "/etc/passwd", tarfile.SYMTYPE)], UnsafePathError),
        ([link_member(f"blobs/sha256/{HEX}", "oci-layout", tarfile.LNKTYPE)], UnsafePathError),
        ([device_member("blobs/sha256/dev")], UnsafePathError),
        ([file_member("blobs/sha256/not-a-digest", b"x")], InvalidLayout),
        ([file_member(f"blobs/sha256/{HEX.upper()}", b"x")], InvalidLayout),
        ([file_member(f"blobs/sha256/{HEX}/deeper", b"x")], InvalidLayout),
        ([file_member("index.json", b"{}")], InvalidLayout),
    ],
    ids=[
        "dotdot",
        "absolute",
        "symlink",
        "hardlink",
        "device",
        "blob-not-digest",
        "blob-uppercase",
        "blob-too-deep",
        "index-twice",
    ],
)
async def test_hostile_tar_is_refused(
    tmp_path: Path, extra: list[Any], error: type[Exception]
) -> None:
    path = build_tar(tmp_path / "hostile.tar", layout_members(extra=extra))
    with pytest.raises(error):
        await OCILayout.from_tar(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.tar"]


async def test_tar_without_layout_files_is_refused(tmp_path: Path) -> None:
    members = layout_members(extra=[])
    no_marker = build_tar(tmp_path / "a.tar", members[1:])
    no_index = build_tar(tmp_path / "b.tar", members[:1])
    bad_version = build_tar(
        tmp_path / "c.tar",
        [file_member("oci-layout", b'{"imageLayoutVersion":"9.0.0"}'), members[1]],
    )
    for path in (no_marker, no_index, bad_version):
        with pytest.raises(InvalidLayout):
            await OCILayout.from_tar(path)


async def test_compressed_or_oversized_tar_is_refused(tmp_path: Path) -> None:
    layout = OCILayout(tmp_path / "layout")
    await push_image(layout)
    saved = await layout.save_tar(tmp_path / "x.tar")
    with pytest.raises(InvalidLayout, match="limit"):
        await OCILayout.from_tar(saved, max_index_size=16)
    gz = tmp_path / "x.tar.gz"
    with tarfile.open(gz, "w:gz") as tar:
        tar.add(saved, arcname="x")
    with pytest.raises(InvalidLayout, match="uncompressed"):
        await OCILayout.from_tar(gz)


async def test_blob_failing_its_digest_in_a_tar_is_refused_when_read(tmp_path: Path) -> None:
    claimed = describe(b"the real content")
    path = build_tar(
        tmp_path / "x.tar",
        layout_members(
            extra=[file_member(f"blobs/sha256/{claimed['digest'][7:]}", b"forged content!!")]
        ),
    )
    opened = await OCILayout.from_tar(path)
    assert await opened.exists(claimed)
    with pytest.raises(DigestMismatch):
        await fetch(opened, claimed)
