"""mirror: plans that would harm the source, hostile listings, patterns, reports and state.

Against the real registry (one is enough: distinct repositories, and a mirror within one
host is still a mirror); a fault proxy rewrites listings only for names and tags that a
real registry will not store (upper case, 5,000 characters).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from aioras import AsyncRegistry, MirrorSpec, load_plan
from aioras.exceptions import InvalidMirrorPlan, InvalidReference
from aioras.operations.mirror import ArtifactEvent, MirrorState
from aioras.testing import LocalRegistry
from support.faultproxy import Fault, FaultProxy, Head
from support.mirrortools import artifact, describe, digests, populate, unique

pytestmark = pytest.mark.anyio

INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture
async def reg() -> AsyncIterator[AsyncRegistry]:
    async with AsyncRegistry(insecure=True) as client:
        yield client


async def two_platform_index(reg: AsyncRegistry, repository: str, tag: str) -> str:
    """An index of linux/amd64 and linux/arm64 images tagged ``tag``; its digest."""
    repo = reg.repository(repository)
    entries = []
    for arch in ("amd64", "arm64"):
        child = await artifact(repo, f"{tag}-{arch}", b"shared" * 64, arch.encode() * 64)
        entries.append({**child, "platform": {"os": "linux", "architecture": arch}})
    data = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}).encode()
    desc = describe(data, INDEX)
    await repo.push_manifest(desc, data, reference=tag)
    return desc["digest"]


# -- 6: a mirror never writes over what it reads ------------------------------------------------


async def test_a_spec_mirroring_a_repository_onto_itself_is_refused_and_the_index_kept(
    reg: AsyncRegistry, registry: LocalRegistry
) -> None:
    name = f"{registry.host}/{unique('self')}"
    index = await two_platform_index(reg, name, "v1")
    with pytest.raises(InvalidMirrorPlan, match="overlap") as info:
        await reg.mirror([MirrorSpec(name, name, platforms=["linux/amd64"])])
    assert name in info.value.entry
    assert (await reg.repository(name).resolve("v1"))["digest"] == index


async def test_a_whole_registry_mirrored_into_its_own_prefix_never_copies_the_copies(
    reg: AsyncRegistry, registry: LocalRegistry
) -> None:
    top, prefix = unique("tree"), unique("copies")
    made = await populate(reg, f"{registry.host}/{top}/app", ["x"])
    spec = MirrorSpec(registry.host, f"{registry.host}/{prefix}", repositories=rf"(.*/)?{top}/app")
    first = await reg.mirror([spec])
    second = await reg.mirror([spec])
    copy = f"{registry.host}/{prefix}/{top}/app:x"
    assert [r.destination for r in first.copied] == [copy]
    # The second run sees its own copy in the catalog and leaves it alone.
    assert not second.copied
    assert [r.destination for r in second.skipped] == [copy]
    catalog = await reg.list_repositories(registry.host)
    assert [n for n in catalog if n.startswith(f"{prefix}/{prefix}")] == []
    assert await digests(reg, f"{registry.host}/{prefix}/{top}/app", ["x"]) == made


def test_a_whole_registry_mirrored_onto_itself_is_refused() -> None:
    with pytest.raises(InvalidMirrorPlan, match="overlap"):
        MirrorSpec("reg.example:5000", "reg.example:5000/")


# -- 10: listed names and tags are checked against the grammar first ----------------------------


def add_to_listing(key: str, extra: list[str]) -> Fault:
    """A transform fault adding ``extra`` to a catalog (``repositories``) or tag list."""

    def transform(request: Head, response: Head, body: bytes) -> tuple[Head, bytes]:
        doc = json.loads(body)
        doc[key] = [*extra, *(doc.get(key) or [])]
        return response, json.dumps(doc).encode()

    return Fault("transform", on_response=transform)


async def test_a_malformed_catalog_name_is_reported_and_the_rest_copied_with_keep_going(
    reg: AsyncRegistry, registry: LocalRegistry, fault_proxy: FaultProxy
) -> None:
    top = unique("hostile-catalog")
    made = await populate(reg, f"{registry.host}/{top}/good", ["a"])
    listing = add_to_listing("repositories", ["Bad/Upper"])
    fault_proxy.add(listing, method="GET", path="_catalog")
    spec = MirrorSpec(
        fault_proxy.host, f"{registry.host}/{top}-m", repositories=rf"{top}/.*|Bad/.*"
    )
    report = await reg.mirror([spec], keep_going=True)
    with pytest.raises(InvalidReference, match="Bad/Upper"):
        await reg.mirror([spec])
    assert [r.digest for r in report.copied] == [made["a"]]
    (failure,) = report.failed
    assert failure.source == f"{fault_proxy.host}/Bad/Upper"
    assert failure.error_type == "InvalidReference"


async def test_a_5000_digit_tag_under_a_semver_spec_is_reported_not_a_valueerror(
    reg: AsyncRegistry, registry: LocalRegistry, fault_proxy: FaultProxy
) -> None:
    name = unique("hostile-tags")
    made = await populate(reg, f"{registry.host}/{name}", ["1.0.0"])
    long_tag = "1" * 5000
    events: list[ArtifactEvent] = []

    def progress(event: object) -> None:
        if isinstance(event, ArtifactEvent):
            events.append(event)

    fault_proxy.add(add_to_listing("tags", [long_tag]), method="GET", path="/tags/list")
    spec = MirrorSpec(f"{fault_proxy.host}/{name}", f"{registry.host}/{name}-m", semver=">=1")
    report = await reg.mirror([spec], keep_going=True, progress=progress)
    assert [r.digest for r in report.copied] == [made["1.0.0"]]
    (failure,) = report.failed
    assert failure.error_type == "InvalidReference"
    assert failure.source == f"{fault_proxy.host}/{name}:{long_tag}"
    assert [e.outcome for e in events] == ["failed", "copied"]


# -- 11: patterns that could backtrack without bound are refused when the plan is built ---------


@pytest.mark.timeout(120)
async def test_a_backtracking_tag_pattern_is_refused_before_a_dry_run_matches_it(
    reg: AsyncRegistry, registry: LocalRegistry
) -> None:
    name = unique("redos")
    await populate(reg, f"{registry.host}/{name}", ["1" * 30 + "-"])
    pattern = r"^(v?\d+\.?)+$"
    with pytest.raises(InvalidMirrorPlan, match="tags") as info:
        await reg.mirror(
            [MirrorSpec(f"{registry.host}/{name}", f"{registry.host}/{name}-m", tags=pattern)],
            dry_run=True,
        )
    assert "backtrack" in str(info.value)


@pytest.mark.timeout(120)
def test_a_backtracking_pattern_in_a_plan_file_names_the_file_and_entry(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(
        '[[mirror]]\nsource = "a.example/x"\ndestination = "b.example/x"\n'
        '[[mirror]]\nsource = "a.example/y"\ndestination = "b.example/y"\n'
        "exclude = '^(v?\\d+\\.?)+$'\n"
    )
    with pytest.raises(InvalidMirrorPlan, match="exclude") as info:
        load_plan(path)
    assert str(path) in info.value.entry
    assert "entry 2" in info.value.entry


# -- 12: malformed specs are refused when built; no ExceptionGroup leaves mirror() --------------


@pytest.mark.parametrize("destination", ["{host}/a/../{name}", "{host}/Upper/{name}"])
async def test_a_malformed_destination_is_refused_as_a_typed_error_naming_the_spec(
    reg: AsyncRegistry, registry: LocalRegistry, destination: str
) -> None:
    name = unique("bad-dest")
    await populate(reg, f"{registry.host}/{name}", ["a"])
    bad = destination.format(host=registry.host, name=name)
    with pytest.raises(InvalidMirrorPlan, match="destination") as info:
        await reg.mirror([MirrorSpec(f"{registry.host}/{name}", bad)], keep_going=True)
    assert bad in info.value.entry
    with pytest.raises(InvalidMirrorPlan, match="destination"):
        await reg.mirror([(f"{registry.host}/{name}:a", f"{bad}:a")], keep_going=True)


async def test_an_error_in_the_progress_callback_leaves_mirror_as_itself(
    reg: AsyncRegistry, registry: LocalRegistry
) -> None:
    name = unique("callback")
    await populate(reg, f"{registry.host}/{name}", ["a"])

    def progress(event: object) -> None:
        if isinstance(event, ArtifactEvent):
            raise KeyError("the caller's own bug")

    with pytest.raises(KeyError, match="own bug"):
        await reg.mirror(
            [(f"{registry.host}/{name}:a", f"{registry.host}/{name}-m:a")],
            keep_going=True,
            progress=progress,
        )


# -- 13: a destination tag that named something else is reported as re-pointed -----------------


async def test_a_destination_tag_moved_to_another_digest_is_reported_re_pointed(
    reg: AsyncRegistry, registry: LocalRegistry
) -> None:
    name = unique("repoint")
    made = await populate(reg, f"{registry.host}/{name}", ["v1"])
    pair = (f"{registry.host}/{name}:v1", f"{registry.host}/{name}-m:v1")
    await reg.mirror([pair])
    # Someone moves the destination tag to another manifest of the repository.
    other = await populate(reg, f"{registry.host}/{name}-m", ["other"])
    destination = reg.repository(f"{registry.host}/{name}-m")
    await destination.tag(await destination.resolve("other"), "v1")
    planned = await reg.mirror([pair], dry_run=True)
    report = await reg.mirror([pair])
    assert [(r.digest, r.reason) for r in planned.planned] == [
        (made["v1"], f"would re-point the tag from {other['other']}")
    ]
    assert not report.skipped
    assert [(r.digest, r.reason) for r in report.copied] == [
        (made["v1"], f"re-pointed the tag from {other['other']}")
    ]
    assert await digests(reg, f"{registry.host}/{name}-m", ["v1"]) == made


# -- 14: two mirrors sharing one state file keep both sets of entries ---------------------------


async def test_two_concurrent_mirrors_on_one_state_file_keep_each_others_entries(
    tmp_path: Path, registry: LocalRegistry
) -> None:
    state = tmp_path / "mirror.state"
    names = [unique("state-a"), unique("state-b")]
    tags = [f"t{i}" for i in range(4)]
    async with AsyncRegistry(insecure=True) as reg:
        for name in names:
            await populate(reg, f"{registry.host}/{name}", tags)

    async def one_mirror(name: str) -> None:
        # A missing tag fails (keep_going), so the run is not complete and the file keeps all.
        pairs = [(f"{registry.host}/{name}:{t}", f"{registry.host}/{name}-m:{t}") for t in tags]
        pairs.append((f"{registry.host}/{name}:missing", f"{registry.host}/{name}-m:missing"))

        async def pause(event: object) -> None:
            if isinstance(event, ArtifactEvent):
                await anyio.sleep(0.01)  # lets the other mirror write in between

        async with AsyncRegistry(insecure=True) as reg:
            report = await reg.mirror(
                pairs, concurrency=1, keep_going=True, state=state, progress=pause
            )
        assert len(report.copied) == len(tags)

    async with anyio.create_task_group() as group:
        for name in names:
            group.start_soon(one_mirror, name)
    done = MirrorState.load(state).done
    expected = {
        f"{registry.host}/{n}:{t} -> {registry.host}/{n}-m:{t}" for n in names for t in tags
    }
    assert set(done) == expected
