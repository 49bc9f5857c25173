"""copy: artifacts and their graphs between registries and memory, against the real registry."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
import httpx
import pytest

import aioras
from aioras import AsyncRegistry, MemoryStore, RetryPolicy, TransferEvent
from aioras.content.store import TransferBudget, read_all
from aioras.descriptor import Descriptor
from aioras.digest import digest_bytes
from aioras.operations.copy import HELD, UP_TO_DATE, CopyOptions, Skipped, copy_graph
from aioras.remote.repository import Repository, referrers_tag
from aioras.testing import LocalRegistry
from support.faultproxy import Fault, FaultProxy

pytestmark = pytest.mark.anyio

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
MiB = 1 << 20


def describe(data: bytes, media_type: str, **extra: object) -> Descriptor:
    return {"mediaType": media_type, "digest": digest_bytes(data), "size": len(data), **extra}  # type: ignore[typeddict-item]


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def unique(prefix: str) -> str:
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


async def put(repo: Repository, data: bytes, media_type: str) -> Descriptor:
    desc = describe(data, media_type)
    await repo.push(desc, once(data))
    return desc


async def image(
    repo: Repository,
    layers: list[bytes],
    *,
    subject: Descriptor | None = None,
    artifact_type: str | None = None,
) -> Descriptor:
    """Push blobs and a manifest naming them (with odd spacing, as other tools write)."""
    config = await put(repo, b"{}", EMPTY)
    descs = [await put(repo, data, LAYER) for data in layers]
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config,
        "layers": descs,
    }
    if artifact_type:
        doc["artifactType"] = artifact_type
    if subject:
        doc["subject"] = subject
    return await put(repo, json.dumps(doc, indent=2).encode(), MANIFEST)


async def platform_index(repo: Repository) -> tuple[Descriptor, Descriptor, Descriptor]:
    amd = await image(repo, [b"amd64 layer " * 1000])
    arm = await image(repo, [b"arm64 layer " * 1000])
    entries = [
        {**amd, "platform": {"os": "linux", "architecture": "amd64"}},
        {**arm, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    ]
    data = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}).encode()
    return await put(repo, data, INDEX), amd, arm


async def one_layer_v1(reg: AsyncRegistry, host: str, prefix: str) -> tuple[Repository, Descriptor]:
    """A new repository holding an image of one 1 MiB layer tagged v1; (it, the root)."""
    src = reg.repository(f"{host}/{unique(prefix)}")
    root = await image(src, [os.urandom(MiB)])
    await src.tag(root, "v1")
    return src, root


async def raw(reg: AsyncRegistry, reference: str) -> bytes:
    data, _ = await reg.fetch_manifest_bytes(reference)
    return data


class Recorder:
    def __init__(self) -> None:
        self.events: list[TransferEvent] = []

    def __call__(self, event: TransferEvent) -> None:
        self.events.append(event)

    def kinds(self, kind: str) -> list[str]:
        return [e.digest for e in self.events if e.kind == kind]


@pytest.fixture
def other(registry_factory: Callable[..., LocalRegistry]) -> LocalRegistry:
    return registry_factory()


async def test_copy_between_hosts_keeps_every_digest_and_byte(
    areg: AsyncRegistry, other: LocalRegistry
) -> None:
    name = unique("copy/hosts")
    src = areg.repository(f"{areg.hostname}/{name}")
    root = await image(src, [os.urandom(3 * MiB), b"small layer"])
    await src.tag(root, "v1")
    got = await areg.copy(f"{areg.hostname}/{name}:v1", f"{other.host}/{name}:v1")
    assert got["digest"] == root["digest"]
    assert await raw(areg, f"{other.host}/{name}:v1") == await raw(
        areg, f"{areg.hostname}/{name}:v1"
    )
    dst = areg.repository(f"{other.host}/{name}")
    for layer in json.loads(await raw(areg, f"{other.host}/{name}:v1"))["layers"]:
        async with src.fetch(layer) as a, dst.fetch(layer) as b:
            assert b"".join([c async for c in a]) == b"".join([c async for c in b])


async def test_copy_within_one_host_mounts_blobs_instead_of_sending_them(
    areg: AsyncRegistry,
) -> None:
    src_name, dst_name = unique("copy/mount-src"), unique("copy/mount-dst")
    src = areg.repository(f"{areg.hostname}/{src_name}")
    root = await image(src, [os.urandom(MiB), os.urandom(MiB)])
    await src.tag(root, "v1")
    seen = Recorder()
    await areg.copy(
        f"{areg.hostname}/{src_name}:v1", f"{areg.hostname}/{dst_name}:v2", progress=seen
    )
    layers = json.loads(await raw(areg, f"{areg.hostname}/{src_name}:v1"))["layers"]
    assert {layer["digest"] for layer in layers} <= set(seen.kinds("mounted"))
    assert not set(seen.kinds("start")) & {layer["digest"] for layer in layers}
    assert (await areg.resolve(f"{areg.hostname}/{dst_name}:v2"))["digest"] == root["digest"]


class CountingStore:
    """A store wrapper recording fetches, pushes and tags, to see what a copy does."""

    def __init__(self, inner: Repository) -> None:
        self.inner = inner
        self.fetched: list[str] = []
        self.written: list[str] = []

    async def exists(self, descriptor: Descriptor) -> bool:
        return await self.inner.exists(descriptor)

    def fetch(self, descriptor: Descriptor) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        self.fetched.append(descriptor["digest"])
        return self.inner.fetch(descriptor)

    async def resolve(self, reference: str) -> Descriptor:
        return await self.inner.resolve(reference)

    async def push(self, descriptor: Descriptor, content: AsyncIterator[bytes]) -> None:
        self.written.append(descriptor["digest"])
        await self.inner.push(descriptor, content)

    async def tag(self, descriptor: Descriptor, reference: str) -> None:
        self.written.append(reference)
        await self.inner.tag(descriptor, reference)


async def test_copy_to_a_destination_holding_the_root_fetches_nothing_else(
    areg: AsyncRegistry, other: LocalRegistry
) -> None:
    name = unique("copy/noop")
    src = areg.repository(f"{areg.hostname}/{name}")
    root = await image(src, [b"layer"])
    await src.tag(root, "v1")
    dst = CountingStore(areg.repository(f"{other.host}/{name}"))
    counting = CountingStore(src)
    await aioras.copy(counting, "v1", dst)
    assert root["digest"] in counting.fetched
    assert "v1" in dst.written
    counting.fetched.clear()
    dst.written.clear()
    seen = Recorder()
    again = await aioras.copy(counting, "v1", dst, progress=seen)
    assert again["digest"] == root["digest"]
    assert counting.fetched == []
    assert dst.written == []
    assert [e.kind for e in seen.events] == ["resolve", "skipped"]


async def test_copy_result_counts_match_what_the_registry_received(
    areg: AsyncRegistry, other: LocalRegistry
) -> None:
    name = unique("copy/result")
    src = areg.repository(f"{areg.hostname}/{name}")
    layers = [os.urandom(MiB), b"second layer"]
    root = await image(src, layers)
    await src.tag(root, "v1")
    manifest = json.loads(await raw(areg, f"{areg.hostname}/{name}:v1"))
    config, first, second = manifest["config"], *manifest["layers"]
    dst = areg.repository(f"{other.host}/{name}")
    await put(dst, layers[1], LAYER)  # the destination holds one layer already
    result = await copy_graph(src, "v1", dst, "v1", CopyOptions())
    sent = {d["digest"] for d in result.copied}
    assert sent == {root["digest"], config["digest"], first["digest"]}
    assert [(s.descriptor["digest"], s.reason) for s in result.skipped] == [
        (second["digest"], HELD)
    ]
    assert result.bytes_copied == root["size"] + config["size"] + first["size"]
    assert result.bytes_skipped == second["size"]
    assert result.mounted == []
    for descriptor in (root, config, first, second):
        assert await dst.exists(descriptor)
    assert (await dst.resolve("v1"))["digest"] == root["digest"]
    again = await copy_graph(src, "v1", dst, "v1", CopyOptions())
    assert again.up_to_date
    assert again.skipped == [Skipped(root, UP_TO_DATE)]
    # Within one host the blobs are mounted: counted as such, and there afterwards.
    near = areg.repository(f"{areg.hostname}/{name}-near")
    mounted = await copy_graph(src, "v1", near, "v1", CopyOptions())
    assert {d["digest"] for d in mounted.mounted} == {
        config["digest"],
        first["digest"],
        second["digest"],
    }
    assert [d["digest"] for d in mounted.copied] == [root["digest"]]
    assert mounted.bytes_mounted == config["size"] + first["size"] + second["size"]
    for descriptor in (root, config, first, second):
        assert await near.exists(descriptor)


async def test_a_destination_without_the_mounter_capability_gets_blobs_sent_not_mounted(
    fault_proxy: FaultProxy,
) -> None:
    dst_name = unique("copy/nomount-dst")
    async with AsyncRegistry(fault_proxy.host, insecure=True) as reg:
        src, root = await one_layer_v1(reg, fault_proxy.host, "copy/nomount-src")
        # Same host, but the wrapper offers only the store verbs: no mount is tried.
        dst = CountingStore(reg.repository(f"{fault_proxy.host}/{dst_name}"))
        result = await copy_graph(src, "v1", dst, "v1", CopyOptions())
        assert fault_proxy.requests_matching("POST", "mount=") == []
        assert result.mounted == []
        assert len(result.copied) == 3
        assert set(dst.written) >= {d["digest"] for d in result.copied}
        for descriptor in result.copied:
            assert await dst.inner.exists(descriptor)
        assert (await reg.resolve(f"{fault_proxy.host}/{dst_name}:v1"))["digest"] == root["digest"]


async def test_registry_to_memory_to_registry_keeps_digests(
    areg: AsyncRegistry, other: LocalRegistry
) -> None:
    name = unique("copy/memory")
    src = areg.repository(f"{areg.hostname}/{name}")
    root = await image(src, [os.urandom(2 * MiB), b"second"])
    await src.tag(root, "v1")
    memory = MemoryStore()
    staged = await aioras.copy(src, "v1", memory)
    assert staged["digest"] == root["digest"]
    assert (await memory.resolve("v1"))["digest"] == root["digest"]
    assert len(memory) == 4  # config, two layers, manifest
    dst = areg.repository(f"{other.host}/{name}")
    back = await aioras.copy(memory, "v1", dst, "restored")
    assert back["digest"] == root["digest"]
    assert await raw(areg, f"{other.host}/{name}:restored") == await read_all(memory, root)


async def test_index_is_copied_whole_or_for_one_platform(
    areg: AsyncRegistry, other: LocalRegistry
) -> None:
    name = unique("copy/index")
    src = areg.repository(f"{areg.hostname}/{name}")
    index, amd, arm = await platform_index(src)
    await src.tag(index, "multi")
    whole = areg.repository(f"{other.host}/{name}-whole")
    assert (await aioras.copy(src, "multi", whole))["digest"] == index["digest"]
    assert await whole.exists(amd)
    assert await whole.exists(arm)
    one = areg.repository(f"{other.host}/{name}-arm")
    chosen = await aioras.copy(src, "multi", one, platform="linux/arm64")
    assert chosen["digest"] == arm["digest"]
    assert (await one.resolve("multi"))["digest"] == arm["digest"]
    assert not await one.exists(amd)
    assert not await one.exists(index)


async def test_several_platforms_copy_a_new_index_of_their_entries_and_a_recopy_skips(
    areg: AsyncRegistry, other: LocalRegistry
) -> None:
    name = unique("copy/platforms")
    src = areg.repository(f"{areg.hostname}/{name}")
    index, amd, arm = await platform_index(src)
    await src.tag(index, "multi")
    source_doc = json.loads(await read_all(src, index))
    destination = f"{other.host}/{name}-two:multi"
    both = ["linux/arm64", "linux/amd64"]
    root = await areg.copy(f"{areg.hostname}/{name}:multi", destination, platforms=both)
    data = await raw(areg, destination)
    assert root["digest"] == digest_bytes(data) != index["digest"]
    assert json.loads(data) == source_doc  # both entries, in the source's order
    dst = areg.repository(f"{other.host}/{name}-two")
    assert await dst.exists(amd)
    assert await dst.exists(arm)
    again = Recorder()
    await areg.copy(f"{areg.hostname}/{name}:multi", destination, platforms=both, progress=again)
    assert [e.kind for e in again.events] == ["resolve", "resolve", "skipped"]


async def signed_artifact(src: Repository) -> dict[str, Descriptor]:
    subject = await image(src, [b"the artifact " * 100])
    sig = await image(src, [b"signature"], subject=subject, artifact_type="application/vnd.x.sig")
    sbom = await image(src, [b"sbom"], subject=subject, artifact_type="application/vnd.x.sbom")
    sig_sig = await image(
        src, [b"counter signature"], subject=sig, artifact_type="application/vnd.x.sig"
    )
    await src.tag(subject, "v1")
    return {"subject": subject, "sig": sig, "sbom": sbom, "sig_sig": sig_sig}


async def test_referrers_are_copied_and_the_tag_schema_kept_at_a_registry_without_the_api(
    areg: AsyncRegistry, other: LocalRegistry
) -> None:
    name = unique("copy/referrers")
    src = areg.repository(f"{areg.hostname}/{name}")
    nodes = await signed_artifact(src)
    root = await areg.copy(f"{areg.hostname}/{name}:v1", f"{other.host}/{name}:v1", referrers=True)
    assert root["digest"] == nodes["subject"]["digest"]
    dst = areg.repository(f"{other.host}/{name}")
    direct = {d["digest"] for d in await dst.referrers(nodes["subject"])}
    assert direct == {nodes["sig"]["digest"], nodes["sbom"]["digest"]}
    assert [d["digest"] for d in await dst.referrers(nodes["sig"])] == [nodes["sig_sig"]["digest"]]
    assert dst.state.referrers_api is False
    # The tag-schema index at the destination is a real tag holding an index.
    tagged = json.loads(await raw(areg, f"{other.host}/{name}:{referrers_tag(root['digest'])}"))
    assert tagged["mediaType"] == INDEX
    for key in ("sig", "sbom", "sig_sig"):
        digest = nodes[key]["digest"]
        assert await raw(areg, f"{other.host}/{name}@{digest}") == await raw(
            areg, f"{areg.hostname}/{name}@{digest}"
        )


async def test_referrers_copy_honours_depth_and_artifact_type(
    areg: AsyncRegistry, other: LocalRegistry
) -> None:
    name = unique("copy/referrers-filter")
    src = areg.repository(f"{areg.hostname}/{name}")
    nodes = await signed_artifact(src)
    shallow = areg.repository(f"{other.host}/{name}-shallow")
    await aioras.copy(src, "v1", shallow, referrers=True, depth=1)
    assert await shallow.exists(nodes["sig"])
    assert not await shallow.exists(nodes["sig_sig"])
    sigs = areg.repository(f"{other.host}/{name}-sigs")
    await aioras.copy(src, "v1", sigs, referrers=True, artifact_type="application/vnd.x.sig")
    assert await sigs.exists(nodes["sig"])
    assert await sigs.exists(nodes["sig_sig"])
    assert not await sigs.exists(nodes["sbom"])


async def test_referrers_of_index_children_are_copied(
    areg: AsyncRegistry, other: LocalRegistry
) -> None:
    name = unique("copy/index-referrers")
    src = areg.repository(f"{areg.hostname}/{name}")
    index, amd, _ = await platform_index(src)
    await src.tag(index, "multi")
    sig = await image(src, [b"amd sig"], subject=amd, artifact_type="application/vnd.x.sig")
    dst = areg.repository(f"{other.host}/{name}")
    await aioras.copy(src, "multi", dst, referrers=True)
    assert [d["digest"] for d in await dst.referrers(amd)] == [sig["digest"]]


async def test_interrupted_copy_resumes_without_resending_what_landed(
    areg: AsyncRegistry, other: LocalRegistry
) -> None:
    name = unique("copy/resume")
    src = areg.repository(f"{areg.hostname}/{name}")
    root = await image(src, [os.urandom(512 * 1024) for _ in range(6)])
    await src.tag(root, "v1")
    dst = areg.repository(f"{other.host}/{name}")
    first = Recorder()
    with anyio.CancelScope() as scope:

        def stop_after_three(event: TransferEvent) -> None:
            first(event)
            if len(first.kinds("done")) == 3:
                scope.cancel()

        await aioras.copy(src, "v1", dst, concurrency=1, progress=stop_after_three)
    assert scope.cancelled_caught
    landed = set(first.kinds("done"))
    assert len(landed) == 3
    assert not await dst.exists(root)
    second = Recorder()
    assert (await aioras.copy(src, "v1", dst, concurrency=1, progress=second))["digest"] == root[
        "digest"
    ]
    assert not landed & set(second.kinds("start"))
    assert landed <= set(second.kinds("skipped"))
    assert (await dst.resolve("v1"))["digest"] == root["digest"]


async def test_copy_through_ten_percent_faults_loses_nothing(
    fault_proxy: FaultProxy, other: LocalRegistry
) -> None:
    policy = RetryPolicy(attempts=6, backoff=0.05, max_backoff=0.5, max_retry_after=1.0, resumes=8)
    name = unique("copy/faults")
    async with AsyncRegistry(
        fault_proxy.host, insecure=True, retry=policy, timeout=httpx.Timeout(3.0)
    ) as reg:
        src = reg.repository(f"{fault_proxy.host}/{name}")
        roots = [await image(src, [os.urandom(MiB + i), os.urandom(1000 + i)]) for i in range(4)]
        for i, root in enumerate(roots):
            await src.tag(root, f"a{i}")
        fault_proxy.rng.seed(2026)
        fault_proxy.add(
            Fault("reset", where="request", fraction=0.5),
            Fault("reset", where="response", fraction=0.4),
            Fault("status", status=500),
            Fault("status", status=503, forward=True),
            Fault("status", status=429, retry_after="1"),
            Fault("truncate", where="response", fraction=0.5),
            Fault("corrupt", where="response", fraction=0.3),
            probability=0.10,
        )
        with anyio.fail_after(300):
            # Faults on the source side going out, then on the destination side coming back.
            for i in range(4):
                await reg.copy(f"{fault_proxy.host}/{name}:a{i}", f"{other.host}/{name}:a{i}")
                await reg.copy(f"{other.host}/{name}:a{i}", f"{fault_proxy.host}/{name}-back:a{i}")
        fault_proxy.clear()
        for i, root in enumerate(roots):
            for where in (f"{other.host}/{name}", f"{fault_proxy.host}/{name}-back"):
                data, desc = await reg.fetch_manifest_bytes(f"{where}:a{i}")
                assert desc["digest"] == root["digest"]
                for layer in json.loads(data)["layers"]:
                    async with reg.repository(where).fetch(layer) as stream:
                        assert digest_bytes(b"".join([c async for c in stream])) == layer["digest"]
    assert fault_proxy.injected > 0


def test_sync_registry_copies_between_hosts_and_to_a_store_in_one_line(
    registry: LocalRegistry, other: LocalRegistry
) -> None:
    name = unique("copy/sync")
    with aioras.Registry(registry.host, insecure=True) as reg:
        config = b"{}"
        reg.upload_blob_stream(
            lambda: _memory_stream(config), f"{registry.host}/{name}", describe(config, EMPTY)
        )
        doc = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": describe(config, EMPTY),
            "layers": [],
        }
        data = json.dumps(doc, indent=4).encode()
        reg.push_manifest_bytes(data, f"{registry.host}/{name}:v1", media_type=MANIFEST)
        root = reg.copy(f"{registry.host}/{name}:v1", f"{other.host}/{name}:v1")
        assert root["digest"] == digest_bytes(data)
        memory = MemoryStore()
        staged = reg.copy_store(reg.repository(f"{other.host}/{name}"), "v1", memory)
        assert staged["digest"] == digest_bytes(data)
        assert reg.fetch_manifest_bytes(f"{other.host}/{name}:v1")[0] == data
        assert reg.tag(f"{other.host}/{name}:v1", "v2")["digest"] == digest_bytes(data)


@asynccontextmanager
async def _memory_stream(data: bytes) -> AsyncIterator[AsyncIterator[bytes]]:
    yield once(data)


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_mount_falls_back_to_streaming_the_blob(
    fault_proxy: FaultProxy, status: int
) -> None:
    dst_name = unique("copy/refused-dst")
    async with AsyncRegistry(fault_proxy.host, insecure=True) as reg:
        src, root = await one_layer_v1(reg, fault_proxy.host, "copy/refused-src")
        src_name = src.container.api_prefix
        fault_proxy.add(Fault("status", status=status), method="POST", path="mount=")
        seen = Recorder()
        got = await reg.copy(
            f"{fault_proxy.host}/{src_name}:v1", f"{fault_proxy.host}/{dst_name}:v1", progress=seen
        )
        assert got["digest"] == root["digest"]
        assert seen.kinds("mounted") == []
        assert len(fault_proxy.requests_matching("POST", "mount=")) >= 1
        layer = json.loads(await raw(reg, f"{fault_proxy.host}/{dst_name}:v1"))["layers"][0]
        assert layer["digest"] in seen.kinds("done")
        assert await reg.repository(f"{fault_proxy.host}/{dst_name}").exists(layer)


class SlowSource(MemoryStore):
    """A memory store whose blob fetches take a while, recording how many run at once."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.peak = 0

    @asynccontextmanager
    async def fetch(self, descriptor: Descriptor) -> AsyncIterator[AsyncIterator[bytes]]:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await anyio.sleep(0.05)
            async with super().fetch(descriptor) as stream:
                yield stream
        finally:
            self.running -= 1


