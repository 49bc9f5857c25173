"""mirror: specs, re-syncs, dry runs and failures between two real registries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import aioras
from aioras import AsyncRegistry, MirrorSpec
from aioras.exceptions import NotFoundError, PlatformNotFound
from aioras.operations.mirror import ArtifactEvent
from aioras.testing import LocalRegistry
from support.faultproxy import FaultProxy
from support.mirrortools import (
    LAYER,
    artifact,
    describe,
    digests,
    populate,
    put,
    shared_layer,
    unique,
)

pytestmark = pytest.mark.anyio

TAGS = ["1.0.0", "1.2.0", "1.4.1", "1.9.0", "2.0.0", "2.1.0-rc.1", "latest", "1.5.0-debug"]


@pytest.fixture
def source(registry: LocalRegistry) -> LocalRegistry:
    return registry


@pytest.fixture(scope="module")
def target(registry_binary: str) -> Iterator[LocalRegistry]:
    """A second registry for the module (tests use unique repository names)."""
    reg = LocalRegistry(binary=registry_binary).start()
    yield reg
    reg.stop()


@pytest.fixture
async def fault_proxy_pair(
    source: LocalRegistry, target: LocalRegistry
) -> AsyncIterator[tuple[FaultProxy, FaultProxy]]:
    """A fault proxy (no rules: a request counter) in front of each registry."""
    assert source.port is not None
    assert target.port is not None
    async with FaultProxy(source.port) as src_proxy, FaultProxy(target.port) as dst_proxy:
        yield src_proxy, dst_proxy


@pytest.fixture
async def reg() -> AsyncIterator[AsyncRegistry]:
    async with AsyncRegistry(insecure=True) as client:
        yield client


async def test_spec_mirrors_only_tags_kept_by_regex_semver_and_newest(
    reg: AsyncRegistry, source: LocalRegistry, target: LocalRegistry
) -> None:
    name = unique("team/app")
    made = await populate(reg, f"{source.host}/{name}", TAGS)
    spec = MirrorSpec(
        f"{source.host}/{name}",
        f"{target.host}/{name}",
        tags=r"\d+\.\d+\.\d+(-.*)?",
        exclude=r".*-debug",
        semver=">=1.2 <2.0.0",
        newest=2,
    )
    report = await reg.mirror([spec])
    # 1.2.0, 1.4.1 and 1.9.0 pass the filters; the last two the registry lists stay.
    listed = await reg.get_tags(f"{source.host}/{name}")
    kept = [t for t in listed if t in ("1.2.0", "1.4.1", "1.9.0")][-2:]
    assert sorted(r.source.rsplit(":", 1)[1] for r in report.copied) == sorted(kept)
    assert await digests(reg, f"{target.host}/{name}", TAGS) == {t: made[t] for t in kept}
    assert report.ok
    assert not report.skipped
    assert report.bytes_sent > 0


async def test_resync_copies_nothing_and_sends_only_heads(
    reg: AsyncRegistry, fault_proxy_pair: tuple[FaultProxy, FaultProxy]
) -> None:
    src_proxy, dst_proxy = fault_proxy_pair
    name = unique("resync")
    await populate(reg, f"{src_proxy.host}/{name}", ["a", "b", "c"])
    pairs = [(f"{src_proxy.host}/{name}:{t}", f"{dst_proxy.host}/{name}:{t}") for t in "abc"]
    first = await reg.mirror(pairs)
    assert len(first.copied) == 3
    src_proxy.log.clear()
    dst_proxy.log.clear()
    again = await reg.mirror(pairs)
    assert not again.copied
    assert len(again.skipped) == 3
    assert {s.reason for s in again.skipped} == {aioras.operations.mirror.UP_TO_DATE}
    for proxy in (src_proxy, dst_proxy):
        assert [e.method for e in proxy.log] == ["HEAD"] * 3
    assert again.requests == 6
    assert again.bytes_sent == 0


@pytest.mark.parametrize("concurrency", [1, 8])
async def test_first_copy_lists_missing_destination_tags_once_and_gets_sources_unheaded(
    reg: AsyncRegistry, fault_proxy_pair: tuple[FaultProxy, FaultProxy], concurrency: int
) -> None:
    src_proxy, dst_proxy = fault_proxy_pair
    name = unique("first")
    tags = "abcdef"
    made = await populate(reg, f"{src_proxy.host}/{name}", list(tags))
    src_proxy.log.clear()
    pairs = [(f"{src_proxy.host}/{name}:{t}", f"{dst_proxy.host}/{name}:{t}") for t in tags]
    report = await reg.mirror(pairs, concurrency=concurrency)
    assert len(report.copied) == len(tags)
    # The first tag is looked up alone (the jobs starting beside it wait for it): its 404
    # has the (new) repository's tags listed, and the other tags cost no HEAD; no
    # manifest is asked about by digest in a repository without tags.
    heads = [e.target for e in dst_proxy.requests_matching("HEAD", "/manifests/")]
    assert len(heads) == 1
    assert heads[0].startswith(f"/v2/{name}/manifests/")
    assert len(dst_proxy.requests_matching("GET", "/tags/list")) == 1
    # Each source manifest is read once, with no HEAD before it.
    assert src_proxy.requests_matching("HEAD", "/manifests/") == []
    assert len(src_proxy.requests_matching("GET", "/manifests/")) == len(tags)
    # A repository without tags holds only what the mirror sends: no blob is asked about.
    assert dst_proxy.requests_matching("HEAD", "/blobs/") == []
    uploads = dst_proxy.requests_matching("PUT", "/blobs/uploads/")
    assert len(uploads) == 2 * len(tags) + 1  # a config and a layer each, and the shared one
    assert await digests(reg, f"{dst_proxy.host}/{name}", tags) == made


async def test_a_large_blob_left_untagged_by_an_earlier_run_is_found_not_sent_again(
    reg: AsyncRegistry, fault_proxy_pair: tuple[FaultProxy, FaultProxy]
) -> None:
    src_proxy, dst_proxy = fault_proxy_pair
    name = unique("leftover")
    source = f"{src_proxy.host}/{name}"
    size = 2 * 1024 * 1024
    made = await populate(reg, source, ["a", "b"], size=size)
    # An interrupted run sent the 2 MiB shared layer and tagged nothing.
    layer = await put(reg.repository(f"{dst_proxy.host}/{name}"), shared_layer(source, size), LAYER)
    dst_proxy.log.clear()
    pairs = [(f"{src_proxy.host}/{name}:{t}", f"{dst_proxy.host}/{name}:{t}") for t in "ab"]
    assert len((await reg.mirror(pairs)).copied) == 2
    # Only the large layer is asked about (and found); the small blobs are sent unasked.
    heads = [e.target for e in dst_proxy.requests_matching("HEAD", "/blobs/")]
    assert heads == [f"/v2/{name}/blobs/{layer['digest']}"]
    uploaded = [e.target for e in dst_proxy.requests_matching("PUT", "/blobs/uploads/")]
    assert len(uploaded) == 4  # two configs, two own layers
    assert not [u for u in uploaded if layer["digest"].replace(":", "%3A") in u]
    assert await digests(reg, f"{dst_proxy.host}/{name}", "ab") == made


async def test_blobs_of_a_tagged_destination_are_asked_about_and_not_sent_again(
    reg: AsyncRegistry, fault_proxy_pair: tuple[FaultProxy, FaultProxy]
) -> None:
    src_proxy, dst_proxy = fault_proxy_pair
    name = unique("tagged")
    made = await populate(reg, f"{src_proxy.host}/{name}", ["a", "b"])
    pairs = [(f"{src_proxy.host}/{name}:{t}", f"{dst_proxy.host}/{name}:{t}") for t in "ab"]
    assert len((await reg.mirror(pairs[:1])).copied) == 1
    dst_proxy.log.clear()
    assert len((await reg.mirror(pairs[1:])).copied) == 1
    # b's config, own layer and the layer it shares with a: each asked about once; the
    # shared one, already there, is not sent again.
    assert len(dst_proxy.requests_matching("HEAD", "/blobs/")) == 3
    assert len(dst_proxy.requests_matching("PUT", "/blobs/uploads/")) == 2
    assert await digests(reg, f"{dst_proxy.host}/{name}", "ab") == made


async def test_resync_of_a_spec_lists_tags_then_only_heads(
    reg: AsyncRegistry, fault_proxy_pair: tuple[FaultProxy, FaultProxy]
) -> None:
    src_proxy, dst_proxy = fault_proxy_pair
    name = unique("resync/spec")
    await populate(reg, f"{src_proxy.host}/{name}", ["a", "b"])
    spec = MirrorSpec(f"{src_proxy.host}/{name}", f"{dst_proxy.host}/{name}")
    assert len((await reg.mirror([spec])).copied) == 2
    src_proxy.log.clear()
    dst_proxy.log.clear()
    again = await reg.mirror([spec])
    assert len(again.skipped) == 2
    assert sorted(e.method for e in src_proxy.log) == ["GET", "HEAD", "HEAD"]
    assert "/tags/list" in next(e.target for e in src_proxy.log if e.method == "GET")
    assert [e.method for e in dst_proxy.log] == ["HEAD", "HEAD"]


async def test_dry_run_reports_plan_and_transfers_nothing(
    reg: AsyncRegistry, fault_proxy_pair: tuple[FaultProxy, FaultProxy]
) -> None:
    src_proxy, dst_proxy = fault_proxy_pair
    name = unique("dry")
    made = await populate(reg, f"{src_proxy.host}/{name}", ["a", "b"])
    await reg.mirror([(f"{src_proxy.host}/{name}:a", f"{dst_proxy.host}/{name}:a")])
    dst_proxy.log.clear()
    spec = MirrorSpec(f"{src_proxy.host}/{name}", f"{dst_proxy.host}/{name}")
    report = await reg.mirror([spec], dry_run=True)
    assert [(p.destination, p.digest) for p in report.planned] == [
        (f"{dst_proxy.host}/{name}:b", made["b"])
    ]
    assert [s.destination for s in report.skipped] == [f"{dst_proxy.host}/{name}:a"]
    assert {e.method for e in dst_proxy.log} == {"HEAD"}
    assert report.bytes_sent == 0
    with pytest.raises(NotFoundError):
        await reg.repository(f"{dst_proxy.host}/{name}").resolve("b")


async def test_keep_going_reports_an_artifact_deleted_mid_run_and_copies_the_rest(
    reg: AsyncRegistry, source: LocalRegistry, target: LocalRegistry
) -> None:
    name = unique("keep")
    made = await populate(reg, f"{source.host}/{name}", ["a", "b", "c", "d"])
    spec = MirrorSpec(f"{source.host}/{name}", f"{target.host}/{name}")
    events: list[ArtifactEvent] = []

    async def progress(event: object) -> None:
        # Once the first artifact is settled (tags were listed before), delete "c".
        if isinstance(event, ArtifactEvent):
            events.append(event)
            if len(events) == 1:
                await reg.delete_tag(f"{source.host}/{name}", "c")

    report = await reg.mirror([spec], concurrency=1, keep_going=True, progress=progress)
    assert [f.source for f in report.failed] == [f"{source.host}/{name}:c"]
    assert report.failed[0].error_type == "NotFoundError"
    assert isinstance(report.failed[0].error, NotFoundError)
    assert len(report.copied) == 3
    got = await digests(reg, f"{target.host}/{name}", "abcd")
    assert got == {t: made[t] for t in "abd"}
    assert [e.outcome for e in events].count("failed") == 1
    assert json.loads(report.to_json())["failed"][0]["error_type"] == "NotFoundError"


async def test_without_keep_going_the_first_failure_is_raised(
    reg: AsyncRegistry, source: LocalRegistry, target: LocalRegistry
) -> None:
    name = unique("stop")
    await populate(reg, f"{source.host}/{name}", ["a"])
    pairs = [
        (f"{source.host}/{name}:missing", f"{target.host}/{name}:missing"),
        (f"{source.host}/{name}:a", f"{target.host}/{name}:a"),
    ]
    with pytest.raises(NotFoundError):
        await reg.mirror(pairs, concurrency=1)
    assert await digests(reg, f"{target.host}/{name}", ["a"]) == {}


async def test_shared_layer_is_checked_and_sent_once_per_repository(
    reg: AsyncRegistry, fault_proxy_pair: tuple[FaultProxy, FaultProxy]
) -> None:
    src_proxy, dst_proxy = fault_proxy_pair
    name = unique("shared")
    tags = [f"t{i}" for i in range(6)]
    await populate(reg, f"{src_proxy.host}/{name}", tags, size=64 * 1024)
    spec = MirrorSpec(f"{src_proxy.host}/{name}", f"{dst_proxy.host}/{name}")
    dst_proxy.log.clear()
    report = await reg.mirror([spec], concurrency=6)
    assert len(report.copied) == 6
    blob_heads = [e.target for e in dst_proxy.requests_matching("HEAD", "/blobs/")]
    assert len(blob_heads) == len(set(blob_heads))  # no blob asked about twice
    uploads = dst_proxy.requests_matching("PUT", "/blobs/uploads/")
    # 6 configs + 6 own layers + the shared layer once.
    assert len(uploads) == 13


async def test_same_host_mirror_mounts_blobs(reg: AsyncRegistry, source: LocalRegistry) -> None:
    name = unique("mount")
    await populate(reg, f"{source.host}/{name}", ["a"])
    report = await reg.mirror([MirrorSpec(f"{source.host}/{name}", f"{source.host}/{name}-m")])
    assert len(report.copied) == 1
    assert report.bytes_sent < 1024  # the manifest only; every blob was mounted
    assert report.bytes_skipped > 2048


async def test_whole_registry_spec_uses_catalog_with_repository_filters(
    reg: AsyncRegistry, source: LocalRegistry, target: LocalRegistry
) -> None:
    top = unique("catalog")
    await populate(reg, f"{source.host}/{top}/keep/one", ["x"])
    await populate(reg, f"{source.host}/{top}/drop/two", ["y"])
    spec = MirrorSpec(
        source.host,
        f"{target.host}/mirror",
        repositories=rf"{top}/.*",
        exclude_repositories=r".*/drop/.*",
    )
    report = await reg.mirror([spec])
    assert [r.destination for r in report.copied] == [f"{target.host}/mirror/{top}/keep/one:x"]


INDEX = "application/vnd.oci.image.index.v1+json"
ARCHES = {"amd64": {}, "arm64": {"variant": "v8"}, "s390x": {}}


async def three_platform_index(reg: AsyncRegistry, repository: str, tag: str) -> dict[str, object]:
    """An index (with annotations) of linux amd64, arm64/v8 and s390x images, tagged ``tag``."""
    repo = reg.repository(repository)
    entries = []
    for arch, extra in ARCHES.items():
        child = await artifact(repo, f"{tag}-{arch}", b"shared" * 64, arch.encode() * 64)
        entries.append({**child, "platform": {"os": "linux", "architecture": arch, **extra}})
    doc = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": entries,
        "annotations": {"org.opencontainers.image.title": "three"},
    }
    data = json.dumps(doc, indent=1).encode()
    await repo.push_manifest(describe(data, INDEX), data, reference=tag)
    return {"doc": doc, "digest": describe(data, INDEX)["digest"]}


async def test_two_of_three_platforms_mirror_as_a_filtered_index_and_resync_copies_nothing(
    reg: AsyncRegistry, fault_proxy_pair: tuple[FaultProxy, FaultProxy]
) -> None:
    src_proxy, dst_proxy = fault_proxy_pair
    name = unique("platforms")
    made = await three_platform_index(reg, f"{src_proxy.host}/{name}", "multi")
    source_doc = made["doc"]
    assert isinstance(source_doc, dict)
    amd, arm, s390x = source_doc["manifests"]
    # Asked in another order than the index's: the index's order is kept.
    spec = MirrorSpec(
        f"{src_proxy.host}/{name}",
        f"{dst_proxy.host}/{name}",
        tags="multi",
        platforms=["linux/arm64", "linux/amd64"],
    )
    first = await reg.mirror([spec])
    assert first.ok
    (result,) = first.copied
    data, found = await reg.fetch_manifest_bytes(f"{dst_proxy.host}/{name}:multi")
    assert result.digest == found["digest"] != made["digest"]
    assert result.source_digest == made["digest"]
    assert json.loads(data) == {**source_doc, "manifests": [amd, arm]}
    dst = reg.repository(f"{dst_proxy.host}/{name}")
    assert await dst.exists(amd)
    assert await dst.exists(arm)
    assert not await dst.exists(s390x)
    src_proxy.log.clear()
    dst_proxy.log.clear()
    again = await reg.mirror([spec])
    assert not again.copied
    assert [(r.digest, r.reason) for r in again.skipped] == [
        (result.digest, aioras.operations.mirror.UP_TO_DATE)
    ]
    assert again.bytes_sent == 0
    # The destination is asked one HEAD; the source lists its tags and gives the index.
    assert [(e.method, e.target) for e in dst_proxy.log] == [
        ("HEAD", f"/v2/{name}/manifests/multi")
    ]
    # The source: its tag list and one GET of the index (no HEAD before it).
    assert [e.method for e in src_proxy.log if "/manifests/" in e.target] == ["GET"]
    assert {e.method for e in src_proxy.log} == {"GET"}


async def test_a_platform_an_index_lacks_fails_that_artifact_and_single_manifests_copy_as_they_are(
    reg: AsyncRegistry, source: LocalRegistry, target: LocalRegistry
) -> None:
    name = unique("platforms-missing")
    await three_platform_index(reg, f"{source.host}/{name}", "multi")
    single = await populate(reg, f"{source.host}/{name}", ["single"])
    spec = MirrorSpec(
        f"{source.host}/{name}",
        f"{target.host}/{name}",
        tags="multi|single",
        platforms=["linux/amd64", "windows/amd64"],
    )
    report = await reg.mirror([spec], keep_going=True)
    (failure,) = report.failed
    assert failure.source == f"{source.host}/{name}:multi"
    assert isinstance(failure.error, PlatformNotFound)
    assert "windows/amd64" in failure.message
    assert [r.digest for r in report.copied] == [single["single"]]
    assert await digests(reg, f"{target.host}/{name}", ["multi", "single"]) == single


def test_plan_loads_from_toml_with_spec_and_pair(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(
        '[[mirror]]\nsource = "a.example/x"\ndestination = "b.example/x"\n'
        'semver = "^1.2"\nnewest = 3\n\n'
        '[[copy]]\nsource = "a.example/y:1"\ndestination = "b.example/y:1"\n'
    )
    plan = aioras.load_plan(path)
    assert plan == [
        MirrorSpec("a.example/x", "b.example/x", semver="^1.2", newest=3),
        ("a.example/y:1", "b.example/y:1"),
    ]


def test_plan_file_with_unknown_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text('[[mirror]]\nsource = "a/x"\ndestination = "b/x"\nnewset = 3\n')
    with pytest.raises(ValueError, match="newset"):
        aioras.load_plan(path)


def test_bad_spec_values_are_refused() -> None:
    with pytest.raises(ValueError, match="tags"):
        MirrorSpec("a/x", "b/x", tags="(")
    with pytest.raises(ValueError, match="semver"):
        MirrorSpec("a/x", "b/x", semver=">=one")
    with pytest.raises(ValueError, match="newest"):
        MirrorSpec("a/x", "b/x", newest=0)


def test_sync_registry_mirrors_with_transfer_and_artifact_events(
    source: LocalRegistry, target: LocalRegistry
) -> None:
    name = unique("sync")
    with aioras.Registry(insecure=True) as sync_reg:
        made = sync_reg._call(populate, sync_reg.aregistry, f"{source.host}/{name}", ["a"])
        events: list[object] = []
        report = sync_reg.mirror(
            [(f"{source.host}/{name}:a", f"{target.host}/{name}:a")], progress=events.append
        )
    assert [r.digest for r in report.copied] == [made["a"]]
    kinds = [getattr(e, "kind", None) for e in events]
    assert kinds[-1] == "artifact"
    assert kinds.count("artifact") == 1
    assert "done" in kinds
