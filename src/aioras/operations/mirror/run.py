"""``mirror``: many artifacts in one call, as a planner and scheduler over
[`copy`][aioras.operations.copy.copy].

The plan is expanded into one job per artifact (tags and catalogs listed on the way, see
`aioras.operations.mirror.plan`); ``concurrency`` workers take jobs in plan order and
run [`copy`][aioras.operations.copy.copy] for each, so a re-sync of an artifact whose
destination tag already names the source digest costs one HEAD on each side. Destination
repositories are shared by every job of one mirror: a blob is checked (HEAD) and sent once
per repository however many artifacts hold it, and blobs between repositories of one host
are mounted (as ``copy`` does).

A first copy skips what a re-sync needs: once one destination tag of a repository turns
out missing, the repository's tags are listed (one request) and the other missing tags cost
no HEAD; and for a tag the destination lacks, the source manifest is fetched (GET) when it
is resolved instead of after a HEAD, its bytes checked against their digest as always. A
re-sync, where every destination tag is there, still costs one HEAD on each side.

With ``referrers``, an artifact whose destination tag names the source digest is checked
by listing referrers (on the source for each manifest of its graph, on the destination
where the source lists any) instead of walking the graph: in place, it is skipped as up to
date; missing referrers are copied (``copied the referrers the destination lacked``). A
dry run decides the same way.

With several ``platforms`` an index is copied as a new index of the entries selected
(see [`MirrorSpec`][aioras.MirrorSpec]): a re-sync fetches the source
index (one GET instead of a HEAD) to rebuild it, and skips when the destination tag
names the result.
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from ... import defaults
from ... import exceptions as exc
from ...container import Container, names_digest
from ...content.graph import is_manifest, successors_of
from ...content.store import StreamOpener
from ...descriptor import Descriptor, as_descriptor
from ...progress import TransferEvent
from ...remote.repository import Repository
from ..copy import CopyOptions, copy_graph, select_root
from .plan import Connection, MirrorJob, MirrorPlan, expand
from .report import ArtifactEvent, ArtifactFailure, ArtifactResult, MirrorReport, Outcome
from .state import MirrorState

if TYPE_CHECKING:
    from ...remote.client import RegistryClient

__all__ = ["Clients", "MirrorOptions", "MirrorProgress", "mirror", "run_jobs"]

logger = logging.getLogger(__name__)

MirrorProgress = Callable[[TransferEvent | ArtifactEvent], Awaitable[None] | None]
"""What ``progress=`` takes: transfer events of each copy, plus one ArtifactEvent each."""

UP_TO_DATE = "destination tag already names the source digest"
REFERRERS_ADDED = "copied the referrers the destination lacked"
WOULD_ADD_REFERRERS = "would copy the referrers the destination lacks"
IN_STATE = "done in an earlier run (state file)"
TAGGED = "tagged: the destination had the content already"
REPOINTED = "re-pointed the tag from {previous}"
WOULD_REPOINT = "would re-point the tag from {previous}"


@dataclass(frozen=True)
class MirrorOptions:
    """The keyword options of a mirror, gathered: each is `mirror`'s option of its name.

    Documented with [`aioras.AsyncRegistry.mirror`][aioras.registry.AsyncRegistry.mirror], whose
    keyword parameters (``rate_limits`` apart) are these fields, with the same defaults.
    """

    concurrency: int = defaults.default_mirror_concurrency
    dry_run: bool = False
    keep_going: bool = False
    state: str | os.PathLike[str] | None = None
    progress: MirrorProgress | None = None


# The blob digests the current job claimed for upload (see _SharedRepository.exists).
_CLAIMS: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "aioras_mirror_claims", default=None
)


async def mirror(
    registry: RegistryClient, plan: MirrorPlan, options: MirrorOptions
) -> MirrorReport:
    """Mirror every artifact ``plan`` names; return a [`MirrorReport`][aioras.MirrorReport].

    See [`aioras.AsyncRegistry.mirror`][aioras.registry.AsyncRegistry.mirror] for the options.
    Raises ValueError for bad options or a bad state file,
    [`InvalidMirrorPlan`][aioras.exceptions.InvalidMirrorPlan] for a plan entry refused, and, unless
    ``keep_going``, the listing errors of the plan's registries (a source repository that does not
    exist...), a listed name or tag that breaks the grammar
    ([`InvalidReference`][aioras.exceptions.InvalidReference]) and the first artifact's failure
    (with the work done so far recorded in ``state``); with ``keep_going`` all of these are failures
    in the report (a spec that could not be listed is one failure naming the spec) and the rest of
    the plan runs. An error is raised as itself, never wrapped in an exception group.
    """
    if options.concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {options.concurrency}")
    started = time.monotonic()
    requests_before = _requests(registry)
    resume = MirrorState.load(options.state) if options.state is not None else None
    keep_going, progress = options.keep_going, options.progress
    refused: list[ArtifactFailure] | None = [] if keep_going else None
    async with Clients(registry) as clients:
        jobs = await expand(registry, plan, refused=refused, connect=clients.get)
        for failure in refused or ():
            event = ArtifactEvent(
                "artifact", "failed", failure.source, failure.destination, error=failure.error
            )
            await _emit(progress, event)
        report = await run_jobs(registry, jobs, options, resume=resume, clients=clients)
        report.requests = _requests(registry) - requests_before + clients.requests()
    report.failed[:0] = refused or []
    if resume is not None and not options.dry_run and report.ok:
        await resume.finish()
    report.duration = time.monotonic() - started
    if report.failed and not keep_going:
        error = report.failed[0].error
        assert error is not None
        raise error
    return report


def _requests(registry: RegistryClient) -> int:
    pacer = registry._transport.pacer
    return pacer.requests() if pacer is not None else 0


class Clients:
    """A mirror's registry objects: its own, and one per `Connection` its jobs name.

    Those are made on first use from the mirror's own (see `Connection.connect`)
    and closed when the mirror ends.
    """

    def __init__(self, base: RegistryClient) -> None:
        self.base = base
        self.made: dict[Connection, RegistryClient] = {}

    def get(self, connection: Connection | None) -> RegistryClient:
        """The registry object reaching a side through ``connection`` (None: the mirror's)."""
        if connection is None:
            return self.base
        client = self.made.get(connection)
        if client is None:
            client = self.made[connection] = connection.connect(self.base)
        return client

    def requests(self) -> int:
        """HTTP requests the objects made here have sent."""
        return sum(_requests(client) for client in self.made.values())

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for client in self.made.values():
            await client.aclose()


async def run_jobs(
    registry: RegistryClient,
    jobs: list[MirrorJob],
    options: MirrorOptions,
    *,
    resume: MirrorState | None = None,
    clients: Clients | None = None,
) -> MirrorReport:
    """Run expanded jobs with ``options.concurrency`` workers (requests and duration left at 0).

    Failures are in the report, never raised; without ``keep_going`` no job starts after
    the first failure. What escapes a job (an error of the ``progress`` callback) is
    raised as itself, not in an exception group. A job's connections are reached through
    ``clients`` (default: objects made here from ``registry`` and closed at the end).
    ``resume`` is the loaded state file (``options.state`` is not read here).
    """
    if clients is None:
        async with Clients(registry) as own:
            return await run_jobs(registry, jobs, options, resume=resume, clients=own)
    run = _Run(clients, options, resume)
    concurrency = options.concurrency
    pending: Iterator[MirrorJob] = iter(jobs)
    try:
        async with anyio.create_task_group() as workers:
            for _ in range(min(concurrency, len(jobs))):
                workers.start_soon(run.worker, pending)
    except BaseExceptionGroup as group:
        raise _first_error(group) from None
    return run.report


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error of a worker group (the first if several workers failed at once)."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


async def _emit(progress: MirrorProgress | None, event: ArtifactEvent) -> None:
    if progress is not None:
        result = progress(event)
        if result is not None:
            await result


class _Run:
    """One mirror's shared state: report, destination repositories, options."""

    def __init__(
        self,
        clients: Clients,
        options: MirrorOptions,
        state: MirrorState | None,
    ) -> None:
        self.clients, self.concurrency = clients, options.concurrency
        self.dry_run, self.keep_going, self.state = options.dry_run, options.keep_going, state
        self.progress = options.progress
        self.report = MirrorReport()
        self.destinations: dict[tuple[Connection | None, str], _SharedRepository] = {}
        self.stopped = False

    async def worker(self, pending: Iterator[MirrorJob]) -> None:
        # Workers share one iterator: each takes the next job when it is free.
        for job in pending:
            if self.stopped:
                return
            await self.one(job)

    def destination(self, job: MirrorJob) -> _SharedRepository:
        """The job's destination repository, shared by the jobs reaching it the same way."""
        key = (job.destination_connection, job.destination_repository)
        repo = self.destinations.get(key)
        if repo is None:
            registry = self.clients.get(job.destination_connection)
            repo = self.destinations[key] = _SharedRepository(
                registry, registry.get_container(job.destination_repository)
            )
        return repo

    def source(self, job: MirrorJob) -> Repository:
        """The job's source repository, through its connection."""
        return self.clients.get(job.source_connection).repository(job.source_repository)

    async def one(self, job: MirrorJob) -> None:
        known = self.state.known(job.key) if self.state is not None else None
        if known is not None:
            await self.settle(job, "skipped", known, IN_STATE)
            return
        claims: set[str] = set()
        token = _CLAIMS.set(claims)
        try:
            if self.dry_run:
                await self.plan_one(job)
            else:
                await self.copy_one(job)
        except Exception as error:
            await self.fail(job, error)
        finally:
            _CLAIMS.reset(token)
            if claims:  # then its destination parsed: a malformed one fails the job above
                self.destination(job).release(claims)

    async def plan_one(self, job: MirrorJob) -> None:
        source = self.source(job)
        root = await source.resolve(_reference(job.source))
        registry = self.clients.get(job.destination_connection)
        destination = registry.repository(job.destination_repository)
        try:
            present = await destination.resolve(_reference(job.destination))
        except exc.NotFoundError:
            present = None
        chosen, _ = await select_root(source, root, job.platforms, single_as_is=True)
        if present is None:
            await self.settle(job, "planned", chosen["digest"], "would copy", root["digest"])
        elif present["digest"] == chosen["digest"]:
            if _with_referrers(job) and not await _referrers_in_place(
                source, destination, root, job.artifact_type
            ):
                reason = WOULD_ADD_REFERRERS
                await self.settle(job, "planned", chosen["digest"], reason, root["digest"])
            else:
                await self.settle(job, "skipped", chosen["digest"], UP_TO_DATE, root["digest"])
        else:
            reason = WOULD_REPOINT.format(previous=present["digest"])
            await self.settle(job, "planned", chosen["digest"], reason, root["digest"])

    async def copy_one(self, job: MirrorJob) -> None:
        destination = self.destination(job)
        target = _reference(job.destination)
        await destination.look_up_first(target)
        try:
            await self._copy_looked_up(job, destination, target)
        finally:
            destination.kept.pop(target, None)

    async def _copy_looked_up(
        self, job: MirrorJob, destination: _SharedRepository, target: str
    ) -> None:
        referrers_missing = False
        if _with_referrers(job):
            # copy_graph walks the whole graph when referrers are asked for: an artifact
            # already in place costs its HEADs and the referrers' listings instead.
            in_place = await self.referrers_check(job, destination, target)
            if in_place is not None and in_place[1]:
                root = in_place[0]
                self.report.bytes_skipped += root["size"]
                if self.state is not None:
                    await self.state.record(job.key, root["digest"])
                digest = root["digest"]
                await self.settle(job, "skipped", digest, UP_TO_DATE, digest)
                return
            referrers_missing = in_place is not None
        options = CopyOptions(
            referrers=job.referrers,
            artifact_type=job.artifact_type,
            platforms=job.platforms,
            concurrency=self.concurrency,
        )
        source_registry = self.clients.get(job.source_connection)
        result = await copy_graph(
            _JobSource(
                source_registry,
                source_registry.get_container(job.source_repository),
                # Platforms need the index's bytes even on a re-sync: GET it, no HEAD first.
                fetch_on_resolve=destination.lacks(target) or job.platforms is not None,
            ),
            _reference(job.source),
            destination,
            target,
            options,
            self.progress,
            single_as_is=True,
        )
        root = result.root
        self.report.bytes_sent += result.bytes_copied
        self.report.bytes_skipped += result.bytes_skipped + result.bytes_mounted
        # Recorded before it is reported: whoever saw the event can rely on the file.
        if self.state is not None:
            await self.state.record(job.key, root["digest"])
        source_digest = result.source_root["digest"]
        # What the destination tag named before (absent: not asked, as with referrers).
        previous = destination.found.pop(target, root["digest"])
        if referrers_missing and previous == root["digest"]:
            await self.settle(job, "copied", root["digest"], REFERRERS_ADDED, source_digest)
        elif previous not in (None, root["digest"]):
            reason = REPOINTED.format(previous=previous)
            await self.settle(job, "copied", root["digest"], reason, source_digest)
        elif not result.up_to_date:
            await self.settle(job, "copied", root["digest"], "", source_digest)
        elif previous is None:
            await self.settle(job, "copied", root["digest"], TAGGED, source_digest)
        else:
            await self.settle(job, "skipped", root["digest"], UP_TO_DATE, source_digest)

    async def referrers_check(
        self, job: MirrorJob, destination: _SharedRepository, target: str
    ) -> tuple[Descriptor, bool] | None:
        """(root, whether every referrer is there) when the tag names the source's root.

        None when the destination tag is missing or names another digest: the copy runs.
        Costs one HEAD on each side, plus the referrers' listings when the roots agree.
        """
        try:
            present = await destination.resolve(target)
        except exc.NotFoundError:
            return None
        source = self.source(job)
        root = await source.resolve(_reference(job.source))
        if present["digest"] != root["digest"]:
            return None
        in_place = await _referrers_in_place(source, destination, root, job.artifact_type)
        return root, in_place

    async def settle(
        self,
        job: MirrorJob,
        outcome: Outcome,
        digest: str,
        reason: str,
        source_digest: str | None = None,
    ) -> None:
        result = ArtifactResult(job.source, job.destination, digest, reason, source_digest)
        {"copied": self.report.copied, "skipped": self.report.skipped}.get(
            outcome, self.report.planned
        ).append(result)
        await self.emit(
            ArtifactEvent("artifact", outcome, job.source, job.destination, digest, reason)
        )

    async def fail(self, job: MirrorJob, error: Exception) -> None:
        logger.warning("mirror of %s failed: %s", job.key, error)
        self.report.failed.append(
            ArtifactFailure(job.source, job.destination, type(error).__name__, str(error), error)
        )
        await self.emit(
            ArtifactEvent("artifact", "failed", job.source, job.destination, error=error)
        )
        self.stopped = self.stopped or not self.keep_going

    async def emit(self, event: ArtifactEvent) -> None:
        await _emit(self.progress, event)


def _with_referrers(job: MirrorJob) -> bool:
    """Whether the job copies referrers of the root it names (no platforms picking one)."""
    return job.referrers and job.platforms is None


async def _referrers_in_place(
    source: Repository, destination: Repository, root: Descriptor, artifact_type: str | None
) -> bool:
    """Whether the destination lists every referrer the source lists, at any depth.

    The root is at the destination already (its tag names it), and with it the manifests
    of an index; each manifest of the graph, and each referrer, has its referrers listed
    on the source, and where there are any, on the destination too. The listings are what
    a copy with ``referrers`` would walk for; nothing else is fetched but an index's bytes.
    """
    pending = [root]
    seen = {root["digest"]}
    while pending:
        node = pending.pop()
        if node["mediaType"] in defaults.index_media_types:
            data = await source.fetch_manifest(node)
            for child in successors_of(node, data):
                if is_manifest(child) and child["digest"] not in seen:
                    seen.add(child["digest"])
                    pending.append(child)
        theirs = await source.referrers(node, artifact_type=artifact_type)
        if not theirs:
            continue
        ours = {d["digest"] for d in await destination.referrers(node, artifact_type=artifact_type)}
        for referrer in theirs:
            if referrer["digest"] not in ours:
                return False
            if referrer["digest"] not in seen:
                seen.add(referrer["digest"])
                pending.append(referrer)
    return True


def _reference(full: str) -> str:
    """The tag or ``sha256:...`` digest of a full reference (``latest`` when it has none)."""
    return Container(full).reference


# Blobs this large are asked about even where the mirror expects nothing (see exists).
_ASK_FIRST = 1024 * 1024


class _SharedRepository(Repository):
    """A destination repository shared by every job of one mirror.

    Blob checks are remembered: a blob found or sent once is not asked about again, and
    while one job checks and sends a blob, another job needing it waits for that instead
    of sending it too. A job's claim on a blob ends when its upload (or mount) does, and
    in any case when the job ends. Tags: the first one found missing has the repository's
    tags listed, and the listing (kept up to date with the tags this mirror pushes) then
    answers for every other tag that is not in it, with no request.
    """

    def __init__(self, registry: RegistryClient, container: Container) -> None:
        super().__init__(registry, container)
        self.present: set[str] = set()
        self.claimed: dict[str, anyio.Event] = {}
        # The repository's tags, listed once a tag was found missing (None: not listed).
        self.tags: set[str] | None = None
        # tag -> the digest it named when resolved (None: missing), for the report.
        self.found: dict[str, str | None] = {}
        self.untagged = False  # whether that listing was empty
        self._listing = anyio.Lock()
        # The first tag lookup goes alone (`look_up_first`); its answer, kept for its job.
        self._first_lookup = anyio.Lock()
        self._looked_up = False
        self.kept: dict[str, Descriptor] = {}

    @property
    def fresh(self) -> bool:
        """Whether the tag listing was empty: the repository holds only what this mirror sent."""
        return self.tags is not None and self.untagged

    def lacks(self, reference: str) -> bool:
        """Whether the tag listing shows ``reference`` missing (False when not listed)."""
        return self.tags is not None and not names_digest(reference) and reference not in self.tags

    async def look_up_first(self, reference: str) -> None:
        """Resolve the repository's first tag alone, so that the others can use its listing.

        A mirror's jobs start together: without this, every job of a new repository would
        HEAD its tag, and GET its source manifest only after a HEAD, before the first 404
        had the tags listed (200 artifacts in 20 new repositories: 203 requests more, a
        ninth of the first copy's). The others wait one lookup for it. The descriptor found
        is kept for the same job's `resolve`; an error other than a 404 is that job's.
        """
        if self._looked_up or names_digest(reference):
            return
        async with self._first_lookup:
            await self._look_up_unless_done(reference)

    async def _look_up_unless_done(self, reference: str) -> None:
        if self._looked_up:  # the job that held the lock did it
            return
        try:
            self.kept[reference] = await self.resolve(reference)
        except exc.NotFoundError:
            pass
        finally:
            self._looked_up = True

    async def resolve(self, reference: str) -> Descriptor:
        """Resolve as a repository does; a tag the listing lacks costs no request.

        The first tag found missing (404) has the repository's tags listed once; a
        repository the registry does not know lists as no tags. A descriptor kept by
        `look_up_first` answers once, with no request.
        """
        kept = self.kept.pop(reference, None)
        if kept is not None:
            return kept
        if self.lacks(reference):
            self.found[reference] = None
            raise exc.NotFoundError(
                f"tag {reference} not in the tag list of {self.name}", status_code=404
            )
        try:
            descriptor = await super().resolve(reference)
        except exc.NotFoundError:
            if not names_digest(reference):
                self.found[reference] = None
                await self._list_tags()
            raise
        if not names_digest(reference):
            self.found[reference] = descriptor["digest"]
        return descriptor

    async def _list_tags(self) -> None:
        async with self._listing:
            if self.tags is not None:
                return
            try:
                tags = set(await self.registry.get_tags(self.container))
            except exc.NotFoundError:
                tags = set()
            except exc.RegistryError as error:
                # Listing refused (private, rate-limited...): HEAD each tag as before.
                logger.debug("tags of %s not listed: %s", self.name, error)
                return
            self.tags, self.untagged = tags, not tags

    async def push_manifest(
        self, descriptor: Descriptor, data: bytes, *, reference: str | None = None
    ) -> None:
        """Push as a repository does; a tag pushed is added to the listing."""
        await super().push_manifest(descriptor, data, reference=reference)
        self.present.add(descriptor["digest"])
        if reference is not None and self.tags is not None:
            self.tags.add(reference)

    async def tag(self, descriptor: Descriptor, reference: str) -> None:
        """Tag as a repository does; the tag is added to the listing."""
        await super().tag(descriptor, reference)
        if self.tags is not None:
            self.tags.add(reference)

    async def exists(self, descriptor: Descriptor) -> bool:
        """Whether the blob is there, asking the registry once per blob (see class doc).

        A manifest is asked about each time. In a repository whose tag listing was empty
        (or that the registry does not know), only what this mirror sent there is taken to
        be present and nothing under 1 MiB is asked about, which spares a first copy a HEAD
        per small blob (most of a fifth of its requests). Larger blobs are still asked
        about: an interrupted earlier run may have left them, and a HEAD is cheap beside
        sending them again; a small untagged blob left there is sent again.
        """
        if is_manifest(descriptor):
            if descriptor["digest"] in self.present:
                return True
            if self.fresh:
                return False
            return await super().exists(descriptor)
        digest = descriptor["digest"]
        while digest not in self.present:
            claim = self.claimed.get(digest)
            if claim is None:
                break
            await claim.wait()
        if digest in self.present:
            return True
        self.claimed[digest] = anyio.Event()
        claims = _CLAIMS.get()
        if claims is not None:
            claims.add(digest)
        if self.fresh and descriptor["size"] < _ASK_FIRST:
            return False  # claimed: a job needing it too waits for this job's upload
        try:
            found = await super().exists(descriptor)
        except BaseException:
            self.release({digest})
            raise
        if found:
            self.present.add(digest)
            self.release({digest})
        return found

    async def push_from(
        self, descriptor: Descriptor, source: StreamOpener, *, skip_existing: bool = True
    ) -> None:
        """Push, then remember the blob as present and end this job's claim on it."""
        try:
            await super().push_from(descriptor, source, skip_existing=skip_existing)
            self.present.add(descriptor["digest"])
        finally:
            self.release({descriptor["digest"]})

    async def mount(self, descriptor: Descriptor, from_repository: str) -> bool:
        """Mount; a mounted blob is remembered as present and its claim ended."""
        try:
            mounted = await super().mount(descriptor, from_repository)
        except BaseException:
            self.release({descriptor["digest"]})
            raise
        if mounted:
            self.present.add(descriptor["digest"])
            self.release({descriptor["digest"]})
        return mounted

    def release(self, digests: set[str]) -> None:
        """End claims on ``digests``: the jobs waiting for them look again."""
        for digest in digests:
            claim = self.claimed.pop(digest, None)
            if claim is not None:
                claim.set()


class _JobSource(Repository):
    """The source repository of one job.

    With ``fetch_on_resolve`` (the destination lacks the tag, or platforms are chosen, so
    the manifest will be read anyway) a tag is resolved by fetching its manifest (GET),
    and those bytes serve the copy's read of the manifest; otherwise it is a plain
    repository (a HEAD).
    """

    def __init__(
        self, registry: RegistryClient, container: Container, *, fetch_on_resolve: bool
    ) -> None:
        super().__init__(registry, container)
        self.fetch_on_resolve = fetch_on_resolve
        self.fetched: dict[str, bytes] = {}

    async def resolve(self, reference: str) -> Descriptor:
        """The descriptor ``reference`` names; see the class doc."""
        if not self.fetch_on_resolve or names_digest(reference):
            return await super().resolve(reference)
        data, descriptor = await self.registry.fetch_manifest_bytes(self.at(reference))
        self.fetched[descriptor["digest"]] = data
        return as_descriptor(descriptor)

    async def fetch_manifest(self, descriptor: Descriptor) -> bytes:
        """A manifest's bytes: the ones fetched when resolving, or fetched now."""
        data = self.fetched.get(descriptor["digest"])
        if data is not None and len(data) == descriptor["size"]:
            return data
        return await super().fetch_manifest(descriptor)