class BudgetedSource(SlowSource):
    """A slow source that is a TransferBudget of one transfer (not a repository)."""

    @property
    def max_transfers(self) -> int:
        return 1


async def slow_artifact(blobs: int, src: SlowSource | None = None) -> tuple[SlowSource, Descriptor]:
    src = SlowSource() if src is None else src
    config = describe(b"{}", EMPTY)
    await src.push(config, once(b"{}"))
    layers = []
    for i in range(blobs):
        data = f"blob {i}".encode() * 100
        layers.append(describe(data, LAYER))
        await src.push(layers[-1], once(data))
    doc = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": layers}
    data = json.dumps(doc).encode()
    root = describe(data, MANIFEST)
    await src.push(root, once(data))
    await src.tag(root, "v1")
    return src, root


@pytest.mark.parametrize("concurrency", [1, 2, 4])
async def test_copy_runs_at_most_concurrency_transfers_at_once(concurrency: int) -> None:
    src, root = await slow_artifact(8)
    dst = MemoryStore()
    assert (await aioras.copy(src, "v1", dst, concurrency=concurrency))["digest"] == root["digest"]
    assert src.peak == concurrency
    assert len(dst) == 10


async def test_copy_is_bounded_by_the_registry_transfer_limit(registry: LocalRegistry) -> None:
    src, root = await slow_artifact(6)
    async with AsyncRegistry(registry.host, insecure=True, max_transfers=1) as reg:
        dst = reg.repository(f"{registry.host}/{unique('copy/limited')}")
        await aioras.copy(src, "v1", dst, concurrency=4)
        assert await dst.exists(root)
    assert src.peak == 1


