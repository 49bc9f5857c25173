"""The blob cache wired into the registry client: pull, copy, the layout API, the CLI.

Transfers go through the fault proxy, whose log shows what the registry was asked for: a
warm fetch must make no blob request, and tags must still be resolved at the registry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from pathlib import Path
from typing import Literal

import anyio
import pytest

import aioras
from aioras import AsyncRegistry, BlobCache, MemoryStore, OCILayout, defaults
from aioras._environment import read_environment
from aioras.layout import NewLayoutFromRegistry
from aioras.provider import Registry
from aioras.testing import LocalRegistry
from support.clitools import aioras as run_aioras
from support.faultproxy import Exchange, FaultProxy

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
INDEX = defaults.default_index_media_type


def blob_gets(proxy: FaultProxy) -> int:
    return len(proxy.requests_matching("GET", "/blobs/sha256:"))


async def push_artifact(
    areg: AsyncRegistry, registry: LocalRegistry, name: str, directory: Path
) -> bytes:
    data = os.urandom(3 * MiB)
    (directory / "weights.bin").write_bytes(data)
    (directory / "notes.txt").write_bytes(b"small notes")
    cwd = Path.cwd()
    os.chdir(directory)
    try:
        await areg.push(registry.reference(f"{name}:v1"), files=["weights.bin", "notes.txt"])
    finally:
        os.chdir(cwd)
    return data


async def test_a_warm_pull_makes_no_blob_request_and_resolves_the_tag_again(
    areg: AsyncRegistry, registry: LocalRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    data = await push_artifact(areg, registry, "cached/pull", tmp_path)
    cache = BlobCache(tmp_path / "cache")
    target = fault_proxy.reference("cached/pull:v1")
    async with AsyncRegistry(fault_proxy.host, insecure=True, cache=cache) as reg:
        await reg.pull(target=target, outdir=tmp_path / "cold")
        cold = blob_gets(fault_proxy)
        tag_lookups = len(fault_proxy.requests_matching(".*", "/manifests/v1"))
        await reg.pull(target=target, outdir=tmp_path / "warm")
    assert cold == 2  # the two files (a pull does not fetch the config)
    assert blob_gets(fault_proxy) == cold
    assert len(fault_proxy.requests_matching(".*", "/manifests/v1")) == 2 * tag_lookups
    assert (tmp_path / "warm" / "weights.bin").read_bytes() == data
    assert (tmp_path / "warm" / "notes.txt").read_bytes() == b"small notes"


async def test_editing_a_pulled_file_never_changes_the_cache(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_path: Path
) -> None:
    data = await push_artifact(areg, registry, "cached/edit", tmp_path)
    cache = BlobCache(tmp_path / "cache", verify="always")
    async with AsyncRegistry(registry.host, insecure=True, cache=cache) as reg:
        await reg.pull(target=registry.reference("cached/edit:v1"), outdir=tmp_path / "a")
        with (tmp_path / "a" / "weights.bin").open("r+b") as pulled:
            pulled.write(b"scribbled over")
        await reg.pull(target=registry.reference("cached/edit:v1"), outdir=tmp_path / "b")
    assert (tmp_path / "b" / "weights.bin").read_bytes() == data
    assert (tmp_path / "a" / "weights.bin").stat().st_nlink == 1


async def test_copy_from_a_registry_reads_blobs_and_manifests_through_the_cache(
    areg: AsyncRegistry, registry: LocalRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    await push_artifact(areg, registry, "cached/copy", tmp_path)
    cache = BlobCache(tmp_path / "cache")
    async with AsyncRegistry(fault_proxy.host, insecure=True, cache=cache) as reg:
        source = reg.repository(fault_proxy.reference("cached/copy"))
        first = await aioras.copy(source, "v1", OCILayout(tmp_path / "layout"))
        cold = len(fault_proxy.log)
        assert blob_gets(fault_proxy) == 3
        second = await aioras.copy(source, "v1", MemoryStore())
    assert first == second
    warm = fault_proxy.log[cold:]
    assert [e for e in warm if "/blobs/" in e.target] == []
    # The tag was resolved at the registry again; the manifest by digest came from the cache.
    assert [e.target.rsplit("/", 1)[1] for e in warm] == ["v1"]


async def push_platform_index(
    areg: AsyncRegistry, registry: LocalRegistry, name: str, directory: Path
) -> str:
    """An index of a linux/amd64 and a linux/arm64 image tagged ``v1``; its digest."""
    for arch in ("amd64", "arm64"):
        folder = directory / arch
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"os": "linux", "architecture": arch}))
        (folder / "weights.bin").write_bytes(os.urandom(MiB))
        await areg.push(
            registry.reference(f"{name}:{arch}"),
            files=["weights.bin"],
            manifest_config=f"{folder / 'config.json'}:{defaults.default_config_media_type}",
            root=folder,
        )
    index = await areg.push_index(
        registry.reference(f"{name}:v1"),
        [registry.reference(f"{name}:{arch}") for arch in ("amd64", "arm64")],
    )
    return str(index["digest"])


def requested(exchanges: list[Exchange]) -> list[tuple[str, str]]:
    """(method, last path segment) of each request: ``("GET", "v1")``, ``("GET", "sha256:...")``."""
    return [(e.method, e.target.rsplit("/", 1)[1]) for e in exchanges]


async def test_a_warm_pull_of_an_index_by_tag_fetches_only_the_index_at_the_registry(
    areg: AsyncRegistry, registry: LocalRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    await push_platform_index(areg, registry, "cached/index", tmp_path)
    target = fault_proxy.reference("cached/index:v1")
    async with AsyncRegistry(fault_proxy.host, insecure=True, cache=tmp_path / "cache") as reg:
        await reg.pull(target=target, platform="linux/arm64", outdir=tmp_path / "cold")
        cold = len(fault_proxy.log)
        await reg.pull(target=target, platform="linux/arm64", outdir=tmp_path / "warm")
    # The tag is resolved at the registry; the arm64 manifest and its blob come from the cache.
    assert requested(fault_proxy.log[cold:]) == [("GET", "v1")]
    warm = (tmp_path / "warm" / "weights.bin").read_bytes()
    assert warm == (tmp_path / "arm64" / "weights.bin").read_bytes()


async def test_a_warm_pull_by_digest_makes_no_request(
    areg: AsyncRegistry, registry: LocalRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    data = await push_artifact(areg, registry, "cached/digest", tmp_path)
    digest = (await areg.resolve(registry.reference("cached/digest:v1")))["digest"]
    target = fault_proxy.reference(f"cached/digest@{digest}")
    async with AsyncRegistry(fault_proxy.host, insecure=True, cache=tmp_path / "cache") as reg:
        await reg.pull(target=target, outdir=tmp_path / "cold")
        cold = len(fault_proxy.log)
        assert ("GET", digest) in requested(fault_proxy.log)
        await reg.pull(target=target, outdir=tmp_path / "warm")
    assert fault_proxy.log[cold:] == []
    assert (tmp_path / "warm" / "weights.bin").read_bytes() == data


async def test_manifests_by_digest_are_read_through_the_cache_and_tags_never(
    areg: AsyncRegistry, registry: LocalRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    index = await push_platform_index(areg, registry, "cached/manifests", tmp_path)
    by_digest = fault_proxy.reference(f"cached/manifests@{index}")
    by_tag = fault_proxy.reference("cached/manifests:v1")
    async with AsyncRegistry(fault_proxy.host, insecure=True, cache=tmp_path / "cache") as reg:
        data, descriptor = await reg.fetch_manifest_bytes(by_digest)
        document, _ = await reg.fetch_manifest(by_tag)
        cold = len(fault_proxy.log)
        assert await reg.fetch_manifest_bytes(by_digest) == (data, descriptor)
        assert await reg.fetch_manifest(by_digest) == (document, descriptor)
        assert await reg.get_manifest(by_digest) == document
        assert fault_proxy.log[cold:] == []
        await reg.fetch_manifest(by_tag)
        assert requested(fault_proxy.log[cold:]) == [("GET", "v1")]
        # An index edited by digest is read from the cache: only the new index goes out.
        edited = await reg.update_index(by_digest, remove=["linux/arm64"])
    assert requested(fault_proxy.log[cold + 1 :]) == [("PUT", edited["digest"])]
    assert descriptor == {"mediaType": INDEX, "digest": index, "size": len(data)}


async def test_a_cached_manifest_altered_on_disk_is_fetched_again_and_repaired(
    areg: AsyncRegistry,
    registry: LocalRegistry,
    fault_proxy: FaultProxy,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await push_artifact(areg, registry, "cached/altered", tmp_path)
    digest = (await areg.resolve(registry.reference("cached/altered:v1")))["digest"]
    target = fault_proxy.reference(f"cached/altered@{digest}")
    cache = BlobCache(tmp_path / "cache")
    async with AsyncRegistry(fault_proxy.host, insecure=True, cache=cache) as reg:
        manifest = await reg.get_manifest(target)
        entry = cache.path / "blobs" / "sha256" / digest.split(":")[1]
        original = entry.read_bytes()
        # Same size, other bytes: the size check alone would pass it.
        entry.write_bytes(original.replace(b"weights.bin", b"weights.exe"))
        cold = len(fault_proxy.log)
        with caplog.at_level(logging.WARNING, logger="aioras.content.cache"):
            assert await reg.get_manifest(target) == manifest
    assert requested(fault_proxy.log[cold:]) == [("GET", digest)]
    assert "corrupt" in caplog.text
    assert entry.read_bytes() == original


async def test_a_damaged_cached_layer_is_fetched_again_from_the_registry(
    areg: AsyncRegistry,
    registry: LocalRegistry,
    fault_proxy: FaultProxy,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = await push_artifact(areg, registry, "cached/damaged", tmp_path)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    entry = tmp_path / "cache" / "blobs" / "sha256" / digest.split(":")[1]
    target = fault_proxy.reference("cached/damaged:v1")
    weights_gets = f"/blobs/{digest}"

    async def pull(verify: Literal["size", "always"], outdir: str) -> bytes:
        cache = BlobCache(tmp_path / "cache", verify=verify)
        async with AsyncRegistry(fault_proxy.host, insecure=True, cache=cache) as reg:
            await reg.pull(target=target, outdir=tmp_path / outdir)
        return (tmp_path / outdir / "weights.bin").read_bytes()

    assert await pull("always", "cold") == data
    flipped = bytearray(data)
    flipped[MiB] ^= 0x04
    entry.write_bytes(flipped)
    with caplog.at_level(logging.WARNING, logger="aioras.content.cache"):
        # A bit flipped: the size is right, the digest check of verify="always" catches it.
        assert await pull("always", "flipped") == data
        assert "its bytes hash to" in caplog.text
        assert len(fault_proxy.requests_matching("GET", weights_gets)) == 2
        # Truncated: the size check of the default verify="size" catches it.
        os.truncate(entry, len(data) - 1)
        assert await pull("size", "truncated") == data
        assert f"holds {len(data) - 1} bytes" in caplog.text
    assert len(fault_proxy.requests_matching("GET", weights_gets)) == 3
    assert entry.read_bytes() == data


async def test_oras_py_layout_api_reads_through_the_cache(
    areg: AsyncRegistry, registry: LocalRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    await push_artifact(areg, registry, "cached/layout", tmp_path)
    target = fault_proxy.reference("cached/layout:v1")

    def pull_twice() -> None:
        with Registry(fault_proxy.host, insecure=True, cache=tmp_path / "cache") as provider:
            NewLayoutFromRegistry(str(tmp_path / "one"), provider, target)
            NewLayoutFromRegistry(str(tmp_path / "two"), provider, target)

    await anyio.to_thread.run_sync(pull_twice)
    assert blob_gets(fault_proxy) == 3  # the second layout's blobs came from the cache
    one = sorted(p.name for p in (tmp_path / "one" / "blobs" / "sha256").iterdir())
    two = sorted(p.name for p in (tmp_path / "two" / "blobs" / "sha256").iterdir())
    assert one == two


def test_oras_cache_names_the_registry_cache_and_false_turns_it_off(tmp_path: Path) -> None:
    environment = read_environment({"ORAS_CACHE": str(tmp_path / "c")})
    reg = AsyncRegistry(environment=environment)
    assert reg.cache is not None
    assert reg.cache.path == tmp_path / "c"
    assert AsyncRegistry(environment=environment, cache=False).cache is None
    assert AsyncRegistry(environment=read_environment({})).cache is None


def test_a_registry_pickles_with_its_cache_or_its_lack_of_one(tmp_path: Path) -> None:
    environment = read_environment({"ORAS_CACHE": str(tmp_path / "env")})
    given = BlobCache(tmp_path / "given", max_bytes=10, verify="always")
    clone = pickle.loads(pickle.dumps(AsyncRegistry(environment=environment, cache=given)))
    assert clone.cache is not None
    assert (clone.cache.path, clone.cache.max_bytes, clone.cache.verify) == (
        given.path,
        10,
        "always",
    )
    # Turned off here, it stays off there, whatever ORAS_CACHE says.
    off = pickle.loads(pickle.dumps(AsyncRegistry(environment=environment, cache=False)))
    assert off.cache is None


def test_cli_pull_fills_the_cache_and_the_cache_verbs_list_and_prune_it(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_bytes(b"cli cache")
    ref = registry.reference("cached/cli:v1")
    assert run_aioras("push", "--plain-http", ref, "a.txt", cwd=tmp_path).status == 0
    cache = tmp_path / "cache"
    pulled = run_aioras(
        "pull", "--plain-http", "--cache", str(cache), ref, "-o", str(tmp_path / "out")
    )
    assert pulled.status == 0, pulled.stderr
    listed = run_aioras("cache", "ls", "--format", "json", ORAS_CACHE=str(cache))
    digests = {b["digest"] for b in listed.json()["blobs"]}
    assert "sha256:" + hashlib.sha256(b"cli cache").hexdigest() in digests
    used = run_aioras("cache", "du", "--format", "json", "--cache", str(cache)).json()
    assert used["blobs"] == len(digests)
    pruned = run_aioras("cache", "prune", "--max-bytes", "0", "--format", "json",
                        "--cache", str(cache)).json()  # fmt: skip
    assert pruned["evicted"] == len(digests)
    assert run_aioras("cache", "ls", "--format", "json", "--cache", str(cache)).json() == {
        "cache": str(cache),
        "blobs": [],
    }


def test_cli_mirror_reads_its_sources_through_the_cache(
    registry: LocalRegistry, fresh_registry: LocalRegistry, tmp_path: Path
) -> None:
    (tmp_path / "m.txt").write_bytes(b"mirrored through the cache")
    source = registry.reference("cached/cli-mirror:v1")
    assert run_aioras("push", "--plain-http", source, "m.txt", cwd=tmp_path).status == 0
    plan = tmp_path / "plan.toml"
    destination = fresh_registry.reference("cached/cli-mirror:v1")
    plan.write_text(f'[[copy]]\nsource = "{source}"\ndestination = "{destination}"\n')
    cache = tmp_path / "cache"
    mirrored = run_aioras("mirror", "--plain-http", "--cache", str(cache), str(plan))
    assert mirrored.status == 0, mirrored.stderr
    listed = run_aioras("cache", "ls", "--format", "json", "--cache", str(cache)).json()
    digests = {b["digest"] for b in listed["blobs"]}
    assert "sha256:" + hashlib.sha256(b"mirrored through the cache").hexdigest() in digests


def test_cli_cache_verbs_without_a_cache_say_what_to_type() -> None:
    result = run_aioras("cache", "ls")
    assert result.status == 2
    assert "--cache DIR" in result.stderr


async def test_mirror_reads_the_source_through_the_cache(
    areg: AsyncRegistry,
    registry: LocalRegistry,
    fault_proxy: FaultProxy,
    fresh_registry: LocalRegistry,
    tmp_path: Path,
) -> None:
    await push_artifact(areg, registry, "cached/mirror", tmp_path)
    source = fault_proxy.reference("cached/mirror")
    plan = [
        aioras.MirrorSpec(source, fresh_registry.reference(f"copy{i}/mirror")) for i in range(2)
    ]
    async with AsyncRegistry(insecure=True, cache=tmp_path / "cache") as reg:
        report = await reg.mirror(plan, concurrency=1)
    assert len(report.copied) == 2
    assert blob_gets(fault_proxy) == 3  # the second destination's blobs came from the cache
