"""What a mirror copies: [`MirrorSpec`][aioras.MirrorSpec], plans read from TOML, and tag selection.

A plan is a sequence whose items are pairs ``(source reference, destination reference)``
and [`MirrorSpec`][aioras.MirrorSpec] entries. `expand` turns it into `MirrorJob`s, one per
artifact, listing tags (and the catalog, for a whole-registry spec) on the way.

Every entry is checked when it is built, before anything is listed or copied, and refused
with [`InvalidMirrorPlan`][aioras.exceptions.InvalidMirrorPlan] naming it: a source or destination
that breaks the reference grammar; a destination that overlaps its source on the same registry
host (a repository onto itself, a whole registry onto itself); a tag or repository pattern
that could backtrack without bound (the shapes are listed in ``_regex``). A whole
registry mirrored into a prefix of itself leaves that prefix out of its catalog, so a run
never copies an earlier run's copies. Hosts are compared by name: ``localhost:5000`` and
``127.0.0.1:5000`` are two registries to this check.

Each name a catalog lists and each tag a tag list holds is checked against the
distribution grammar before any pattern sees it (tags ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``,
repository paths of lowercase components, 255 characters at most). One that breaks it is
left out and reported as a failed artifact with ``keep_going``, or raised as
[`InvalidReference`][aioras.exceptions.InvalidReference].

A plan file (``load_plan``) holds ``[[mirror]]`` tables with the fields of
[`MirrorSpec`][aioras.MirrorSpec] and ``[[copy]]`` tables with ``source`` and ``destination``::

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

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..._environment import read_variable
from ...container import Container, parse_registry, validate_repository, validate_tag
from ...content.graph import platform_list
from ...exceptions import InvalidMirrorPlan, InvalidReference, RegistryError, TransportError
from ._regex import backtracking_risk
from .report import ArtifactFailure
from .semver import SemverRange

if TYPE_CHECKING:
    from ...remote.client import RegistryClient
    from ..endpoints import CatalogEndpoints

__all__ = [
    "Connection",
    "MirrorJob",
    "MirrorPlan",
    "MirrorSpec",
    "expand",
    "load_plan",
    "select_tags",
    "shard_by_repository",
]

_DIGEST_TAG = re.compile(r"[a-z0-9]+-[0-9a-f]{32,}")


# Keys that would put a secret in a plan: refused, with where to put it instead.
_SECRET_KEYS = frozenset({"username", "password", "token", "auth", "identitytoken"})


@dataclass(frozen=True)
class Connection:
    """How one side of a [`MirrorSpec`][aioras.MirrorSpec] reaches its registry, when not as the
    mirror's own.

    ``plain_http``: speak http, not https (a local registry). ``ca_file``: a PEM bundle
    of the CA that signed the registry's certificate (a private CA). Credentials go by
    reference, never the secret itself: ``username_env`` and ``password_env`` name
    environment variables holding them (both or neither); ``docker_config`` names a
    directory whose ``config.json`` holds them (logins, credential helpers). Without
    either, the Docker config of the environment is read, as for any registry object.
    The other options (timeouts, retries, rate limits, transfer limit) are the mirror's.

    Raises ValueError for a value of the wrong type, one credential variable without the
    other, or ``ca_file`` with ``plain_http``.
    """

    plain_http: bool = False
    ca_file: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    docker_config: str | None = None

    def __post_init__(self) -> None:
        """Check the values (see the class doc)."""
        if not isinstance(self.plain_http, bool):
            raise ValueError(f"plain_http must be true or false, got {self.plain_http!r}")
        for name in ("ca_file", "username_env", "password_env", "docker_config"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("give username_env and password_env together")
        if self.plain_http and self.ca_file is not None:
            raise ValueError("ca_file is for https; plain_http speaks http")

    def connect(self, base: RegistryClient) -> RegistryClient:
        """A new registry object for this side: ``base``'s options, this connection's own.

        Raises ValueError when a named credential variable is not set.
        """
        from ...remote.client import RegistryClient

        environment = base.environment
        if self.docker_config is not None:
            environment = dataclasses.replace(
                environment, docker_config_dir=Path(self.docker_config)
            )
        pacer = base._transport.pacer
        registry = RegistryClient(
            None,
            self.plain_http,
            self.ca_file if self.ca_file is not None else base.tls_verify,
            max_transfers=base.max_transfers,
            timeout=base._rebuild_options["timeout"],
            retry=base._rebuild_options["retry"],
            environment=environment,
            rate_limits=pacer.limits if pacer is not None else None,
            cache=base.cache if base.cache is not None else False,
        )
        if self.username_env is not None and self.password_env is not None:
            username = read_variable(self.username_env)
            password = read_variable(self.password_env)
            if username is None or password is None:
                names = f"{self.username_env!r}/{self.password_env!r}"
                raise ValueError(f"credential variables {names} are not set")
            registry.set_basic_auth(username, password)
        return registry


@dataclass(frozen=True)
class MirrorSpec:
    """A repository (or a whole registry) to mirror, and which of its tags.

    ``source``: ``host/repository``, or a bare ``host`` for every repository its catalog
    lists (kept by ``repositories`` allow regex and ``exclude_repositories`` deny regex,
    both matched in full against the repository name). ``destination``: the destination
    repository; for a whole registry, the prefix each repository's name is appended to.

    Tags, in this order: ``tags`` allow regex and ``exclude`` deny regex (matched in full),
    ``semver`` range (see `aioras.operations.mirror.semver`), tag-schema fallback tags
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
    [`PlatformNotFound`][aioras.exceptions.PlatformNotFound]; a tag naming a single manifest is
    copied as it is (nothing to select).

    ``source_connection`` and ``destination_connection`` (`Connection`) reach
    each side its own way: plain http on one side and a private CA on the other,
    credentials by reference per side. Without them a side uses the mirror's registry
    object.

    Raises [`InvalidMirrorPlan`][aioras.exceptions.InvalidMirrorPlan] (naming the spec) for a bad
    value, a malformed source or destination, a destination overlapping the source, or a
    pattern that could backtrack without bound (see the module doc).
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
    source_connection: Connection | None = None
    destination_connection: Connection | None = None

    def __post_init__(self) -> None:
        """Check the spec; [`InvalidMirrorPlan`][aioras.exceptions.InvalidMirrorPlan] names what is
        wrong."""
        entry = f"MirrorSpec(source={self.source!r}, destination={self.destination!r})"
        try:
            _check_types(self)
            # Frozen: the normalised list is set the way dataclasses set fields.
            object.__setattr__(self, "platforms", platform_list(self.platform, self.platforms))
            _check_spec(self)
        except ValueError as error:
            raise InvalidMirrorPlan(f"{entry}: {error}", entry=entry) from error

    @property
    def whole_registry(self) -> bool:
        """Whether ``source`` names a registry host rather than one repository."""
        return "/" not in self.source.strip("/")


