"""OCI documents as plain dicts: descriptors, manifests, indexes, configs, annotations, subjects.

Names follow oras-py (``NewManifest``, ``NewLayer``, ``Layer``, ``ManifestConfig``,
``Annotations``, ``Subject``) with Pythonic aliases beside them. Nothing here talks to a
registry; files are only read to hash them, in constant memory.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime as dt
import functools
import json
import os
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from . import defaults
from ._jsondoc import load_json
from .digest import digest_bytes, digest_file_sync, validate_digest
from .exceptions import ManifestValidationError
from .utils.fileio import PathLike

__all__ = [
    "Annotations",
    "Layer",
    "ManifestConfig",
    "NewIndex",
    "NewLayer",
    "NewManifest",
    "Subject",
    "empty_config_path",
    "empty_descriptor",
    "manifest_bytes",
    "manifest_config",
    "new_descriptor",
    "new_index",
    "new_layer",
    "new_manifest",
    "pack_manifest",
]

PACK_VERSIONS = ("1.0", "1.1")
"""Manifest forms [`pack_manifest`][aioras.oci.pack_manifest] builds: image-spec 1.0 and 1.1 (as
oras-go does)."""


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """Serialize a manifest or index to the exact bytes aioras uploads.

    The encoding of oras-py's HTTP library (``requests``' ``json=``): Python's default
    separators, non-ASCII escaped, key order as given, no NaN. So the same manifest dict
    pushed by either tool has the same digest. The digest of a manifest is the digest of
    these bytes, so anything that must name a pushed manifest by digest has to use them.
    """
    return json.dumps(manifest, allow_nan=False).encode()


def new_descriptor(
    media_type: str,
    digest: str,
    size: int,
    *,
    annotations: Mapping[str, str] | None = None,
    artifact_type: str | None = None,
    urls: list[str] | None = None,
    data: bytes | None = None,
) -> dict[str, Any]:
    """Build a descriptor dict; optional fields appear only when given.

    ``data`` embeds the content (base64-encoded, as the image-spec requires). Raises
    [`InvalidDigest`][aioras.exceptions.InvalidDigest] for a malformed digest and ``ValueError`` for
    a negative size.
    """
    validate_digest(digest)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"descriptor size must be a non-negative integer, not {size!r}")
    desc: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": size}
    if artifact_type:
        desc["artifactType"] = artifact_type
    if urls:
        desc["urls"] = list(urls)
    if data is not None:
        desc["data"] = base64.b64encode(data).decode("ascii")
    if annotations:
        desc["annotations"] = dict(annotations)
    return desc


def empty_descriptor() -> dict[str, Any]:
    """The OCI 1.1 empty descriptor: ``application/vnd.oci.empty.v1+json``, content ``{}``."""
    return new_descriptor(
        defaults.empty_media_type, defaults.blank_config_hash, len(defaults.empty_config_bytes)
    )


def pack_manifest(
    layers: list[dict[str, Any]],
    *,
    config: Mapping[str, Any] | None = None,
    artifact_type: str | None = None,
    subject: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
    version: str = "1.1",
) -> dict[str, Any]:
    """Build an artifact manifest the way oras-go packs one, in image-spec form ``version``.

    ``"1.1"``: without ``config`` the empty config (``application/vnd.oci.empty.v1+json``,
    ``{}``) is used and ``artifact_type`` is then required; ``artifactType`` is set; with
    no layers the empty descriptor is the single layer; ``subject`` is allowed.
    ``"1.0"``: for registries that predate 1.1, the artifact type becomes the config's
    media type (``{}`` content when no ``config``), no ``artifactType`` field, no subject.
    Both add ``org.opencontainers.image.created`` (now, UTC) unless ``annotations`` pin it.
    The caller uploads the config and layer blobs (the empty ones are ``{}``).

    Raises [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] for an unknown
    ``version``, a 1.1 empty config without ``artifact_type``, or a 1.0 manifest with a ``subject``.
    """
    if version not in PACK_VERSIONS:
        raise ManifestValidationError(f"manifest version must be one of {PACK_VERSIONS}")
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": defaults.default_manifest_media_type,
    }
    if version == "1.0":
        if subject is not None:
            raise ManifestValidationError("a version 1.0 manifest cannot carry a subject")
        if config is None:
            media_type = artifact_type or defaults.unknown_config_media_type
            config = new_descriptor(media_type, defaults.blank_config_hash, 2)
        manifest["config"] = dict(config)
        manifest["layers"] = list(layers)
    else:
        if config is None and not artifact_type:
            raise ManifestValidationError(
                "a version 1.1 artifact with the empty config needs an artifact_type"
            )
        if artifact_type:
            manifest["artifactType"] = artifact_type
        manifest["config"] = dict(config) if config is not None else empty_descriptor()
        manifest["layers"] = list(layers) or [empty_descriptor()]
        if subject is not None:
            manifest["subject"] = dict(subject)
    pinned = dict(annotations or {})
    if defaults.annotation_created not in pinned:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        pinned = {defaults.annotation_created: now.strftime("%Y-%m-%dT%H:%M:%SZ"), **pinned}
    manifest["annotations"] = pinned
    return manifest


def NewManifest() -> dict[str, Any]:
    """Return a fresh, empty OCI image manifest to fill with ``config`` and ``layers``."""
    return {
        "schemaVersion": 2,
        "mediaType": defaults.default_manifest_media_type,
        "config": {},
        "layers": [],
        "annotations": {},
    }


def NewIndex() -> dict[str, Any]:
    """Return a fresh, empty OCI image index to fill with ``manifests``."""
    return {
        "schemaVersion": 2,
        "mediaType": defaults.default_index_media_type,
        "manifests": [],
    }


class Layer:
    """A file about to become a layer: its path, media type, digest and size.

    The file is hashed once, when the Layer is created, in constant memory. ``is_dir`` says the
    blob is an archive made from a directory, which changes the default media type (tar+gzip
    instead of tar). Raises ``OSError`` when the file cannot be read.
    """

    def __init__(
        self,
        blob_path: PathLike,
        media_type: str | None = None,
        is_dir: bool = False,
        *,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        self.blob_path = os.fspath(blob_path)
        self.media_type: str = ""
        self.set_media_type(media_type, is_dir)
        self.annotations: dict[str, str] = dict(annotations or {})
        self.digest, self.size = digest_file_sync(self.blob_path)

    def set_media_type(self, media_type: str | None = None, is_dir: bool = False) -> None:
        """Use ``media_type``, else the default for a directory archive or a plain file."""
        if media_type:
            self.media_type = media_type
        elif is_dir:
            self.media_type = defaults.default_blob_dir_media_type
        else:
            self.media_type = defaults.default_blob_media_type

    def to_dict(self) -> dict[str, Any]:
        """Return the layer's descriptor (``annotations`` only when there are some)."""
        return new_descriptor(self.media_type, self.digest, self.size, annotations=self.annotations)

    def __repr__(self) -> str:
        return f"Layer({self.blob_path!r}, media_type={self.media_type!r}, digest={self.digest!r})"


