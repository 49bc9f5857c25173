"""One repository of a registry as a content store ([`Target`][aioras.content.store.Target]).

``reg.repository("host/name")`` returns a [`Repository`][aioras.remote.repository.Repository]: the
store verbs built on the registry's endpoint methods, so they share its connection pool,
authentication, retries, transfer limit and resumable uploads. Manifests travel as their exact
bytes. Referrers come from the referrers API when the registry has one, else from the tag schema (an
index tagged ``<alg>-<hex>`` after the subject's digest), which this store also maintains when it
pushes a manifest with a ``subject`` to a registry that does not index referrers itself. What the
registry can do is learned once and remembered per repository on the registry object.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from .. import defaults
from .. import exceptions as exc
from .._http.responses import Paced, wrap_http_error
from .._http.urls import redact
from .._manifests import media_type_of
from ..container import Container
from ..content.graph import descriptor_list, is_manifest, parse_document, referrer_descriptor
from ..content.store import StreamOpener, verified
from ..descriptor import Descriptor, as_descriptor
from ..digest import parse_digest, verify_bytes
from ._pages import follow_pages

if TYPE_CHECKING:
    from .client import RegistryClient

__all__ = ["Repository", "RepositoryState", "referrers_tag"]

logger = logging.getLogger(__name__)

_INDEX = defaults.default_index_media_type
_MAX_REFERRER_PAGES = 1000


@dataclass
class RepositoryState:
    """What a registry showed it can do for one repository, kept on the registry object."""

    referrers_api: bool | None = None
    """True: the referrers API answers; False: use the tag schema; None: not known yet."""
    subject_locks: dict[str, anyio.Lock] = field(default_factory=dict)
    """One lock per subject whose tag-schema index this process is rewriting."""


def referrers_tag(digest: str) -> str:
    """The tag-schema tag listing the referrers of ``digest``: ``<alg>-<hex>``."""
    algorithm, encoded = parse_digest(digest)
    return f"{algorithm}-{encoded}"[:128]


class Repository:
    """One repository of a registry as a [`Target`][aioras.content.store.Target].

    Also a [`ReferrerLister`][aioras.content.store.ReferrerLister] and a
    [`Deleter`][aioras.content.store.Deleter], with the capabilities a copy uses:
    [`Mounter`][aioras.content.store.Mounter] (from repositories of the same host),
    [`ReferencePusher`][aioras.content.store.ReferencePusher],
    [`RestartablePusher`][aioras.content.store.RestartablePusher] and
    [`TransferBudget`][aioras.content.store.TransferBudget] (the registry's ``max_transfers``).
    Obtain it with [`aioras.AsyncRegistry.repository`][aioras.registry.AsyncRegistry.repository]; it
    holds no connection of its own.
    """

    def __init__(self, registry: RegistryClient, container: Container) -> None:
        self.registry = registry
        self.container = container
        self.state: RepositoryState = registry._repository_state(container)
        self.delete_superseded = True
        """Delete a tag-schema index once a rewritten one replaces it (False: keep it)."""

    def __repr__(self) -> str:
        return f"Repository({self.name!r})"

    @property
    def name(self) -> str:
        """``host/namespace/repository``."""
        return f"{self.container.registry}/{self.container.api_prefix}"

    @property
    def host(self) -> str:
        """The registry host (with port) the repository lives on."""
        return self.container.registry

    @property
    def max_transfers(self) -> int:
        """The registry object's transfer limit, which every use of it shares."""
        return self.registry.max_transfers

    def at(self, reference: str) -> Container:
        """The container of this repository at a tag or digest."""
        return self.container.with_reference(reference)

    # -- reading -------------------------------------------------------------------------
    async def exists(self, descriptor: Descriptor) -> bool:
        """Whether the repository holds ``descriptor``'s manifest or blob (a HEAD request)."""
        if not is_manifest(descriptor):
            return await self.registry.blob_exists(descriptor, self.container)
        try:
            found = await self.registry.resolve(
                self.at(descriptor["digest"]),
                [descriptor["mediaType"], *defaults.default_manifest_accepted_media_types],
            )
        except exc.NotFoundError:
            return False
        return bool(found["digest"] == descriptor["digest"])

    @asynccontextmanager
    async def fetch(self, descriptor: Descriptor) -> AsyncIterator[AsyncIterator[bytes]]:
        """Open a verified stream of a manifest's exact bytes or a blob's.

        Raises [`NotFoundError`][aioras.exceptions.NotFoundError] when the repository lacks it; the
        stream raises [`DigestMismatch`][aioras.exceptions.DigestMismatch] or
        [`SizeMismatch`][aioras.exceptions.SizeMismatch] when the bytes are not the descriptor's.
        """
        cache = self.registry.cache
        if cache is not None and not is_manifest(descriptor):
            async with cache.fetch(descriptor, lambda: self._fetch_origin(descriptor)) as stream:
                yield stream
            return
        async with self._fetch_origin(descriptor) as stream:
            yield stream

    @asynccontextmanager
    async def _fetch_origin(self, descriptor: Descriptor) -> AsyncIterator[AsyncIterator[bytes]]:
        """`fetch` from the registry itself (manifests through `fetch_manifest`)."""
        if is_manifest(descriptor):
            data = await self.fetch_manifest(descriptor)

            async def once() -> AsyncIterator[bytes]:
                yield data

            stream = verified(descriptor, once())
            try:
                yield stream
            finally:
                await stream.aclose()
            return
        async with self.registry.stream_blob(self.container, descriptor["digest"]) as response:
            stream = verified(
                descriptor, _paced_body(response), what=f"blob {descriptor['digest']}"
            )
            try:
                yield stream
            finally:
                await stream.aclose()

    async def fetch_manifest(self, descriptor: Descriptor) -> bytes:
        """A manifest's exact bytes, checked against ``descriptor`` (digest and size).

        By digest, so through the registry's cache when it has one.
        """
        if descriptor["size"] > defaults.max_manifest_size:
            raise exc.ManifestTooLarge(descriptor["size"], defaults.max_manifest_size)
        cache = self.registry.cache
        if cache is None:
            return await self._fetch_manifest_origin(descriptor)

        @asynccontextmanager
        async def origin() -> AsyncIterator[AsyncIterator[bytes]]:
            data = await self._fetch_manifest_origin(descriptor)

            async def once() -> AsyncIterator[bytes]:
                yield data

            yield once()

        async with cache.lease(descriptor, origin) as blob:
            return await blob.read()

    async def _fetch_manifest_origin(self, descriptor: Descriptor) -> bytes:
        # At the registry itself: the cache's lease on this digest is held while it runs.
        data, _ = await self.registry._manifest_bytes_at_origin(
            self.at(descriptor["digest"]), [descriptor["mediaType"]], defaults.max_manifest_size
        )
        if len(data) != descriptor["size"]:
            raise exc.SizeMismatch(
                expected=descriptor["size"],
                actual=len(data),
                what=f"manifest {descriptor['digest']}",
            )
        return data

    async def resolve(self, reference: str) -> Descriptor:
        """The descriptor a tag or digest names (a HEAD request); NotFoundError when none."""
        return as_descriptor(await self.registry.resolve(self.at(reference)))

    # -- writing -------------------------------------------------------------------------
    async def push(self, descriptor: Descriptor, content: AsyncIterable[bytes]) -> None:
        """Store ``content`` as ``descriptor`` names it; the registry checks the digest.

        The stream is read once: an upload that breaks off and must start over raises
        [`StreamConsumed`][aioras.exceptions.StreamConsumed] (use `push_from` to restart).
        """
        await self.push_from(descriptor, _one_shot(descriptor, content))

    async def push_from(
        self, descriptor: Descriptor, source: StreamOpener, *, skip_existing: bool = True
    ) -> None:
        """Store what ``source`` opens (from its first byte, again after a fault).

        A manifest is read whole (up to 4 MiB), verified, and PUT as exactly those bytes
        under its digest; one with a ``subject`` is added to the subject's tag-schema index
        when the registry does not index referrers itself. A blob is streamed to the
        registry with no file in between, after a HEAD unless ``skip_existing`` is False
        (for a caller that has just looked). Raises
        [`DigestMismatch`][aioras.exceptions.DigestMismatch] or
        [`SizeMismatch`][aioras.exceptions.SizeMismatch] for content that does not match, and the
        registry's typed errors.
        """
        if not is_manifest(descriptor):
            await self.registry.upload_blob_stream(
                source, self.container, descriptor, skip_existing=skip_existing
            )
            return
        data = await _read_small(descriptor, source)
        await self.push_manifest(descriptor, data)

    async def push_manifest(
        self, descriptor: Descriptor, data: bytes, *, reference: str | None = None
    ) -> None:
        """PUT manifest bytes (checked against ``descriptor``) under its digest or ``reference``."""
        verify_bytes(data, descriptor["digest"], what=f"manifest {descriptor['digest']}")
        response = await self.registry.push_manifest_bytes(
            data,
            self.container,
            media_type=descriptor["mediaType"],
            reference=reference or descriptor["digest"],
        )
        await self.record_referrer(descriptor, data, response)

    async def record_referrer(
        self, descriptor: Descriptor, data: bytes, response: httpx.Response
    ) -> None:
        """After a manifest PUT: index a referrer where the registry did not do it itself.

        A manifest with a ``subject`` stored by a registry that answers ``OCI-Subject``
        shows the referrers API (remembered); without that header it is added to its
        subject's tag-schema index. Anything else is left alone.
        """
        entry = referrer_descriptor(descriptor, data)
        if entry is None:
            return
        if response.headers.get("oci-subject"):
            self.state.referrers_api = True
        elif self.state.referrers_api is not True:
            await self._add_to_tag_index(*entry)

    async def tag(self, descriptor: Descriptor, reference: str) -> None:
        """Tag a manifest the repository holds, re-sending its exact bytes (never re-serialised)."""
        data = await self.fetch_manifest(descriptor)
        await self.registry.push_manifest_bytes(
            data, self.container, media_type=descriptor["mediaType"], reference=reference
        )

    def mount_source(self, source: object) -> str | None:
        """The repository path to mount ``source``'s blobs from: another repository here.

        None for a store that is no repository, one of another host, or this one.
        """
        if isinstance(source, Repository) and source.host == self.host and source.name != self.name:
            return source.container.api_prefix
        return None

    async def mount(self, descriptor: Descriptor, from_repository: str) -> bool:
        """Mount a blob from another repository of this registry; False when refused."""
        try:
            return await self.registry.mount_blob(
                self.container, descriptor["digest"], from_repository
            )
        except (exc.PermissionDenied, exc.AuthenticationError, exc.NotFoundError) as error:
            logger.debug("mount of %s refused: %s", descriptor["digest"], error)
            return False

    async def delete(self, descriptor: Descriptor) -> None:
        """Delete a manifest (and the tags naming it) or a blob.

        A referrer is also taken out of its subject's tag-schema index when the registry
        has no referrers API.

        Raises [`NotFoundError`][aioras.exceptions.NotFoundError] when absent and
        [`UnsupportedOperation`][aioras.exceptions.UnsupportedOperation] when deletes are disabled.
        """
        if not is_manifest(descriptor):
            await self.registry.delete_blob(self.container, descriptor["digest"])
            return
        await self.delete_manifest(descriptor["digest"])

    async def delete_manifest(self, digest: str) -> None:
        """Delete the manifest ``digest`` (and the tags naming it).

        Where the registry has no referrers API (or it is not known yet), the manifest is
        read first: a referrer is then also taken out of its subject's tag-schema index,
        so that listings stop naming a manifest that is gone. Raises
        [`NotFoundError`][aioras.exceptions.NotFoundError] when absent and
        [`UnsupportedOperation`][aioras.exceptions.UnsupportedOperation] when deletes are disabled.
        """
        subject = None
        if self.state.referrers_api is not True:
            subject = await self._subject_of(digest)
        await self.registry._delete_manifest_request(self.container, digest)
        if subject is not None:
            await self._remove_from_tag_index(subject, digest)

    async def _subject_of(self, digest: str) -> str | None:
        """The digest of the manifest's ``subject``, None when it has none."""
        try:
            data, found = await self.registry.fetch_manifest_bytes(self.at(digest))
            entry = referrer_descriptor(as_descriptor(found), data)
        except exc.ManifestValidationError as error:
            # Too large or not JSON: no referrer aioras could have indexed; delete it anyway.
            logger.debug("manifest %s not read before its delete: %s", digest, error)
            return None
        return None if entry is None else entry[0]

    # -- referrers -----------------------------------------------------------------------
    async def referrers(
        self, descriptor: Descriptor, *, artifact_type: str | None = None
    ) -> list[Descriptor]:
        """Descriptors of the manifests whose ``subject`` is ``descriptor``.

        Asks the referrers API (following ``Link`` pages; filtering here unless the
        registry says ``OCI-Filters-Applied: artifactType``); when the registry answers
        404 or something other than an image index, reads the tag-schema index instead
        and remembers, for this repository, not to ask the API again.
        """
        if self.state.referrers_api is not False:
            found = await self._referrers_from_api(descriptor, artifact_type)
            if found is not None:
                self.state.referrers_api = True
                return found
            self.state.referrers_api = False
        entries = await self._tag_index_entries(descriptor["digest"])
        return _filtered(entries, artifact_type)

    async def _referrers_from_api(
        self, descriptor: Descriptor, artifact_type: str | None
    ) -> list[Descriptor] | None:
        """The API's answer, or None when the registry shows it has no referrers API."""
        url = self.registry._session.url(
            self.container.referrers_url(descriptor["digest"], artifact_type=artifact_type)
        )
        what = f"referrers of {descriptor['digest']}"
        found: list[Descriptor] = []
        filtered = True
        first = True
        unsupported = False

        async def read_page(page_url: str) -> httpx.Response | None:
            nonlocal filtered, first, unsupported
            # Only the first answer may show that there is no referrers API at all.
            may_lack_api, first = first and self.state.referrers_api is not True, False
            try:
                data, response = await self.registry._manifests.read(
                    page_url, [_INDEX], defaults.max_metadata_size, what
                )
            except exc.NotFoundError:
                if not may_lack_api:
                    raise
                unsupported = True
                return None
            if media_type_of(response.headers.get("content-type")) != _INDEX:
                if may_lack_api:
                    unsupported = True
                    return None
                raise exc.RegistryError(
                    f"{what}: the answer is not an image index",
                    status_code=response.status_code,
                    method="GET",
                    url=redact(page_url),
                )
            found.extend(_index_entries(data, page_url))
            if len(found) > defaults.max_listed_names:
                raise exc.ResponseTooLarge(
                    f"{what}: more than {defaults.max_listed_names} across pages",
                    size=len(found),
                    limit=defaults.max_listed_names,
                    status_code=200,
                    method="GET",
                    url=redact(page_url),
                )
            applied = response.headers.get("oci-filters-applied", "")
            filtered = filtered and "artifacttype" in applied.lower().replace(" ", "").split(",")
            return response

        await follow_pages(url, read_page, what=what, max_pages=_MAX_REFERRER_PAGES)
        if unsupported:
            return None
        return found if filtered else _filtered(found, artifact_type)

    async def _tag_index(self, subject: str) -> tuple[bytes, dict[str, Any]] | None:
        """The tag-schema index of ``subject`` (bytes and descriptor), None when untagged."""
        try:
            return await self.registry.fetch_manifest_bytes(
                self.at(referrers_tag(subject)), [_INDEX]
            )
        except exc.NotFoundError:
            return None

    async def _tag_index_entries(self, subject: str) -> list[Descriptor]:
        held = await self._tag_index(subject)
        return [] if held is None else _index_entries(held[0], referrers_tag(subject))

    async def _add_to_tag_index(self, subject: str, referrer: Descriptor) -> None:
        """Add ``referrer`` to the subject's tag-schema index."""

        def add(entries: list[Descriptor]) -> list[Descriptor] | None:
            if any(e["digest"] == referrer["digest"] for e in entries):
                return None
            return [*entries, referrer]

        await self._update_tag_index(subject, add)

    async def _remove_from_tag_index(self, subject: str, referrer: str) -> None:
        """Remove the entry of the manifest ``referrer`` from the subject's tag-schema index."""

        def remove(entries: list[Descriptor]) -> list[Descriptor] | None:
            kept = [e for e in entries if e["digest"] != referrer]
            return None if len(kept) == len(entries) else kept

        await self._update_tag_index(subject, remove)

    async def _update_tag_index(
        self, subject: str, change: Callable[[list[Descriptor]], list[Descriptor] | None]
    ) -> None:
        """Read, ``change`` (None: nothing to do) and write the subject's tag-schema index.

        Writers in this process take turns per subject, so none loses another's entry. An
        index left empty is removed with its tag; the superseded index is deleted where
        the registry allows deletes.
        """
        tag = referrers_tag(subject)
        lock = self.state.subject_locks.setdefault(subject, anyio.Lock())
        async with lock:
            held = await self._tag_index(subject)
            entries = [] if held is None else _index_entries(held[0], tag)
            changed = change(entries)
            if changed is None:
                return
            if changed:
                index = {"schemaVersion": 2, "mediaType": _INDEX, "manifests": changed}
                data = json.dumps(index, separators=(",", ":")).encode()
                await self.registry.push_manifest_bytes(
                    data, self.container, media_type=_INDEX, reference=tag
                )
            if held is not None and (self.delete_superseded or not changed):
                try:
                    # The superseded index is no referrer: only its DELETE is needed.
                    await self.registry._delete_manifest_request(self.container, held[1]["digest"])
                except (exc.UnsupportedOperation, exc.NotFoundError, exc.PermissionDenied):
                    logger.debug("superseded referrers index of %s kept", subject)


def _one_shot(descriptor: Descriptor, content: AsyncIterable[bytes]) -> StreamOpener:
    """An opener that yields ``content`` once; a second open raises StreamConsumed."""
    used = False

    @asynccontextmanager
    async def opener() -> AsyncIterator[AsyncIterator[bytes]]:
        nonlocal used
        if used:
            raise exc.StreamConsumed(
                f"upload of {descriptor['digest']} must start over and its stream is spent"
            )
        used = True
        stream = verified(descriptor, content)
        try:
            yield stream
        finally:
            await stream.aclose()

    return opener


async def _read_small(descriptor: Descriptor, source: StreamOpener) -> bytes:
    if descriptor["size"] > defaults.max_manifest_size:
        raise exc.ManifestTooLarge(descriptor["size"], defaults.max_manifest_size)
    parts: list[bytes] = []
    context: AbstractAsyncContextManager[AsyncIterator[bytes]] = source()
    async with context as stream:
        async for chunk in verified(descriptor, stream):
            parts.append(chunk)
    return b"".join(parts)


def _index_entries(data: bytes, where: str) -> list[Descriptor]:
    what = f"referrers index {where}"
    return descriptor_list(parse_document(data, what).get("manifests"), what)


def _filtered(entries: list[Descriptor], artifact_type: str | None) -> list[Descriptor]:
    if artifact_type is None:
        return entries
    return [e for e in entries if e.get("artifactType") == artifact_type]


async def _paced_body(response: httpx.Response) -> AsyncIterator[bytes]:
    """A blob body held to the minimum rate, its failures as the typed errors.

    A registry trickling a blob (a byte now and then, each within the read timeout) would
    otherwise hold a copy for as long as it likes; what stops a download stops a stream.
    """
    try:
        async for chunk in Paced(response):
            yield chunk
    except httpx.HTTPError as error:
        request = response.request
        raise wrap_http_error(error, request.method, str(request.url)) from error
