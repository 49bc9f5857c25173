"""The names and files of an OCI image layout: blob paths, ``index.json``, ``oci-layout``.

Pure functions, no I/O. ``index.json`` is an image index whose entries name the layout's
roots; a tag is the ``org.opencontainers.image.ref.name`` annotation of an entry. Editing
follows oras-go's OCI store: every manifest pushed is listed (untagged until tagged), a
tag names one entry, and a digest is listed untagged only when no other entry lists it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any

from .. import defaults, schemas
from .._jsondoc import load_json
from ..descriptor import Descriptor, as_descriptor
from ..digest import ALGORITHMS, parse_digest
from ..exceptions import InvalidDigest, InvalidLayout, InvalidReference, ManifestValidationError

__all__ = [
    "blob_digest",
    "empty_index",
    "entry_descriptor",
    "find_digest",
    "find_tag",
    "layout_marker",
    "parse_index",
    "parse_json",
    "parse_layout_marker",
    "ref_name",
    "serialise",
    "validate_ref_name",
    "with_tag",
    "with_untagged",
    "without_digest",
]

logger = logging.getLogger(__name__)

REF_NAME = defaults.oci_ref_name_annotation
# The image-spec's grammar for ref.name (annotations.md): components of alphanumerics joined
# by separators, split by "/". It admits plain tags and full references ("repo:tag").
_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_MAX_REF_NAME = 4096
_ALGORITHM_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*")

Entry = dict[str, Any]


def parse_json(data: bytes, *, what: str) -> Any:
    """Parse JSON from a layout file; raise [`InvalidLayout`][aioras.exceptions.InvalidLayout] when
    it is not JSON."""
    try:
        return load_json(data)
    except ValueError as error:  # not JSON, not text, or nested too deep
        raise InvalidLayout(f"{what} is not valid JSON: {error}", path=what) from None


def layout_marker() -> bytes:
    """The content of a new ``oci-layout`` file."""
    return serialise({"imageLayoutVersion": defaults.oci_layout_version_pin})


def parse_layout_marker(data: bytes) -> None:
    """Check an ``oci-layout`` file; raise [`InvalidLayout`][aioras.exceptions.InvalidLayout] unless
    it is version 1.x."""
    doc = parse_json(data, what=defaults.oci_layout_file)
    version = doc.get("imageLayoutVersion") if isinstance(doc, dict) else None
    if not isinstance(version, str) or not re.fullmatch(r"1\.\d+\.\d+", version):
        raise InvalidLayout(
            f"unsupported OCI layout version {version!r} (this reader knows 1.x)",
            path=defaults.oci_layout_file,
        )


def empty_index() -> dict[str, Any]:
    """A new, empty ``index.json`` document."""
    return {
        "schemaVersion": defaults.oci_index_schema_version,
        "mediaType": defaults.default_index_media_type,
        "manifests": [],
    }


def parse_index(data: bytes) -> dict[str, Any]:
    """Parse and check ``index.json``; raise [`InvalidLayout`][aioras.exceptions.InvalidLayout] when
    it is not an index.

    Every entry must be a descriptor whose digest aioras can verify.
    """
    what = defaults.oci_image_index_file
    doc = parse_json(data, what=what)
    try:
        schemas.validate_index(doc)
    except ManifestValidationError as error:
        raise InvalidLayout(f"{what}: {error}", path=what) from None
    for position, entry in enumerate(doc["manifests"]):
        try:
            parse_digest(entry["digest"])
        except InvalidDigest as error:
            raise InvalidLayout(f"{what} entry {position}: {error}", path=what) from None
    return dict(doc)


def serialise(doc: dict[str, Any]) -> bytes:
    """Compact JSON bytes, as skopeo and oras-go write layout files."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def validate_ref_name(reference: str) -> str:
    """Return ``reference`` if it is a valid ``ref.name``; raise
    [`InvalidReference`][aioras.exceptions.InvalidReference]."""
    if (
        not isinstance(reference, str)
        or len(reference) > _MAX_REF_NAME
        or not _REF_NAME_RE.fullmatch(reference)
    ):
        raise InvalidReference(
            f"invalid OCI layout reference {reference!r}", part="tag", value=str(reference)
        )
    return reference


