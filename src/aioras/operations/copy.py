"""``copy``: move an artifact and its graph from one store to another, as oras-go does.

The graph is walked from the root: children before parents (a manifest is pushed only once
everything it names is there), each node once, under one limiter of ``concurrency``
transfers. What the destination has is skipped after a HEAD; blobs between two repositories
of one registry host are mounted; everything else streams from the source to the
destination with nothing written to disk and no blob held whole in memory, verified on the
way; manifests keep their exact bytes. A copy cut short leaves only complete content behind,
so running it again sends only what is missing.

What the copy may do beyond the store verbs depends on the capabilities of the stores (see
[`aioras.content.store`][aioras.content.store]): mount ([`Mounter`][aioras.content.store.Mounter]),
push a manifest and its tag at once ([`ReferencePusher`][aioras.content.store.ReferencePusher]),
restart an upload from a source opened anew
([`RestartablePusher`][aioras.content.store.RestartablePusher]), and bound the transfers
([`TransferBudget`][aioras.content.store.TransferBudget]). A store without one is copied to without
it.

[`copy`][aioras.operations.copy.copy] returns the root;
[`copy_graph`][aioras.operations.copy.copy_graph] returns a
[`CopyResult`][aioras.operations.copy.CopyResult] telling what was copied, mounted and skipped (and
why), and how many bytes each took.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import anyio

from .. import defaults
from .._retry import DEFAULT_RETRY
from ..container import names_digest
from ..content.graph import (
    GraphWalk,
    Visit,
    check_limits,
    filter_index,
    is_manifest,
    platform_list,
    select_platform,
    successors_of,
)
from ..content.store import (
    Mounter,
    ReadOnlyStore,
    ReferencePusher,
    ReferrerLister,
    Resolver,
    RestartablePusher,
    StreamOpener,
    Target,
    TransferBudget,
    read_all,
)
from ..descriptor import Descriptor
from ..exceptions import IntegrityError, NotFoundError
from ..progress import ProgressCallback, ProgressReporter
from ._options import gather

__all__ = [
    "HELD",
    "UP_TO_DATE",
    "CopyOptions",
    "CopyResult",
    "Skipped",
    "copy",
    "copy_graph",
    "select_root",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopyOptions:
    """How [`copy`][aioras.operations.copy.copy] walks and moves the graph (see its docstring).

    The keyword options of [`copy`][aioras.operations.copy.copy] and
    [`aioras.AsyncRegistry.copy`][aioras.registry.AsyncRegistry.copy], with the same defaults,
    except ``progress`` (an argument of [`copy_graph`][aioras.operations.copy.copy_graph]) and
    ``platform`` (folded into ``platforms``).
    """

    referrers: bool = False
    depth: int | None = None
    artifact_type: str | None = None
    platforms: tuple[str, ...] | None = None
    concurrency: int = defaults.default_copy_concurrency
    max_depth: int = defaults.max_graph_depth
    max_nodes: int = defaults.max_graph_nodes


UP_TO_DATE = "the destination reference names it already"
"""Why the root was skipped when the destination reference named it: nothing else was done."""
HELD = "the destination holds it"
"""Why a manifest or blob was skipped: the destination had it (a HEAD, or known)."""


class Skipped(NamedTuple):
    """A node a copy did not send, and why (`UP_TO_DATE` or `HELD`)."""

    descriptor: Descriptor
    reason: str


@dataclass
class CopyResult:
    """What one copy did, node by node (each node once, in the order it was settled).

    ``root`` is what the destination reference names (the manifest or new index chosen
    when platforms select part of an index), ``source_root`` what the source reference
    named. ``copied``: manifests and blobs sent; ``mounted``: blobs linked in from another
    repository of the same host; ``skipped``: what the destination held, with the reason.
    """

    root: Descriptor
    source_root: Descriptor
    copied: list[Descriptor] = field(default_factory=list)
    mounted: list[Descriptor] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def bytes_copied(self) -> int:
        """Bytes sent to the destination (by the descriptors' sizes)."""
        return sum(d["size"] for d in self.copied)

    @property
    def bytes_mounted(self) -> int:
        """Bytes the destination linked in without their travelling."""
        return sum(d["size"] for d in self.mounted)

    @property
    def bytes_skipped(self) -> int:
        """Bytes not sent because the destination held them."""
        return sum(s.descriptor["size"] for s in self.skipped)

    @property
    def up_to_date(self) -> bool:
        """Whether the destination reference named the root already and nothing was done."""
        return (
            not self.copied
            and not self.mounted
            and self.skipped == [Skipped(self.root, UP_TO_DATE)]
        )


async def copy(
    src: ReadOnlyStore,
    src_ref: str,
    dst: Target,
    dst_ref: str | None = None,
    *,
    referrers: bool = False,
    depth: int | None = None,
    artifact_type: str | None = None,
    platform: str | None = None,
    platforms: Sequence[str] | None = None,
    concurrency: int = defaults.default_copy_concurrency,
    progress: ProgressCallback | None = None,
    max_depth: int = defaults.max_graph_depth,
    max_nodes: int = defaults.max_graph_nodes,
) -> Descriptor:
    """Copy what ``src_ref`` names in ``src`` into ``dst``, tagged ``dst_ref``; return its root.

    ``src`` must also resolve references (every [`Target`][aioras.content.store.Target]
    does). ``dst_ref`` defaults to ``src_ref`` when that is a tag; a digest reference is
    copied untagged. Options:

    - ``referrers``: also copy the manifests referring to every copied manifest
      (signatures, SBOMs...), recursively up to ``depth`` levels (None: all), only those of
      ``artifact_type`` when given. ``src`` must be a
      [`ReferrerLister`][aioras.content.store.ReferrerLister]. A registry destination without the
      referrers API gets the tag-schema index maintained.
    - ``platforms``: when the root is an index, copy only its manifests for these
      ``os/arch[/variant]`` (see `select_root`). One platform: that manifest becomes
      the root, tagged ``dst_ref``, exact bytes. Several: a new index listing only their
      entries becomes the root; its children keep their bytes and digests, but its own
      digest differs from the source index's (the returned root is the new index), so
      referrers of the source index, which name that digest, are not copied. A re-copy
      builds the same index from the source index's bytes (fetched once) and skips when
      ``dst_ref`` names it. ``platform="os/arch"`` is shorthand for ``platforms=["os/arch"]``.
    - ``concurrency``: transfers at once (default 3), further bounded by each registry's
      ``max_transfers``.
    - ``progress``: a callable receiving [`TransferEvent`][aioras.progress.TransferEvent]s.
    - ``max_depth``, ``max_nodes``: the bounds of the walk, which reaches each node (by
      digest) once. A node more than ``max_depth`` levels below the root (successor and
      referrer edges alike), or more than ``max_nodes`` distinct manifests and blobs,
      raises [`GraphLimitExceeded`][aioras.exceptions.GraphLimitExceeded] before it is fetched
      (defaults 16 and 10,000: [`aioras.defaults.max_graph_depth`][aioras.defaults.max_graph_depth],
      [`aioras.defaults.max_graph_nodes`][aioras.defaults.max_graph_nodes]), so a source inventing
      referrers or index entries forever cannot keep a copy (or a backup) running.

    When ``dst`` already holds the root under ``dst_ref`` (and referrers are not asked for)
    nothing else is fetched or sent. Raises [`NotFoundError`][aioras.exceptions.NotFoundError] when
    ``src_ref`` names nothing ([`PlatformNotFound`][aioras.exceptions.PlatformNotFound] when the
    index has no manifest for one of ``platforms``), ValueError for bad options (``platforms``
    for a root that is not an index among them), TypeError for a source that cannot
    resolve (or list referrers when asked), [`DigestMismatch`][aioras.exceptions.DigestMismatch]
    for content failing verification (after reading it again),
    [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] for a manifest whose
    descriptors are malformed (a ``size`` that is not a non-negative integer, no ``mediaType``...),
    GraphLimitExceeded, and the stores' errors.
    Whatever landed before a failure stays, and is skipped next time.

    For what was copied, mounted and skipped, call [`copy_graph`][aioras.operations.copy.copy_graph]
    with ``CopyOptions(...)``: it returns a [`CopyResult`][aioras.operations.copy.CopyResult].
    """
    arguments = {**locals(), "platforms": platform_list(platform, platforms)}
    result = await copy_graph(src, src_ref, dst, dst_ref, gather(CopyOptions, arguments), progress)
    return result.root


async def copy_graph(
    src: ReadOnlyStore,
    src_ref: str,
    dst: Target,
    dst_ref: str | None,
    options: CopyOptions,
    progress: ProgressCallback | None = None,
    *,
    single_as_is: bool = False,
) -> CopyResult:
    """[`copy`][aioras.operations.copy.copy] with its options gathered; return what it did (a
    [`CopyResult`][aioras.operations.copy.CopyResult]).

    ``options.platforms`` takes the ``os/arch[/variant]`` of each platform (``platform=``
    of [`copy`][aioras.operations.copy.copy] is that tuple of one); ``single_as_is``: see
    `select_root`. A ``resolve`` progress event names the source's root; when platforms select part
    of an index a second one names the root copied. Raises as [`copy`][aioras.operations.copy.copy].
    """
    _check(src, options)
    reporter = ProgressReporter(progress)
    if not isinstance(src, Resolver):
        raise TypeError("copy needs a source that resolves references")
    source_root = await src.resolve(src_ref)
    await reporter.emit("resolve", source_root)
    root, root_data = await select_root(
        src, source_root, options.platforms, single_as_is=single_as_is, what=src_ref
    )
    if root is not source_root:
        await reporter.emit("resolve", root)
    result = CopyResult(root, source_root)
    if dst_ref is None and not names_digest(src_ref):
        dst_ref = src_ref
    if dst_ref is not None and not options.referrers and await _holds(dst, dst_ref, root):
        result.skipped.append(Skipped(root, UP_TO_DATE))
        await reporter.emit("skipped", root)
        return result
    walker = _Walker(src, dst, options, reporter, result, dst_ref, root_data)
    await walker.run()
    if dst_ref is not None and not walker.tagged:
        await dst.tag(root, dst_ref)
    return result


async def select_root(
    src: ReadOnlyStore,
    root: Descriptor,
    platforms: tuple[str, ...] | None,
    *,
    single_as_is: bool = False,
    what: str = "",
) -> tuple[Descriptor, bytes | None]:
    """What a copy of ``root`` with ``platforms`` sends as its root, and its bytes if new.

    No platforms: ``root`` itself. An index and one platform: its manifest for it (bytes
    in ``src``). An index and several: the index `filter_index`
    builds from the source index's bytes (read once), with those new bytes. A root that is
    not an index: ValueError, or itself with ``single_as_is`` (a mirror copies single
    manifests as they are). Raises PlatformNotFound as ``filter_index`` does.
    """
    if platforms is None:
        return root, None
    if not _is_index(root):
        if single_as_is:
            return root, None
        raise ValueError(f"platforms={list(platforms)!r} need an index, and {what} is not one")
    data = await read_all(src, root)
    if len(platforms) == 1:
        return select_platform(root, data, platforms[0]), None
    return filter_index(root, data, platforms)


def _check(src: ReadOnlyStore, options: CopyOptions) -> None:
    if options.concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {options.concurrency}")
    if options.depth is not None and options.depth < 0:
        raise ValueError(f"depth must be 0 or more, got {options.depth}")
    check_limits(options.max_depth, options.max_nodes)
    if options.referrers and not isinstance(src, ReferrerLister):
        raise TypeError("referrers=True needs a source that lists referrers")


def _is_index(descriptor: Descriptor) -> bool:
    return descriptor["mediaType"] in defaults.index_media_types


async def _holds(dst: Target, reference: str, root: Descriptor) -> bool:
    """Whether ``dst`` has ``reference`` pointing at ``root`` already (one HEAD at a registry)."""
    try:
        found = await dst.resolve(reference)
    except NotFoundError:
        return False
    return found["digest"] == root["digest"]


def _limit(store: object, concurrency: int) -> int:
    if isinstance(store, TransferBudget):
        return min(concurrency, store.max_transfers)
    return concurrency


class _Walker:
    """One copy's walk: nodes once each, children first, transfers under one limiter.

    The graph is walked by one bounded `GraphWalk`: the
    successors of a manifest are its children (pushed before it), its referrers are
    listed once it is pushed and walked after it (``options.depth`` counts these levels).
    """

    def __init__(
        self,
        src: ReadOnlyStore,
        dst: Target,
        options: CopyOptions,
        reporter: ProgressReporter,
        result: CopyResult,
        root_ref: str | None,
        root_data: bytes | None = None,
    ) -> None:
        self.src, self.dst, self.options, self.reporter = src, dst, options, reporter
        self.result = result
        # root_data: the bytes of a root built here (a filtered index), not in the source.
        self.root, self.root_ref, self.root_data = result.root, root_ref, root_data
        self.concurrency = _limit(dst, _limit(src, options.concurrency))
        self.limiter = anyio.CapacityLimiter(self.concurrency)
        # Referrer levels (what options.depth counts), by digest; successors inherit theirs.
        self.levels: dict[str, int] = {self.root["digest"]: 0}
        self.tagged = False
        # The destination's capabilities, asked once (see aioras.content.store).
        self.mounter = dst if isinstance(dst, Mounter) else None
        self.mount_from = None if self.mounter is None else self.mounter.mount_source(src)
        self.reference_pusher = dst if isinstance(dst, ReferencePusher) else None
        self.restartable = dst if isinstance(dst, RestartablePusher) else None
        self.lister = src if isinstance(src, ReferrerLister) else None

    async def run(self) -> None:
        """Copy the root's graph; raise the first failure (not an ExceptionGroup)."""
        walk = GraphWalk(
            self._visit,
            concurrency=self.concurrency,
            max_depth=self.options.max_depth,
            max_nodes=self.options.max_nodes,
        )
        await walk.run(self.root)

    async def _visit(self, descriptor: Descriptor, _depth: int) -> Visit:
        try:
            if not is_manifest(descriptor):
                await self._blob(descriptor)
                return Visit()
            return await self._manifest(descriptor)
        except Exception as error:
            await self.reporter.emit("error", descriptor, error=error)
            raise

    async def _manifest(self, descriptor: Descriptor) -> Visit:
        """Fetch a manifest and name its successors; it is pushed once they are there."""
        # Without referrers a manifest the destination has stands for its whole subgraph;
        # with them its children must still be visited for their own referrers.
        async with self.limiter:
            present = await self.dst.exists(descriptor)
        if present and not self.options.referrers:
            await self._skipped(descriptor)
            return Visit()
        data = self.root_data if descriptor is self.root else None
        if data is None:
            async with self.limiter:
                data = await read_all(self.src, descriptor)
        children = successors_of(descriptor, data)
        level = self.levels[descriptor["digest"]]
        for child in children:
            self.levels.setdefault(child["digest"], level)

        async def then() -> Sequence[Descriptor]:
            try:
                await self._push_manifest(descriptor, data, present)
                return await self._referrers(descriptor, level + 1)
            except Exception as error:
                await self.reporter.emit("error", descriptor, error=error)
                raise

        return Visit(children=children, then=then)

    async def _push_manifest(self, descriptor: Descriptor, data: bytes, present: bool) -> None:
        if present:
            await self._skipped(descriptor)
            return
        async with self.limiter:
            await self.reporter.emit("start", descriptor)
            if self.reference_pusher is not None:
                tag = self.root_ref if descriptor is self.root else None
                await self.reference_pusher.push_manifest(descriptor, data, reference=tag)
                self.tagged = self.tagged or tag is not None
            else:
                await self.dst.push(descriptor, _once(data))
            await self._done(descriptor)

    async def _skipped(self, descriptor: Descriptor) -> None:
        self.result.skipped.append(Skipped(descriptor, HELD))
        await self.reporter.emit("skipped", descriptor)

    async def _done(self, descriptor: Descriptor) -> None:
        self.result.copied.append(descriptor)
        await self.reporter.emit("done", descriptor)

    async def _referrers(self, descriptor: Descriptor, level: int) -> list[Descriptor]:
        """The referrers of a copied manifest, to copy next (none unless asked for)."""
        deeper = self.options.depth is None or level <= self.options.depth
        if not (self.options.referrers and deeper) or self.lister is None:
            return []
        async with self.limiter:
            found = await self.lister.referrers(
                descriptor, artifact_type=self.options.artifact_type
            )
        for referrer in found:
            self.levels.setdefault(referrer["digest"], level)
        return found

    async def _blob(self, descriptor: Descriptor) -> None:
        async with self.limiter:
            if await self.dst.exists(descriptor):
                await self._skipped(descriptor)
                return
            if await self._mounted(descriptor):
                return
            await self.reporter.emit("start", descriptor)
            source = self._opener(descriptor)
            if self.restartable is not None:
                # exists() was asked just above: no second HEAD before the upload.
                await self.restartable.push_from(descriptor, source, skip_existing=False)
            else:
                await self._push_refetching(descriptor, source)
            await self._done(descriptor)

    async def _mounted(self, descriptor: Descriptor) -> bool:
        """Whether the destination mounted the blob from the source (when it can)."""
        if self.mounter is None or self.mount_from is None:
            return False
        if not await self.mounter.mount(descriptor, self.mount_from):
            return False
        self.result.mounted.append(descriptor)
        await self.reporter.emit("mounted", descriptor)
        return True

    async def _push_refetching(self, descriptor: Descriptor, source: StreamOpener) -> None:
        """Push to a store that reads its stream once, reading the source anew on mismatch.

        Source bytes failing verification (altered on the way from a registry) are read
        again, ``refetches`` times at most; a store keeps nothing that did not match.
        """
        refetches = DEFAULT_RETRY.retrying(
            DEFAULT_RETRY.refetches, on=IntegrityError, pause=False, level=logging.WARNING
        )
        async for attempt in refetches:
            with attempt:
                async with source() as stream:
                    await self.dst.push(descriptor, stream)

    def _opener(self, descriptor: Descriptor) -> StreamOpener:
        """Opens the source's verified stream, counted for progress, from its first byte."""
        src, reporter = self.src, self.reporter

        @asynccontextmanager
        async def opener() -> AsyncIterator[AsyncIterator[bytes]]:
            async with src.fetch(descriptor) as stream:
                if not reporter:
                    yield stream
                    return
                counted = reporter.counted(descriptor, stream)
                try:
                    yield counted
                finally:
                    await counted.aclose()

        return opener


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
