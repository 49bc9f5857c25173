"""A registry repository as a store: streamed blobs, exact manifest bytes, tags, referrers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from aioras import AsyncRegistry
from aioras.content.store import Deleter, ReferrerLister, Target, read_all
from aioras.descriptor import Descriptor
from aioras.digest import digest_bytes
from aioras.exceptions import DigestMismatch, NotFoundError
from aioras.remote.repository import referrers_tag

pytestmark = pytest.mark.anyio

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"


def describe(data: bytes, media_type: str = "application/octet-stream") -> Descriptor:
    return {"mediaType": media_type, "digest": digest_bytes(data), "size": len(data)}


async def chunks(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def manifest_doc(
    layers: list[Descriptor], subject: Descriptor | None = None, artifact_type: str | None = None
) -> dict[str, object]:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": describe(b"{}", EMPTY),
        "layers": layers,
    }
    if artifact_type:
        doc["artifactType"] = artifact_type
    if subject is not None:
        doc["subject"] = subject
    return doc


async def push_manifest(
    repo: object, doc: dict[str, object], indent: int | None = None
) -> tuple[Descriptor, bytes]:
    data = json.dumps(doc, indent=indent).encode()
    desc = describe(data, MANIFEST)
    await repo.push(desc, chunks(data))  # type: ignore[attr-defined]
    return desc, data


async def test_repository_is_a_target_referrer_lister_and_deleter(areg: AsyncRegistry) -> None:
    repo = areg.repository(f"{areg.hostname}/store/kinds")
    assert isinstance(repo, Target)
    assert isinstance(repo, ReferrerLister)
    assert isinstance(repo, Deleter)


async def test_blob_pushed_from_a_stream_is_fetched_back_verified(areg: AsyncRegistry) -> None:
    repo = areg.repository(f"{areg.hostname}/store/blobs")
    data = bytes(range(256)) * 8192  # 2 MiB
    desc = describe(data)
    assert not await repo.exists(desc)
    await repo.push(desc, chunks(data))
    assert await repo.exists(desc)
    assert await read_all(repo, desc, max_size=len(data)) == data


async def test_blob_stream_that_does_not_match_is_refused_and_not_stored(
    areg: AsyncRegistry,
) -> None:
    repo = areg.repository(f"{areg.hostname}/store/bad")
    desc = describe(b"the promised bytes")
    with pytest.raises(DigestMismatch):
        await repo.push(desc, chunks(b"other bytes, same n"[: desc["size"]]))
    assert not await repo.exists(desc)


async def test_manifest_travels_as_exact_bytes_and_keeps_its_digest(areg: AsyncRegistry) -> None:
    repo = areg.repository(f"{areg.hostname}/store/raw")
    await repo.push(describe(b"{}", EMPTY), chunks(b"{}"))
    # Indented JSON: any re-serialisation would change the digest.
    desc, data = await push_manifest(repo, manifest_doc([]), indent=3)
    fetched, fetched_desc = await areg.fetch_manifest_bytes(f"{repo.name}@{desc['digest']}")
    assert fetched == data
    assert fetched_desc["digest"] == desc["digest"]
    assert (await repo.resolve(desc["digest"]))["digest"] == desc["digest"]


async def test_tag_adds_tags_without_reserialising(areg: AsyncRegistry) -> None:
    repo = areg.repository(f"{areg.hostname}/store/tags")
    await repo.push(describe(b"{}", EMPTY), chunks(b"{}"))
    desc, data = await push_manifest(repo, manifest_doc([]), indent=1)
    await repo.tag(desc, "first")
    returned = await areg.tag(f"{repo.name}:first", "second", "third")
    assert returned["digest"] == desc["digest"]
    for tag in ("first", "second", "third"):
        fetched, _ = await areg.fetch_manifest_bytes(f"{repo.name}:{tag}")
        assert fetched == data


async def test_tag_schema_index_is_maintained_without_a_referrers_api(areg: AsyncRegistry) -> None:
    repo = areg.repository(f"{areg.hostname}/store/referrers")
    await repo.push(describe(b"{}", EMPTY), chunks(b"{}"))
    subject, _ = await push_manifest(repo, manifest_doc([]))
    sig, _ = await push_manifest(repo, manifest_doc([], subject, "application/vnd.example.sig"))
    sbom, _ = await push_manifest(repo, manifest_doc([], subject, "application/vnd.example.sbom"))
    assert repo.state.referrers_api is None  # the CNCF registry sends no OCI-Subject
    found = await repo.referrers(subject)
    assert {d["digest"] for d in found} == {sig["digest"], sbom["digest"]}
    assert repo.state.referrers_api is False  # the API answered 404: remembered
    only = await repo.referrers(subject, artifact_type="application/vnd.example.sbom")
    assert [d["digest"] for d in only] == [sbom["digest"]]
    index, _ = await areg.fetch_manifest_bytes(f"{repo.name}:{referrers_tag(subject['digest'])}")
    assert len(json.loads(index)["manifests"]) == 2
    # The same state is seen through a new store object of the same repository.
    assert areg.repository(repo.name).state.referrers_api is False


async def test_referrers_of_a_manifest_without_any_is_empty(areg: AsyncRegistry) -> None:
    repo = areg.repository(f"{areg.hostname}/store/lonely")
    assert await repo.referrers(describe(b"nothing", MANIFEST)) == []


async def test_missing_blob_fetch_raises_not_found(areg: AsyncRegistry) -> None:
    repo = areg.repository(f"{areg.hostname}/store/missing")
    with pytest.raises(NotFoundError):
        async with repo.fetch(describe(b"never pushed")):
            pass


# -- the referrers API, which the CNCF registry lacks: a scripted server on MockTransport --------


def referrers_server(
    entries: list[Descriptor], *, page_size: int, filters_applied: bool, status: int = 200
) -> tuple[Callable[[httpx.Request], httpx.Response], list[str]]:
    requested: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        if "/referrers/" not in request.url.path:
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        if status != 200:
            return httpx.Response(status)
        wanted = request.url.params.get("artifactType")
        shown = [
            e for e in entries if not (filters_applied and wanted) or e["artifactType"] == wanted
        ]  # type: ignore[typeddict-item]
        start = int(request.url.params.get("page", "0"))
        page = shown[start : start + page_size]
        headers = {"Content-Type": INDEX}
        if filters_applied and wanted:
            headers["OCI-Filters-Applied"] = "artifactType"
        if start + page_size < len(shown):
            nxt = request.url.copy_merge_params({"page": str(start + page_size)})
            headers["Link"] = f'<{nxt.raw_path.decode()}>; rel="next"'
        body = {"schemaVersion": 2, "mediaType": INDEX, "manifests": page}
        return httpx.Response(200, headers=headers, json=body)

    return handler, requested


def entry(n: int, artifact_type: str) -> Descriptor:
    data = f"referrer {n}".encode()
    return {**describe(data, MANIFEST), "artifactType": artifact_type}  # type: ignore[typeddict-item]


@pytest.mark.parametrize("filters_applied", [True, False])
async def test_referrers_api_pages_are_followed_and_filtered(filters_applied: bool) -> None:
    entries = [entry(n, "application/vnd.a" if n % 2 else "application/vnd.b") for n in range(5)]
    handler, requested = referrers_server(entries, page_size=2, filters_applied=filters_applied)
    async with AsyncRegistry(
        "referrers.test", insecure=True, transport=httpx.MockTransport(handler)
    ) as reg:
        repo = reg.repository("referrers.test/app")
        subject = describe(b"subject", MANIFEST)
        everything = await repo.referrers(subject)
        assert [d["digest"] for d in everything] == [e["digest"] for e in entries]
        assert len(requested) == 3  # three pages of two
        only_a = await repo.referrers(subject, artifact_type="application/vnd.a")
        assert [d["digest"] for d in only_a] == [e["digest"] for e in entries[1::2]]
        assert repo.state.referrers_api is True
        assert all(
            httpx.URL(url).params.get("artifactType") == "application/vnd.a"
            for url in requested[3:]
        )


async def test_referrers_api_404_falls_back_to_the_tag_schema_once() -> None:
    handler, requested = referrers_server([], page_size=2, filters_applied=False, status=404)
    async with AsyncRegistry(
        "referrers.test", insecure=True, transport=httpx.MockTransport(handler)
    ) as reg:
        repo = reg.repository("referrers.test/app")
        subject = describe(b"subject", MANIFEST)
        assert await repo.referrers(subject) == []
        assert await repo.referrers(subject) == []
        api_calls = [u for u in requested if "/referrers/" in u]
        tag_calls = [u for u in requested if referrers_tag(subject["digest"]) in u]
        assert len(api_calls) == 1  # unsupported is remembered
        assert len(tag_calls) == 2


async def test_deleting_a_referrer_takes_it_out_of_the_tag_schema_index(
    areg: AsyncRegistry,
) -> None:
    repo = areg.repository(f"{areg.hostname}/store/referrers-delete")
    await repo.push(describe(b"{}", EMPTY), chunks(b"{}"))
    subject, _ = await push_manifest(repo, manifest_doc([]))
    sig, _ = await push_manifest(repo, manifest_doc([], subject, "application/vnd.example.sig"))
    sbom, _ = await push_manifest(repo, manifest_doc([], subject, "application/vnd.example.sbom"))
    await repo.delete(sig)
    assert [d["digest"] for d in await repo.referrers(subject)] == [sbom["digest"]]
    await repo.delete(sbom)
    assert await repo.referrers(subject) == []
    with pytest.raises(NotFoundError):
        await areg.resolve(f"{repo.name}:{referrers_tag(subject['digest'])}")
