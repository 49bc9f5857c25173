"""The store protocols: small async verbs on descriptors, after oras-go's content model.

A store holds content addressed by descriptor. What can be done with one is split into
small protocols so that each implementation offers exactly what it can, and each operation
asks only for what it uses:

- [`ReadOnlyStore`][aioras.content.store.ReadOnlyStore]: ``exists`` and ``fetch`` (a stream of
  verified bytes);
- [`Store`][aioras.content.store.Store]: adds ``push`` (from a stream, verified against the
  descriptor);
- [`Resolver`][aioras.content.store.Resolver] / [`Tagger`][aioras.content.store.Tagger]: references
  to descriptors and back;
- [`Target`][aioras.content.store.Target]: a store that resolves and tags (a registry repository, an
  OCI layout, a [`MemoryStore`][aioras.content.memory.MemoryStore]);
- [`ReferrerLister`][aioras.content.store.ReferrerLister]: a graph-aware store that lists the
  referrers of a manifest;
- [`Deleter`][aioras.content.store.Deleter]: a store that can remove content.

Capabilities a store may add, which ``copy`` uses when they are there (and does without
when they are not), so that it never asks which concrete class a store is:

- [`Mounter`][aioras.content.store.Mounter]: blobs of another store can be linked in without sending
  them (two repositories of one registry host);
- [`ReferencePusher`][aioras.content.store.ReferencePusher]: a manifest is stored as exact bytes and
  tagged at once (one request at a registry instead of a push and a tag);
- [`RestartablePusher`][aioras.content.store.RestartablePusher]: a push that opens its source anew
  when a transfer must start over, instead of reading one stream once;
- [`TransferBudget`][aioras.content.store.TransferBudget]: the store bounds how many transfers it
  takes at once.

``fetch`` returns an async context manager so that the stream is always closed, even when
the consumer stops early; the iterator it yields raises
[`DigestMismatch`][aioras.exceptions.DigestMismatch] or
[`SizeMismatch`][aioras.exceptions.SizeMismatch] at the end (or as soon as too many bytes arrive)
when the content is not what the descriptor says. ``push`` consumes its stream and refuses (raising
the same errors, storing nothing) content that does not match.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from .. import defaults
from ..descriptor import Descriptor
from ..digest import Verifier
from ..exceptions import ManifestTooLarge

__all__ = [
    "Deleter",
    "Mounter",
    "ReadOnlyStore",
    "ReferencePusher",
    "ReferrerLister",
    "Resolver",
    "RestartablePusher",
    "Store",
    "StreamOpener",
    "Tagger",
    "Target",
    "TransferBudget",
    "read_all",
    "verified",
]


@runtime_checkable
class ReadOnlyStore(Protocol):
    """Content that can be checked for and read."""

    async def exists(self, descriptor: Descriptor) -> bool:
        """Whether the store holds the content ``descriptor`` names."""
        ...

    def fetch(self, descriptor: Descriptor) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Open a verified byte stream of the content; raises NotFoundError when absent."""
        ...


@runtime_checkable
class Store(ReadOnlyStore, Protocol):
    """Content that can also be written."""

    async def push(self, descriptor: Descriptor, content: AsyncIterable[bytes]) -> None:
        """Store ``content``, verified against ``descriptor``; nothing is kept on mismatch."""
        ...


@runtime_checkable
class Resolver(Protocol):
    """References (tags or digests) to descriptors."""

    async def resolve(self, reference: str) -> Descriptor:
        """The descriptor ``reference`` names; raises NotFoundError when it names nothing."""
        ...


@runtime_checkable
class Tagger(Protocol):
    """Names for content the store holds."""

    async def tag(self, descriptor: Descriptor, reference: str) -> None:
        """Point ``reference`` at ``descriptor``, which the store must already hold."""
        ...


@runtime_checkable
class Target(Store, Resolver, Tagger, Protocol):
    """A store that resolves and tags: the two ends of a copy."""


@runtime_checkable
class ReferrerLister(Protocol):
    """A graph-aware store: it knows which manifests refer to a given one."""

    async def referrers(
        self, descriptor: Descriptor, *, artifact_type: str | None = None
    ) -> list[Descriptor]:
        """Descriptors of the manifests whose ``subject`` is ``descriptor``."""
        ...


@runtime_checkable
class Deleter(Protocol):
    """A store that can remove content."""

    async def delete(self, descriptor: Descriptor) -> None:
        """Remove the content ``descriptor`` names; raises NotFoundError when absent."""
        ...


StreamOpener = Callable[[], AbstractAsyncContextManager[AsyncIterator[bytes]]]
"""Opens a stream of some content from its first byte, as often as it is called."""


@runtime_checkable
class Mounter(Protocol):
    """A store that can link in blobs another store holds, without their bytes travelling."""

    def mount_source(self, source: object) -> str | None:
        """The name to mount ``source``'s blobs by, or None when it cannot mount from it.

        A registry repository can mount from another repository of the same host.
        """
        ...

    async def mount(self, descriptor: Descriptor, from_repository: str) -> bool:
        """Link the blob in from ``from_repository``; False when refused (then send it)."""
        ...


@runtime_checkable
class ReferencePusher(Protocol):
    """A store that stores a manifest's exact bytes and names them in one step."""

    async def push_manifest(
        self, descriptor: Descriptor, data: bytes, *, reference: str | None = None
    ) -> None:
        """Store ``data`` (checked against ``descriptor``), tagged ``reference`` when given."""
        ...


@runtime_checkable
class RestartablePusher(Protocol):
    """A store whose push reopens its source when a transfer has to start over."""

    async def push_from(
        self, descriptor: Descriptor, source: StreamOpener, *, skip_existing: bool = True
    ) -> None:
        """Store what ``source`` opens, verified; ``skip_existing=False``: no check first."""
        ...


@runtime_checkable
class TransferBudget(Protocol):
    """A store that takes at most ``max_transfers`` transfers at once."""

    @property
    def max_transfers(self) -> int:
        """How many transfers the store takes at once (shared by everything using it)."""
        ...


async def verified(
    descriptor: Descriptor, chunks: AsyncIterable[bytes], *, what: str | None = None
) -> AsyncGenerator[bytes, None]:
    """Pass ``chunks`` through, checking them against ``descriptor`` on the way.

    Raises [`SizeMismatch`][aioras.exceptions.SizeMismatch] as soon as more bytes than the
    descriptor's size arrive, and at the end [`SizeMismatch`][aioras.exceptions.SizeMismatch] or
    [`DigestMismatch`][aioras.exceptions.DigestMismatch] when the content does not match.
    """
    label = what or descriptor["digest"]
    verifier = Verifier(descriptor["digest"], descriptor["size"])
    async for chunk in chunks:
        verifier.update(chunk)
        if verifier.size > descriptor["size"]:
            verifier.verify(label)
        yield chunk
    verifier.verify(label)


async def read_all(
    store: ReadOnlyStore, descriptor: Descriptor, *, max_size: int = defaults.max_manifest_size
) -> bytes:
    """Fetch small content (a manifest, an index, a config) whole, verified.

    Raises [`ManifestTooLarge`][aioras.exceptions.ManifestTooLarge] when the descriptor declares
    more than ``max_size`` bytes, before reading anything.
    """
    if descriptor["size"] > max_size:
        raise ManifestTooLarge(descriptor["size"], max_size)
    parts: list[bytes] = []
    async with store.fetch(descriptor) as stream:
        async for chunk in stream:
            parts.append(chunk)
    return b"".join(parts)
