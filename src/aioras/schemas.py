"""JSON schemas for OCI documents, written from the image-spec v1.1 text, and their validators.

Schemas (plain dicts, JSON Schema 2020-12): ``descriptor`` (``layer`` is the same shape, under
oras-py's name), ``manifest``, ``index``, ``config`` (any JSON object: artifact configs are
free-form) and ``empty`` (exactly ``{}``). Docker's v2 manifest and manifest list share the
OCI shapes and are validated with them.

Two deliberate tightenings over a stock validator: ``integer`` means a JSON integer (``1.0``
and ``true`` are not sizes), and a ``pattern`` ending in ``$`` anchors at the very end of the
string as in ECMA-262 (Python's ``$`` would also accept a trailing newline).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from . import defaults
from .exceptions import ManifestValidationError

if TYPE_CHECKING:
    import jsonschema.exceptions

__all__ = [
    "config",
    "descriptor",
    "empty",
    "index",
    "layer",
    "manifest",
    "platform",
    "schema_for",
    "validate",
    "validate_config",
    "validate_descriptor",
    "validate_index",
    "validate_manifest",
]

_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
descriptor_media_type = "application/vnd.oci.descriptor.v1+json"

# The image-spec asks for RFC 6838 media types, but registries store and peers (oras-py, its
# user guide) push names like ``org.example.type``; refusing them would make such artifacts
# unreadable. So: any non-empty token without whitespace or control characters.
_media_type: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[^\s\x00-\x1f\x7f]{1,255}$",
}
# The image-spec digest grammar: algorithm components joined by separators, ":", encoded part.
_digest: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$",
}
_size: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_annotations: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
# RFC 4648 base64 with padding, the encoding the spec prescribes for embedded ``data``.
_base64: dict[str, Any] = {
    "type": "string",
    "pattern": r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
}
_string_list: dict[str, Any] = {"type": "array", "items": {"type": "string"}}

_platform_body: dict[str, Any] = {
    "type": "object",
    "required": ["architecture", "os"],
    "properties": {
        "architecture": {"type": "string"},
        "os": {"type": "string"},
        "os.version": {"type": "string"},
        "os.features": _string_list,
        "variant": {"type": "string"},
        "features": _string_list,
    },
}

_descriptor_body: dict[str, Any] = {
    "type": "object",
    "required": ["mediaType", "digest", "size"],
    "properties": {
        "mediaType": _media_type,
        "digest": _digest,
        "size": _size,
        "urls": _string_list,
        "annotations": _annotations,
        "data": _base64,
        "artifactType": _media_type,
        # Only meaningful in index entries; checked wherever it appears.
        "platform": _platform_body,
    },
}

platform: dict[str, Any] = {"$schema": _SCHEMA_DIALECT, "title": "OCI platform", **_platform_body}
descriptor: dict[str, Any] = {
    "$schema": _SCHEMA_DIALECT,
    "title": "OCI content descriptor",
    **_descriptor_body,
}
layer = descriptor

_schema_version: dict[str, Any] = {"type": "integer", "const": 2}

_descriptors: dict[str, Any] = {"type": "array", "items": _descriptor_body}


def _document(title: str, **fields: dict[str, Any]) -> dict[str, Any]:
    """The schema of a manifest or an index: the fields both have around its own ``fields``.

    Its own fields are required, as ``schemaVersion`` is.
    """
    return {
        "$schema": _SCHEMA_DIALECT,
        "title": title,
        "type": "object",
        "required": ["schemaVersion", *fields],
        "properties": {
            "schemaVersion": _schema_version,
            "mediaType": _media_type,
            "artifactType": _media_type,
            **fields,
            "subject": _descriptor_body,
            "annotations": _annotations,
        },
    }


manifest = _document("OCI image manifest", config=_descriptor_body, layers=_descriptors)
index = _document("OCI image index", manifests=_descriptors)

config: dict[str, Any] = {
    "$schema": _SCHEMA_DIALECT,
    "title": "Artifact or image config (any JSON object)",
    "type": "object",
}

empty: dict[str, Any] = {
    "$schema": _SCHEMA_DIALECT,
    "title": "OCI empty descriptor content ({})",
    "type": "object",
    "maxProperties": 0,
}


@functools.lru_cache(maxsize=64)
def _compile_pattern(pattern: str) -> re.Pattern[str]:
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern_keyword(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.exceptions.ValidationError]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _compile_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _is_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


_SCHEMAS: dict[str, dict[str, Any]] = {
    "descriptor": descriptor,
    "manifest": manifest,
    "index": index,
    "config": config,
    "empty": empty,
}


@functools.cache
def _validator(kind: str) -> Any:
    """The compiled validator of ``kind``, made on first use.

    jsonschema is imported here, not with the module: it costs about as much as the rest
    of aioras, and a program that never checks a document (or opens an OCI layout
    without reading it) should not pay for it. Validators are immutable and shared
    between threads.
    """
    import jsonschema
    import jsonschema.validators

    # The stubs leave extend() untyped; the result is a Validator class like Draft202012Validator.
    validator_class = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        jsonschema.Draft202012Validator,
        validators={"pattern": _pattern_keyword},
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
    )
    return validator_class(_SCHEMAS[kind])


_READY = False  # every validator compiled (jsonschema imported): see ready()
_LOADING: RunVar[anyio.Lock] = RunVar("aioras_schemas_loading")


async def ready() -> None:
    """Make the validators ready without holding up the event loop (a no-op once done).

    The first check of a process imports jsonschema and compiles the validators: 40 ms on
    the development machine with its files cached, up to 180 ms without. Done where the
    check runs, that stops every other task of the event loop for as long (50 pulls at
    once wait on it); here it runs in one worker thread per event loop, which others
    calling meanwhile wait for without holding the loop. Async callers await this before
    their first synchronous check.
    """
    if _READY:
        return
    # One worker thread per event loop: 50 fetches at once would otherwise each take a
    # thread of anyio's pool (up to 40, made at once) just to wait on the import lock.
    try:
        lock = _LOADING.get()
    except LookupError:
        lock = anyio.Lock()
        _LOADING.set(lock)
    async with lock:
        if not _READY:
            await anyio.to_thread.run_sync(_prepare)


def _prepare() -> None:
    global _READY
    for kind in _SCHEMAS:
        _validator(kind)
    _READY = True


_MAX_MESSAGE = 300


def _check(kind: str, doc: Any, at: str = "") -> None:
    from jsonschema.exceptions import best_match

    error = best_match(_validator(kind).iter_errors(doc))
    if error is None:
        return
    pointer = at + "".join(f"/{part}" for part in error.absolute_path)
    message = error.message
    # A message can quote the whole offending value, which may be most of the document.
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    raise ManifestValidationError(f"invalid {kind} at {pointer or '/'}: {message}", path=pointer)


def validate_descriptor(doc: Any, *, at: str = "") -> None:
    """Check a descriptor; raise
    [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] naming the failing path.

    ``at`` is the descriptor's JSON pointer in its document (``/layers/0``), put before
    the failing field's in the message and the error's ``path``.
    """
    _check("descriptor", doc, at)


def validate_manifest(doc: Any) -> None:
    """Check an image manifest; raise
    [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] naming the failing
    path."""
    _check("manifest", doc)


def validate_index(doc: Any) -> None:
    """Check an image index; raise
    [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] naming the failing
    path."""
    _check("index", doc)


def validate_config(doc: Any) -> None:
    """Check that a config is a JSON object; raise
    [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] if not."""
    _check("config", doc)


_KIND_BY_MEDIA_TYPE: dict[str, str] = {
    **dict.fromkeys(defaults.manifest_media_types, "manifest"),
    **dict.fromkeys(defaults.index_media_types, "index"),
    defaults.empty_media_type: "empty",
    defaults.default_config_media_type: "config",
    defaults.unknown_config_media_type: "config",
    descriptor_media_type: "descriptor",
}


def schema_for(media_type: str) -> dict[str, Any] | None:
    """Return the schema aioras checks documents of ``media_type`` against, or ``None``."""
    kind = _KIND_BY_MEDIA_TYPE.get(media_type)
    return None if kind is None else _SCHEMAS[kind]


def validate(doc: Any, media_type: str | None = None) -> None:
    """Check ``doc`` against the schema for ``media_type``.

    Without ``media_type``, the document's own ``mediaType`` decides, else its shape (an object
    with ``manifests`` is an index, anything else a manifest). A manifest or index whose
    ``mediaType`` contradicts ``media_type`` is refused. Raises
    [`ManifestValidationError`][aioras.exceptions.ManifestValidationError], also when no schema is
    known for the media type.
    """
    own = doc.get("mediaType") if isinstance(doc, Mapping) else None
    if media_type is None:
        if isinstance(own, str):
            media_type = own
        else:
            _check("index" if isinstance(doc, Mapping) and "manifests" in doc else "manifest", doc)
            return
    kind = _KIND_BY_MEDIA_TYPE.get(media_type)
    if kind is None:
        raise ManifestValidationError(f"no schema for media type {media_type!r}")
    if kind in ("manifest", "index") and own is not None and own != media_type:
        raise ManifestValidationError(
            f"document mediaType {own!r} contradicts expected {media_type!r}", path="/mediaType"
        )
    _check(kind, doc)
