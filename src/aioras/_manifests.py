"""Checks on fetched manifests: digests, media types, schema (pure functions, no I/O)."""

from __future__ import annotations

from typing import Any

import httpx

from . import defaults, schemas
from . import exceptions as exc
from ._jsondoc import load_json
from .container import Container
from .content.graph import parse_document
from .digest import digest_bytes, parse_digest, verify_bytes

__all__ = ["check_manifest", "check_manifest_digests", "descriptor_of", "media_type_of"]


def media_type_of(value: str | None) -> str:
    """A ``Content-Type`` without parameters, lower-cased."""
    return (value or "").split(";", 1)[0].strip().lower()


def descriptor_of(data: bytes, response: httpx.Response | None) -> dict[str, Any]:
    """The descriptor (``mediaType``, ``digest``, ``size``) of fetched manifest bytes.

    The media type is the document's, else the response's ``Content-Type`` (``response``
    is None for bytes read from the cache).
    """
    try:
        doc_type = load_json(data).get("mediaType")
    except (ValueError, AttributeError):
        doc_type = None
    return {
        "mediaType": doc_type or _content_type(response),
        "digest": digest_bytes(data),
        "size": len(data),
    }


def check_manifest(
    container: Container, data: bytes, response: httpx.Response | None
) -> dict[str, Any]:
    """Verify a fetched manifest's bytes and return the parsed document.

    A reference by digest must match the bytes, and so must ``Docker-Content-Digest`` when
    the registry sends it; the ``Content-Type`` must not contradict the document's
    ``mediaType``; the document must pass its schema. ``response`` is None for bytes read
    from the cache, which have no headers to check. Raises
    [`DigestMismatch`][aioras.exceptions.DigestMismatch] or
    [`ManifestValidationError`][aioras.exceptions.ManifestValidationError].
    """
    what = f"manifest {container}"
    check_manifest_digests(container, data, response)
    manifest = parse_document(data, what)
    content_type = _content_type(response)
    declared = manifest.get("mediaType")
    known = defaults.manifest_media_types | defaults.index_media_types
    if declared and content_type in known and declared != content_type:
        raise exc.ManifestValidationError(
            f"{what}: Content-Type {content_type} contradicts mediaType {declared}"
        )
    schemas.validate(manifest, declared or (content_type if content_type in known else None))
    return manifest


def check_manifest_digests(
    container: Container, data: bytes, response: httpx.Response | None
) -> None:
    """Check manifest bytes against the digest asked for and ``Docker-Content-Digest``.

    Raises [`DigestMismatch`][aioras.exceptions.DigestMismatch] when either differs.
    """
    what = f"manifest {container}"
    if container.digest:
        verify_bytes(data, container.digest, what=what)
    advertised = response.headers.get("docker-content-digest") if response is not None else None
    if advertised:
        try:
            algorithm, _ = parse_digest(advertised)
        except exc.InvalidDigest:
            algorithm = "sha256"
        actual = digest_bytes(data, algorithm)
        if actual != advertised:
            raise exc.DigestMismatch(
                expected=advertised, actual=actual, what=f"Docker-Content-Digest of {what}"
            )


def _content_type(response: httpx.Response | None) -> str:
    return media_type_of(response.headers.get("content-type") if response is not None else None)
