"""Checks that a directory is an OCI image layout (image-spec ``image-layout.md``).

Each check raises `FileNotFoundError` for a missing part and `ValueError` for
one that is there but wrong, with a message naming the part, as oras-py's layout API does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import defaults
from .._jsondoc import load_json

__all__ = ["validate_layout"]


def _read_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; the errors name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path.name} file not found in OCI layout: {path}")
    try:
        doc = load_json(path.read_bytes())
    except ValueError as error:  # not JSON, not text, or nested too deep
        raise ValueError(f"{path.name} is not valid JSON: {error}") from error
    if not isinstance(doc, dict):
        raise ValueError(f"{path.name} must hold a JSON object, not {type(doc).__name__}")
    return doc


def _check_blobs(root: Path) -> None:
    blobs = root / defaults.oci_blobs_dir
    if not blobs.exists():
        raise FileNotFoundError(f"blobs directory not found in OCI layout: {blobs}")
    if not blobs.is_dir():
        raise ValueError(f"blobs must be a directory: {blobs}")


def _check_oci_layout(root: Path) -> None:
    doc = _read_object(root / defaults.oci_layout_file)
    if "imageLayoutVersion" not in doc:
        raise ValueError(f"{defaults.oci_layout_file} has no imageLayoutVersion")
    version = doc["imageLayoutVersion"]
    if not isinstance(version, str):
        raise ValueError(f"imageLayoutVersion must be a string, got {version!r}")
    if version != defaults.oci_layout_version_pin:
        raise ValueError(
            f"imageLayoutVersion {version!r} is not supported: only "
            f"{defaults.oci_layout_version_pin} is"
        )


def _check_index(root: Path) -> None:
    doc = _read_object(root / defaults.oci_image_index_file)
    if "schemaVersion" not in doc:
        raise ValueError(f"{defaults.oci_image_index_file} has no schemaVersion")
    if doc["schemaVersion"] != defaults.oci_index_schema_version:
        raise ValueError(
            f"schemaVersion of {defaults.oci_image_index_file} must be "
            f"{defaults.oci_index_schema_version}, got {doc['schemaVersion']!r}"
        )
    media_type = doc.get("mediaType")
    if media_type is not None and media_type != defaults.default_index_media_type:
        raise ValueError(
            f"mediaType of {defaults.oci_image_index_file} must be "
            f"{defaults.default_index_media_type}, got {media_type!r}"
        )


def validate_layout(path: str | Path) -> Path:
    """Check ``path`` is an OCI image layout; return it absolute and resolved.

    Raises `FileNotFoundError` when the path, ``blobs/``, ``oci-layout`` or
    ``index.json`` is missing, `ValueError` when the path is not a directory or a
    part is malformed (not JSON, not an object, a version other than 1.0.0, a
    ``schemaVersion`` other than 2, an index ``mediaType`` other than the OCI index's).
    """
    root = Path(path).expanduser().resolve()
    if not root.exists():
        raise FileNotFoundError(f"OCI layout path does not exist: {path}")
    if not root.is_dir():
        raise ValueError(f"OCI layout path is not a directory: {path}")
    _check_blobs(root)
    _check_oci_layout(root)
    _check_index(root)
    return root