def NewLayer(
    blob_path: PathLike, media_type: str | None = None, is_dir: bool = False
) -> dict[str, Any]:
    """Hash ``blob_path`` and return its layer descriptor (see [`Layer`][aioras.oci.Layer])."""
    return Layer(blob_path, media_type, is_dir).to_dict()


@functools.cache
def empty_config_path() -> str:
    """Return the path of a file holding exactly ``{}``, shipped with the package.

    The bytes match `aioras.defaults.blank_config_hash`, so the file can be uploaded as
    the blob of an empty config. The path stays valid for the life of the process.
    """
    resource = resources.files("aioras") / "data" / "empty-config.json"
    if isinstance(resource, pathlib.Path):
        return str(resource)
    # A zipped install has no file to point at: extract one copy, removed at exit.
    stack = contextlib.ExitStack()
    atexit.register(stack.close)
    return str(stack.enter_context(resources.as_file(resource)))


def ManifestConfig(
    path: PathLike | None = None, media_type: str | None = None
) -> tuple[dict[str, Any], str]:
    """Return ``(descriptor, file path)`` for a manifest config.

    With ``path``, the descriptor describes that file (hashed in constant memory). Without, it
    describes the empty config ``{}`` (size 2) and the path is a packaged file holding exactly
    those bytes, so uploading the path delivers what the descriptor promises. The media type
    defaults to ``application/vnd.unknown.config.v1+json``. Raises ``OSError`` when ``path``
    cannot be read.
    """
    media_type = media_type or defaults.unknown_config_media_type
    if path is None:
        digest, size = defaults.blank_config_hash, len(defaults.empty_config_bytes)
        config_file = empty_config_path()
    else:
        config_file = os.fspath(path)
        digest, size = digest_file_sync(config_file)
    return new_descriptor(media_type, digest, size), config_file


