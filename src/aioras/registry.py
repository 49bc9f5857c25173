"""``AsyncRegistry``: the endpoint client with the operations built on it, one flat surface.

`RegistryClient` (in `aioras.remote`) holds one coroutine
per OCI distribution endpoint; this class adds push, pull, copy, mirror, referrers
(``get_referrers``, ``attach``, ``discover``, ``delete_artifact``) and indexes, each handing
the registry itself to its operation in `aioras.operations`, so a subclass's endpoint
overrides apply. It sits above both: `aioras.remote` and `aioras.operations`
never import it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from . import defaults
from ._http.ratelimit import RateLimits
from .container import Container
from .content.graph import platform_list
from .operations._options import gather, keyword_options_of
from .operations.attach import AttachOptions
from .operations.attach import attach as attach_operation
from .operations.attach import delete_artifact as delete_artifact_operation
from .operations.copy import CopyOptions, copy_graph
from .operations.copy import copy as copy_operation
from .operations.discover import ReferrerNode
from .operations.discover import discover as discover_operation
from .operations.discover import get_referrers as get_referrers_operation
from .operations.index import ManifestLike
from .operations.index import push_index as push_index_operation
from .operations.index import update_index as update_index_operation
from .operations.mirror import MirrorOptions, MirrorProgress
from .operations.mirror import mirror as mirror_operation
from .operations.mirror.plan import MirrorPlan
from .operations.mirror.report import MirrorReport
from .operations.pull import PullOptions
from .operations.pull import pull as pull_operation
from .operations.push import AnnotationSource, PushFiles, PushOptions, SubjectLike
from .operations.push import push as push_operation
from .progress import ProgressCallback
from .remote.client import ContainerLike, RegistryClient, count_calls

__all__ = ["AsyncRegistry", "ContainerLike"]


# The API reference lists inherited methods base by base: the endpoints, then these.
@count_calls
class AsyncRegistry(RegistryClient):
    """An asyncio client for OCI registries: endpoints as coroutines, streaming transfers.

    ``hostname`` is the registry used for names that do not name one; ``insecure`` speaks
    plain http; ``tls_verify`` is True, False, or the path of a CA bundle; ``auth_backend``
    is ``"token"`` (answers basic and bearer challenges), ``"basic"``, or an
    `Authenticator`. Keyword options bound concurrency
    (``push_concurrency`` layers at once per push, ``pull_concurrency`` per pull,
    ``max_transfers`` blob transfers in flight across all calls on this object), set the
    default ``chunk_size`` of chunked uploads, ``timeout`` and ``retry`` policy, and
    ``rate_limits`` (a [`RateLimits`][aioras.RateLimits]: by default no fixed rate, an adaptive
    limit per host that backs off on ``429``, ``503``, timeouts and resets and keeps
    ``Retry-After``; a fixed rate per host is opt-in). Defaults: ``max_transfers`` 32,
    ``push_concurrency`` 5, ``pull_concurrency`` 3. A blob larger than ``range_threshold``
    bytes (default 64 MiB) is downloaded as byte ranges over up to ``download_ranges``
    parallel connections (default 8; 1 turns this off) when the registry, or the storage it
    redirects to, honours ``Range``: each connection is a transfer of its own under
    ``max_transfers``, taken only when a slot is free, and takes the blob's ranges in order
    (up to four each, none under 8 MiB) so that the hash keeps up with them.

    ``cache`` is a [`BlobCache`][aioras.content.cache.BlobCache] (or the path of one) that blobs
    and manifests fetched by digest go through: pulls, copies and mirrors from this registry, the
    oras-py layout API, and ``fetch_manifest``/``get_manifest`` of a reference by digest. A hit
    makes no request for the blob or manifest; tags are always resolved at the registry. By
    default the directory ``ORAS_CACHE`` names, when it is set; ``cache=False`` turns the
    cache off even then.

    ``timeout`` is seconds (or an ``httpx.Timeout``; default 60 s, 15 s to connect). Besides
    bounding each connect, read, write and wait for a pooled connection, its read timeout
    ``T`` bounds a whole answer, so that a server trickling bytes cannot hold a call: once
    a request is sent, its answer must be complete within ``T`` (headers, and the body of
    anything but a blob: manifests, tag lists, tokens, error bodies...), and a blob body
    must average at least 1 KiB/s ([`aioras.defaults.min_blob_rate`][aioras.defaults.min_blob_rate])
    over each window of ``T`` seconds. Either is retried, or resumed, like any timeout, then raises
    [`TimeoutError`][aioras.exceptions.TimeoutError]: with ``timeout=2`` and the default ``retry``,
    within about 20 s. Bodies that are not blobs are also capped in size (see
    [`aioras.defaults`][aioras.defaults]: 16 MiB, 4 MiB for manifests, 1 MiB for tokens, 64 KiB kept
    of error bodies).

    Use it as an async context manager, or call [`aclose`][aioras.registry.AsyncRegistry.aclose]
    when done. One instance belongs to one event loop; its connection pool and tokens are reused
    across calls.

    It pickles, and deep-copies, by its configuration: the options above, session headers,
    the credentials that were set, the Docker config files to read, and a subclass's own
    attributes. The copy builds its own connection pool and locks, and fetches tokens again;
    [`without_credentials`][aioras.registry.AsyncRegistry.without_credentials] gives a copy that
    carries no secret. Pickling while a call on the object is running raises
    [`RegistryInUse`][aioras.exceptions.RegistryInUse]; ``copy.copy`` raises TypeError (a shallow
    copy would share credentials and headers).
    """

    # -- high-level operations -----------------------------------------------------------
    async def push(
        self,
        target: ContainerLike,
        *,
        config_path: str | None = None,
        disable_path_validation: bool = False,
        files: PushFiles | None = None,
        manifest_config: str | None = None,
        annotation_file: AnnotationSource = None,
        manifest_annotations: Mapping[str, str] | None = None,
        subject: SubjectLike | None = None,
        do_chunked: bool = False,
        chunk_size: int | None = None,
        quiet: bool = False,
        artifact_type: str | None = None,
        concurrency: int | None = None,
        progress: ProgressCallback | None = None,
        root: str | os.PathLike[str] | None = None,
        pack_version: str | None = None,
        single_pass: bool = False,
    ) -> httpx.Response:
        return await push_operation(self, target, files, gather(PushOptions, locals()))

    push.__doc__ = push_operation.__doc__

    async def pull(
        self,
        target: ContainerLike,
        *,
        config_path: str | None = None,
        allowed_media_type: Sequence[str] | None = None,
        overwrite: bool = True,
        outdir: str | os.PathLike[str] | None = None,
        concurrency: int | None = None,
        unpack_max_bytes: int | None = None,
        unpack_max_members: int | None = None,
        unpack_max_ratio: float | None = None,
        progress: ProgressCallback | None = None,
        platform: str | None = None,
    ) -> list[str]:
        return await pull_operation(self, target, gather(PullOptions, locals()))

    pull.__doc__ = pull_operation.__doc__

    # -- referrers -------------------------------------------------------------------------
    async def get_referrers(
        self, reference: ContainerLike, *, artifact_type: str | None = None
    ) -> list[dict[str, Any]]:
        """The descriptors of the manifests referring to ``reference`` (its ``subject``).

        Uses the referrers API, or the tag-schema fallback on registries without it; see
        `aioras.operations.discover.get_referrers`.
        """
        found = await get_referrers_operation(self, reference, artifact_type=artifact_type)
        return [dict(d) for d in found]

    async def attach(
        self,
        subject_reference: ContainerLike,
        files: Sequence[str | os.PathLike[str]] = (),
        *,
        artifact_type: str,
        annotations: Mapping[str, str] | None = None,
        annotation_file: str | None = None,
        disable_path_validation: bool = False,
        keep_old_index: bool = False,
        concurrency: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Attach files to a manifest as an untagged OCI 1.1 artifact; return its descriptor.

        See `aioras.operations.attach.attach`.
        """
        options = gather(AttachOptions, locals())
        found = await attach_operation(self, subject_reference, files, options)
        return dict(found)

    async def discover(
        self,
        reference: ContainerLike,
        *,
        depth: int | None = None,
        artifact_type: str | None = None,
        max_depth: int = defaults.max_graph_depth,
        max_nodes: int = defaults.max_graph_nodes,
    ) -> ReferrerNode:
        """The referrers tree of ``reference``; see `aioras.operations.discover.discover`.

        ``max_depth`` and ``max_nodes`` bound the walk: past either it raises
        [`GraphLimitExceeded`][aioras.exceptions.GraphLimitExceeded].
        """
        return await discover_operation(
            self,
            reference,
            depth=depth,
            artifact_type=artifact_type,
            max_depth=max_depth,
            max_nodes=max_nodes,
        )

    async def delete_artifact(self, reference: ContainerLike) -> dict[str, Any]:
        """Delete a manifest, taking a referrer out of its subject's fallback index too.

        See `aioras.operations.attach.delete_artifact`; returns the descriptor deleted.
        """
        return dict(await delete_artifact_operation(self, reference))

    # -- indexes ---------------------------------------------------------------------------
    async def push_index(
        self,
        target: ContainerLike,
        manifests: Iterable[ManifestLike],
        *,
        annotations: Mapping[str, str] | None = None,
        artifact_type: str | None = None,
    ) -> dict[str, Any]:
        """Build and push an image index of ``manifests``; return its descriptor.

        See `aioras.operations.index.push_index`.
        """
        found = await push_index_operation(
            self, target, manifests, annotations=annotations, artifact_type=artifact_type
        )
        return dict(found)

    async def update_index(
        self,
        target: ContainerLike,
        *,
        add: Iterable[ManifestLike] = (),
        remove: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Add, replace or remove entries of an index; return the new index's descriptor.

        See `aioras.operations.index.update_index`.
        """
        return dict(await update_index_operation(self, target, add=add, remove=remove))

    @keyword_options_of(copy_operation)
    async def copy(
        self,
        source_reference: ContainerLike,
        destination_reference: ContainerLike,
        **options: Any,
    ) -> dict[str, Any]:
        """Copy an artifact (its whole graph) between repositories; return the root descriptor.

        Both references are full (``host/name:tag`` or ``@digest``); the hosts may differ
        (credentials are looked up per host). Blobs move as streams from one registry to
        the other, mounted instead when both repositories are on one host; manifests keep
        their exact bytes. A destination by digest is left untagged. Options and errors
        as [`aioras.copy`][aioras.operations.copy.copy], whose keyword options it takes.
        """
        source = self.get_container(source_reference)
        destination = self.get_container(destination_reference)
        platforms = platform_list(options.pop("platform"), options["platforms"])
        result = await copy_graph(
            self.repository(source),
            source.reference,
            self.repository(destination),
            None if destination.digest else _copy_target(destination),
            gather(CopyOptions, {**options, "platforms": platforms}),
            options["progress"],
        )
        return dict(result.root)

    async def mirror(
        self,
        plan: MirrorPlan,
        *,
        concurrency: int = defaults.default_mirror_concurrency,
        dry_run: bool = False,
        keep_going: bool = False,
        state: str | os.PathLike[str] | None = None,
        progress: MirrorProgress | None = None,
        rate_limits: RateLimits | None = None,
    ) -> MirrorReport:
        """Mirror many artifacts: every pair and [`MirrorSpec`][aioras.MirrorSpec] of ``plan``.

        ``plan`` holds ``(source reference, destination reference)`` pairs and
        [`MirrorSpec`][aioras.MirrorSpec] entries (see [`aioras.load_plan`][aioras.load_plan] for
        TOML plans). Each artifact is copied as [`copy`][aioras.operations.copy.copy] does,
        ``concurrency`` artifacts at once (blobs stay bounded by ``max_transfers``); an artifact
        whose destination tag already names the source digest costs one HEAD on each side. A blob
        shared by artifacts of one destination repository is checked and sent once.

        ``dry_run``: resolve both sides and report what would be copied or skipped,
        sending nothing. ``keep_going``: report a failing artifact, or a spec whose tags
        or catalog cannot be listed (a source repository that does not exist), and go on
        (otherwise the first failure is raised once the artifacts under way settle).
        ``state``: a resume file; a mirror started again with it skips the artifacts it
        lists as done, and a completed mirror marks it so that the next run checks
        everything. ``progress``:
        the transfer events of each copy plus one
        `ArtifactEvent` per artifact.
        ``rate_limits``: pace requests per host from now on (see `set_rate_limits`).

        Returns a [`MirrorReport`][aioras.MirrorReport]. Raises ValueError for bad options or a
        malformed state file; [`InvalidMirrorPlan`][aioras.exceptions.InvalidMirrorPlan] for a plan
        entry refused before anything is listed (a malformed name, a destination
        overlapping its source, a pattern that could backtrack without bound; see
        `aioras.operations.mirror.plan`); and without ``keep_going`` the registries'
        typed errors from listing tags or catalogs, a listed name or tag breaking the
        grammar ([`InvalidReference`][aioras.exceptions.InvalidReference]) and the first artifact's
        typed error, each as itself (never an exception group).
        """
        if rate_limits is not None:
            self.set_rate_limits(rate_limits)
        return await mirror_operation(self, plan, gather(MirrorOptions, locals()))


def _copy_target(container: Container) -> str:
    return container.digest or container.tag or defaults.default_tag
