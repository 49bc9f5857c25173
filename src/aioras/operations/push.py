"""Push: files and directories to an OCI artifact, layers uploaded concurrently.

Built only from the endpoint methods of `Endpoints`, so a
subclass's ``upload_blob`` or ``upload_manifest`` is the one used.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from .. import defaults
from .._concurrency import map_bounded
from ..descriptor import Descriptor, as_descriptor
from ..digest import digest_bytes, digest_file
from ..exceptions import UnsafePathError
from ..logger import logger as oras_logger
from ..oci import (
    Annotations,
    ManifestConfig,
    NewManifest,
    Subject,
    manifest_bytes,
    pack_manifest,
)
from ..progress import EventKind, ProgressCallback, ProgressReporter
from ..utils import get_tmpfile, make_targz, sanitize_path, split_path_and_content

if TYPE_CHECKING:
    from ..container import Container
    from .endpoints import Endpoints

__all__ = [
    "AnnotationSource",
    "PushFile",
    "PushFiles",
    "PushItem",
    "PushOptions",
    "push",
    "push_artifact",
]

logger = logging.getLogger(__name__)

SubjectLike = Subject | Mapping[str, Any] | str


@dataclass(frozen=True)
class PushFile:
    """One file or directory to push, with what its layer says about it, given in code.

    ``path`` is relative to push's ``root`` (default: the working directory) or absolute;
    ``media_type`` replaces the default layer type; ``title`` the file name recorded as
    ``org.opencontainers.image.title`` (what a pull names the file); ``annotations`` are
    added to the layer's (over an annotation file's for the same path).
    """

    path: str | os.PathLike[str]
    media_type: str | None = None
    title: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


PushFiles = Sequence[str | os.PathLike[str] | PushFile]
"""What push's ``files`` takes: ``path[:mediaType]`` strings, paths, or
[`PushFile`][aioras.operations.push.PushFile]s."""

AnnotationSource = str | os.PathLike[str] | Mapping[str, Mapping[str, str]] | None
"""An annotation file's path, or its content as a mapping of section to annotations."""


@dataclass(frozen=True)
class PushOptions:
    """The keyword options of a push, gathered: each is `push`'s option of its name.

    Documented with [`aioras.AsyncRegistry.push`][aioras.registry.AsyncRegistry.push], whose keyword
    parameters (``files`` apart) are these fields, with the same defaults.
    """

    config_path: str | None = None
    disable_path_validation: bool = False
    manifest_config: str | None = None
    annotation_file: AnnotationSource = None
    manifest_annotations: Mapping[str, str] | None = None
    subject: SubjectLike | None = None
    do_chunked: bool = False
    chunk_size: int | None = None
    quiet: bool = False
    artifact_type: str | None = None
    concurrency: int | None = None
    progress: ProgressCallback | None = None
    root: str | os.PathLike[str] | None = None
    pack_version: str | None = None
    single_pass: bool = False


@dataclass
class PushItem:
    """One file or directory to push, as named by the caller, and the blob made of it."""

    name: str
    """The path as given (without a ``:mediaType`` suffix): the annotation file's key."""
    media_type: str | None
    blob: str = ""
    """The file uploaded: ``source`` itself, or a temporary tar.gz of a directory."""
    is_dir: bool = False
    descriptor: dict[str, Any] | None = None
    source: str = ""
    """Where the file is: ``name`` resolved against the push's root."""
    title: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


def _parse_items(
    files: PushFiles, validate_paths: bool, root: str | os.PathLike[str] | None = None
) -> list[PushItem]:
    items = []
    base = os.path.abspath(os.fspath(root)) if root is not None else os.getcwd()
    for entry in files:
        if isinstance(entry, PushFile):
            path, media_type = os.fspath(entry.path), entry.media_type
        else:
            spec = os.fspath(entry)
            if os.path.exists(os.path.join(base, spec)):
                path, media_type = spec, None  # an existing name is taken whole, colons and all
            else:
                path, media_type = split_path_and_content(spec)
        source = os.path.join(base, path)
        # An empty path (":mediaType") names nothing, not the base directory.
        if not path or not os.path.exists(source):
            raise FileNotFoundError(f"{source} does not exist")
        if validate_paths:
            try:
                sanitize_path(base, os.path.abspath(source))
            except UnsafePathError as error:
                where = "the working directory" if root is None else "the root directory"
                raise UnsafePathError(
                    f"{error}, {where}: pass disable_path_validation=True "
                    "(--disable-path-validation on the command line) to push it anyway",
                    path=error.path,
                ) from None
        item = PushItem(
            name=path, media_type=media_type, is_dir=os.path.isdir(source), source=source
        )
        if isinstance(entry, PushFile):
            item.title, item.annotations = entry.title, entry.annotations
        items.append(item)
    return items


