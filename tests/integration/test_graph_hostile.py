"""Graph walks against a registry that lies: endless referrers, a DAG of shared referrers,
a 1,100-deep chain, and manifests whose descriptors are malformed.

The walks (``discover``, ``copy(referrers=True)``) must stop at ``max_depth``/``max_nodes``
with :class:`GraphLimitExceeded`, fetch each node once, end promptly when cancelled, and
render any depth; a malformed descriptor is a :class:`ManifestValidationError` naming its
field, never a copy that "succeeds" with a layer missing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import aioras
from aioras import AsyncRegistry, MemoryStore, OCILayout, defaults
from aioras.descriptor import Descriptor
from aioras.digest import digest_bytes
from aioras.exceptions import GraphLimitExceeded, ManifestValidationError
from aioras.testing import LocalRegistry
from support.clitools import aioras as aioras_cli
from support.hostilereferrers import HostileReferrers

# A regression here means a walk without end: fail it instead of hanging the suite.
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


@pytest.fixture
async def hostile_client() -> AsyncIterator[Callable[[HostileReferrers], AsyncRegistry]]:
    clients: list[AsyncRegistry] = []

    def client(server: HostileReferrers) -> AsyncRegistry:
        clients.append(AsyncRegistry(server.host, insecure=True))
        return clients[-1]

    yield client
    for reg in clients:
        await reg.aclose()


# -- bounds ------------------------------------------------------------------------------------


async def test_endless_referrers_stop_discover_at_max_depth(
    hostile_client: Callable[[HostileReferrers], AsyncRegistry],
) -> None:
    with HostileReferrers("endless") as server:
        reg = hostile_client(server)
        with pytest.raises(GraphLimitExceeded, match="max_depth=16") as info:
            await reg.discover(f"{server.host}/graph:v1")
        assert (info.value.what, info.value.limit) == ("max_depth", defaults.max_graph_depth)
        # One listing per level down to the limit; the level past it is never asked.
        assert server.referrer_listings() == defaults.max_graph_depth + 1

        with pytest.raises(GraphLimitExceeded, match="max_nodes=50") as info:
            await reg.discover(f"{server.host}/graph:v1", max_depth=10_000, max_nodes=50)
        assert info.value.what == "max_nodes"


async def test_endless_referrers_stop_copy_at_max_depth(
    hostile_client: Callable[[HostileReferrers], AsyncRegistry], tmp_path: Path
) -> None:
    with HostileReferrers("endless") as server:
        source = hostile_client(server).repository(f"{server.host}/graph")
        with pytest.raises(GraphLimitExceeded) as info:
            await aioras.copy(source, "v1", OCILayout(tmp_path / "backup"), referrers=True)
        assert info.value.what == "max_depth"
        # Each referrer level is one manifest (its blobs are the one shared empty blob).
        assert server.manifest_fetches() <= defaults.max_graph_depth + 1

        server.requests.clear()
        with pytest.raises(GraphLimitExceeded) as info:
            await aioras.copy(
                source, "v1", MemoryStore(), referrers=True, max_depth=10_000, max_nodes=40
            )
        assert info.value.what == "max_nodes"
        assert server.manifest_fetches() <= 40


async def test_dag_of_21_shared_referrers_is_fetched_once_each(
    hostile_client: Callable[[HostileReferrers], AsyncRegistry], tmp_path: Path
) -> None:
    with HostileReferrers("dag", levels=10) as server:
        assert len(server.manifests) == 21
        reg = hostile_client(server)
        tree = await reg.discover(f"{server.host}/graph:v1")
        # 21 listings, not one per path (2,047).
        assert server.referrer_listings() == 21
        assert {node.digest for _, node in tree.walk()} == set(server.manifests)
        # Each listing is shown once: 2 referrers under the root and each of levels 1-9.
        assert len(tree.rows()) == 2 + 9 * 2 * 2

        server.requests.clear()
        root = await aioras.copy(
            reg.repository(f"{server.host}/graph"), "v1", OCILayout(tmp_path / "b"), referrers=True
        )
        assert root["digest"] == server.root["digest"]
        assert server.manifest_fetches() == 21
        assert server.referrer_listings() == 21


async def test_fail_after_ends_an_endless_discover_with_timeout_error(
    hostile_client: Callable[[HostileReferrers], AsyncRegistry],
) -> None:
    with HostileReferrers("endless") as server:
        reg = hostile_client(server)
        # Limits raised out of reach: only the deadline stops this walk, and it must.
        with pytest.raises(TimeoutError), anyio.fail_after(2):
            await reg.discover(f"{server.host}/graph:v1", max_depth=10**9, max_nodes=10**9)
        assert server.referrer_listings() > 1


async def test_a_1100_deep_referrer_chain_discovers_and_renders(
    hostile_client: Callable[[HostileReferrers], AsyncRegistry],
) -> None:
    with HostileReferrers("chain", length=1100) as server:
        reg = hostile_client(server)
        tree = await reg.discover(f"{server.host}/graph:v1", max_depth=1100)
        rows = tree.rows()
        assert [row["depth"] for row in rows] == list(range(1, 1101))
        doc = tree.to_dict()
        for _ in range(1100):
            (doc,) = doc["referrers"]
        assert doc["referrers"] == []
        assert "referrers=1" in repr(tree)
        assert max(depth for depth, _ in tree.walk()) == 1100


# -- malformed descriptors ---------------------------------------------------------------------

MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "size-null": (lambda layer: layer.update(size=None), "/layers/0/size"),
    "size-string": (lambda layer: layer.update(size="12"), "/layers/0/size"),
    "no-media-type": (lambda layer: layer.pop("mediaType"), "/layers/0"),
    "no-size": (lambda layer: layer.pop("size"), "/layers/0"),
}


def malformed_manifest(
    layer: bytes, break_it: Callable[[dict[str, Any]], Any]
) -> tuple[Descriptor, Descriptor, bytes]:
    """(config, layer descriptor, manifest bytes) with the layer descriptor broken."""
    config: Descriptor = {
        "mediaType": defaults.empty_media_type,
        "digest": digest_bytes(b"{}"),
        "size": 2,
    }
    descriptor: Descriptor = {"mediaType": LAYER, "digest": digest_bytes(layer), "size": len(layer)}
    entry = dict(descriptor)
    break_it(entry)
    doc = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": [entry]}
    return config, descriptor, json.dumps(doc).encode()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_copy_refuses_a_malformed_layer_descriptor_into_a_layout(
    case: str, tmp_path: Path
) -> None:
    break_it, pointer = MALFORMED[case]
    layer = b"the layer a copy must not skip"
    config, descriptor, data = malformed_manifest(layer, break_it)
    source = MemoryStore()
    await source.push(config, _once(b"{}"))
    # The layer is in neither store: a copy taking "size": null as "present" would skip it.
    root: Descriptor = {"mediaType": MANIFEST, "digest": digest_bytes(data), "size": len(data)}
    await source.push(root, _once(data))
    await source.tag(root, "v1")
    layout = OCILayout(tmp_path / "layout")

    with pytest.raises(ManifestValidationError, match=root["digest"]) as info:
        await aioras.copy(source, "v1", layout)

    assert info.value.path.startswith(pointer)
    assert pointer in str(info.value)
    assert not await layout.exists(root)
    assert not await layout.exists(descriptor)


@pytest.mark.parametrize("case", ["size-null", "no-media-type", "no-size"])
async def test_copy_from_the_registry_refuses_a_malformed_layer_descriptor(
    case: str, registry: LocalRegistry, areg: AsyncRegistry, tmp_path: Path
) -> None:
    # The CNCF registry stores these three as they are ("size": "12" it refuses itself).
    break_it, pointer = MALFORMED[case]
    layer = b"the layer a copy must not skip " + case.encode()
    config, descriptor, data = malformed_manifest(layer, break_it)
    name = f"{registry.host}/graph/{uuid.uuid4().hex[:10]}"
    repo = areg.repository(name)
    await repo.push(config, _once(b"{}"))
    await repo.push(descriptor, _once(layer))
    await areg.push_manifest_bytes(data, f"{name}:v1", media_type=MANIFEST)
    layout = OCILayout(tmp_path / "layout")

    with pytest.raises(ManifestValidationError) as info:
        await aioras.copy(repo, "v1", layout)

    assert info.value.path.startswith(pointer)
    assert not await layout.exists(descriptor)


def test_cli_discover_and_backup_of_endless_referrers_end_with_the_limit_error(
    tmp_path: Path,
) -> None:
    with HostileReferrers("endless") as server:
        for args in (
            ["discover", "--plain-http", f"{server.host}/graph:v1"],
            ["backup", "--plain-http", f"{server.host}/graph:v1", str(tmp_path / "b")],
        ):
            result = aioras_cli(*args, timeout=60)
            assert result.status != 0
            assert "max_depth=16" in result.stderr
            assert "RecursionError" not in result.stderr
