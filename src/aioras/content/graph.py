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
from typing import Any

from .. import defaults
from .. import exceptions as exc
from ..descriptor import Descriptor, as_descriptor
from .store import ReadOnlyStore, ReferrerLister, read_all

__all__ = [
    "MANIFEST_MEDIA_TYPES",
    "descriptor_list",
    "is_manifest",
    "parse_document",
    "parse_platform",
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
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
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


# Variants the container tools assume when an index entry leaves them out.
_DEFAULT_VARIANTS = {"arm64": "v8", "arm": "v7"}


def _matches(entry: dict[str, Any], wanted: dict[str, str]) -> bool:
    if entry.get("os") != wanted["os"] or entry.get("architecture") != wanted["architecture"]:
        return False
    if "variant" not in wanted:
        return True
    default = _DEFAULT_VARIANTS.get(wanted["architecture"])
    return bool(entry.get("variant", default) == wanted["variant"])


def select_platform(descriptor: Descriptor, data: bytes, platform: str) -> Descriptor:
    """The first manifest of the index ``data`` built for ``platform`` (``os/arch[/variant]``).

    Raises :class:`~aioras.exceptions.NotFoundError` when no entry matches, and
    ValueError for a malformed ``platform``.
    """
    wanted = parse_platform(platform)
    for entry in successors_of(descriptor, data):
        if isinstance(entry.get("platform"), dict) and _matches(dict(entry["platform"]), wanted):
            return entry
    raise exc.NotFoundError(
        f"index {descriptor['digest']} has no manifest for platform {platform}", status_code=404
    )
