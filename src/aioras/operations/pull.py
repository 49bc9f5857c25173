"""Pull: an artifact's layers to files, downloaded concurrently and verified.

Built only from the endpoint methods of `Endpoints`.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .. import defaults
from .._concurrency import map_bounded
from .._files.threads import run_file_work
from ..content.graph import (
    choose_platform,
    descriptor_list,
    host_platform,
    parse_platform,
    platform_matches,
    platform_string,
)
from ..descriptor import as_descriptor
from ..exceptions import ManifestValidationError, PlatformNotFound, UnsafePathError
from ..progress import ProgressCallback, ProgressReporter
from ..utils import get_tmpdir, safe_title, sanitize_path
from ..utils.archive import UnpackBudget, UnpackLimits, unpack_into
from ..utils.outdir import OutDir, Parts, split_parts

if TYPE_CHECKING:
    from ..container import Container
    from .endpoints import Endpoints

__all__ = ["PullItem", "PullOptions", "pull", "plan_pull"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PullItem:
    """One layer to fetch and where it goes."""

    layer: dict[str, Any]
    outfile: str
    unpack: bool
    # ``outfile`` relative to the output directory, component by component.
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class PullOptions:
    """The keyword options of a pull, gathered: each is `pull`'s option of its name.

    Documented with [`aioras.AsyncRegistry.pull`][aioras.registry.AsyncRegistry.pull], whose keyword
    parameters are these fields, with the same defaults.
    """

    config_path: str | None = None
    allowed_media_type: Sequence[str] | None = None
    overwrite: bool = True
    outdir: str | os.PathLike[str] | None = None
    concurrency: int | None = None
    unpack_max_bytes: int | None = None
    unpack_max_members: int | None = None
    unpack_max_ratio: float | None = None
    progress: ProgressCallback | None = None
    platform: str | None = None

    def unpack_limits(self) -> UnpackLimits:
        """The unpacking limits, each unset one taken from [`aioras.defaults`][aioras.defaults]."""
        max_bytes, max_members = self.unpack_max_bytes, self.unpack_max_members
        max_ratio = self.unpack_max_ratio
        return UnpackLimits(
            max_bytes=defaults.unpack_max_bytes if max_bytes is None else max_bytes,
            max_members=defaults.unpack_max_members if max_members is None else max_members,
            max_ratio=defaults.unpack_max_ratio if max_ratio is None else max_ratio,
        )


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
    [`UnsafePathError`][aioras.exceptions.UnsafePathError] for a title that is absolute, contains
    ``..`` or a control character, names ``outdir`` itself (``.``) or resolves outside
    ``outdir`` now, and [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] for
    an index or for two layers claiming the same path. Where the files really land is checked
    again when they are written: see `pull`.
    """
    if manifest.get("mediaType") in defaults.index_media_types or "manifests" in manifest:
        raise ManifestValidationError(
            "this reference is an index: pull one of its manifests by digest instead"
        )
    plan: list[PullItem] = []
    seen: set[str] = set()
    root = os.path.realpath(os.path.expanduser(outdir))
    for layer in manifest.get("layers") or []:
        title = (layer.get("annotations") or {}).get(defaults.annotation_title)
        name = safe_title(title) if title else layer["digest"].replace(":", "-")
        parts = split_parts(name)
        _check_inside(root, parts)
        if not parts:
            # "." or "./": the file would replace outdir, and an archive would be unpacked
            # into outdir's parent.
            raise UnsafePathError(f"title {title!r} names the output directory itself", path=name)
        # Spelled out, not resolved: the file goes exactly there, through no symlink.
        outfile = os.path.join(root, *parts)
        if outfile in seen:
            raise ManifestValidationError(f"two layers of the manifest are both titled {name!r}")
        seen.add(outfile)
        plan.append(
            PullItem(layer=layer, outfile=outfile, unpack=_wants_unpack(layer), parts=parts)
        )
    return plan


def _check_inside(root: str, parts: Parts) -> None:
    """Refuse ``parts`` (of a safe title) when they resolve outside ``root`` (resolved) now.

    A title holds no ``..``, so only a symlink on its way can lead it out: its components
    are looked at one by one, and only a path through a link is resolved whole (planning
    50 pulls of two layers took 39 ms resolving each title from ``/``, 26 ms so). Raises
    [`UnsafePathError`][aioras.exceptions.UnsafePathError].
    """
    current = root
    for part in parts:
        current = os.path.join(current, part)
        try:
            mode = os.lstat(current).st_mode
        except OSError:
            return  # missing (or not a directory) from here on: no link further along now
        if stat.S_ISLNK(mode):
            sanitize_path(root, os.path.join(root, *parts))
            return


