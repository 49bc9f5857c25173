"""Referrers: the manifests that refer to one (signatures, SBOMs...), listed and walked as a tree.

Built on :class:`~aioras.remote.repository.Repository`, which asks the registry's referrers
API (with ``Link`` paging and the server-side filter when applied) or reads the tag-schema
fallback index, remembering per repository which one the registry has.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from .._concurrency import first_error
from ..descriptor import Descriptor, as_descriptor

if TYPE_CHECKING:
    from ..container import Container
    from .endpoints import GraphEndpoints

__all__ = ["ReferrerNode", "discover", "get_referrers"]

logger = logging.getLogger(__name__)


@dataclass
class ReferrerNode:
    """One manifest of a referrers tree and the manifests referring to it.

    The root is the manifest asked about (``reference`` set); below it each node is a
    referrer as the registry lists it (``artifactType`` and ``annotations`` copied from
    the referrer's manifest). A tree prints as an indented tree (:meth:`walk`), a table
    (:meth:`rows`) or JSON (:meth:`to_dict`).
    """

    descriptor: Descriptor
    referrers: list[ReferrerNode] = field(default_factory=list)
    reference: str | None = None

    @property
    def digest(self) -> str:
        """The manifest's digest."""
        return self.descriptor["digest"]

    @property
    def media_type(self) -> str:
        """The manifest's media type."""
        return self.descriptor["mediaType"]

    @property
    def artifact_type(self) -> str | None:
        """The referrer's artifact type (None for the root or an untyped referrer)."""
        return self.descriptor.get("artifactType")

    @property
    def annotations(self) -> dict[str, str]:
        """The referrer's annotations (empty when it has none)."""
        return dict(self.descriptor.get("annotations") or {})

    def walk(self) -> Iterator[tuple[int, ReferrerNode]]:
        """Every node, depth first in registry order, with its depth (the root is 0)."""
        stack: list[tuple[int, ReferrerNode]] = [(0, self)]
        while stack:
            depth, node = stack.pop()
            yield depth, node
            stack.extend((depth + 1, child) for child in reversed(node.referrers))

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per referrer (root excluded): depth, subject, digest, type, size."""
        rows: list[dict[str, Any]] = []

        def visit(node: ReferrerNode, depth: int) -> None:
            for child in node.referrers:
                rows.append(
                    {
                        "depth": depth,
                        "subject": node.digest,
                        "digest": child.digest,
                        "artifactType": child.artifact_type or "",
                        "mediaType": child.media_type,
                        "size": child.descriptor["size"],
                    }
                )
                visit(child, depth + 1)

        visit(self, 1)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The tree as JSON-ready dicts: the descriptor's fields plus ``referrers``."""
        doc: dict[str, Any] = dict(self.descriptor)
        if self.reference is not None:
            doc = {"reference": self.reference, **doc}
        doc["referrers"] = [child.to_dict() for child in self.referrers]
        return doc


async def get_referrers(
    registry: GraphEndpoints, reference: str | Container, *, artifact_type: str | None = None
) -> list[Descriptor]:
    """The descriptors of the manifests whose ``subject`` is the one ``reference`` names.

    Only those of ``artifact_type`` when given. Raises
    :class:`~aioras.exceptions.NotFoundError` when ``reference`` names nothing, and the
    registry's typed errors.
    """
    container = registry.get_container(reference)
    subject = as_descriptor(await registry.resolve(container))
    return await registry.repository(container).referrers(subject, artifact_type=artifact_type)


async def discover(
    registry: GraphEndpoints,
    reference: str | Container,
    *,
    depth: int | None = None,
    artifact_type: str | None = None,
    concurrency: int | None = None,
) -> ReferrerNode:
    """The referrers tree of ``reference``: its referrers, theirs, and so on.

    ``depth`` limits the levels (1: direct referrers only; None: all); ``artifact_type``
    keeps, at every level, only referrers of that type. Listings run ``concurrency`` at
    a time (default: the registry's ``pull_concurrency``). A manifest met twice on one
    path (a registry listing a loop) is not walked again. Raises ValueError for a
    negative ``depth``, :class:`~aioras.exceptions.NotFoundError` when ``reference``
    names nothing, and the registry's typed errors.
    """
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be 0 or more, got {depth}")
    container = registry.get_container(reference)
    repository = registry.repository(container)
    root = ReferrerNode(as_descriptor(await registry.resolve(container)), reference=str(container))
    limiter = anyio.CapacityLimiter(concurrency or registry.pull_concurrency)

    async def expand(node: ReferrerNode, level: int, path: frozenset[str]) -> None:
        if depth is not None and level >= depth:
            return
        async with limiter:
            found = await repository.referrers(node.descriptor, artifact_type=artifact_type)
        node.referrers = [ReferrerNode(d) for d in found if d["digest"] not in path]
        async with anyio.create_task_group() as tasks:
            for child in node.referrers:
                tasks.start_soon(expand, child, level + 1, path | {child.digest})

    try:
        await expand(root, 0, frozenset({root.digest}))
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    return root
