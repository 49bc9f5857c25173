"""The store protocols: small async verbs on descriptors, after oras-go's content model.

A store holds content addressed by descriptor. What can be done with one is split into
small protocols so that each implementation offers exactly what it can, and each operation
asks only for what it uses:

- :class:`ReadOnlyStore`: ``exists`` and ``fetch`` (a stream of verified bytes);
- :class:`Store`: adds ``push`` (from a stream, verified against the descriptor);
- :class:`Resolver` / :class:`Tagger`: references to descriptors and back;
- :class:`Target`: a store that resolves and tags (a registry repository, an OCI layout,
  a :class:`~aioras.content.memory.MemoryStore`);
- :class:`ReferrerLister`: a graph-aware store that lists the referrers of a manifest;
- :class:`Deleter`: a store that can remove content.

``fetch`` returns an async context manager so that the stream is always closed, even when
the consumer stops early; the iterator it yields raises
:class:`~aioras.exceptions.DigestMismatch` or :class:`~aioras.exceptions.SizeMismatch` at
the end (or as soon as too many bytes arrive) when the content is not what the descriptor
says. ``push`` consumes its stream and refuses (raising the same errors, storing nothing)
content that does not match.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from .. import defaults
from ..descriptor import Descriptor
from ..digest import Verifier
from ..exceptions import ManifestTooLarge

__all__ = [
    "Deleter",
    "ReadOnlyStore",
    "ReferrerLister",
    "Resolver",
    "Store",
    "Tagger",
    "Target",
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


async def verified(
    descriptor: Descriptor, chunks: AsyncIterable[bytes], *, what: str | None = None
) -> AsyncGenerator[bytes, None]:
    """Pass ``chunks`` through, checking them against ``descriptor`` on the way.

    Raises :class:`~aioras.exceptions.SizeMismatch` as soon as more bytes than the
    descriptor's size arrive, and at the end :class:`~aioras.exceptions.SizeMismatch` or
    :class:`~aioras.exceptions.DigestMismatch` when the content does not match.
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

    Raises :class:`~aioras.exceptions.ManifestTooLarge` when the descriptor declares more
    than ``max_size`` bytes, before reading anything.
    """
    if descriptor["size"] > max_size:
        raise ManifestTooLarge(descriptor["size"], max_size)
    parts: list[bytes] = []
    async with store.fetch(descriptor) as stream:
        async for chunk in stream:
            parts.append(chunk)
    return b"".join(parts)