async def pull(registry: Endpoints, target: str | Container, options: PullOptions) -> list[str]:
    """Pull the layers of ``target`` into ``outdir``; return the paths written, in order.

    Each layer is written under its title annotation, downloaded ``concurrency`` at a time
    (default: the registry's ``pull_concurrency``) into a private staging directory inside
    ``outdir``, verified against its digest and size, and moved into place only then.
    Layers marked for unpacking (and tar+gzip directory layers without that mark, as oras-py
    pushes them) are extracted into ``outdir``. With ``overwrite=False`` existing files and
    archive members are kept and skipped. Without ``outdir`` a new temporary directory is
    used. ``config_path`` names a Docker ``config.json`` to read credentials from.

    Containment: every file, directory and link is made relative to ``outdir`` without
    following any symlink on the way; archive symlinks must point at something that exists
    inside ``outdir``, climbing (``..``) only at the start of their target. The pull is one
    unit: if it fails or is cancelled, what it made is removed and what it replaced is put
    back (entries another writer made meanwhile are left alone).

    Unpacking limits, for all archive layers of this pull together (``None``: the default
    in [`aioras.defaults`][aioras.defaults]): ``unpack_max_bytes`` (32 GiB) bounds the uncompressed
    tar bytes, ``unpack_max_members`` (100,000) the entries, and ``unpack_max_ratio`` (100)
    how many times its compressed size one archive may expand to past the first 64 MiB.
    An archive over a limit is refused while its headers are read, before it is written.
    ``progress`` receives a [`TransferEvent`][aioras.progress.TransferEvent] when the manifest is
    resolved and as each layer starts, as its bytes arrive (``"bytes"``, about ten a second)
    and when it is done. When ``target`` is an image index (or a
    Docker manifest list), the manifest for ``platform`` (``os/arch[/variant]``) is pulled;
    without ``platform`` the running machine's, and a log line says which was taken.

    Raises [`UnsafePathError`][aioras.exceptions.UnsafePathError] for a title or archive member that
    would land or point outside ``outdir`` or go through a symlink (before anything is
    downloaded, for titles), [`OutputPathError`][aioras.exceptions.OutputPathError] for an entry
    that cannot be made (a directory in the way, a name too long ...),
    [`StorageError`][aioras.exceptions.StorageError] when a layer cannot be written whole (a full
    disk; the pull is rolled back like any failure),
    [`UnpackLimitExceeded`][aioras.exceptions.UnpackLimitExceeded],
    [`UnreadableArchive`][aioras.exceptions.UnreadableArchive] (a ``ManifestValidationError``) for a
    layer marked for unpacking that is not a tar archive,
    [`PlatformNotFound`][aioras.exceptions.PlatformNotFound] (listing what the index offers) when no
    manifest matches the platform, or when ``target`` is one manifest whose image config
    names another platform (or which has no image config to name one), ValueError for a
    malformed platform,
    [`DigestMismatch`][aioras.exceptions.DigestMismatch]
    for altered content, and the registry's typed errors.
    """
    container = registry.get_container(target)
    if options.config_path:
        registry.load_configs(container, configs=[options.config_path])
    reporter = ProgressReporter(options.progress)
    if reporter:
        await reporter.emit("resolve", as_descriptor(await registry.resolve(container)))
    allowed_media_type, platform = options.allowed_media_type, options.platform
    manifest = await registry.get_manifest(container, allowed_media_type)
    if _is_index(manifest):
        container, manifest = await _platform_manifest(
            registry, container, manifest, platform, allowed_media_type
        )
    elif platform is not None:
        await _check_platform(registry, container, platform)
    outdir, overwrite, concurrency = options.outdir, options.overwrite, options.concurrency
    limits = options.unpack_limits()
    # Shielded: a cancellation arriving while the thread makes the directory would lose it.
    # Planning and opening the output are one worker-thread call, as are checking the
    # links and committing: thread hops cost the event loop more than these calls do.
    with anyio.CancelScope(shield=True):
        todo, output = await run_file_work(_plan_and_open, manifest, outdir, overwrite)
    job = _Job(output, overwrite, limits)
    try:
        await map_bounded(
            lambda item: job.fetch(registry, container, item, reporter),
            list(enumerate(todo)),
            limit=concurrency or registry.pull_concurrency,
        )
        with anyio.CancelScope(shield=True):
            await run_file_work(job.place_and_commit)
    finally:
        if not job.finishing:
            with anyio.CancelScope(shield=True):
                await run_file_work(job.target.roll_back)
    for item in todo:
        logger.info("Successfully pulled %s", item.outfile)
    return [item.outfile for item in todo]


