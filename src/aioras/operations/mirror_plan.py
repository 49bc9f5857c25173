"""What a mirror copies: :class:`MirrorSpec`, plans read from TOML, and tag selection.

A plan is a sequence whose items are pairs ``(source reference, destination reference)``
and :class:`MirrorSpec` entries. :func:`expand` turns it into :class:`MirrorJob` s, one per
artifact, listing tags (and the catalog, for a whole-registry spec) on the way.

A plan file (``load_plan``) holds ``[[mirror]]`` tables with the fields of
:class:`MirrorSpec` and ``[[copy]]`` tables with ``source`` and ``destination``::

    [[mirror]]
    source = "registry.example.com/team/app"
    destination = "mirror.internal:5000/team/app"
    tags = '^v?\\d+\\.\\d+\\.\\d+$'
    exclude = '-debug$'
    semver = ">=1.4 <3"
    newest = 5
    platforms = ["linux/amd64", "linux/arm64"]  # of an index: these entries only

    [[copy]]
    source = "registry.example.com/base/alpine:3.20"
    destination = "mirror.internal:5000/base/alpine:3.20"
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from ..container import Container
from ..content.graph import platform_list
from .semver import SemverRange

if TYPE_CHECKING:
    from .endpoints import CatalogEndpoints

__all__ = [
    "MirrorJob",
    "MirrorPlan",
    "MirrorSpec",
    "expand",
    "load_plan",
    "select_tags",
    "shard_by_repository",
]

_DIGEST_TAG = re.compile(r"[a-z0-9]+-[0-9a-f]{32,}")


@dataclass(frozen=True)
class MirrorSpec:
    """A repository (or a whole registry) to mirror, and which of its tags.

    ``source``: ``host/repository``, or a bare ``host`` for every repository its catalog
    lists (kept by ``repositories`` allow regex and ``exclude_repositories`` deny regex,
    both matched in full against the repository name). ``destination``: the destination
    repository; for a whole registry, the prefix each repository's name is appended to.

    Tags, in this order: ``tags`` allow regex and ``exclude`` deny regex (matched in full),
    ``semver`` range (see :mod:`aioras.operations.semver`), tag-schema fallback tags
    (``sha256-<hex>``) dropped unless ``digest_tags``, then the last ``newest`` in the
    order the registry lists them. ``referrers`` also copies signatures and SBOMs
    (``artifact_type`` only).

    ``platforms`` (a list of ``os/arch[/variant]``, kept as a tuple) selects entries of
    each index copied; ``platform`` is shorthand for a list of one (kept, not deprecated).
    One platform: the destination tag names that platform's manifest, exact bytes. Several:
    the destination tag names a new index listing only their entries (in the source's
    order; entries, ``mediaType`` and annotations as the source has them), its manifests
    copied with their digests, but the index's own digest differs from the source's: the
    report's result gives both (``source_digest``, ``digest``). A re-sync fetches the
    source index once to rebuild that index and skips when the destination tag names it.
    An index without one of the platforms fails with
    :class:`~aioras.exceptions.PlatformNotFound`; a tag naming a single manifest is
    copied as it is (nothing to select).
    """

    source: str
    destination: str
    tags: str | None = None
    exclude: str | None = None
    semver: str | None = None
    newest: int | None = None
    repositories: str | None = None
    exclude_repositories: str | None = None
    # Shorthand for platforms=[platform]: specs compare by their platforms alone.
    platform: str | None = field(default=None, compare=False)
    referrers: bool = False
    artifact_type: str | None = None
    digest_tags: bool = False
    platforms: Sequence[str] | None = None

    def __post_init__(self) -> None:
        # Frozen: the normalised list is set the way dataclasses set fields.
        object.__setattr__(self, "platforms", platform_list(self.platform, self.platforms))
        for name in ("tags", "exclude", "repositories", "exclude_repositories"):
            value = getattr(self, name)
            if value is not None:
                try:
                    re.compile(value)
                except re.error as error:
                    raise ValueError(f"MirrorSpec {name}={value!r}: {error}") from None
        if self.semver is not None:
            SemverRange(self.semver)
        if self.newest is not None and self.newest < 1:
            raise ValueError(f"MirrorSpec newest must be at least 1, got {self.newest}")

    @property
    def whole_registry(self) -> bool:
        """Whether ``source`` names a registry host rather than one repository."""
        return "/" not in self.source.strip("/")


MirrorPlan = Sequence["MirrorSpec | tuple[str, str]"]
"""What :meth:`aioras.AsyncRegistry.mirror` takes."""


@dataclass(frozen=True)
class MirrorJob:
    """One artifact to mirror: full source and destination references, and copy options."""

    source: str
    destination: str
    platforms: tuple[str, ...] | None = None
    referrers: bool = False
    artifact_type: str | None = None

    @property
    def key(self) -> str:
        """``source -> destination``: the job's name in reports and state files."""
        return f"{self.source} -> {self.destination}"

    @property
    def source_repository(self) -> str:
        """``host/repository`` of the source."""
        return _repository_of(self.source)

    @property
    def destination_repository(self) -> str:
        """``host/repository`` of the destination."""
        return _repository_of(self.destination)


