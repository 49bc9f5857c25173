"""Referrers: the manifests that refer to one (signatures, SBOMs...), listed and walked as a tree.

Built on [`Repository`][aioras.remote.repository.Repository], which asks the registry's referrers
API (with ``Link`` paging and the server-side filter when applied) or reads the tag-schema
fallback index, remembering per repository which one the registry has.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import defaults
from ..content.graph import GraphWalk, Visit, check_limits
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
    the referrer's manifest). A tree prints as an indented tree
    ([`walk`][aioras.ReferrerNode.walk]), a table ([`rows`][aioras.ReferrerNode.rows]) or JSON
    ([`to_dict`][aioras.ReferrerNode.to_dict]).
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
        """One flat row per referrer (root excluded): depth, subject, digest, type, size.

        Depth first in registry order, like `walk`; an explicit stack, not
        recursion, so a chain of any depth renders.
        """
        rows: list[dict[str, Any]] = []
        stack = [(1, self, child) for child in reversed(self.referrers)]
        while stack:
            depth, subject, child = stack.pop()
            rows.append(
                {
                    "depth": depth,
                    "subject": subject.digest,
                    "digest": child.digest,
                    "artifactType": child.artifact_type or "",
                    "mediaType": child.media_type,
                    "size": child.descriptor["size"],
                }
            )
            stack.extend((depth + 1, child, below) for below in reversed(child.referrers))
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The tree as JSON-ready dicts: the descriptor's fields plus ``referrers``.

        Built with an explicit stack, not recursion, so a chain of any depth converts.
        """
        top = self._doc()
        stack = [(self, top)]
        while stack:
            node, doc = stack.pop()
            for child in node.referrers:
                child_doc = child._doc()
                doc["referrers"].append(child_doc)
                stack.append((child, child_doc))
        return top

    def _doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = dict(self.descriptor)
        if self.reference is not None:
            doc = {"reference": self.reference, **doc}
        doc["referrers"] = []
        return doc

    def __repr__(self) -> str:
        # Not the dataclass's: that one recurses through every referrer, and a long chain
        # would end in RecursionError (in a traceback, a log line, a test failure...).
        return (
            f"ReferrerNode(digest={self.digest!r}, artifact_type={self.artifact_type!r}, "
            f"referrers={len(self.referrers)})"
        )


async def get_referrers(
    registry: GraphEndpoints, reference: str | Container, *, artifact_type: str | None = None
) -> list[Descriptor]:
    """The descriptors of the manifests whose ``subject`` is the one ``reference`` names.

    Only those of ``artifact_type`` when given. Raises
    [`NotFoundError`][aioras.exceptions.NotFoundError] when ``reference`` names nothing, and the
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
    max_depth: int = defaults.max_graph_depth,
    max_nodes: int = defaults.max_graph_nodes,
) -> ReferrerNode:
    """The referrers tree of ``reference``: its referrers, theirs, and so on.

    ``depth`` limits the levels (1: direct referrers only; None: all); ``artifact_type``
    keeps, at every level, only referrers of that type. Listings run ``concurrency`` at
    a time (default: the registry's ``pull_concurrency``), in one bounded
    `GraphWalk`: each manifest's referrers are listed once,
    however many subjects list it (a shared referrer, a loop). It appears under each of
    them; its own referrers appear where it comes first, depth first in registry order,
    and elsewhere it is a leaf. ``max_depth`` and ``max_nodes`` bound what a registry can
    make the walk do: more levels of referrers than ``max_depth`` (below ``depth``), or
    more distinct manifests than ``max_nodes``, raise
    [`GraphLimitExceeded`][aioras.exceptions.GraphLimitExceeded] (defaults 16 and 10,000:
    [`aioras.defaults.max_graph_depth`][aioras.defaults.max_graph_depth],
    [`aioras.defaults.max_graph_nodes`][aioras.defaults.max_graph_nodes]). Raises ValueError for a
    negative ``depth`` or a bad limit, [`NotFoundError`][aioras.exceptions.NotFoundError] when
    ``reference`` names nothing, and the registry's typed errors.
    """
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be 0 or more, got {depth}")
    check_limits(max_depth, max_nodes)
    container = registry.get_container(reference)
    repository = registry.repository(container)
    root = ReferrerNode(as_descriptor(await registry.resolve(container)), reference=str(container))
    listings: dict[str, list[Descriptor]] = {}

    async def visit(node: Descriptor, level: int) -> Visit:
        if depth is not None and level >= depth:
            return Visit()
        found = await repository.referrers(node, artifact_type=artifact_type)
        listings[node["digest"]] = found
        return Visit(after=found)

    walk = GraphWalk(
        visit,
        concurrency=concurrency or registry.pull_concurrency,
        max_depth=max_depth,
        max_nodes=max_nodes,
    )
    await walk.run(root.descriptor)
    _grow(root, listings)
    return root


def _grow(root: ReferrerNode, listings: dict[str, list[Descriptor]]) -> None:
    """Hang each listing under its subject: expanded where first met depth first, else a leaf.

    The walk fetched each listing once, in whatever order answers came; the tree is laid
    out afterwards so its shape does not depend on that order.
    """
    expanded: set[str] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node.digest in expanded:
            continue
        expanded.add(node.digest)
        node.referrers = [ReferrerNode(d) for d in listings.get(node.digest, ())]
        stack.extend(reversed(node.referrers))
