"""The artifact graph: what a node points to (successors) and what points to it (predecessors).

A node is a descriptor. Its successors are what it cannot exist without: the config and
layers of an image manifest, the manifests of an image index (or Docker manifest list), and
the ``subject`` a referrer points to. Its predecessors are its referrers, listed by a
:class:`~aioras.content.store.ReferrerLister` (a registry's referrers API or its tag-schema
fallback, a memory store's index, ...). Only manifests and indexes have successors; the
functions here never fetch a blob.
"""

from __future__ import annotations

import json
import platform as pyplatform
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .. import defaults
from .. import exceptions as exc
from .._jsondoc import load_json
from ..descriptor import Descriptor, as_descriptor
from ..digest import digest_bytes
from .store import ReadOnlyStore, ReferrerLister, read_all

__all__ = [
    "MANIFEST_MEDIA_TYPES",
    "choose_platform",
    "host_platform",
    "platform_matches",
    "platform_string",
    "descriptor_list",
    "filter_index",
    "is_manifest",
    "parse_document",
    "parse_platform",
    "platform_list",
    "predecessors",
    "referrer_descriptor",
    "select_platform",
    "successors",
    "successors_of",
]

_ARTIFACT_MANIFEST = "application/vnd.oci.artifact.manifest.v1+json"
MANIFEST_MEDIA_TYPES = frozenset(
    defaults.manifest_media_types | defaults.index_media_types | {_ARTIFACT_MANIFEST}
)
"""Media types of the nodes that have successors (manifests and indexes)."""


def is_manifest(descriptor: Descriptor) -> bool:
    """Whether ``descriptor`` names a manifest or an index rather than a blob."""
    return descriptor.get("mediaType", "") in MANIFEST_MEDIA_TYPES