def _repository_of(reference: str) -> str:
    container = Container(reference)
    return f"{container.registry}/{container.api_prefix}"


def load_plan(path: str | os.PathLike[str]) -> list[MirrorSpec | tuple[str, str]]:
    """Read a plan from a TOML file (``[[mirror]]`` and ``[[copy]]`` tables).

    Raises ValueError naming the entry for unknown keys, missing fields or bad values,
    and ``tomllib.TOMLDecodeError`` for a file that is not TOML.
    """
    with open(path, "rb") as handle:
        doc = tomllib.load(handle)
    unknown = set(doc) - {"mirror", "copy"}
    if unknown:
        raise ValueError(f"{os.fspath(path)}: unknown tables {sorted(unknown)}")
    plan: list[MirrorSpec | tuple[str, str]] = []
    names = {f.name for f in fields(MirrorSpec)}
    for i, entry in enumerate(doc.get("mirror", [])):
        extra = set(entry) - names
        if extra:
            raise ValueError(f"[[mirror]] entry {i + 1}: unknown keys {sorted(extra)}")
        try:
            plan.append(MirrorSpec(**entry))
        except TypeError as error:
            raise ValueError(f"[[mirror]] entry {i + 1}: {error}") from None
    for i, entry in enumerate(doc.get("copy", [])):
        if set(entry) != {"source", "destination"}:
            raise ValueError(f"[[copy]] entry {i + 1} needs exactly source and destination")
        plan.append((str(entry["source"]), str(entry["destination"])))
    return plan


def select_tags(spec: MirrorSpec, listed: Sequence[str]) -> list[str]:
    """The tags of ``listed`` (in registry order) that ``spec`` keeps; see :class:`MirrorSpec`."""
    semver = SemverRange(spec.semver) if spec.semver else None
    kept = [
        tag
        for tag in listed
        if (spec.tags is None or re.fullmatch(spec.tags, tag))
        and (spec.exclude is None or not re.fullmatch(spec.exclude, tag))
        and (semver is None or semver.matches(tag))
        and (spec.digest_tags or not _DIGEST_TAG.fullmatch(tag))
    ]
    if spec.newest is not None:
        kept = kept[-spec.newest :]
    return kept


async def expand(registry: CatalogEndpoints, plan: MirrorPlan) -> list[MirrorJob]:
    """One job per artifact of ``plan``, listing tags and catalogs as specs need.

    Raises :class:`~aioras.exceptions.InvalidReference` for a malformed reference, and
    the registry's typed errors from listing.
    """
    jobs: list[MirrorJob] = []
    for item in plan:
        if isinstance(item, MirrorSpec):
            for spec in await _per_repository(registry, item):
                jobs.extend(await _spec_jobs(registry, spec))
        else:
            source, destination = item
            Container(source), Container(destination)  # validates both up front
            jobs.append(MirrorJob(source, destination))
    return jobs


async def _per_repository(registry: CatalogEndpoints, spec: MirrorSpec) -> list[MirrorSpec]:
    if not spec.whole_registry:
        return [spec]
    host = spec.source.strip("/")
    prefix = spec.destination.rstrip("/")
    specs = []
    for name in await registry.list_repositories(host, page_size=1000):
        if spec.repositories is not None and not re.fullmatch(spec.repositories, name):
            continue
        if spec.exclude_repositories is not None and re.fullmatch(spec.exclude_repositories, name):
            continue
        specs.append(_replace(spec, source=f"{host}/{name}", destination=f"{prefix}/{name}"))
    return specs


def _replace(spec: MirrorSpec, **changes: str) -> MirrorSpec:
    values = {f.name: getattr(spec, f.name) for f in fields(MirrorSpec)}
    values.update(changes)
    return MirrorSpec(**values)


async def _spec_jobs(registry: CatalogEndpoints, spec: MirrorSpec) -> list[MirrorJob]:
    listed = await registry.get_tags(spec.source)
    return [
        MirrorJob(
            f"{spec.source}:{tag}",
            f"{spec.destination}:{tag}",
            platforms=None if spec.platforms is None else tuple(spec.platforms),
            referrers=spec.referrers,
            artifact_type=spec.artifact_type,
        )
        for tag in select_tags(spec, listed)
    ]


def shard_by_repository(jobs: Sequence[MirrorJob]) -> list[list[MirrorJob]]:
    """Jobs grouped by source repository, in plan order (tokens and shared blobs stay together)."""
    shards: dict[str, list[MirrorJob]] = {}
    for job in jobs:
        shards.setdefault(job.source_repository, []).append(job)
    return list(shards.values())
