"""Typed OCI documents: descriptors, manifests, indexes and platforms.

They are ``TypedDict`` s, so at run time they stay the plain dicts oras-py code indexes
(``manifest["layers"][0]["digest"]``), while ``mypy --strict`` user code sees their fields.
Field names are the image-spec's JSON names.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

__all__ = ["Descriptor", "Index", "Manifest", "Platform"]


class Platform(TypedDict):
    """The platform an image index entry runs on (image-spec ``image-index.md``)."""

    architecture: str
    os: str
    variant: NotRequired[str]
    # The image-spec names these with dots; TypedDict's functional form cannot mix, so they
    # are reached as plain keys: platform["os.version"].


class Descriptor(TypedDict):
    """A content descriptor: what a blob or manifest is, by media type, digest and size."""

    mediaType: str
    digest: str
    size: int
    artifactType: NotRequired[str]
    annotations: NotRequired[dict[str, str]]
    urls: NotRequired[list[str]]
    data: NotRequired[str]
    platform: NotRequired[Platform]


class Manifest(TypedDict):
    """An OCI image manifest (or a Docker v2 schema 2 manifest, which has the same shape)."""

    schemaVersion: int
    mediaType: NotRequired[str]
    artifactType: NotRequired[str]
    config: Descriptor
    layers: list[Descriptor]
    subject: NotRequired[Descriptor]
    annotations: NotRequired[dict[str, str]]


class Index(TypedDict):
    """An OCI image index (or a Docker manifest list): manifests with their platforms."""

    schemaVersion: int
    mediaType: NotRequired[str]
    artifactType: NotRequired[str]
    manifests: list[Descriptor]
    subject: NotRequired[Descriptor]
    annotations: NotRequired[dict[str, str]]


def as_descriptor(value: dict[str, Any]) -> Descriptor:
    """View a plain descriptor dict as a `Descriptor` (no copy, no check)."""
    return value  # type: ignore[return-value]