def _check_annotation_sections(doc: Any, source: str) -> dict[str, dict[str, str]]:
    if not isinstance(doc, Mapping):
        raise ManifestValidationError(
            f"{source}: annotations must be a JSON object of sections, not {type(doc).__name__}"
        )
    sections: dict[str, dict[str, str]] = {}
    for section, values in doc.items():
        if not isinstance(section, str):
            raise ManifestValidationError(f"{source}: section name {section!r} is not a string")
        if not isinstance(values, Mapping):
            raise ManifestValidationError(
                f"{source}: section {section!r} must map strings to strings",
                path=f"/{section}",
            )
        for key, value in values.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ManifestValidationError(
                    f"{source}: annotation {section!r} / {key!r} must be a string mapped to a "
                    f"string, got {type(value).__name__}",
                    path=f"/{section}/{key}",
                )
        sections[section] = dict(values)
    return sections


class Annotations:
    """Annotations grouped by section: ``$manifest``, ``$config``, or a file's path.

    This is the oras CLI's annotation file: a JSON object mapping each section to an object of
    string keys and string values. ``filename`` may name such a file or, for convenience, be
    the mapping itself. Raises ``FileNotFoundError`` for a missing file and
    [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] for malformed JSON or a
    wrong shape.
    """

    def __init__(self, filename: PathLike | Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.lookup: dict[str, dict[str, str]] = {}
        if isinstance(filename, Mapping):
            self._merge(_check_annotation_sections(filename, "annotations"))
        elif filename:
            self.load(filename)

    def _merge(self, sections: Mapping[str, Mapping[str, str]]) -> None:
        for section, values in sections.items():
            self.lookup.setdefault(section, {}).update(values)

    def add(self, section: str, key: str, value: str) -> None:
        """Set annotation ``key`` to ``value`` in ``section``."""
        self.lookup.setdefault(section, {})[key] = value

    def load(self, filename: PathLike) -> None:
        """Read an annotation file and merge it in (its values win over existing ones).

        Raises ``FileNotFoundError`` when it does not exist and
        [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] when it is not valid
        JSON of the expected shape.
        """
        filename = os.fspath(filename)
        if not os.path.exists(filename):
            raise FileNotFoundError(f"annotation file {filename} does not exist")
        with open(filename, encoding="utf-8") as fd:
            try:
                doc = load_json(fd.read())
            except ValueError as exc:
                raise ManifestValidationError(
                    f"{filename}: annotation file is not valid JSON: {exc}"
                ) from exc
        self._merge(_check_annotation_sections(doc, filename))

    def get_annotations(self, section: str) -> dict[str, str]:
        """Return a copy of the annotations of ``section``, or ``{}``.

        A file section matches by the name as given or by its absolute path, so an annotation
        file keyed by relative paths still applies when the caller holds absolute ones.
        """
        for name in (section, os.path.abspath(section)):
            if name in self.lookup:
                return dict(self.lookup[name])
        if not section.startswith("$"):
            target = os.path.abspath(section)
            for name, values in self.lookup.items():
                if not name.startswith("$") and os.path.abspath(name) == target:
                    return dict(values)
        return {}


@dataclass
class Subject:
    """The ``subject`` of a manifest: the descriptor of the manifest it refers to."""

    mediaType: str
    digest: str
    size: int

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> Subject:
        """Describe ``manifest`` as serialized by [`manifest_bytes`][aioras.oci.manifest_bytes].

        A subject must name the exact bytes the registry holds. This is right for manifests
        aioras uploaded (its ``upload_manifest`` serializes with
        [`manifest_bytes`][aioras.oci.manifest_bytes]); for a manifest fetched from elsewhere use
        `from_descriptor` with the digest and size the registry reported, since re-serializing may
        not reproduce its bytes.
        """
        raw = manifest_bytes(manifest)
        media_type = manifest.get("mediaType") or defaults.default_manifest_media_type
        return cls(mediaType=str(media_type), digest=digest_bytes(raw), size=len(raw))

    @classmethod
    def from_descriptor(cls, descriptor: Mapping[str, Any]) -> Subject:
        """Build a Subject from a descriptor dict.

        Raises [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] when a field
        is missing or of the wrong type and [`InvalidDigest`][aioras.exceptions.InvalidDigest] when
        the digest is malformed.
        """
        media_type = descriptor.get("mediaType")
        digest = descriptor.get("digest")
        size = descriptor.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise ManifestValidationError("subject descriptor lacks a mediaType", path="/mediaType")
        if not isinstance(digest, str):
            raise ManifestValidationError("subject descriptor lacks a digest", path="/digest")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ManifestValidationError(
                "subject descriptor size must be a non-negative integer", path="/size"
            )
        return cls(mediaType=media_type, digest=validate_digest(digest), size=size)

    def to_dict(self) -> dict[str, Any]:
        """Return the descriptor dict to put under a manifest's ``subject``."""
        return {"mediaType": self.mediaType, "digest": self.digest, "size": self.size}


new_manifest = NewManifest
new_index = NewIndex
new_layer = NewLayer
manifest_config = ManifestConfig
