"""The artifact graph: what a node points to (successors) and what points to it (predecessors).

A node is a descriptor. Its successors are what it cannot exist without: the config and
layers of an image manifest, the manifests of an image index (or Docker manifest list), and
the ``subject`` a referrer points to. Its predecessors are its referrers, listed by a
[`ReferrerLister`][aioras.content.store.ReferrerLister] (a registry's referrers API or its
tag-schema fallback, a memory store's index, ...). Only manifests and indexes have successors; the
functions here never fetch a blob.
"""

from __future__ import annotations

import json
import math
import platform as pyplatform
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from .. import defaults, schemas
from .. import exceptions as exc
from .._concurrency import first_error
from .._jsondoc import load_json
from ..descriptor import Descriptor, as_descriptor
from ..digest import digest_bytes
from .store import ReadOnlyStore, ReferrerLister, read_all

__all__ = [
    "MANIFEST_MEDIA_TYPES",
    "GraphWalk",
    "Visit",
    "Visitor",
    "check_limits",
    "checked_descriptor",
    "choose_platform",
    "host_platform",
    "platform_matches",
    "platform_string",
    "descriptor_list",
    "filter_index",
    "is_manifest",
    "parse_document",
    "parse_platform",
    "platform_list",
    "predecessors",
    "referrer_descriptor",
    "select_platform",
    "successors",
    "successors_of",
]

_ARTIFACT_MANIFEST = "application/vnd.oci.artifact.manifest.v1+json"
MANIFEST_MEDIA_TYPES = frozenset(
    defaults.manifest_media_types | defaults.index_media_types | {_ARTIFACT_MANIFEST}
)
"""Media types of the nodes that have successors (manifests and indexes)."""


def is_manifest(descriptor: Descriptor) -> bool:
    """Whether ``descriptor`` names a manifest or an index rather than a blob."""
    return descriptor.get("mediaType", "") in MANIFEST_MEDIA_TYPES


