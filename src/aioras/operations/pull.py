"""Pull: an artifact's layers to files, downloaded concurrently and verified.

Built only from the endpoint methods of :class:`~aioras.operations.endpoints.Endpoints`.
"""

from __future__ import annotations

import gzip
import logging
import os
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from .. import defaults
from ..concurrency import map_bounded
from ..descriptor import as_descriptor
from ..exceptions import ManifestValidationError, UnsafePathError
from ..progress import ProgressCallback, ProgressReporter
from ..utils import extract_targz, get_tmpdir, safe_title, sanitize_path

if TYPE_CHECKING:
    from ..container import Container
    from .endpoints import Endpoints

__all__ = ["PullItem", "pull", "plan_pull"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PullItem:
    """One layer to fetch and where it goes."""

    layer: dict[str, Any]
    outfile: str
    unpack: bool


def _wants_unpack(layer: dict[str, Any]) -> bool:
    annotations = layer.get("annotations") or {}
    flag = annotations.get(defaults.annotation_unpack)
    if flag is not None:
        return str(flag).lower() == "true"
    # Directories pushed by oras-py carry the media type but not the annotation.
    return bool(layer.get("mediaType") == defaults.default_blob_dir_media_type)


def plan_pull(manifest: dict[str, Any], outdir: str) -> list[PullItem]:
    """Decide where each layer of ``manifest`` goes under ``outdir``.

    A layer's file name is its title annotation (its digest when it has none). Raises
    :class:`~aioras.exceptions.UnsafePathError` for a title that is absolute, contains
    ``..``, names ``outdir`` itself (``.``) or otherwise escapes ``outdir``, and
    :class:`~aioras.exceptions.ManifestValidationError` for an index or for two layers
    claiming the same path.
    """
    if manifest.get("mediaType") in defaults.index_media_types or "manifests" in manifest:
        raise ManifestValidationError(
            "this reference is an index: pull one of its manifests by digest instead"
        )
    plan: list[PullItem] = []
    seen: set[str] = set()
    root = sanitize_path(outdir, outdir)
    for layer in manifest.get("layers") or []:
        title = (layer.get("annotations") or {}).get(defaults.annotation_title)
        name = safe_title(title) if title else layer["digest"].replace(":", "-")
        outfile = sanitize_path(outdir, os.path.join(outdir, name))
        if outfile == root:
            # "." or "./": the file would replace outdir, and an archive would be unpacked
            # into outdir's parent.
            raise UnsafePathError(f"title {title!r} names the output directory itself", path=name)
        if outfile in seen:
            raise ManifestValidationError(f"two layers of the manifest are both titled {name!r}")
        seen.add(outfile)
        plan.append(PullItem(layer=layer, outfile=outfile, unpack=_wants_unpack(layer)))
    return plan


async def pull(
    registry: Endpoints,
    target: str | Container,
    *,
    config_path: str | None = None,
    allowed_media_type: Sequence[str] | None = None,
    overwrite: bool = True,
    outdir: str | os.PathLike[str] | None = None,
    concurrency: int | None = None,
    progress: ProgressCallback | None = None,
) -> list[str]:
    """Pull the layers of ``target`` into ``outdir``; return the paths written, in order.

    Each layer is written under its title annotation, downloaded ``concurrency`` at a time
    (default: the registry's ``pull_concurrency``), verified against its digest and size,
    and moved into place only then. Layers marked for unpacking (and tar+gzip directory
    layers without that mark, as oras-py pushes them) are extracted safely into
    ``outdir``. With ``overwrite=False`` existing files are kept and skipped. Without
    ``outdir`` a new temporary directory is used. ``config_path`` names a Docker
    ``config.json`` to read credentials from. ``progress`` receives a
    :class:`~aioras.progress.TransferEvent` when the manifest is resolved and as each layer
    starts and is done.

    Raises :class:`~aioras.exceptions.UnsafePathError` for a title or archive member that
    would land outside ``outdir`` (before anything is downloaded, for titles),
    :class:`~aioras.exceptions.ManifestValidationError` for a layer marked for unpacking
    that is not a tar archive, :class:`~aioras.exceptions.DigestMismatch` for altered
    content, and the registry's typed errors. A failed or cancelled pull leaves no
    partial or temporary file (layers already completed stay).
    """
    container = registry.get_container(target)
    if config_path:
        registry.load_configs(container, configs=[config_path])
    reporter = ProgressReporter(progress)
    if reporter:
        await reporter.emit("resolve", as_descriptor(await registry.resolve(container)))
    manifest = await registry.get_manifest(container, allowed_media_type)
    todo = await anyio.to_thread.run_sync(_plan_work, manifest, outdir, overwrite)

    async def fetch(item: PullItem) -> None:
        await reporter.emit("start", as_descriptor(item.layer))
        await fetch_layer(item)
        await reporter.emit("done", as_descriptor(item.layer))

    async def fetch_layer(item: PullItem) -> None:
        layer = item.layer
        if not item.unpack:
            await registry.download_blob(
                container, layer["digest"], item.outfile, size=layer.get("size")
            )
            return
        parent = os.path.dirname(item.outfile)
        # Shielded: a cancellation arriving while the thread creates the file would
        # otherwise lose its name, and the file with it.
        with anyio.CancelScope(shield=True):
            archive = await anyio.to_thread.run_sync(_archive_path, parent)
        try:
            await registry.download_blob(
                container, layer["digest"], archive, size=layer.get("size")
            )
            try:
                await anyio.to_thread.run_sync(extract_targz, archive, parent)
            except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
                if isinstance(error, OSError) and not isinstance(error, gzip.BadGzipFile):
                    raise
                raise ManifestValidationError(
                    f"layer {layer['digest']} is marked for unpacking but is not a readable"
                    f" tar archive: {error}"
                ) from error
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(Path(archive).unlink, True)

    await map_bounded(fetch, todo, limit=concurrency or registry.pull_concurrency)
    for item in todo:
        logger.info("Successfully pulled %s", item.outfile)
    return [item.outfile for item in todo]


def _archive_path(parent: str) -> str:
    os.makedirs(parent, exist_ok=True)
    fd, archive = tempfile.mkstemp(dir=parent, prefix=".aioras-", suffix=".tar.gz")
    os.close(fd)
    return archive


def _plan_work(
    manifest: dict[str, Any], outdir: str | os.PathLike[str] | None, overwrite: bool
) -> list[PullItem]:
    out = os.path.abspath(os.fspath(outdir) if outdir is not None else get_tmpdir())
    todo = []
    for item in plan_pull(manifest, out):
        if not overwrite and os.path.exists(item.outfile):
            logger.warning("%s exists and overwrite is off: keeping it", item.outfile)
            continue
        todo.append(item)
    return todo
