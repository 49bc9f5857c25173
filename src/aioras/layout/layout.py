"""oras-py's OCI image layout API: ``Layout``, ``NewLayout``, ``NewLayoutFromRegistry``.

A `Layout` is a directory in the OCI image layout format (``oci-layout``,
``index.json``, ``blobs/<algorithm>/<hex>``). It can be pushed to a registry (every blob of a
tagged image or index, in dependency order, manifests byte for byte so that digests hold)
and filled from one (an image or an index with all it references). Calls are synchronous
and take a [`Registry`][aioras.sync.Registry] as ``provider``, as in oras-py. Both ways are
[`aioras.copy`][aioras.operations.copy.copy] between the registry repository and
[`aioras.OCILayout`][aioras.content.layout.OCILayout] (verified, atomic blob writes and locked
``index.json`` edits), on the provider's event loop: one copy engine for aioras, this API included.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx

from .. import defaults
from .._jsondoc import load_json
from ..container import Container
from ..content.layout import OCILayout
from ..descriptor import Descriptor
from ..digest import parse_digest, verify_bytes
from ..exceptions import DigestMismatch, InvalidDigest, ManifestValidationError
from ..operations.copy import copy
from ..registry import AsyncRegistry
from ..sync import Registry
from .validation import validate_layout

__all__ = ["Layout", "NewLayout", "NewLayoutFromRegistry"]

logger = logging.getLogger(__name__)

_MANIFEST_TYPES = (defaults.default_manifest_media_type, defaults.default_index_media_type)


def NewLayout(path: str, validate: bool = True) -> Layout:
    """The `Layout` at ``path`` (validated unless ``validate`` is false)."""
    return Layout(path, validate=validate)


def NewLayoutFromRegistry(
    path: str, provider: Registry, target: str, tag: str = "latest"
) -> Layout:
    """Pull ``target`` into a new layout at ``path`` and return it.

    ``path`` must not exist or be an empty directory. ``tag`` is the name the image gets in
    the layout's ``index.json``. Raises `ValueError` when ``path`` is a file,
    `FileExistsError` when it is a non-empty directory, and what
    `Layout.pull_from_registry` raises.
    """
    directory = Path(path)
    if directory.exists():
        if not directory.is_dir():
            raise ValueError(f"OCI layout path is not a directory: {path}")
        if any(directory.iterdir()):
            raise FileExistsError(f"OCI layout directory is not empty: {path}")
    layout = Layout(path, validate=False)
    layout.pull_from_registry(provider=provider, target=target, tag=tag)
    return layout


def _unsupported(media_type: object) -> ManifestValidationError:
    return ManifestValidationError(
        f"unsupported manifest mediaType {media_type!r}: expected "
        f"{defaults.default_manifest_media_type} or {defaults.default_index_media_type}"
    )


class Layout:
    """An OCI image layout directory; ``validate`` checks it at construction."""

    def __init__(self, path: str, validate: bool = True) -> None:
        self._oci_layout_path = path
        if validate:
            self.validate()

    def __repr__(self) -> str:
        return f"Layout({self._oci_layout_path!r})"

    @property
    def path(self) -> Path:
        """The layout's directory."""
        return Path(self._oci_layout_path)

    def validate(self) -> str:
        """Check the directory is an OCI image layout; return its absolute path.

        Raises `FileNotFoundError` for a missing directory, ``blobs/``,
        ``oci-layout`` or ``index.json``, `ValueError` for a malformed one.
        """
        return str(validate_layout(self._oci_layout_path))

    @staticmethod
    def is_oci_layout(path: str) -> bool:
        """True when ``path`` is a valid OCI image layout."""
        try:
            validate_layout(path)
        except (OSError, ValueError):
            return False
        return True

    # -- blobs on disk ---------------------------------------------------------------
    def digest_to_blob_path(self, digest: str) -> Path:
        """``blobs/<algorithm>/<hex>`` of ``digest`` in this layout.

        Raises [`InvalidDigest`][aioras.exceptions.InvalidDigest] (a ValueError) for a malformed
        digest, so no name can point outside ``blobs/``.
        """
        algorithm, encoded = parse_digest(digest)
        return self.path / defaults.oci_blobs_dir / algorithm / encoded

    def blob_exists(self, digest: str) -> bool:
        """True when the layout holds a blob for ``digest`` (False for a malformed one)."""
        try:
            return self.digest_to_blob_path(digest).is_file()
        except InvalidDigest:
            return False

    def _read_document(self, digest: str) -> tuple[bytes, dict[str, Any] | None]:
        """The blob's bytes, verified, and its JSON object when it is one."""
        path = self.digest_to_blob_path(digest)
        if not path.is_file():
            raise FileNotFoundError(f"blob not found in OCI layout: {path}")
        data = path.read_bytes()
        verify_bytes(data, digest, what=f"blob {digest} of layout {self._oci_layout_path}")
        try:
            doc = load_json(data)
        except ValueError:  # not JSON, not text, or nested too deep
            return data, None
        return data, doc if isinstance(doc, dict) else None

    def _tagged(self, tag: str) -> str:
        index = load_json((self.path / defaults.oci_image_index_file).read_bytes())
        for entry in index.get("manifests") or []:
            if (entry.get("annotations") or {}).get(defaults.oci_ref_name_annotation) == tag:
                return str(entry["digest"])
        raise ValueError(f"Tag '{tag}' not found in index of {self._oci_layout_path}")

    def get_ordered_blobs(self, tag: str = "latest") -> list[str]:
        """The digests of everything image ``tag`` needs, each before what refers to it.

        For a manifest: layers, config, the manifest. For an index: each manifest in that
        order, then the index. No digest appears twice. Raises `ValueError` when no
        ``index.json`` entry carries ``tag``, `FileNotFoundError` for a missing blob.
        """
        ordered: list[str] = []
        self._collect(self._tagged(tag), ordered)
        return ordered

    def _collect(self, digest: str, ordered: list[str]) -> None:
        _, doc = self._read_document(digest)
        media_type = (doc or {}).get("mediaType")
        if doc is None or media_type not in _MANIFEST_TYPES:
            raise _unsupported(media_type)
        if media_type == defaults.default_manifest_media_type:
            children = [layer["digest"] for layer in doc.get("layers") or []]
            config = (doc.get("config") or {}).get("digest")
            children += [config] if config else []
            ordered.extend(d for d in dict.fromkeys(children) if d not in ordered)
        else:
            for entry in doc.get("manifests") or []:
                self._collect(entry["digest"], ordered)
        if digest not in ordered:
            ordered.append(digest)

    # -- push --------------------------------------------------------------------------
    def push_to_registry(
        self,
        provider: Registry,
        target: str,
        tag: str = "latest",
        do_chunked: bool = False,
        chunk_size: int = defaults.default_chunksize,
    ) -> httpx.Response:
        """Push image ``tag`` of this layout to ``target`` (which must name a tag).

        The graph goes up with [`aioras.copy`][aioras.operations.copy.copy] (blobs streamed, several
        at once, each checked against its digest as it is read; blobs the repository holds are
        skipped; manifests by digest, byte for byte as stored), then the top manifest or index is
        put under the target's tag. Returns the response of that last PUT. ``do_chunked``
        and ``chunk_size`` are accepted for oras-py's signature; the upload mode is
        aioras's own. Raises `ValueError` for a target without a tag or an unknown
        ``tag``, `FileNotFoundError` for a missing manifest,
        [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] for a manifest that
        is neither an OCI image manifest nor an OCI index,
        [`NotFoundError`][aioras.exceptions.NotFoundError] for a missing blob and
        [`DigestMismatch`][aioras.exceptions.DigestMismatch] for content whose bytes are not its
        name's (nothing is then tagged).
        """
        container = provider.get_container(target)
        if not container.tag_given or container.tag is None or container.digest is not None:
            raise ValueError(f"target must name a tag (registry/repository:tag): {target!r}")
        ordered = self.get_ordered_blobs(tag)  # the tag, and every manifest's media type
        top = provider._call(self._push, provider.aregistry, container, ordered[-1])
        data = self._read_document(top["digest"])[0]
        logger.debug("Uploading manifest %s as %s", top["digest"], container.tag)
        response = provider.do_request(
            f"{provider.prefix}://{container.manifest_url(container.tag)}",
            "PUT",
            data=data,
            headers={"Content-Type": top["mediaType"]},
        )
        provider._check_200_response(response)
        stored = response.headers.get("docker-content-digest")
        if stored and stored != top["digest"]:
            raise DigestMismatch(expected=top["digest"], actual=stored, what="manifest stored")
        logger.debug("pushed %d blobs of layout %s to %s", len(ordered), self, target)
        return response

    async def _push(self, registry: AsyncRegistry, container: Container, digest: str) -> Descriptor:
        """Copy the graph under ``digest`` into the repository, untagged; its root."""
        return await copy(OCILayout(self.path), digest, registry.repository(container))

    # -- pull --------------------------------------------------------------------------
    def pull_from_registry(self, provider: Registry, target: str, tag: str = "latest") -> None:
        """Fill this layout with ``target`` (a tag or digest reference) and all it refers to.

        The graph comes down with [`aioras.copy`][aioras.operations.copy.copy] into
        [`aioras.OCILayout`][aioras.content.layout.OCILayout]: every blob is streamed, verified by
        digest and renamed into place, several at once; blobs already in the layout are not fetched
        again; ``index.json`` then names the pulled manifest or index as ``tag``. Raises
        `ValueError` ([`InvalidReference`][aioras.exceptions.InvalidReference]) for a malformed
        target, [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] when the
        target is neither an OCI image manifest nor an OCI index (nothing is then stored), and the
        registry's typed errors.
        """
        container = provider.get_container(target)
        provider._call(self._pull, provider.aregistry, container, tag)
        logger.debug("pulled %s into layout %s as %s", target, self, tag)

    async def _pull(self, registry: AsyncRegistry, container: Container, tag: str) -> None:
        repository = registry.repository(container)
        root = await repository.resolve(container.digest or container.reference)
        if root["mediaType"] not in _MANIFEST_TYPES:
            raise _unsupported(root["mediaType"])
        await copy(repository, root["digest"], OCILayout(self.path), tag)
