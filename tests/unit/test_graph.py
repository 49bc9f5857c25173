"""The artifact graph: successors of manifests and indexes, predecessors, platform choice."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from aioras import MemoryStore
from aioras.content.graph import (
    filter_index,
    is_manifest,
    predecessors,
    referrer_descriptor,
    select_platform,
    successors,
    successors_of,
)
from aioras.descriptor import Descriptor
from aioras.digest import digest_bytes
from aioras.exceptions import ManifestValidationError, NotFoundError, PlatformNotFound

pytestmark = pytest.mark.anyio

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def describe(data: bytes, media_type: str, **extra: object) -> Descriptor:
    return {"mediaType": media_type, "digest": digest_bytes(data), "size": len(data), **extra}  # type: ignore[typeddict-item]


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


CONFIG = describe(b"{}", "application/vnd.oci.empty.v1+json")
LAYER = describe(b"layer", "application/vnd.oci.image.layer.v1.tar")


def manifest_bytes(subject: Descriptor | None = None) -> bytes:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": CONFIG,
        "layers": [LAYER],
    }
    if subject is not None:
        doc["subject"] = subject
        doc["artifactType"] = "application/vnd.example.sig"
    return json.dumps(doc).encode()


def test_manifest_successors_are_config_layers_then_subject() -> None:
    subject = describe(b"subject", MANIFEST)
    data = manifest_bytes(subject)
    found = successors_of(describe(data, MANIFEST), data)
    assert [d["digest"] for d in found] == [CONFIG["digest"], LAYER["digest"], subject["digest"]]


@pytest.mark.parametrize("media_type", [INDEX, DOCKER_LIST])
def test_index_and_manifest_list_successors_are_their_manifests(media_type: str) -> None:
    amd = describe(b"a", MANIFEST, platform={"os": "linux", "architecture": "amd64"})
    arm = describe(b"b", MANIFEST, platform={"os": "linux", "architecture": "arm64"})
    data = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": [amd, arm]})
    found = successors_of(describe(data.encode(), media_type), data.encode())
    assert [d["digest"] for d in found] == [amd["digest"], arm["digest"]]


def test_a_blob_has_no_successors_and_is_not_a_manifest() -> None:
    assert successors_of(LAYER, b"layer") == []
    assert not is_manifest(LAYER)
    assert is_manifest(describe(b"x", DOCKER_LIST))


def test_malformed_manifest_is_refused_with_a_typed_error() -> None:
    with pytest.raises(ManifestValidationError):
        successors_of(describe(b"[1]", MANIFEST), b"[1]")
    bad = b'{"schemaVersion":2,"layers":[{"size":1}]}'
    with pytest.raises(ManifestValidationError):
        successors_of(describe(bad, MANIFEST), bad)


def test_referrer_entry_takes_artifact_type_or_config_media_type() -> None:
    subject = describe(b"s", MANIFEST)
    data = manifest_bytes(subject)
    digest, entry = referrer_descriptor(describe(data, MANIFEST), data) or ("", {})
    assert digest == subject["digest"]
    assert entry["artifactType"] == "application/vnd.example.sig"
    old_style = json.dumps(
        {
            "schemaVersion": 2,
            "config": describe(b"c", "application/vnd.cfg"),
            "layers": [],
            "subject": subject,
        }
    ).encode()
    _, entry = referrer_descriptor(describe(old_style, MANIFEST), old_style) or ("", {})
    assert entry["artifactType"] == "application/vnd.cfg"
    plain = manifest_bytes()
    assert referrer_descriptor(describe(plain, MANIFEST), plain) is None


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("linux/amd64", 0),
        ("linux/arm64", 1),
        ("linux/arm64/v8", 1),
        ("linux/arm/v7", 2),
        ("linux/arm", 2),
    ],
)
def test_select_platform_matches_os_arch_and_default_variants(wanted: str, expected: int) -> None:
    entries = [
        describe(b"a", MANIFEST, platform={"os": "linux", "architecture": "amd64"}),
        describe(b"b", MANIFEST, platform={"os": "linux", "architecture": "arm64"}),
        describe(b"c", MANIFEST, platform={"os": "linux", "architecture": "arm"}),
    ]
    data = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}).encode()
    chosen = select_platform(describe(data, INDEX), data, wanted)
    assert chosen["digest"] == entries[expected]["digest"]


def test_select_platform_without_match_or_malformed_raises() -> None:
    entry = describe(b"a", MANIFEST, platform={"os": "linux", "architecture": "amd64"})
    data = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]}).encode()
    with pytest.raises(NotFoundError):
        select_platform(describe(data, INDEX), data, "windows/amd64")
    with pytest.raises(ValueError, match="os/arch"):
        select_platform(describe(data, INDEX), data, "linux")


def test_filter_index_keeps_chosen_entries_in_source_order_and_the_rest_of_the_document() -> None:
    entries = [
        describe(b"a", MANIFEST, platform={"os": "linux", "architecture": "amd64"}),
        describe(b"b", MANIFEST, platform={"os": "linux", "architecture": "arm64"}, x={"y": 1}),
        describe(b"c", MANIFEST, platform={"os": "linux", "architecture": "s390x"}),
    ]
    doc = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": entries,
        "annotations": {"org.example": "kept"},
    }
    data = json.dumps(doc, indent=2).encode()
    source = describe(data, INDEX)
    new, new_data = filter_index(source, data, ["linux/arm64", "linux/amd64"])
    built = json.loads(new_data)
    assert built == {**doc, "manifests": entries[:2]}
    assert list(built) == list(doc)
    assert new == describe(new_data, INDEX)
    assert new["digest"] != source["digest"]
    # The same source and platforms build the same bytes, whatever the order asked.
    assert filter_index(source, data, ["linux/amd64", "linux/arm64"]) == (new, new_data)
    with pytest.raises(PlatformNotFound, match="windows/amd64"):
        filter_index(source, data, ["linux/amd64", "windows/amd64"])


async def test_successors_and_predecessors_through_a_store() -> None:
    store = MemoryStore()
    subject_data = manifest_bytes()
    subject = describe(subject_data, MANIFEST)
    sig_data = manifest_bytes(subject)
    sig = describe(sig_data, MANIFEST)
    for data, desc in ((subject_data, subject), (sig_data, sig)):
        await store.push(desc, once(data))
    assert [d["digest"] for d in await successors(store, subject)] == [
        CONFIG["digest"],
        LAYER["digest"],
    ]
    assert await successors(store, LAYER) == []
    assert [d["digest"] for d in await predecessors(store, subject)] == [sig["digest"]]
    assert await predecessors(store, subject, artifact_type="other") == []
