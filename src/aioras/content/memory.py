"""``MemoryStore``: content, tags and referrers held in memory, for tests and staging.

It implements [`Target`][aioras.content.store.Target],
[`ReferrerLister`][aioras.content.store.ReferrerLister] and
[`Deleter`][aioras.content.store.Deleter]. Pushed content is verified against its descriptor before
anything is kept, so a store never holds bytes that do not match their digest. Every pushed manifest
whose ``subject`` names another is indexed as that one's referrer, with the ``artifactType`` and
``annotations`` the referrers API would report.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from .. import exceptions as exc
from ..descriptor import Descriptor
from ..digest import validate_digest
from .graph import referrer_descriptor
from .store import verified

__all__ = ["MemoryStore"]

_CHUNK = 1024 * 1024


class MemoryStore:
    """An in-memory [`Target`][aioras.content.store.Target] that also lists referrers.

    Content is keyed by digest; tags map names to descriptors. ``fetch`` yields the bytes
    in chunks of at most 1 MiB. Safe for concurrent use by tasks of one event loop.
    """

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._descriptors: dict[str, Descriptor] = {}
        self._tags: dict[str, Descriptor] = {}
        self._referrers: dict[str, dict[str, Descriptor]] = {}
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._blobs)} items, {len(self._tags)} tags)"

    def __len__(self) -> int:
        return len(self._blobs)

    @property
    def tags(self) -> dict[str, Descriptor]:
        """A copy of the tag table: tag to descriptor."""
        return dict(self._tags)

    async def exists(self, descriptor: Descriptor) -> bool:
        """Whether the store holds the content ``descriptor`` names."""
        return descriptor["digest"] in self._blobs

    @asynccontextmanager
    async def fetch(self, descriptor: Descriptor) -> AsyncIterator[AsyncIterator[bytes]]:
        """Open a stream of the content; raises NotFoundError when the store lacks it."""
        data = self._get(descriptor["digest"])

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), _CHUNK):
                yield data[start : start + _CHUNK]

        stream = verified(descriptor, chunks())
        try:
            yield stream
        finally:
            await stream.aclose()

    async def push(self, descriptor: Descriptor, content: AsyncIterable[bytes]) -> None:
        """Store ``content`` after checking it against ``descriptor``.

        Raises [`DigestMismatch`][aioras.exceptions.DigestMismatch] or
        [`SizeMismatch`][aioras.exceptions.SizeMismatch] (keeping nothing) when it does not match.
        """
        digest = validate_digest(descriptor["digest"])
        parts = [chunk async for chunk in verified(descriptor, content)]
        data = b"".join(parts)
        async with self._lock:
            self._blobs[digest] = data
            self._descriptors[digest] = _plain(descriptor)
            self._index_referrer(descriptor, data)

    async def resolve(self, reference: str) -> Descriptor:
        """The descriptor a tag or digest names; raises NotFoundError when it names nothing."""
        if reference in self._tags:
            return self._tags[reference]
        if reference in self._descriptors:
            return self._descriptors[reference]
        raise exc.NotFoundError(f"{reference} is not in the memory store", status_code=404)

    async def tag(self, descriptor: Descriptor, reference: str) -> None:
        """Point ``reference`` at ``descriptor``; raises NotFoundError when it is not stored."""
        self._get(descriptor["digest"])
        self._tags[reference] = _plain(descriptor)

    async def referrers(
        self, descriptor: Descriptor, *, artifact_type: str | None = None
    ) -> list[Descriptor]:
        """Descriptors of the stored manifests whose ``subject`` is ``descriptor``."""
        found = list(self._referrers.get(descriptor["digest"], {}).values())
        if artifact_type is not None:
            found = [d for d in found if d.get("artifactType") == artifact_type]
        return found

    async def delete(self, descriptor: Descriptor) -> None:
        """Remove content, the tags naming it and its referrer entry; NotFoundError if absent."""
        digest = descriptor["digest"]
        async with self._lock:
            self._get(digest)
            del self._blobs[digest]
            del self._descriptors[digest]
            for name in [t for t, d in self._tags.items() if d["digest"] == digest]:
                del self._tags[name]
            for entries in self._referrers.values():
                entries.pop(digest, None)

    def _get(self, digest: str) -> bytes:
        try:
            return self._blobs[digest]
        except KeyError:
            raise exc.NotFoundError(
                f"{digest} is not in the memory store", status_code=404
            ) from None

    def _index_referrer(self, descriptor: Descriptor, data: bytes) -> None:
        entry = referrer_descriptor(descriptor, data)
        if entry is not None:
            subject, referrer = entry
            self._referrers.setdefault(subject, {})[descriptor["digest"]] = referrer


def _plain(descriptor: Descriptor) -> Descriptor:
    """The descriptor without inline ``data`` (a store keeps the bytes once)."""
    kept: dict[str, Any] = {k: v for k, v in descriptor.items() if k != "data"}
    return kept  # type: ignore[return-value]