# What each field of a spec takes (TOML hands over whatever the file says).
_REGEX = "a string (a regular expression)"
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "source": ((str,), "a string"),
    "destination": ((str,), "a string"),
    "tags": ((str,), _REGEX),
    "exclude": ((str,), _REGEX),
    "semver": ((str,), "a string (a version range)"),
    "newest": ((int,), "a whole number"),
    "repositories": ((str,), _REGEX),
    "exclude_repositories": ((str,), _REGEX),
    "platform": ((str,), "a string (os/arch[/variant])"),
    "referrers": ((bool,), "true or false"),
    "artifact_type": ((str,), "a string (a media type)"),
    "digest_tags": ((bool,), "true or false"),
    "platforms": ((list, tuple), "a list of os/arch[/variant] strings"),
    "source_connection": ((Connection,), "a Connection"),
    "destination_connection": ((Connection,), "a Connection"),
}


def _check_types(spec: MirrorSpec) -> None:
    """Refuse a value of the wrong type, naming the key (``tags = 5`` in a plan file)."""
    for name, (types, wanted) in _FIELD_TYPES.items():
        value = getattr(spec, name)
        if value is None and name not in ("source", "destination", "referrers", "digest_tags"):
            continue
        # bool is an int to Python, not a number to a plan's author.
        wrong = not isinstance(value, types) or (bool not in types and isinstance(value, bool))
        if not wrong and name == "platforms":
            wrong = not all(isinstance(p, str) for p in value)
        if wrong:
            raise ValueError(f"{name} must be {wanted}, got {type(value).__name__} {value!r}")