def ref_name(entry: Entry) -> str | None:
    """The tag of an ``index.json`` entry, or ``None``."""
    annotations = entry.get("annotations")
    name = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
    return name if isinstance(name, str) else None


def entry_descriptor(entry: Entry) -> Descriptor:
    """The descriptor an entry holds, without its tag (a new dict)."""
    out = dict(entry)
    annotations = {k: v for k, v in (entry.get("annotations") or {}).items() if k != REF_NAME}
    if annotations:
        out["annotations"] = annotations
    else:
        out.pop("annotations", None)
    return as_descriptor(out)


def blob_digest(name: str) -> str | None:
    """The digest a path under ``blobs/`` names; ``None`` for an algorithm aioras cannot check.

    Raises [`InvalidLayout`][aioras.exceptions.InvalidLayout] when the path is not
    ``blobs/<alg>/<encoded>`` with a well-formed digest.
    """
    parts = name.split("/")
    if (
        len(parts) != 3
        or parts[0] != defaults.oci_blobs_dir
        or not _ALGORITHM_RE.fullmatch(parts[1])
    ):
        raise InvalidLayout(f"{name!r} is not a blob path (blobs/<alg>/<encoded>)", path=name)
    if parts[1] not in ALGORITHMS:
        logger.warning("ignoring blob %s: digest algorithm %s is not supported", name, parts[1])
        return None
    digest = f"{parts[1]}:{parts[2]}"
    try:
        parse_digest(digest)
    except InvalidDigest:
        raise InvalidLayout(f"blob name {name!r} is not a digest", path=name) from None
    return digest


def _tagged(descriptor: Descriptor, reference: str) -> Entry:
    entry: Entry = dict(entry_descriptor(dict(descriptor)))
    entry["annotations"] = {**entry.get("annotations", {}), REF_NAME: reference}
    return entry


def find_tag(entries: Iterable[Entry], reference: str) -> Entry | None:
    """The entry tagged ``reference``, or ``None``."""
    return next((e for e in entries if ref_name(e) == reference), None)


def find_digest(entries: Iterable[Entry], digest: str) -> Entry | None:
    """The first entry listing ``digest``, or ``None``."""
    return next((e for e in entries if e.get("digest") == digest), None)


def _dedupe(entries: list[Entry]) -> list[Entry]:
    # An untagged entry is kept only while nothing else lists its digest.
    tagged = {e["digest"] for e in entries if ref_name(e) is not None}
    out: list[Entry] = []
    seen: set[str] = set()
    for entry in entries:
        if ref_name(entry) is None:
            if entry["digest"] in tagged or entry["digest"] in seen:
                continue
            seen.add(entry["digest"])
        out.append(entry)
    return out


def with_untagged(entries: list[Entry], descriptor: Descriptor) -> list[Entry]:
    """``entries`` listing ``descriptor`` (untagged when nothing lists it yet)."""
    if find_digest(entries, descriptor["digest"]) is not None:
        return entries
    return [*entries, dict(entry_descriptor(dict(descriptor)))]


def with_tag(entries: list[Entry], descriptor: Descriptor, reference: str) -> list[Entry]:
    """``entries`` with ``reference`` naming ``descriptor``.

    The entry that held the tag keeps its place and loses its name (it stays listed, untagged,
    unless another entry lists its digest); an untagged entry of ``descriptor`` takes the tag
    in place; otherwise the tagged entry is appended.
    """
    new = _tagged(descriptor, reference)
    out: list[Entry] = []
    placed = False
    for entry in entries:
        if ref_name(entry) != reference:
            out.append(entry)
        elif entry["digest"] == descriptor["digest"] and not placed:
            out.append(new)
            placed = True
        else:
            out.append(dict(entry_descriptor(entry)))
    if not placed:
        for position, entry in enumerate(out):
            if ref_name(entry) is None and entry["digest"] == descriptor["digest"]:
                out[position] = new
                placed = True
                break
    if not placed:
        out.append(new)
    return _dedupe(out)


def without_digest(entries: list[Entry], digest: str) -> list[Entry]:
    """``entries`` without any entry of ``digest`` (tagged or not)."""
    return [e for e in entries if e.get("digest") != digest]
