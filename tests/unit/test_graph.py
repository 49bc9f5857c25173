"""The artifact graph: successors of manifests and indexes, predecessors, platform choice."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aioras import MemoryStore
from aioras.content.graph import (
    GraphWalk,
    Visit,
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
from aioras.exceptions import (
    GraphLimitExceeded,
    ManifestValidationError,
    NotFoundError,
    PlatformNotFound,
)
from aioras.operations.discover import ReferrerNode

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


# -- descriptors as manifests name them ------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "pointer"),
    [
        ("size", None, "/layers/0/size"),
        ("size", "12", "/layers/0/size"),
        ("size", True, "/layers/0/size"),
        ("size", -1, "/layers/0/size"),
        ("mediaType", ..., "/layers/0"),
        ("size", ..., "/layers/0"),
        ("digest", "sha256:not hex", "/layers/0/digest"),
        ("urls", "https://example.com/x", "/layers/0/urls"),
        ("annotations", {"k": 1}, "/layers/0/annotations/k"),
    ],
)
def test_malformed_layer_descriptor_is_a_validation_error_naming_its_field(
    field: str, value: Any, pointer: str
) -> None:
    layer: dict[str, Any] = dict(LAYER)
    if value is ...:
        del layer[field]
    else:
        layer[field] = value
    doc = {"schemaVersion": 2, "mediaType": MANIFEST, "config": CONFIG, "layers": [layer]}
    data = json.dumps(doc).encode()
    with pytest.raises(ManifestValidationError) as info:
        successors_of(describe(data, MANIFEST), data)
    assert info.value.path.startswith(pointer)
    assert pointer in str(info.value)


def test_malformed_config_subject_or_index_entry_is_a_validation_error() -> None:
    for doc, pointer in [
        ({"config": {**CONFIG, "size": None}, "layers": []}, "/config/size"),
        ({"config": CONFIG, "layers": [], "subject": {"digest": LAYER["digest"]}}, "/subject"),
    ]:
        data = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, **doc}).encode()
        with pytest.raises(ManifestValidationError) as info:
            successors_of(describe(data, MANIFEST), data)
        assert info.value.path.startswith(pointer)
    entry = {**describe(b"a", MANIFEST), "size": "1"}
    data = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]}).encode()
    with pytest.raises(ManifestValidationError, match="/manifests/0/size"):
        successors_of(describe(data, INDEX), data)


# -- bounded walks and deep trees ------------------------------------------------------------


def node(name: str) -> Descriptor:
    return describe(name.encode(), MANIFEST)


async def test_walk_of_a_dag_visits_each_node_once_and_completes_children_first() -> None:
    # Ten levels of two nodes, each listing both of the next: 2,047 paths, 21 nodes.
    levels = [[node("root")]] + [[node(f"{i}.{j}") for j in (0, 1)] for i in range(1, 11)]
    below = {
        n["digest"]: levels[i + 1] if i < 10 else [] for i, lv in enumerate(levels) for n in lv
    }
    visits: list[str] = []
    completed: list[str] = []

    async def visit(descriptor: Descriptor, depth: int) -> Visit:
        visits.append(descriptor["digest"])

        async def then() -> list[Descriptor]:
            assert all(c["digest"] in completed for c in below[descriptor["digest"]])
            completed.append(descriptor["digest"])
            return []

        return Visit(children=below[descriptor["digest"]], then=then)

    await GraphWalk(visit, concurrency=3).run(levels[0][0])
    assert sorted(visits) == sorted(below)
    assert completed[-1] == levels[0][0]["digest"]


@pytest.mark.parametrize(
    ("limits", "what"), [({"max_depth": 5}, "max_depth"), ({"max_nodes": 7}, "max_nodes")]
)
async def test_walk_of_an_endless_graph_stops_at_its_limit(
    limits: dict[str, int], what: str
) -> None:
    visited = 0

    async def visit(descriptor: Descriptor, depth: int) -> Visit:
        nonlocal visited
        visited += 1
        return Visit(after=[node(f"{descriptor['digest']}+")])

    with pytest.raises(GraphLimitExceeded, match=f"{what}=") as info:
        await GraphWalk(
            visit,
            concurrency=2,
            max_depth=limits.get("max_depth", 10**6),
            max_nodes=limits.get("max_nodes", 10**6),
        ).run(node("root"))
    assert (info.value.what, info.value.limit) == (what, next(iter(limits.values())))
    assert visited == next(iter(limits.values())) + (1 if what == "max_depth" else 0)


async def test_walk_whose_children_wait_on_each_other_is_a_validation_error() -> None:
    a, b = node("a"), node("b")

    async def visit(descriptor: Descriptor, depth: int) -> Visit:
        return Visit(children=[b if descriptor is a else a])

    with pytest.raises(ManifestValidationError, match="cycle"):
        await GraphWalk(visit, concurrency=1).run(a)


def test_a_1100_deep_referrer_tree_converts_and_renders_without_recursion() -> None:
    root = ReferrerNode(node("root"), reference="r:v1")
    tip = root
    for i in range(1100):
        child = ReferrerNode({**node(str(i)), "artifactType": "application/vnd.example.sig"})
        tip.referrers.append(child)
        tip = child
    rows = root.rows()
    assert [row["depth"] for row in rows] == list(range(1, 1101))
    assert rows[-1]["subject"] == rows[-2]["digest"]
    doc = root.to_dict()
    assert doc["reference"] == "r:v1"
    for _ in range(1100):
        (doc,) = doc["referrers"]
    assert doc["referrers"] == []
    assert repr(root).startswith("ReferrerNode(")