async def _prepare(item: PushItem, annotations: Annotations, *, hash_below: float) -> None:
    """Pack a directory if needed, hash the blob, and build the layer descriptor.

    A blob of ``hash_below`` bytes or more is not hashed here: its digest is left empty,
    for the upload (which hashes it on the way) to fill in.
    """
    if item.is_dir:
        # The archive's name is recorded before packing starts, so that push's cleanup
        # removes it even when the push is cancelled while the worker thread still packs.
        item.blob = get_tmpfile(prefix="aioras-", suffix=".tar.gz")
        await anyio.to_thread.run_sync(make_targz, item.source, item.blob)
    else:
        item.blob = item.source
    digest, size = "", await anyio.to_thread.run_sync(os.path.getsize, item.blob)
    if size < hash_below:
        digest, size = await digest_file(item.blob)
    media_type = item.media_type or (
        defaults.default_blob_dir_media_type if item.is_dir else defaults.default_blob_media_type
    )
    title = item.title or os.path.basename(item.name.rstrip(os.sep))
    layer_annotations = {defaults.annotation_title: title}
    if item.is_dir:
        layer_annotations[defaults.annotation_unpack] = "true"
    layer_annotations.update(annotations.get_annotations(item.name))
    layer_annotations.update(item.annotations)
    item.descriptor = {
        "mediaType": media_type,
        "digest": digest,
        "size": size,
        "annotations": layer_annotations,
    }


def _empty_config_type(pack_version: str | None) -> str | None:
    # 1.1 packs the empty config under its own media type; the others keep theirs.
    return defaults.empty_media_type if pack_version == "1.1" else None


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
    files: PushFiles | None,
    options: PushOptions,
) -> httpx.Response:
    """Push ``files`` to ``target`` as one artifact; return the manifest PUT's response.

    Each entry of ``files`` is a path with an optional ``:mediaType`` suffix, or a
    [`PushFile`][aioras.operations.push.PushFile] giving the media type, title and annotations of
    its layer in code; directories are packed as reproducible tar.gz layers marked for unpacking.
    Relative paths are taken from ``root`` (default: the working directory; a service passes its own
    directory instead of changing the process's), and unless ``disable_path_validation``
    every path must lie inside it. Every layer gets its file name (or the
    [`PushFile`][aioras.operations.push.PushFile]'s ``title``) as
    ``org.opencontainers.image.title``, plus the annotations the ``annotation_file`` (a path, or the
    same content as a mapping) gives for its path (``$manifest`` and ``$config`` sections go to
    the manifest and the config; ``manifest_annotations`` override ``$manifest``).
    ``manifest_config`` is ``path[:mediaType]`` of a config file; without it the empty
    config ``{}`` is pushed. ``subject`` (a [`Subject`][aioras.oci.Subject], a descriptor, or
    a reference) makes the artifact refer to another manifest: without a tag in ``target``
    it is pushed by digest only (never as ``latest``), and on a registry without the
    referrers API its subject's tag-schema index (``<alg>-<hex>``) is updated.
    ``pack_version`` packs the manifest as oras-go does: ``"1.1"`` (the empty config with
    ``artifactType``, which is then required; the empty descriptor as the layer when there
    are no files) or ``"1.0"`` (the artifact type as the config media type, for old
    registries); None keeps oras-py's form. Layers upload
    ``concurrency`` at a time (default: the registry's ``push_concurrency``), blobs the
    registry already has are skipped, and layer order follows ``files``. A file of
    ``aioras.defaults.default_overlap_threshold`` (64 MiB) or more starts uploading at once
    while a worker thread hashes it for the existence check and the closing ``PUT`` (see
    [`upload_file`][aioras.registry.AsyncRegistry.upload_file]): found there, its upload is
    cancelled and the layer skipped; its ``"start"`` event comes once its digest is known.

    ``single_pass`` is for layers the registry does not hold yet: each file is read once,
    hashed while it uploads (a chunked upload whose closing ``PUT`` names the digest, see
    [`upload_new_blob`][aioras.registry.AsyncRegistry.upload_new_blob]), instead of hashed first and
    read again to upload. Nothing is checked for existence and identical files each
    travel; progress reports each such layer when it is done (its digest is known only
    then).

    ``config_path`` names a Docker ``config.json`` to read credentials from. ``progress``
    receives a [`TransferEvent`][aioras.progress.TransferEvent] as each blob starts, as its bytes
    go out (``"bytes"``, about ten a second), and when it is done (or skipped, being there
    already), and when the manifest is done.

    Raises FileNotFoundError for a missing path,
    [`UnsafePathError`][aioras.exceptions.UnsafePathError] for a path outside ``root`` (its message
    names ``disable_path_validation=True``), and the registry's typed errors.
    """
    response, _ = await push_artifact(registry, target, files, options)
    return response


