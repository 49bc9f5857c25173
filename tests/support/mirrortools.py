"""Helpers of the mirror tests: small artifacts sharing a layer per repository."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterable

from aioras import AsyncRegistry
from aioras.descriptor import Descriptor
from aioras.digest import digest_bytes
from aioras.exceptions import NotFoundError
from aioras.remote.repository import Repository

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def describe(data: bytes, media_type: str) -> Descriptor:
    return {"mediaType": media_type, "digest": digest_bytes(data), "size": len(data)}


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def put(repo: Repository, data: bytes, media_type: str) -> Descriptor:
    desc = describe(data, media_type)
    await repo.push(desc, _once(data))
    return desc


async def artifact(repo: Repository, tag: str, shared: bytes, own: bytes) -> Descriptor:
    """Push a manifest (config, the repository's shared layer, its own layer) tagged ``tag``."""
    config = json.dumps({"tag": tag}).encode()
    layers = [await put(repo, shared, LAYER), await put(repo, own, LAYER)]
    doc = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": await put(repo, config, CONFIG),
        "layers": layers,
    }
    data = json.dumps(doc).encode()
    desc = describe(data, MANIFEST)
    await repo.push_manifest(desc, data, reference=tag)
    return desc


def shared_layer(repository: str, size: int) -> bytes:
    """The layer :func:`populate` shares between the artifacts of ``repository``."""
    return (repository.encode() * (size // len(repository) + 1))[:size]


async def populate(
    reg: AsyncRegistry, repository: str, tags: Iterable[str], *, size: int = 2048
) -> dict[str, str]:
    """Artifacts tagged ``tags`` in ``repository`` (host/name); returns tag -> digest."""
    repo = reg.repository(repository)
    shared = shared_layer(repository, size)
    return {
        tag: (await artifact(repo, tag, shared, f"{repository}:{tag}".encode() * 8))["digest"]
        for tag in tags
    }


async def digests(reg: AsyncRegistry, repository: str, tags: Iterable[str]) -> dict[str, str]:
    """tag -> digest at ``repository`` for the tags it has."""
    repo = reg.repository(repository)
    found = {}
    for tag in tags:
        with contextlib.suppress(NotFoundError):
            found[tag] = (await repo.resolve(tag))["digest"]
    return found