def _check_spec(spec: MirrorSpec) -> None:
    for name in ("tags", "exclude", "repositories", "exclude_repositories"):
        value = getattr(spec, name)
        if value is None:
            continue
        try:
            risk = backtracking_risk(value)
        except re.error as error:
            raise ValueError(
                f"{name} {value!r} is not a valid regular expression: {error}"
            ) from None
        if risk is not None:
            raise InvalidMirrorPlan(
                f"{name}={value!r} could backtrack without bound ({risk}); "
                "write it so that each character has one way to match"
            )
    if spec.semver is not None:
        try:
            SemverRange(spec.semver)
        except ValueError as error:
            raise ValueError(f"semver={spec.semver!r}: {error}") from None
    if spec.newest is not None and spec.newest < 1:
        raise ValueError(f"newest must be at least 1, got {spec.newest}")
    if spec.whole_registry:
        host = _registry("source", spec.source.strip("/"))
        prefix = spec.destination.rstrip("/")
        if "/" in prefix:
            target, path = _repository("destination", prefix)
        else:
            target, path = _registry("destination", prefix), ""
        if target == host and not path:
            raise InvalidMirrorPlan(
                f"source and destination overlap: the whole registry {host} onto itself"
            )
    else:
        source = _repository("source", spec.source)
        if source == _repository("destination", spec.destination):
            raise InvalidMirrorPlan(
                f"source and destination overlap: {source[0]}/{source[1]} onto itself"
            )


def _registry(what: str, host: str) -> str:
    """``host`` as it is compared: its API host, lower case."""
    try:
        return parse_registry(host).lower()
    except InvalidReference as error:
        raise InvalidMirrorPlan(f"{what} {host!r}: {error}") from error


def _repository(what: str, reference: str) -> tuple[str, str]:
    """(host, repository path) of a repository named with no tag or digest."""
    try:
        container = Container(reference)
    except InvalidReference as error:
        raise InvalidMirrorPlan(f"{what} {reference!r}: {error}") from error
    if container.tag_given or container.digest:
        raise InvalidMirrorPlan(f"{what} {reference!r} names a repository: no tag or digest")
    return container.registry.lower(), container.api_prefix


def _own_prefix(spec: MirrorSpec) -> str | None:
    """The destination prefix's path when a whole registry is mirrored into itself."""
    host = _registry("source", spec.source.strip("/"))
    prefix = spec.destination.rstrip("/")
    if "/" not in prefix:
        return None
    target, path = _repository("destination", prefix)
    return path if target == host else None


MirrorPlan = Sequence["MirrorSpec | tuple[str, str]"]
"""What [`aioras.AsyncRegistry.mirror`][aioras.registry.AsyncRegistry.mirror] takes."""