async def push_artifact(
    registry: Endpoints,
    target: str | Container,
    files: PushFiles | None,
    options: PushOptions,
    *,
    keep_old_index: bool = False,
) -> tuple[httpx.Response, Descriptor]:
    """`push`, returning the manifest PUT's response and the manifest's descriptor.

    ``keep_old_index`` keeps a superseded tag-schema referrers index instead of deleting it.
    Raises as `push` does.
    """
    job = _Push.resolve_inputs(registry, target, files, options)
    try:
        await job.build_layers()
        config, config_file = job.config()
        await job.upload_blobs(config, config_file)
        manifest, subject = await job.manifest(config)
        response, descriptor = await job.put_manifest(manifest, subject, keep_old_index)
    finally:
        await job.remove_archives()
    if not options.quiet:
        # Through oras-py's logger object (aioras.provider.logger), with its exact message.
        oras_logger.info(f"Successfully pushed {job.container}")
    return response, descriptor


class _Push:
    """One push, step by step (see `push_artifact` for their order)."""

    def __init__(
        self,
        registry: Endpoints,
        container: Container,
        items: list[PushItem],
        annotations: Annotations,
        options: PushOptions,
    ) -> None:
        self.registry, self.container, self.items = registry, container, items
        self.annotations, self.options = annotations, options
        self.limit = options.concurrency or registry.push_concurrency
        self.reporter = ProgressReporter(options.progress)

    @classmethod
    def resolve_inputs(
        cls,
        registry: Endpoints,
        target: str | Container,
        files: PushFiles | None,
        options: PushOptions,
    ) -> _Push:
        """Name the target, read credentials and annotations, and check every path."""
        container = registry.get_container(target)
        if options.config_path:
            registry.load_configs(container, configs=[options.config_path])
        if options.pack_version is not None:
            # The packing rules refuse bad options here, before any file is hashed or sent.
            pack_manifest(
                [],
                config={} if options.manifest_config else None,
                artifact_type=options.artifact_type,
                subject={} if options.subject is not None else None,
                version=options.pack_version,
            )
        annotations = Annotations(options.annotation_file)
        items = _parse_items(files or [], not options.disable_path_validation, options.root)
        return cls(registry, container, items, annotations, options)

    async def build_layers(self) -> None:
        """Pack directories and describe each layer (uploading it too, in a single pass)."""
        # Big files are hashed beside their upload (see upload_blobs); single_pass: all files.
        threshold = 0 if self.options.single_pass else defaults.default_overlap_threshold
        await map_bounded(
            lambda item: _prepare(item, self.annotations, hash_below=threshold),
            self.items,
            limit=self.limit,
        )
        if self.options.single_pass:
            await map_bounded(self._upload_once, self.items, limit=self.limit)

    async def _upload_once(self, item: PushItem) -> None:
        assert item.descriptor is not None
        item.descriptor.update(
            await self.registry.upload_new_blob(
                item.blob, self.container, chunk_size=self.options.chunk_size
            )
        )
        await self.reporter.emit("done", as_descriptor(item.descriptor))

    def config(self) -> tuple[dict[str, Any], str | None]:
        """The config descriptor and the file holding it (None: the empty config)."""
        manifest_config = self.options.manifest_config
        if manifest_config:
            parsed = split_path_and_content(manifest_config)
            conf, config_file = ManifestConfig(parsed.path, parsed.content)
        else:
            conf, config_file = ManifestConfig(
                media_type=_empty_config_type(self.options.pack_version)
            )
        config_annotations = self.annotations.get_annotations("$config")
        if config_annotations:
            conf["annotations"] = config_annotations
        return conf, config_file

    async def upload_blobs(self, conf: dict[str, Any], config_file: str | None) -> None:
        """Upload the layers (unless sent in a single pass already) and the config."""
        # One upload per distinct digest: identical files need to travel only once.
        uploads: dict[str, tuple[str | None, dict[str, Any]]] = {}
        unhashed: list[PushItem] = []
        for item in self.items if not self.options.single_pass else ():
            assert item.descriptor is not None
            if not item.descriptor["digest"]:
                unhashed.append(item)
            else:
                uploads.setdefault(item.descriptor["digest"], (item.blob, item.descriptor))
        uploads.setdefault(conf["digest"], (config_file, conf))
        jobs: list[Callable[[], Awaitable[None]]] = [
            functools.partial(self._upload, job) for job in uploads.values()
        ]
        jobs += [functools.partial(self._upload_unhashed, item) for item in unhashed]
        await map_bounded(lambda job: job(), jobs, limit=self.limit)

    async def _upload(self, job: tuple[str | None, dict[str, Any]]) -> None:
        blob, descriptor = job
        reporter, options = self.reporter, self.options
        await reporter.emit("start", as_descriptor(descriptor))
        with reporter.positions(as_descriptor(descriptor)):
            response = await self.registry.upload_blob(
                blob,
                self.container,
                descriptor,
                do_chunked=options.do_chunked,
                chunk_size=options.chunk_size,
            )
        await self._report(response, descriptor)

    async def _upload_unhashed(self, item: PushItem) -> None:
        """Upload a big file while it is hashed; fill in its digest (once known)."""
        descriptor = item.descriptor
        assert descriptor is not None

        async def started(digest: str) -> None:
            descriptor["digest"] = digest
            await self.reporter.emit("start", as_descriptor(descriptor))

        with self.reporter.positions(as_descriptor(descriptor)):
            digest, size, response = await self.registry.upload_file(
                item.blob, self.container, on_digest=started
            )
        descriptor.update(digest=digest, size=size)
        await self._report(response, descriptor)

    async def _report(self, response: httpx.Response, descriptor: dict[str, Any]) -> None:
        self.registry._check_200_response(response)
        # The upload answers with the HEAD (200) of a blob it did not need to send.
        kind: EventKind = "skipped" if response.status_code == 200 else "done"
        await self.reporter.emit(kind, as_descriptor(descriptor))

    async def manifest(self, conf: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The manifest to push, and the descriptor of its subject (None: none)."""
        options = self.options
        manifest_annots = dict(self.annotations.get_annotations("$manifest"))
        manifest_annots.update(copy.deepcopy(dict(options.manifest_annotations or {})))
        subject_desc = (
            None
            if options.subject is None
            else await _subject_descriptor(self.registry, self.container, options.subject)
        )
        layers = [item.descriptor for item in self.items if item.descriptor is not None]
        if options.pack_version is None:
            legacy = _legacy_manifest(
                layers, conf, manifest_annots, options.artifact_type, subject_desc
            )
            return legacy, subject_desc
        manifest = pack_manifest(
            layers,
            config=conf if options.manifest_config else None,
            artifact_type=options.artifact_type,
            subject=subject_desc,
            annotations=manifest_annots,
            version=options.pack_version,
        )
        return manifest, subject_desc

    async def put_manifest(
        self,
        manifest: dict[str, Any],
        subject_desc: dict[str, Any] | None,
        keep_old_index: bool,
    ) -> tuple[httpx.Response, Descriptor]:
        """PUT the manifest (by digest for an untagged referrer) and record the referrer."""
        data = manifest_bytes(manifest)
        media_type = str(manifest.get("mediaType") or defaults.default_manifest_media_type)
        descriptor = as_descriptor(
            {"mediaType": media_type, "digest": digest_bytes(data), "size": len(data)}
        )
        if manifest.get("artifactType"):
            descriptor["artifactType"] = manifest["artifactType"]
        container = self.container
        # A referrer pushed to no tag in particular goes by digest: never over "latest".
        untagged = subject_desc is not None and not container.tag_given and not container.digest
        response = await self.registry.upload_manifest(
            manifest, container, reference=descriptor["digest"] if untagged else None
        )
        if subject_desc is not None:
            repository = self.registry.repository(container)
            repository.delete_superseded = not keep_old_index
            await repository.record_referrer(descriptor, data, response)
        await self.reporter.emit("done", descriptor)
        return response, descriptor

    async def remove_archives(self) -> None:
        """Remove the archives packed of directories, even when the push was cancelled."""
        for item in self.items:
            if item.is_dir and item.blob and item.blob != item.source:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(Path(item.blob).unlink, True)


def _legacy_manifest(
    layers: list[dict[str, Any]],
    config: dict[str, Any],
    annotations: dict[str, str],
    artifact_type: str | None,
    subject: dict[str, Any] | None,
) -> dict[str, Any]:
    """The manifest as oras-py builds it (config as given, artifactType when named)."""
    manifest = NewManifest()
    manifest["layers"] = layers
    manifest["config"] = config
    if annotations:
        manifest["annotations"] = annotations
    else:
        manifest.pop("annotations", None)
    if artifact_type:
        manifest["artifactType"] = artifact_type
    if subject is not None:
        manifest["subject"] = subject
    return manifest
