"""Push: files and directories to an OCI artifact, layers uploaded concurrently.

Built only from the endpoint methods of :class:`~aioras.operations.endpoints.Endpoints`, so a
subclass's ``upload_blob`` or ``upload_manifest`` is the one used.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from .. import defaults
from ..concurrency import map_bounded
from ..descriptor import as_descriptor
from ..digest import digest_bytes, digest_file
from ..logger import logger as oras_logger
from ..oci import Annotations, ManifestConfig, NewManifest, Subject, manifest_bytes
from ..progress import EventKind, ProgressCallback, ProgressReporter
from ..utils import get_tmpfile, make_targz, sanitize_path, split_path_and_content

if TYPE_CHECKING:
    from ..container import Container
    from .endpoints import Endpoints

__all__ = ["PushItem", "push"]

logger = logging.getLogger(__name__)

SubjectLike = Subject | Mapping[str, Any] | str


@dataclass
class PushItem:
    """One file or directory to push, as named by the caller, and the blob made of it."""

    name: str
    """The path as given (without a ``:mediaType`` suffix)."""
    media_type: str | None
    blob: str = ""
    """The file uploaded: ``name`` itself, or a temporary tar.gz of a directory."""
    is_dir: bool = False
    descriptor: dict[str, Any] | None = None


def _parse_items(files: Sequence[str | os.PathLike[str]], validate_paths: bool) -> list[PushItem]:
    items = []
    cwd = os.getcwd()
    for entry in files:
        parsed = split_path_and_content(os.fspath(entry))
        path = parsed.path
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} does not exist")
        if validate_paths:
            # Raises UnsafePathError (a ValueError) for paths outside the working directory.
            sanitize_path(cwd, os.path.abspath(path))
        items.append(PushItem(name=path, media_type=parsed.content, is_dir=os.path.isdir(path)))
    return items


async def _prepare(item: PushItem, annotations: Annotations, *, hash_now: bool = True) -> None:
    """Pack a directory if needed, hash the blob, and build the layer descriptor.

    Without ``hash_now`` digest and size are left empty, for the upload to fill in.
    """
    if item.is_dir:
        # The archive's name is recorded before packing starts, so that push's cleanup
        # removes it even when the push is cancelled while the worker thread still packs.
        item.blob = get_tmpfile(prefix="aioras-", suffix=".tar.gz")
        await anyio.to_thread.run_sync(make_targz, item.name, item.blob)
    else:
        item.blob = item.name
    digest, size = await digest_file(item.blob) if hash_now else ("", 0)
    media_type = item.media_type or (
        defaults.default_blob_dir_media_type if item.is_dir else defaults.default_blob_media_type
    )
    layer_annotations = {defaults.annotation_title: os.path.basename(item.name.rstrip(os.sep))}
    if item.is_dir:
        layer_annotations[defaults.annotation_unpack] = "true"
    layer_annotations.update(annotations.get_annotations(item.name))
    item.descriptor = {
        "mediaType": media_type,
        "digest": digest,
        "size": size,
        "annotations": layer_annotations,
    }


async def _subject_descriptor(
    registry: Endpoints, container: Container, subject: SubjectLike
) -> dict[str, Any]:
    if isinstance(subject, Subject):
        return subject.to_dict()
    if isinstance(subject, Mapping):
        return Subject.from_descriptor(subject).to_dict()
    # A reference: a bare tag or digest means the same repository.
    ref = subject if ("/" in subject) else container.with_reference(subject.lstrip(":@"))
    descriptor = await registry.resolve(ref)
    return {k: descriptor[k] for k in ("mediaType", "digest", "size")}


async def push(
    registry: Endpoints,
    target: str | Container,
    *,
    config_path: str | None = None,
    disable_path_validation: bool = False,
    files: Sequence[str | os.PathLike[str]] | None = None,
    manifest_config: str | None = None,
    annotation_file: str | None = None,
    manifest_annotations: Mapping[str, str] | None = None,
    subject: SubjectLike | None = None,
    do_chunked: bool = False,
    chunk_size: int | None = None,
    quiet: bool = False,
    artifact_type: str | None = None,
    concurrency: int | None = None,
    progress: ProgressCallback | None = None,
    single_pass: bool = False,
) -> httpx.Response:
    """Push ``files`` to ``target`` as one artifact; return the manifest PUT's response.

    Each entry of ``files`` is a path with an optional ``:mediaType`` suffix; directories
    are packed as reproducible tar.gz layers marked for unpacking. Unless
    ``disable_path_validation``, paths must lie inside the working directory. Every layer
    gets its file name as ``org.opencontainers.image.title``, plus the annotations the
    ``annotation_file`` gives for its path (``$manifest`` and ``$config`` sections go to
    the manifest and the config; ``manifest_annotations`` override ``$manifest``).
    ``manifest_config`` is ``path[:mediaType]`` of a config file; without it the empty
    config ``{}`` is pushed. ``subject`` (a :class:`~aioras.oci.Subject`, a descriptor, or
    a reference) makes the artifact refer to another manifest. Layers upload
    ``concurrency`` at a time (default: the registry's ``push_concurrency``), blobs the
    registry already has are skipped, and layer order follows ``files``.

    ``single_pass`` is for layers the registry does not hold yet: each file is read once,
    hashed while it uploads (a chunked upload whose closing ``PUT`` names the digest, see
    :meth:`~aioras.registry.AsyncRegistry.upload_new_blob`), instead of hashed first and
    read again to upload. Nothing is checked for existence and identical files each
    travel; progress reports each such layer when it is done (its digest is known only
    then).

    ``config_path`` names a Docker ``config.json`` to read credentials from. ``progress``
    receives a :class:`~aioras.progress.TransferEvent` as each blob starts and is done (or
    skipped, being there already), and when the manifest is done.

    Raises FileNotFoundError for a missing path, :class:`~aioras.exceptions.UnsafePathError`
    for a path outside the working directory, and the registry's typed errors.
    """
    container = registry.get_container(target)
    if config_path:
        registry.load_configs(container, configs=[config_path])
    annotations = Annotations(annotation_file)
    items = _parse_items(files or [], validate_paths=not disable_path_validation)
    limit = concurrency or registry.push_concurrency
    reporter = ProgressReporter(progress)
    try:
        await map_bounded(
            lambda item: _prepare(item, annotations, hash_now=not single_pass), items, limit=limit
        )
        if single_pass:

            async def upload_once(item: PushItem) -> None:
                assert item.descriptor is not None
                item.descriptor.update(
                    await registry.upload_new_blob(item.blob, container, chunk_size=chunk_size)
                )
                await reporter.emit("done", as_descriptor(item.descriptor))

            await map_bounded(upload_once, items, limit=limit)

        if manifest_config:
            parsed = split_path_and_content(manifest_config)
            conf, config_file = ManifestConfig(parsed.path, parsed.content)
        else:
            conf, config_file = ManifestConfig()
        config_annotations = annotations.get_annotations("$config")
        if config_annotations:
            conf["annotations"] = config_annotations

        # One upload per distinct digest: identical files need to travel only once.
        uploads: dict[str, tuple[str | None, dict[str, Any]]] = {}
        for item in items if not single_pass else ():
            assert item.descriptor is not None
            uploads.setdefault(item.descriptor["digest"], (item.blob, item.descriptor))
        uploads.setdefault(conf["digest"], (config_file, conf))

        async def upload(job: tuple[str | None, dict[str, Any]]) -> None:
            blob, descriptor = job
            await reporter.emit("start", as_descriptor(descriptor))
            response = await registry.upload_blob(
                blob, container, descriptor, do_chunked=do_chunked, chunk_size=chunk_size
            )
            registry._check_200_response(response)
            # upload_blob answers with the HEAD (200) of a blob it did not need to send.
            kind: EventKind = "skipped" if response.status_code == 200 else "done"
            await reporter.emit(kind, as_descriptor(descriptor))

        await map_bounded(upload, list(uploads.values()), limit=limit)

        manifest = NewManifest()
        manifest["layers"] = [item.descriptor for item in items]
        manifest["config"] = conf
        manifest_annots = dict(annotations.get_annotations("$manifest"))
        manifest_annots.update(copy.deepcopy(dict(manifest_annotations or {})))
        if manifest_annots:
            manifest["annotations"] = manifest_annots
        else:
            manifest.pop("annotations", None)
        if artifact_type:
            manifest["artifactType"] = artifact_type
        if subject is not None:
            manifest["subject"] = await _subject_descriptor(registry, container, subject)
        response = await registry.upload_manifest(manifest, container)
        if reporter:
            data = manifest_bytes(manifest)
            media_type = str(manifest.get("mediaType") or defaults.default_manifest_media_type)
            await reporter.emit(
                "done", {"mediaType": media_type, "digest": digest_bytes(data), "size": len(data)}
            )
    finally:
        for item in items:
            if item.is_dir and item.blob and item.blob != item.name:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(Path(item.blob).unlink, True)
    if not quiet:
        # Through oras-py's logger object (aioras.provider.logger), with its exact message.
        oras_logger.info(f"Successfully pushed {container}")
    return response
