"""Image indexes: build one from manifests, edit its entries, pick the one for a platform.

Index entries name manifests of the index's own repository. An entry's ``platform`` is
the caller's, else read from the manifest's image config (``os``, ``architecture``,
``variant``, ``os.version``, ``os.features``). Docker manifest lists are read, edited and
chosen from like OCI indexes, keeping their media type.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .. import defaults
from .. import exceptions as exc
from ..content.graph import (
    choose_platform,
    descriptor_list,
    parse_document,
    parse_platform,
    platform_matches,
)
from ..content.store import read_all
from ..descriptor import Descriptor, as_descriptor
from ..digest import digest_bytes
from ..oci import manifest_bytes

if TYPE_CHECKING:
    from ..container import Container
    from ..remote.repository import Repository
    from .endpoints import ManifestEndpoints

__all__ = ["ManifestLike", "choose_manifest", "push_index", "update_index"]

logger = logging.getLogger(__name__)

ManifestLike = str | Mapping[str, Any]
"""A manifest for an index: a reference (a tag or digest of the index's repository, or a
full reference into it) or a descriptor (``mediaType``, ``digest``, ``size``, maybe
``platform``)."""

_IMAGE_CONFIGS = frozenset(
    {defaults.default_config_media_type, "application/vnd.docker.container.image.v1+json"}
)
_PLATFORM_KEYS = ("architecture", "os", "os.version", "os.features", "variant")


async def push_index(
    registry: ManifestEndpoints,
    target: str | Container,
    manifests: Iterable[ManifestLike],
    *,
    annotations: Mapping[str, str] | None = None,
    artifact_type: str | None = None,
) -> Descriptor:
    """Build an OCI image index of ``manifests`` and push it to ``target``; return its descriptor.

    Entries keep the order given; each gets its ``platform`` from the descriptor given,
    else from the manifest's image config (none for an artifact without one). Without a
    tag in ``target`` the index is pushed by digest only. Raises
    [`InvalidReference`][aioras.exceptions.InvalidReference] for a manifest of another repository,
    [`NotFoundError`][aioras.exceptions.NotFoundError] for one that does not exist, and the
    registry's typed errors.
    """
    container = registry.get_container(target)
    repository = registry.repository(container)
    entries = [await _entry(registry, repository, m) for m in manifests]
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": defaults.default_index_media_type}
    if artifact_type:
        index["artifactType"] = artifact_type
    index["manifests"] = entries
    if annotations:
        index["annotations"] = dict(annotations)
    tag = container.tag if container.tag_given else None
    return await _push(registry, container, manifest_bytes(index), index["mediaType"], tag)


async def update_index(
    registry: ManifestEndpoints,
    target: str | Container,
    *,
    add: Iterable[ManifestLike] = (),
    remove: Iterable[str] = (),
) -> Descriptor:
    """Edit the index ``target`` names and push the result there; return its descriptor.

    ``remove`` holds digests or platforms (``os/arch[/variant]``) of entries to drop.
    Each of ``add`` (as in `push_index`) replaces the entry of the same platform or
    digest in place, else is appended. Every other entry, and every other field of the
    index, is kept exactly as it was (same keys, same order, same values). A tagged
    ``target`` gets the new index under that tag; one by digest yields an untagged index.

    Raises [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] when ``target`` is
    not an index, [`NotFoundError`][aioras.exceptions.NotFoundError] when an entry to remove is not
    in it, ValueError for a malformed platform, and the registry's typed errors.
    """
    container = registry.get_container(target)
    data, found = await registry.fetch_manifest_bytes(container)
    if found["mediaType"] not in defaults.index_media_types:
        raise exc.ManifestValidationError(f"{container} is not an image index")
    what = f"index {found['digest']}"
    index = parse_document(data, what)
    entries: list[Any] = list(index.get("manifests") or [])
    descriptor_list(entries, what)  # refuses malformed entries before anything changes
    for item in remove:
        kept = [e for e in entries if not _names(e, item)]
        if len(kept) == len(entries):
            raise exc.NotFoundError(f"{what} has no entry {item}", status_code=404)
        entries = kept
    repository = registry.repository(container)
    for manifest in add:
        entry = await _entry(registry, repository, manifest)
        at = next((i for i, e in enumerate(entries) if _same_slot(e, entry)), None)
        if at is None:
            entries.append(entry)
        else:
            entries[at] = entry
    index["manifests"] = entries
    # Written back where it was read: the tag (the default one too), or by digest.
    tag = None if container.digest else container.tag
    return await _push(registry, container, manifest_bytes(index), found["mediaType"], tag)


async def choose_manifest(
    registry: ManifestEndpoints, index: Descriptor, container: Container, platform: str
) -> Descriptor:
    """The entry of the index ``index`` (in ``container``'s repository) for ``platform``.

    Raises [`PlatformNotFound`][aioras.exceptions.PlatformNotFound] listing the platforms offered.
    """
    repository = registry.repository(container)
    data = await read_all(repository, index)
    manifests = descriptor_list(parse_document(data, index["digest"]).get("manifests"), "index")
    return choose_platform(manifests, platform, index["digest"])


async def _push(
    registry: ManifestEndpoints, container: Container, data: bytes, media_type: str, tag: str | None
) -> Descriptor:
    """PUT the index under ``tag``, or by digest only when None."""
    digest = digest_bytes(data)
    await registry.push_manifest_bytes(
        data, container, media_type=media_type, reference=tag or digest
    )
    return as_descriptor({"mediaType": media_type, "digest": digest, "size": len(data)})


async def _entry(
    registry: ManifestEndpoints, repository: Repository, manifest: ManifestLike
) -> dict[str, Any]:
    """An index entry for ``manifest``: its descriptor and platform."""
    if isinstance(manifest, str):
        container = (
            registry.get_container(manifest)
            if "/" in manifest
            else repository.at(manifest.lstrip(":@"))
        )
        if container.api_prefix != repository.container.api_prefix or (
            container.registry != repository.host
        ):
            raise exc.InvalidReference(
                f"{manifest} is not in {repository.name}: an index lists its own repository",
                part="name",
                value=manifest,
            )
        found = await registry.resolve(container)
        entry: dict[str, Any] = {k: found[k] for k in ("mediaType", "digest", "size")}
    else:
        entry = dict(manifest)
        for key in ("mediaType", "digest", "size"):
            if key not in entry:
                raise exc.ManifestValidationError(f"an index entry needs {key}", path=f"/{key}")
    if "platform" not in entry:
        platform = await _platform_of(repository, as_descriptor(entry))
        if platform:
            entry["platform"] = platform
    return entry


async def _platform_of(repository: Repository, descriptor: Descriptor) -> dict[str, Any] | None:
    """The platform recorded in an image manifest's config; None for other manifests."""
    if descriptor["mediaType"] not in defaults.manifest_media_types:
        return None
    data = await repository.fetch_manifest(descriptor)
    config = parse_document(data, f"manifest {descriptor['digest']}").get("config")
    if not isinstance(config, dict) or config.get("mediaType") not in _IMAGE_CONFIGS:
        return None
    config_descriptor = descriptor_list([config], "config")[0]
    raw = await read_all(repository, config_descriptor, max_size=defaults.max_metadata_size)
    document = parse_document(raw, f"config {config_descriptor['digest']}")
    platform = {k: document[k] for k in _PLATFORM_KEYS if document.get(k)}
    return platform if "os" in platform and "architecture" in platform else None


def _names(entry: Mapping[str, Any], item: str) -> bool:
    """Whether ``item`` (a digest or ``os/arch[/variant]``) names the index entry."""
    if ":" in item:
        return bool(entry.get("digest") == item)
    platform = entry.get("platform")
    return isinstance(platform, dict) and _same_platform(platform, parse_platform(item))


def _same_slot(entry: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether ``new`` takes the place of ``entry``: same digest, or same platform."""
    if entry.get("digest") == new["digest"]:
        return True
    old, fresh = entry.get("platform"), new.get("platform")
    return isinstance(old, dict) and isinstance(fresh, dict) and _same_platform(old, fresh)


def _same_platform(platform: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Whether two platform objects name the same platform (each matches the other)."""
    first, second = _triple(platform), _triple(other)
    if first is None or second is None:
        return False
    return platform_matches(platform, second) and platform_matches(other, first)


def _triple(platform: Mapping[str, Any]) -> dict[str, str] | None:
    fields = {k: str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k)}
    return fields if "os" in fields and "architecture" in fields else None