class _Job:
    """One pull's layers: downloaded concurrently, put in place in the manifest's order.

    A layer is taken once every layer before it has been downloaded, so the output
    changes in one definite order whatever order the downloads finish in. An archive is
    unpacked as soon as it is taken (the files before it placed first, in the same call),
    beside the downloads still running; the files after the last archive are placed in
    the thread call that checks the links and commits. Thread hops cost the event loop
    more than renaming a file does: 50 pulls of two layers made 100 hops fewer.
    """

    def __init__(self, target: OutDir, overwrite: bool, limits: UnpackLimits) -> None:
        self.target = target
        self.stage = target.stage()
        self.overwrite = overwrite
        self.budget = UnpackBudget(limits)
        self.staged: dict[int, PullItem] = {}
        self.next = 0  # the first layer not taken yet
        self.files: list[tuple[int, PullItem]] = []  # taken, not placed yet
        self.lock = anyio.Lock()
        self.finishing = False  # set by place_and_commit, which finishes the output

    async def fetch(
        self,
        registry: Endpoints,
        container: Container,
        indexed: tuple[int, PullItem],
        reporter: ProgressReporter,
    ) -> None:
        index, item = indexed
        layer = item.layer
        await reporter.emit("start", as_descriptor(layer))
        with reporter.positions(as_descriptor(layer)):
            await registry.download_blob(
                container, layer["digest"], self._staged(index), size=layer.get("size")
            )
        await reporter.emit("done", as_descriptor(layer))
        self.staged[index] = item
        await self._take_in_order()

    def _staged(self, index: int) -> str:
        return os.path.join(self.stage, _staged_name(index))

    async def _take_in_order(self) -> None:
        """Take the downloaded layers that are next in order (see the class)."""
        async with self.lock:
            while self.next in self.staged:
                index, item = self.next, self.staged.pop(self.next)
                if item.unpack:
                    files, self.files = self.files, []
                    # anyio's own threads: unpacking can take long, and would hold one of
                    # the few file-work threads the downloads' batches wait for.
                    await anyio.to_thread.run_sync(self._unpack_after, files, index, item)
                else:
                    self.files.append((index, item))
                self.next += 1

    def _unpack_after(self, files: list[tuple[int, PullItem]], index: int, item: PullItem) -> None:
        self._place(files)
        try:
            unpack_into(
                self._staged(index),
                self.target,
                item.parts[:-1],
                budget=self.budget,
                overwrite=self.overwrite,
                what=f"layer {item.layer['digest']}",
            )
        finally:
            os.unlink(self._staged(index))

    def place_and_commit(self) -> None:
        """Place the files not placed yet, check the links and commit (thread).

        The output is finished either way: rolled back (and the error raised) when a file
        cannot be placed or a link fails the check.
        """
        self.finishing = True
        try:
            self._place(self.files)
        except BaseException:
            self.target.roll_back()
            raise
        self.target.verify_and_commit()

    def _place(self, files: list[tuple[int, PullItem]]) -> None:
        for index, item in files:
            if not self.target.place_staged(
                _staged_name(index), item.parts, overwrite=self.overwrite
            ):
                logger.warning(
                    "%s exists and overwrite is off: keeping it", self.target.rel(item.parts)
                )


def _staged_name(index: int) -> str:
    """The name of layer ``index``'s download in the pull's staging directory."""
    return f"layer-{index}"


def _plan_and_open(
    manifest: dict[str, Any], outdir: str | os.PathLike[str] | None, overwrite: bool
) -> tuple[list[PullItem], OutDir]:
    out, todo = _plan_work(manifest, outdir, overwrite)
    return todo, _open_target(out)


def _open_target(out: str) -> OutDir:
    target = OutDir(out)
    try:
        target.stage()
    except BaseException:
        target.finish(commit=False)
        raise
    return target


def _is_index(manifest: dict[str, Any]) -> bool:
    return manifest.get("mediaType") in defaults.index_media_types or "manifests" in manifest


async def _platform_manifest(
    registry: Endpoints,
    container: Container,
    index: dict[str, Any],
    platform: str | None,
    allowed_media_type: Sequence[str] | None,
) -> tuple[Container, dict[str, Any]]:
    """The manifest of ``index`` built for ``platform`` (default: this machine's)."""
    wanted = platform or host_platform()
    entries = descriptor_list(index.get("manifests"), f"index {container}")
    chosen = choose_platform(entries, wanted, str(container))
    if platform is None:
        logger.info(
            "%s is an index: pulling %s, the manifest for this machine's platform %s",
            container,
            chosen["digest"],
            wanted,
        )
    chosen_container = container.with_reference(chosen["digest"])
    return chosen_container, await registry.get_manifest(chosen_container, allowed_media_type)


async def _check_platform(registry: Endpoints, container: Container, platform: str) -> None:
    """Refuse a single manifest not built for ``platform``, as its image config says."""
    from .index import _platform_of  # the config reader of index entries, shared

    wanted = parse_platform(platform)
    descriptor = as_descriptor(await registry.resolve(container))
    found = await _platform_of(registry.repository(container), descriptor)
    if found is None or not platform_matches(found, wanted):
        offered = [platform_string(found)] if found else []
        raise PlatformNotFound(str(container), platform, offered, manifest=True)


def _plan_work(
    manifest: dict[str, Any], outdir: str | os.PathLike[str] | None, overwrite: bool
) -> tuple[str, list[PullItem]]:
    out = os.path.abspath(os.fspath(outdir) if outdir is not None else get_tmpdir())
    todo = []
    for item in plan_pull(manifest, out):
        # An archive is not skipped whole: overwrite=False is applied to each member.
        if not overwrite and not item.unpack and os.path.lexists(item.outfile):
            logger.warning("%s exists and overwrite is off: keeping it", item.outfile)
            continue
        todo.append(item)
    return out, todo