@dataclass(frozen=True)
class MirrorJob:
    """One artifact to mirror: full source and destination references, and copy options."""

    source: str
    destination: str
    platforms: tuple[str, ...] | None = None
    referrers: bool = False
    artifact_type: str | None = None
    source_connection: Connection | None = None
    destination_connection: Connection | None = None

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

    Raises [`InvalidMirrorPlan`][aioras.exceptions.InvalidMirrorPlan] (a ValueError) naming the
    file, the entry and the key for anything refused: a file that is not TOML (with the line and
    column), an unknown table or key, a missing source or destination, a value of the
    wrong type (``tags = 5``), a pattern that does not compile or could backtrack without
    bound, and a spec or pair refused for the reasons in the module doc.
    """
    name = os.fspath(path)
    with open(path, "rb") as handle:
        try:
            doc = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            # Its message gives the line and column; the file is ours to name.
            raise InvalidMirrorPlan(f"{name}: not valid TOML: {error}", entry=name) from error
    unknown = set(doc) - {"mirror", "copy"}
    if unknown:
        raise InvalidMirrorPlan(f"{name}: unknown tables {sorted(unknown)}", entry=name)
    plan: list[MirrorSpec | tuple[str, str]] = []
    for table in ("mirror", "copy"):
        entries = doc.get(table, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            message = f"{name}: {table} must be [[{table}]] tables"
            raise InvalidMirrorPlan(message, entry=name)
    for i, entry in enumerate(doc.get("mirror", [])):
        plan.append(_plan_spec(entry, _where(name, "mirror", i, entry)))
    for i, entry in enumerate(doc.get("copy", [])):
        where = _where(name, "copy", i, entry)
        if set(entry) != {"source", "destination"}:
            raise InvalidMirrorPlan(f"{where}: needs exactly source and destination", entry=where)
        for key in ("source", "destination"):
            if not isinstance(entry[key], str):
                value = entry[key]
                message = f"{where}: {key} must be a string, got {type(value).__name__} {value!r}"
                raise InvalidMirrorPlan(message, entry=where)
        pair = (entry["source"], entry["destination"])
        _check_pair(pair, where)
        plan.append(pair)
    return plan


def _where(name: str, table: str, index: int, entry: dict[str, Any]) -> str:
    """``plan.toml: [[mirror]] entry 2 (source 'reg/app')``: an entry as errors name it."""
    source = entry.get("source")
    named = f" (source {source!r})" if isinstance(source, str) else ""
    return f"{name}: [[{table}]] entry {index + 1}{named}"


def _plan_spec(entry: dict[str, Any], where: str) -> MirrorSpec:
    """One ``[[mirror]]`` table as a spec; InvalidMirrorPlan names ``where`` and the key."""
    names = {f.name for f in fields(MirrorSpec)}
    extra = set(entry) - names
    if extra:
        raise InvalidMirrorPlan(f"{where}: unknown keys {sorted(extra)}", entry=where)
    missing = {"source", "destination"} - set(entry)
    if missing:
        raise InvalidMirrorPlan(f"{where}: missing {' and '.join(sorted(missing))}", entry=where)
    entry = dict(entry)
    for key in ("source_connection", "destination_connection"):
        if key in entry:
            entry[key] = _plan_connection(entry[key], f"{where}: {key}")
    try:
        return MirrorSpec(**entry)
    except InvalidMirrorPlan as error:
        # The file and entry name it here: the cause's words, without the spec's repr.
        detail = error.__cause__ if isinstance(error.__cause__, ValueError) else error
        raise InvalidMirrorPlan(f"{where}: {detail}", entry=where) from error


def _plan_connection(table: object, where: str) -> Connection:
    """A ``*_connection`` table as a `Connection`; refused naming ``where`` and the key."""
    if not isinstance(table, dict):
        raise InvalidMirrorPlan(f"{where} must be a table, got {table!r}", entry=where)
    secrets = sorted(k for k in table if k.lower() in _SECRET_KEYS)
    if secrets:
        raise InvalidMirrorPlan(
            f"{where}: {secrets} would put a secret in the plan; name where it is instead: "
            "username_env and password_env (environment variables) or docker_config (a "
            "directory holding config.json)",
            entry=where,
        )
    known = {f.name for f in fields(Connection)}
    extra = sorted(set(table) - known)
    if extra:
        raise InvalidMirrorPlan(
            f"{where}: unknown keys {extra} (known: {sorted(known)})", entry=where
        )
    try:
        return Connection(**table)
    except ValueError as error:
        raise InvalidMirrorPlan(f"{where}: {error}", entry=where) from error


def _check_pair(pair: tuple[str, str], where: str) -> None:
    """Refuse a malformed pair, or one copying a reference onto itself."""
    parsed = []
    for what, reference in zip(("source", "destination"), pair, strict=True):
        try:
            parsed.append(Container(reference))
        except InvalidReference as error:
            message = f"{where}: {what} {reference!r}: {error}"
            raise InvalidMirrorPlan(message, entry=where) from error
    source, destination = parsed
    if source.uri.lower() == destination.uri.lower():
        raise InvalidMirrorPlan(
            f"{where}: source and destination overlap: {source.uri} onto itself", entry=where
        )


def select_tags(spec: MirrorSpec, listed: Sequence[str]) -> list[str]:
    """The tags of ``listed`` (in registry order) that ``spec`` keeps; see
    [`MirrorSpec`][aioras.MirrorSpec]."""
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


async def expand(
    registry: CatalogEndpoints,
    plan: MirrorPlan,
    *,
    refused: list[ArtifactFailure] | None = None,
    connect: Callable[[Connection], CatalogEndpoints] | None = None,
) -> list[MirrorJob]:
    """One job per artifact of ``plan``, listing tags and catalogs as specs need.

    Pairs are checked before anything is listed. When ``refused`` is a list
    (``keep_going``), a spec whose tags or catalog cannot be listed (a source repository
    that does not exist, credentials refused, a registry out of reach) is appended to it
    as one failure naming the spec, and so is a listed name or tag that breaks the
    grammar; the other specs are expanded as usual. Otherwise those are raised: the
    registry's typed errors from listing, [`InvalidReference`][aioras.exceptions.InvalidReference]
    for a malformed listed name or tag. Raises
    [`InvalidMirrorPlan`][aioras.exceptions.InvalidMirrorPlan] for a malformed or overlapping pair.
    A spec with a ``source_connection`` is listed through ``connect(connection)`` (a
    ValueError when none is given).
    """
    for number, item in enumerate(plan, 1):
        if not isinstance(item, MirrorSpec):
            _check_pair(item, f"plan entry {number} {item!r}")
    jobs: list[MirrorJob] = []
    for item in plan:
        if isinstance(item, MirrorSpec):
            lister = registry
            if item.source_connection is not None:
                if connect is None:
                    raise ValueError("a spec with a source_connection needs connect=")
                lister = connect(item.source_connection)
            try:
                specs = await _per_repository(lister, item, refused)
            except (RegistryError, TransportError) as error:
                _failed_listing(refused, item, error)
                continue
            for spec in specs:
                try:
                    jobs.extend(await _spec_jobs(lister, spec, refused))
                except (RegistryError, TransportError) as error:
                    _failed_listing(refused, spec, error)
        else:
            source, destination = item
            jobs.append(MirrorJob(source, destination))
    return jobs


async def _per_repository(
    registry: CatalogEndpoints, spec: MirrorSpec, refused: list[ArtifactFailure] | None
) -> list[MirrorSpec]:
    if not spec.whole_registry:
        return [spec]
    host = spec.source.strip("/")
    prefix = spec.destination.rstrip("/")
    own = _own_prefix(spec)
    specs = []
    for name in await registry.list_repositories(host, page_size=1000):
        try:
            validate_repository(name)
            Container(f"{prefix}/{name}")  # the destination's name, 255 characters at most
        except InvalidReference as error:
            _refuse(refused, error, host, f"{host}/{name}", f"{prefix}/{name}")
            continue
        if own is not None and (name == own or name.startswith(f"{own}/")):
            continue  # an earlier run's copy: never mirrored into itself again
        if spec.repositories is not None and not re.fullmatch(spec.repositories, name):
            continue
        if spec.exclude_repositories is not None and re.fullmatch(spec.exclude_repositories, name):
            continue
        specs.append(_replace(spec, source=f"{host}/{name}", destination=f"{prefix}/{name}"))
    return specs


def _failed_listing(
    refused: list[ArtifactFailure] | None,
    spec: MirrorSpec,
    error: RegistryError | TransportError,
) -> None:
    """A spec whose tags (or catalog) could not be listed: reported (``refused``) or raised."""
    if refused is None:
        raise error
    refused.append(
        ArtifactFailure(spec.source, spec.destination, type(error).__name__, str(error), error)
    )


def _refuse(
    refused: list[ArtifactFailure] | None,
    error: InvalidReference,
    listing: str,
    source: str,
    destination: str,
) -> None:
    """Report (``refused`` a list) or raise a listed name or tag that breaks the grammar."""
    value = error.value if len(error.value) <= 80 else f"{error.value[:60]}..."
    what = "tag" if error.part == "tag" else "repository name"
    problem = InvalidReference(
        f"{listing} lists the {what} {value!r} ({len(error.value)} characters), which breaks "
        "the distribution grammar; it is left out",
        part=error.part,
        value=error.value,
    )
    if refused is None:
        raise problem from error
    refused.append(
        ArtifactFailure(source, destination, type(problem).__name__, str(problem), problem)
    )


def _replace(spec: MirrorSpec, **changes: str) -> MirrorSpec:
    values = {f.name: getattr(spec, f.name) for f in fields(MirrorSpec)}
    values.update(changes)
    return MirrorSpec(**values)


async def _spec_jobs(
    registry: CatalogEndpoints, spec: MirrorSpec, refused: list[ArtifactFailure] | None
) -> list[MirrorJob]:
    tags = []
    for tag in await registry.get_tags(spec.source):
        try:
            tags.append(validate_tag(tag))
        except InvalidReference as error:
            _refuse(
                refused, error, spec.source, f"{spec.source}:{tag}", f"{spec.destination}:{tag}"
            )
    return [
        MirrorJob(
            f"{spec.source}:{tag}",
            f"{spec.destination}:{tag}",
            platforms=None if spec.platforms is None else tuple(spec.platforms),
            referrers=spec.referrers,
            artifact_type=spec.artifact_type,
            source_connection=spec.source_connection,
            destination_connection=spec.destination_connection,
        )
        for tag in select_tags(spec, tags)
    ]


def shard_by_repository(jobs: Sequence[MirrorJob]) -> list[list[MirrorJob]]:
    """Jobs grouped by source repository, in plan order (tokens and shared blobs stay together)."""
    shards: dict[str, list[MirrorJob]] = {}
    for job in jobs:
        shards.setdefault(job.source_repository, []).append(job)
    return list(shards.values())
