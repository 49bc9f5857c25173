"""Referrers end to end: attach, list (filtered or not), discover a tree, delete, list again.

Each scenario runs against the real CNCF registry, which has no referrers API (so aioras
keeps the tag-schema index ``<alg>-<hex>`` itself), and against :class:`ReferrersRegistry`,
the same registry behind a proxy serving the referrers API in pages of two, with and
without ``OCI-Filters-Applied``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aioras import AsyncRegistry, Registry
from aioras.exceptions import NotFoundError
from aioras.operations.discover import ReferrerNode
from aioras.remote.repository import referrers_tag
from aioras.testing import LocalRegistry
from support.referrersregistry import ReferrersRegistry

pytestmark = pytest.mark.anyio

SBOM = "application/vnd.example.sbom+json"
SIG = "application/vnd.example.signature"


@dataclass
class Backend:
    host: str
    api: ReferrersRegistry | None
    """The proxy serving the referrers API; None for the bare CNCF registry."""


@pytest.fixture(params=["cncf", "api-filtered", "api-unfiltered"])
def backend(request: pytest.FixtureRequest, registry: LocalRegistry) -> Iterator[Backend]:
    if request.param == "cncf":
        yield Backend(registry.host, None)
        return
    filters = request.param == "api-filtered"
    with ReferrersRegistry(registry, filters_applied=filters, page_size=2) as proxy:
        yield Backend(proxy.host, proxy)


@pytest.fixture
async def areg(backend: Backend) -> AsyncIterator[AsyncRegistry]:
    async with AsyncRegistry(backend.host, insecure=True) as reg:
        yield reg


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def image(areg: AsyncRegistry, reference: str, tmp_cwd: Path) -> dict[str, object]:
    (tmp_cwd / "app.bin").write_bytes(b"the application\n")
    await areg.push(reference, files=["app.bin"])
    return await areg.resolve(reference)


def digests(found: list[dict[str, object]]) -> set[object]:
    return {d["digest"] for d in found}


async def test_attach_list_discover_delete_and_list_again(
    areg: AsyncRegistry, backend: Backend, tmp_cwd: Path
) -> None:
    name = f"{backend.host}/{unique('refs/app')}"
    subject = await image(areg, f"{name}:v1", tmp_cwd)
    (tmp_cwd / "sbom.json").write_text('{"bomFormat": "CycloneDX"}\n')
    (tmp_cwd / "sbom2.json").write_text('{"bomFormat": "SPDX"}\n')
    sbom = await areg.attach(f"{name}:v1", ["sbom.json"], artifact_type=SBOM)
    sbom2 = await areg.attach(f"{name}:v1", ["sbom2.json"], artifact_type=SBOM)
    sig = await areg.attach(f"{name}:v1", [], artifact_type=SIG, annotations={"who": "ci"})
    sig_of_sbom = await areg.attach(f"{name}@{sbom['digest']}", [], artifact_type=SIG)

    everything = await areg.get_referrers(f"{name}:v1")
    assert digests(everything) == {sbom["digest"], sbom2["digest"], sig["digest"]}
    by_digest = {d["digest"]: d for d in everything}
    assert by_digest[sig["digest"]]["artifactType"] == SIG
    assert by_digest[sig["digest"]]["annotations"]["who"] == "ci"
    only_sboms = await areg.get_referrers(f"{name}:v1", artifact_type=SBOM)
    assert digests(only_sboms) == {sbom["digest"], sbom2["digest"]}
    assert digests(await areg.get_referrers(f"{name}@{sbom['digest']}")) == {sig_of_sbom["digest"]}

    tree = await areg.discover(f"{name}:v1")
    assert isinstance(tree, ReferrerNode)
    assert tree.digest == subject["digest"]
    assert {c.digest for c in tree.referrers} == digests(everything)
    below = {c.digest: c for c in tree.referrers}
    assert [g.digest for g in below[sbom["digest"]].referrers] == [sig_of_sbom["digest"]]
    assert below[sig["digest"]].referrers == []
    walked = list(tree.walk())
    assert sorted(depth for depth, _ in walked) == [0, 1, 1, 1, 2]
    assert walked[0] == (0, tree)
    doc = tree.to_dict()
    assert doc["reference"] == f"{name}:v1"
    assert len(doc["referrers"]) == 3
    assert len(tree.rows()) == 4
    shallow = await areg.discover(f"{name}:v1", depth=1)
    assert all(c.referrers == [] for c in shallow.referrers)
    sigs_only = await areg.discover(f"{name}:v1", artifact_type=SIG)
    assert [c.digest for c in sigs_only.referrers] == [sig["digest"]]

    await areg.delete_artifact(f"{name}@{sbom2['digest']}")
    assert digests(await areg.get_referrers(f"{name}:v1")) == {sbom["digest"], sig["digest"]}
    assert digests(await areg.get_referrers(f"{name}:v1", artifact_type=SBOM)) == {sbom["digest"]}

    tags = await areg.get_tags(name)
    if backend.api is None:
        # No API: aioras kept the tag-schema index, and it lists what is left.
        assert referrers_tag(subject["digest"]) in tags
        index = await areg.get_manifest(f"{name}:{referrers_tag(subject['digest'])}")
        assert {e["digest"] for e in index["manifests"]} == {sbom["digest"], sig["digest"]}
    else:
        # The API answered: no fallback tag was written, and the API was what got asked.
        assert tags == ["v1"]
        assert backend.api.api_calls()
        filtered = [p for p in backend.api.api_calls() if "artifactType=" in p]
        assert filtered, "the artifact type filter is sent to the server"


async def test_referrers_of_an_unknown_manifest_is_a_not_found_error(
    areg: AsyncRegistry, backend: Backend
) -> None:
    with pytest.raises(NotFoundError):
        await areg.get_referrers(f"{backend.host}/{unique('refs/none')}:v1")


async def test_a_manifest_without_referrers_has_an_empty_list_and_a_bare_tree(
    areg: AsyncRegistry, backend: Backend, tmp_cwd: Path
) -> None:
    name = f"{backend.host}/{unique('refs/lonely')}"
    await image(areg, f"{name}:v1", tmp_cwd)
    assert await areg.get_referrers(f"{name}:v1") == []
    tree = await areg.discover(f"{name}:v1")
    assert tree.referrers == []
    assert tree.rows() == []


async def test_discover_refuses_a_negative_depth(registry: LocalRegistry) -> None:
    async with AsyncRegistry(registry.host, insecure=True) as areg:
        with pytest.raises(ValueError, match="depth"):
            await areg.discover(f"{registry.host}/refs/x:v1", depth=-1)


def test_sync_registry_lists_discovers_and_deletes_referrers(
    registry: LocalRegistry, tmp_cwd: Path
) -> None:
    name = f"{registry.host}/{unique('refs/sync')}"
    (tmp_cwd / "app.bin").write_bytes(b"app")
    (tmp_cwd / "sbom.json").write_text("{}")
    with Registry(registry.host, insecure=True) as reg:
        reg.push(f"{name}:v1", files=["app.bin"])
        sbom = reg.attach(f"{name}:v1", ["sbom.json"], artifact_type=SBOM)
        assert [d["digest"] for d in reg.get_referrers(f"{name}:v1")] == [sbom["digest"]]
        tree = reg.discover(f"{name}:v1", depth=1)
        assert [c.artifact_type for c in tree.referrers] == [SBOM]
        reg.delete_artifact(f"{name}@{sbom['digest']}")
        assert reg.get_referrers(f"{name}:v1") == []


async def test_delete_manifest_of_a_referrer_takes_it_out_of_the_fallback_index(
    registry: LocalRegistry, tmp_cwd: Path
) -> None:
    # The CNCF registry has no referrers API: discover reads the tag-schema index, which
    # must stop naming a referrer deleted by digest (a fresh client, as a second process).
    name = f"{registry.host}/{unique('refs/delman')}"
    (tmp_cwd / "sbom.json").write_text("{}")
    async with AsyncRegistry(registry.host, insecure=True) as areg:
        subject = await image(areg, f"{name}:v1", tmp_cwd)
        sbom = await areg.attach(f"{name}:v1", ["sbom.json"], artifact_type=SBOM)
        sig = await areg.attach(f"{name}:v1", [], artifact_type=SIG)
    async with AsyncRegistry(registry.host, insecure=True) as areg:
        await areg.delete_manifest(name, sbom["digest"])
        assert digests(await areg.get_referrers(f"{name}:v1")) == {sig["digest"]}
        tree = await areg.discover(f"{name}:v1")
        assert [c.digest for c in tree.referrers] == [sig["digest"]]
        await areg.delete_manifest(f"{name}@{sig['digest']}")
        # The last referrer gone: the index and its tag go too.
        assert referrers_tag(subject["digest"]) not in await areg.get_tags(name)
        assert await areg.get_referrers(f"{name}:v1") == []