def parse_document(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = load_json(data)
    except ValueError as error:
        raise exc.ManifestValidationError(f"{what} is not valid JSON: {error}") from error
    if not isinstance(doc, dict):
        raise exc.ManifestValidationError(f"{what} is not a JSON object")
    return doc


def checked_descriptor(value: Any, what: str, at: str) -> Descriptor:
    """``value`` as a descriptor, once it passes the image-spec's descriptor schema.

    ``mediaType`` a string, ``digest`` in the digest grammar, ``size`` a non-negative JSON
    integer (not a boolean, float or string), ``urls`` a list of strings, ``annotations``
    strings to strings... What the graph walks, a store is asked for by these fields: a
    ``"size": null`` taken on trust would match a missing blob's unknown size. Raises
    [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] naming ``what`` and the
    field's JSON pointer (``at`` is the descriptor's, ``/layers/0``).
    """
    try:
        schemas.validate_descriptor(value, at=at)
    except exc.ManifestValidationError as error:
        raise exc.ManifestValidationError(f"{what}: {error}", path=error.path) from None
    return as_descriptor(value)


def descriptor_list(value: Any, what: str, *, at: str = "") -> list[Descriptor]:
    """``value`` as a list of descriptors (None: empty), each checked as
    `checked_descriptor` does (``at``: the list's JSON pointer, for messages).

    Raises [`ManifestValidationError`][aioras.exceptions.ManifestValidationError].
    """
    if value is None:
        return []
    if not isinstance(value, list):
        raise exc.ManifestValidationError(
            f"{what} holds a malformed descriptor list at {at or '/'}", path=at
        )
    return [checked_descriptor(d, what, f"{at}/{i}") for i, d in enumerate(value)]


def successors_of(descriptor: Descriptor, data: bytes) -> list[Descriptor]:
    """The successors of a manifest or index whose bytes are ``data``, in document order.

    Image manifest: config, layers, then subject. Index: its manifests, then subject.
    Artifact manifest (the withdrawn 1.1 draft form): its blobs, then subject. A blob has
    none. Raises [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] for a
    document that is not JSON or whose descriptors are malformed.
    """
    media_type = descriptor.get("mediaType", "")
    if media_type not in MANIFEST_MEDIA_TYPES:
        return []
    what = f"manifest {descriptor['digest']}"
    doc = parse_document(data, what)
    found: list[Descriptor] = []
    if media_type in defaults.index_media_types:
        found += descriptor_list(doc.get("manifests"), what, at="/manifests")
    elif media_type == _ARTIFACT_MANIFEST:
        found += descriptor_list(doc.get("blobs"), what, at="/blobs")
    else:
        if doc.get("config") is not None:
            found.append(checked_descriptor(doc["config"], what, "/config"))
        found += descriptor_list(doc.get("layers"), what, at="/layers")
    if doc.get("subject") is not None:
        found.append(checked_descriptor(doc["subject"], what, "/subject"))
    return found


async def successors(store: ReadOnlyStore, descriptor: Descriptor) -> list[Descriptor]:
    """Fetch ``descriptor`` from ``store`` when it is a manifest and return its successors."""
    if not is_manifest(descriptor):
        return []
    return successors_of(descriptor, await read_all(store, descriptor))


async def predecessors(
    store: ReferrerLister, descriptor: Descriptor, *, artifact_type: str | None = None
) -> list[Descriptor]:
    """The referrers of ``descriptor`` in ``store`` (those of ``artifact_type`` only, if given)."""
    return await store.referrers(descriptor, artifact_type=artifact_type)


@dataclass(frozen=True)
class Visit:
    """What visiting one node of a `GraphWalk` found.

    ``children`` are walked first: the node completes only once each of them has (a
    manifest is pushed after its config and layers). Once it may complete, ``then`` runs
    (when given) and returns more nodes to walk, which nothing waits for, like ``after``
    (the referrers of a node, listed once it is copied).
    """

    children: Sequence[Descriptor] = ()
    after: Sequence[Descriptor] = ()
    then: Callable[[], Awaitable[Sequence[Descriptor]]] | None = None


Visitor = Callable[[Descriptor, int], Awaitable[Visit]]
"""Visits one node at a depth (the root is 0): fetches what it needs, returns a `Visit`."""

_Item = tuple[bool, Descriptor]  # (complete it, not visit it; the node)


class GraphWalk:
    """One bounded walk of a graph of descriptors: each node once, in one task group.

    Every node reached (by digest: a visited set) is visited once by ``visit``, with its
    depth: the length of the path it was first reached by. ``concurrency`` workers take
    visits and completions off one queue, so however deep or wide the graph, the walk
    is a fixed number of tasks, no recursion, and cancelled as a whole (by
    ``anyio.fail_after``, Ctrl-C...). Two limits keep a registry that invents nodes
    forever from walking it forever: a node deeper than ``max_depth`` levels, or one more
    distinct node than ``max_nodes``, raises
    [`GraphLimitExceeded`][aioras.exceptions.GraphLimitExceeded] before it is visited (defaults:
    [`aioras.defaults.max_graph_depth`][aioras.defaults.max_graph_depth],
    [`aioras.defaults.max_graph_nodes`][aioras.defaults.max_graph_nodes]).
    """

    def __init__(
        self,
        visit: Visitor,
        *,
        concurrency: int,
        max_depth: int = defaults.max_graph_depth,
        max_nodes: int = defaults.max_graph_nodes,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        check_limits(max_depth, max_nodes)
        self.visit = visit
        self.concurrency = concurrency
        self.max_depth, self.max_nodes = max_depth, max_nodes
        self.depths: dict[str, int] = {}
        """The visited set: each node reached, by digest, and its depth."""
        self._then: dict[str, Callable[[], Awaitable[Sequence[Descriptor]]] | None] = {}
        self._done: set[str] = set()
        self._blocked: dict[str, tuple[Descriptor, int]] = {}  # digest -> node, children left
        self._waiting: dict[str, list[str]] = {}  # child digest -> parents waiting for it
        self._queued = 0  # items sent and not yet finished: the walk ends at 0
        self._root = ""

    async def run(self, root: Descriptor) -> None:
        """Walk from ``root`` until every node reached has completed.

        Raises the first error of a visit (not an ExceptionGroup),
        [`GraphLimitExceeded`][aioras.exceptions.GraphLimitExceeded] past a limit, and
        [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] when children wait on
        each other in a cycle (content addressing rules that out; a store that lies does not).
        """
        self._root = root["digest"]
        send, receive = anyio.create_memory_object_stream[_Item](math.inf)
        self._send = send
        try:
            with send, receive:
                async with anyio.create_task_group() as tasks:
                    self._reach(root, 0)
                    for _ in range(self.concurrency):
                        tasks.start_soon(self._worker, receive)
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        if self._blocked:
            stuck = next(iter(self._blocked))
            raise exc.ManifestValidationError(
                f"graph of {self._root}: {stuck} waits on its own successors (a cycle)"
            )

    async def _worker(self, receive: MemoryObjectReceiveStream[_Item]) -> None:
        async for complete, node in receive:
            if complete:
                await self._complete(node)
            else:
                await self._visit(node)
            self._queued -= 1
            if self._queued == 0:
                self._send.close()  # nothing queued or running: every waiting worker ends

    def _put(self, complete: bool, node: Descriptor) -> None:
        self._queued += 1
        self._send.send_nowait((complete, node))

    def _reach(self, node: Descriptor, depth: int) -> None:
        """Queue ``node`` for a visit unless it was reached before; enforce the limits."""
        digest = node["digest"]
        if digest in self.depths:
            return
        if depth > self.max_depth:
            raise exc.GraphLimitExceeded(
                f"graph of {self._root} goes deeper than max_depth={self.max_depth} "
                f"({digest} is {depth} levels down); pass a larger max_depth to walk it",
                what="max_depth",
                limit=self.max_depth,
            )
        if len(self.depths) >= self.max_nodes:
            raise exc.GraphLimitExceeded(
                f"graph of {self._root} has more than max_nodes={self.max_nodes} nodes; "
                "pass a larger max_nodes to walk it",
                what="max_nodes",
                limit=self.max_nodes,
            )
        self.depths[digest] = depth
        self._put(False, node)

    async def _visit(self, node: Descriptor) -> None:
        digest = node["digest"]
        depth = self.depths[digest]
        found = await self.visit(node, depth)
        self._then[digest] = found.then
        for more in found.after:
            self._reach(more, depth + 1)
        left = 0
        for child in {c["digest"]: c for c in found.children}.values():
            self._reach(child, depth + 1)
            if child["digest"] not in self._done:
                self._waiting.setdefault(child["digest"], []).append(digest)
                left += 1
        if left:
            self._blocked[digest] = (node, left)
        else:
            self._put(True, node)

    async def _complete(self, node: Descriptor) -> None:
        digest = node["digest"]
        then = self._then.pop(digest)
        if then is not None:
            for more in await then():
                self._reach(more, self.depths[digest] + 1)
        self._done.add(digest)
        for parent in self._waiting.pop(digest, ()):
            waiting, left = self._blocked.pop(parent)
            if left > 1:
                self._blocked[parent] = (waiting, left - 1)
            else:
                self._put(True, waiting)


def check_limits(max_depth: int, max_nodes: int) -> None:
    """Raise ValueError unless ``max_depth`` is 0 or more and ``max_nodes`` 1 or more."""
    if max_depth < 0:
        raise ValueError(f"max_depth must be 0 or more, got {max_depth}")
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be at least 1, got {max_nodes}")


def referrer_descriptor(descriptor: Descriptor, data: bytes) -> tuple[str, Descriptor] | None:
    """``(subject digest, referrer entry)`` when the manifest ``data`` has a ``subject``.

    The entry is what a referrers index lists for it: media type, digest and size, its
    ``artifactType`` (or, lacking one, its config's media type) and its annotations.
    None for a blob or a manifest without subject.
    """
    if not is_manifest(descriptor):
        return None
    doc = parse_document(data, f"manifest {descriptor['digest']}")
    subject = doc.get("subject")
    if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
        return None
    entry: dict[str, Any] = {
        "mediaType": descriptor["mediaType"],
        "digest": descriptor["digest"],
        "size": descriptor["size"],
    }
    config = doc.get("config")
    artifact_type = doc.get("artifactType") or (
        config.get("mediaType") if isinstance(config, dict) else None
    )
    if artifact_type:
        entry["artifactType"] = artifact_type
    if isinstance(doc.get("annotations"), dict) and doc["annotations"]:
        entry["annotations"] = dict(doc["annotations"])
    return subject["digest"], as_descriptor(entry)


def parse_platform(value: str) -> dict[str, str]:
    """Split ``os/arch[/variant]`` into platform fields; raises ValueError when malformed."""
    parts = value.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform must be os/arch[/variant], got {value!r}")
    platform = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        platform["variant"] = parts[2]
    return platform


def platform_list(platform: str | None, platforms: Sequence[str] | None) -> tuple[str, ...] | None:
    """``platforms`` (or ``platform`` as a one-element shorthand) checked, duplicates dropped.

    None when neither is given. Raises ValueError for both given (unless they agree), an
    empty list, a bare string given as ``platforms``, or a malformed ``os/arch[/variant]``.
    """
    if platforms is not None and isinstance(platforms, str):
        raise ValueError(f"platforms takes a list of os/arch[/variant], got {platforms!r}")
    if platform is not None:
        if platforms is not None and tuple(platforms) != (platform,):
            raise ValueError("give platform (one) or platforms (a list), not both")
        platforms = (platform,)
    if platforms is None:
        return None
    if not platforms:
        raise ValueError("platforms must name at least one os/arch[/variant]")
    for value in platforms:
        parse_platform(value)
    return tuple(dict.fromkeys(platforms))


# Variants the container tools assume when an index entry leaves them out.
_DEFAULT_VARIANTS = {"arm64": "v8", "arm": "v7"}
# What Python's platform.machine() says, in the image-spec's GOARCH names.
_MACHINES = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


def platform_string(platform: Mapping[str, Any]) -> str:
    """``os/arch[/variant]`` of a platform object (``?`` for a missing field)."""
    text = f"{platform.get('os', '?')}/{platform.get('architecture', '?')}"
    return f"{text}/{platform['variant']}" if platform.get("variant") else text


def host_platform() -> str:
    """The running machine's platform as ``os/arch[/variant]`` (``linux/amd64``...)."""
    system = sys.platform
    os_name = "windows" if system.startswith("win") else "darwin" if system == "darwin" else "linux"
    machine = pyplatform.machine().lower()
    architecture, variant = _MACHINES.get(machine, (machine or "amd64", None))
    return f"{os_name}/{architecture}/{variant}" if variant else f"{os_name}/{architecture}"


def platform_matches(entry: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    """Whether an index entry's ``platform`` satisfies ``wanted`` (os, arch, variant).

    As the image-spec and the container tools match: os and architecture equal; a variant
    asked for must equal the entry's, where arm64 without a variant means ``v8`` and arm
    without one ``v7`` (on either side).
    """
    if entry.get("os") != wanted["os"] or entry.get("architecture") != wanted["architecture"]:
        return False
    default = _DEFAULT_VARIANTS.get(wanted["architecture"])
    asked = wanted.get("variant") or (default if wanted["architecture"] == "arm" else None)
    if asked is None:
        return True
    return bool((entry.get("variant") or default) == asked)


def choose_platform(manifests: list[Descriptor], platform: str, index: str) -> Descriptor:
    """The first of an index's ``manifests`` built for ``platform`` (``os/arch[/variant]``).

    Raises [`PlatformNotFound`][aioras.exceptions.PlatformNotFound] (a NotFoundError) listing the
    platforms the index offers when none matches, and ValueError for a malformed
    ``platform``.
    """
    wanted = parse_platform(platform)
    offered: list[str] = []
    for entry in manifests:
        entry_platform = entry.get("platform")
        if not isinstance(entry_platform, dict):
            continue
        if platform_matches(entry_platform, wanted):
            return entry
        offered.append(platform_string(entry_platform))
    raise exc.PlatformNotFound(index, platform, offered)


def select_platform(descriptor: Descriptor, data: bytes, platform: str) -> Descriptor:
    """The first manifest of the index ``data`` built for ``platform`` (``os/arch[/variant]``).

    Raises [`PlatformNotFound`][aioras.exceptions.PlatformNotFound] (a NotFoundError) when no entry
    matches, and ValueError for a malformed ``platform``.
    """
    return choose_platform(successors_of(descriptor, data), platform, descriptor["digest"])


def filter_index(
    descriptor: Descriptor, data: bytes, platforms: Sequence[str]
) -> tuple[Descriptor, bytes]:
    """A new index of the index ``data`` holding only its entries for ``platforms``.

    For each platform the entry `select_platform` would pick is kept; kept entries
    stay in the source's order, each exactly as the source wrote it, and every other field
    of the document (``mediaType``, ``annotations``, ``subject``...) is kept as it is. The
    bytes are compact JSON in the source's key order, so one source index and one set of
    platforms always build the same bytes, hence the same digest (which differs from the
    source's). Returns the new index's descriptor (the source's ``mediaType``) and bytes.
    Raises [`PlatformNotFound`][aioras.exceptions.PlatformNotFound] for the first platform without
    an entry, ValueError for a malformed platform, and ManifestValidationError for a document
    that is not an index.
    """
    doc = parse_document(data, f"index {descriptor['digest']}")
    entries = descriptor_list(doc.get("manifests"), f"index {descriptor['digest']}")
    chosen = {id(choose_platform(entries, p, descriptor["digest"])) for p in platforms}
    # as_descriptor views the parsed dicts without copying: identity picks the entries.
    filtered = {**doc, "manifests": [e for e in entries if id(e) in chosen]}
    new = json.dumps(filtered, separators=(",", ":"), ensure_ascii=False).encode()
    media_type = descriptor["mediaType"]
    return as_descriptor(
        {"mediaType": media_type, "digest": digest_bytes(new), "size": len(new)}
    ), new