async def test_a_store_transfer_budget_bounds_the_copy_below_its_concurrency() -> None:
    src, _ = await slow_artifact(6, BudgetedSource())
    assert isinstance(src, TransferBudget)
    dst = MemoryStore()
    await aioras.copy(src, "v1", dst, concurrency=4)
    assert src.peak == 1
    assert len(dst) == 8


async def test_copy_refuses_bad_options_before_any_transfer() -> None:
    src, _ = await slow_artifact(1)

    class NoReferrers:
        exists = src.exists
        fetch = src.fetch
        resolve = src.resolve

    with pytest.raises(ValueError, match="concurrency"):
        await aioras.copy(src, "v1", MemoryStore(), concurrency=0)
    with pytest.raises(ValueError, match="depth"):
        await aioras.copy(src, "v1", MemoryStore(), referrers=True, depth=-1)
    with pytest.raises(ValueError, match="platform"):
        await aioras.copy(src, "v1", MemoryStore(), platform="linux/amd64")
    with pytest.raises(TypeError, match="referrers"):
        await aioras.copy(NoReferrers(), "v1", MemoryStore(), referrers=True)  # type: ignore[arg-type]
    assert src.peak == 0


@pytest.mark.parametrize("into", ["registry", "memory"])
async def test_source_bytes_corrupted_on_the_way_are_fetched_again_never_stored(
    fault_proxy: FaultProxy, other: LocalRegistry, into: str
) -> None:
    name = unique("copy/corrupt")
    async with AsyncRegistry(fault_proxy.host, insecure=True) as reg:
        src = reg.repository(f"{fault_proxy.host}/{name}")
        root = await image(src, [os.urandom(2 * MiB)])
        await src.tag(root, "v1")
        layer = json.loads(await raw(reg, f"{fault_proxy.host}/{name}:v1"))["layers"][0]
        rule = fault_proxy.add(
            Fault("corrupt", where="response", fraction=0.5),
            method="GET",
            path=f"/blobs/{layer['digest']}",
            times=2,
        )
        dst: Repository | MemoryStore = (
            reg.repository(f"{other.host}/{name}") if into == "registry" else MemoryStore()
        )
        got = await aioras.copy(src, "v1", dst)
        assert got["digest"] == root["digest"]
        assert rule.injected == 2
        async with dst.fetch(layer) as stream:
            assert digest_bytes(b"".join([c async for c in stream])) == layer["digest"]