def parse_document(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = load_json(data)
    except ValueError as error:
        raise exc.ManifestValidationError(f"{what} is not valid JSON: {error}") from error
    if not isinstance(doc, dict):
        raise exc.ManifestValidationError(f"{what} is not a JSON object")
    return doc


def descriptor_list(value: Any, what: str) -> list[Descriptor]:
    """``value`` as a list of descriptors (None: empty); raises ManifestValidationError."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(d, dict) and isinstance(d.get("digest"), str) for d in value
    ):
        raise exc.ManifestValidationError(f"{what} holds a malformed descriptor list")
    return [as_descriptor(d) for d in value]


def successors_of(descriptor: Descriptor, data: bytes) -> list[Descriptor]:
    """The successors of a manifest or index whose bytes are ``data``, in document order.

    Image manifest: config, layers, then subject. Index: its manifests, then subject.
    Artifact manifest (the withdrawn 1.1 draft form): its blobs, then subject. A blob has
    none. Raises :class:`~aioras.exceptions.ManifestValidationError` for a document that is
    not JSON or whose descriptors are malformed.
    """
    media_type = descriptor.get("mediaType", "")
    if media_type not in MANIFEST_MEDIA_TYPES:
        return []
    what = f"manifest {descriptor['digest']}"
    doc = parse_document(data, what)
    found: list[Descriptor] = []
    if media_type in defaults.index_media_types:
        found += descriptor_list(doc.get("manifests"), what)
    elif media_type == _ARTIFACT_MANIFEST:
        found += descriptor_list(doc.get("blobs"), what)
    else:
        if isinstance(doc.get("config"), dict):
            found += descriptor_list([doc["config"]], what)
        found += descriptor_list(doc.get("layers"), what)
    if isinstance(doc.get("subject"), dict):
        found += descriptor_list([doc["subject"]], what)
    return found


async def successors(store: ReadOnlyStore, descriptor: Descriptor) -> list[Descriptor]:
    """Fetch ``descriptor`` from ``store`` when it is a manifest and return its successors."""
    if not is_manifest(descriptor):
        return []
    return successors_of(descriptor, await read_all(store, descriptor))


async def predecessors(
    store: ReferrerLister, descriptor: Descriptor, *, artifact_type: str | None = None
) -> list[Descriptor]:
    """The referrers of ``descriptor`` in ``store`` (those of ``artifact_type`` only, if given)."""
    return await store.referrers(descriptor, artifact_type=artifact_type)


def referrer_descriptor(descriptor: Descriptor, data: bytes) -> tuple[str, Descriptor] | None:
    """``(subject digest, referrer entry)`` when the manifest ``data`` has a ``subject``.

    The entry is what a referrers index lists for it: media type, digest and size, its
    ``artifactType`` (or, lacking one, its config's media type) and its annotations.
    None for a blob or a manifest without subject.
    """
    if not is_manifest(descriptor):
        return None
    doc = parse_document(data, f"manifest {descriptor['digest']}")
    subject = doc.get("subject")
    if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
        return None
    entry: dict[str, Any] = {
        "mediaType": descriptor["mediaType"],
        "digest": descriptor["digest"],
        "size": descriptor["size"],
    }
    config = doc.get("config")
    artifact_type = doc.get("artifactType") or (
        config.get("mediaType") if isinstance(config, dict) else None
    )
    if artifact_type:
        entry["artifactType"] = artifact_type
    if isinstance(doc.get("annotations"), dict) and doc["annotations"]:
        entry["annotations"] = dict(doc["annotations"])
    return subject["digest"], as_descriptor(entry)


def parse_platform(value: str) -> dict[str, str]:
    """Split ``os/arch[/variant]`` into platform fields; raises ValueError when malformed."""
    parts = value.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform must be os/arch[/variant], got {value!r}")
    platform = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        platform["variant"] = parts[2]
    return platform


def platform_list(platform: str | None, platforms: Sequence[str] | None) -> tuple[str, ...] | None:
    """``platforms`` (or ``platform`` as a one-element shorthand) checked, duplicates dropped.

    None when neither is given. Raises ValueError for both given (unless they agree), an
    empty list, a bare string given as ``platforms``, or a malformed ``os/arch[/variant]``.
    """
    if platforms is not None and isinstance(platforms, str):
        raise ValueError(f"platforms takes a list of os/arch[/variant], got {platforms!r}")
    if platform is not None:
        if platforms is not None and tuple(platforms) != (platform,):
            raise ValueError("give platform (one) or platforms (a list), not both")
        platforms = (platform,)
    if platforms is None:
        return None
    if not platforms:
        raise ValueError("platforms must name at least one os/arch[/variant]")
    for value in platforms:
        parse_platform(value)
    return tuple(dict.fromkeys(platforms))


# Variants the container tools assume when an index entry leaves them out.
_DEFAULT_VARIANTS = {"arm64": "v8", "arm": "v7"}
# What Python's platform.machine() says, in the image-spec's GOARCH names.
_MACHINES = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


def platform_string(platform: Mapping[str, Any]) -> str:
    """``os/arch[/variant]`` of a platform object (``?`` for a missing field)."""
    text = f"{platform.get('os', '?')}/{platform.get('architecture', '?')}"
    return f"{text}/{platform['variant']}" if platform.get("variant") else text


def host_platform() -> str:
    """The running machine's platform as ``os/arch[/variant]`` (``linux/amd64``...)."""
    system = sys.platform
    os_name = "windows" if system.startswith("win") else "darwin" if system == "darwin" else "linux"
    machine = pyplatform.machine().lower()
    architecture, variant = _MACHINES.get(machine, (machine or "amd64", None))
    return f"{os_name}/{architecture}/{variant}" if variant else f"{os_name}/{architecture}"


def platform_matches(entry: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    """Whether an index entry's ``platform`` satisfies ``wanted`` (os, arch, variant).

    As the image-spec and the container tools match: os and architecture equal; a variant
    asked for must equal the entry's, where arm64 without a variant means ``v8`` and arm
    without one ``v7`` (on either side).
    """
    if entry.get("os") != wanted["os"] or entry.get("architecture") != wanted["architecture"]:
        return False
    default = _DEFAULT_VARIANTS.get(wanted["architecture"])
    asked = wanted.get("variant") or (default if wanted["architecture"] == "arm" else None)
    if asked is None:
        return True
    return bool((entry.get("variant") or default) == asked)


def choose_platform(manifests: list[Descriptor], platform: str, index: str) -> Descriptor:
    """The first of an index's ``manifests`` built for ``platform`` (``os/arch[/variant]``).

    Raises :class:`~aioras.exceptions.PlatformNotFound` (a NotFoundError) listing the
    platforms the index offers when none matches, and ValueError for a malformed
    ``platform``.
    """
    wanted = parse_platform(platform)
    offered: list[str] = []
    for entry in manifests:
        entry_platform = entry.get("platform")
        if not isinstance(entry_platform, dict):
            continue
        if platform_matches(entry_platform, wanted):
            return entry
        offered.append(platform_string(entry_platform))
    raise exc.PlatformNotFound(index, platform, offered)


def select_platform(descriptor: Descriptor, data: bytes, platform: str) -> Descriptor:
    """The first manifest of the index ``data`` built for ``platform`` (``os/arch[/variant]``).

    Raises :class:`~aioras.exceptions.PlatformNotFound` (a NotFoundError) when no entry
    matches, and ValueError for a malformed ``platform``.
    """
    return choose_platform(successors_of(descriptor, data), platform, descriptor["digest"])


def filter_index(
    descriptor: Descriptor, data: bytes, platforms: Sequence[str]
) -> tuple[Descriptor, bytes]:
    """A new index of the index ``data`` holding only its entries for ``platforms``.

    For each platform the entry :func:`select_platform` would pick is kept; kept entries
    stay in the source's order, each exactly as the source wrote it, and every other field
    of the document (``mediaType``, ``annotations``, ``subject``...) is kept as it is. The
    bytes are compact JSON in the source's key order, so one source index and one set of
    platforms always build the same bytes, hence the same digest (which differs from the
    source's). Returns the new index's descriptor (the source's ``mediaType``) and bytes.
    Raises :class:`~aioras.exceptions.PlatformNotFound` for the first platform without an
    entry, ValueError for a malformed platform, and ManifestValidationError for a document
    that is not an index.
    """
    doc = parse_document(data, f"index {descriptor['digest']}")
    entries = descriptor_list(doc.get("manifests"), f"index {descriptor['digest']}")
    chosen = {id(choose_platform(entries, p, descriptor["digest"])) for p in platforms}
    # as_descriptor views the parsed dicts without copying: identity picks the entries.
    filtered = {**doc, "manifests": [e for e in entries if id(e) in chosen]}
    new = json.dumps(filtered, separators=(",", ":"), ensure_ascii=False).encode()
    media_type = descriptor["mediaType"]
    return as_descriptor(
        {"mediaType": media_type, "digest": digest_bytes(new), "size": len(new)}
    ), new
