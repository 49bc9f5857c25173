"""Parse OCI references (``[registry/]namespace/repository[:tag][@digest]``) and build API paths.

The grammar is the distribution-spec's: repository path components are lowercase
alphanumerics joined by ``.``, ``_``, ``__`` or runs of ``-``; tags are
``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``; digests are checked by `aioras.digest`.
URLs returned here have no scheme: the registry object prepends ``http://`` or ``https://``.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from urllib.parse import quote, urlencode

from . import defaults
from .digest import validate_digest
from .exceptions import InvalidReference

__all__ = [
    "Container",
    "DOCKER_HUB_API_HOST",
    "names_digest",
    "parse_registry",
    "validate_repository",
    "validate_tag",
]

DOCKER_HUB_API_HOST: str = defaults.registry.default_v2_registry["host"]
# Every spelling of Docker Hub that users type; all of them are served by the one API host.
_DOCKER_HUB_ALIASES = frozenset(
    {defaults.registry.index_name, defaults.registry.index_hostname, DOCKER_HUB_API_HOST}
)
_OFFICIAL_NAMESPACE = "library"

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE = re.compile(
    rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[(?P<ipv6>[0-9a-fA-F:.]+)\])(?::(?P<port>[0-9]+))?"
)
# Clients commonly cap the repository path at 255 characters; registries refuse longer ones.
_MAX_PATH_LENGTH = 255


def validate_tag(tag: str) -> str:
    """Return ``tag`` unchanged if it follows the tag grammar.

    Raises [`InvalidReference`][aioras.exceptions.InvalidReference] with ``part="tag"`` otherwise.
    """
    if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag):
        raise InvalidReference(
            f"invalid tag {tag!r}: expected [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}",
            part="tag",
            value=str(tag),
        )
    return tag


def validate_repository(name: str) -> str:
    """Return ``name`` unchanged if it is a repository path (``team/app``) of the grammar.

    No registry, tag or digest: what a catalog lists. Raises
    [`InvalidReference`][aioras.exceptions.InvalidReference] with ``part="name"`` otherwise (upper
    case, ``..``, empty components, over 255 characters).
    """
    if not isinstance(name, str) or not _PATH_RE.fullmatch(name) or len(name) > _MAX_PATH_LENGTH:
        raise InvalidReference(
            f"invalid repository name {name!r}: components must be lowercase alphanumerics "
            f"separated by '.', '_', '__' or '-', {_MAX_PATH_LENGTH} characters at most",
            part="name",
            value=str(name),
        )
    return name


def names_digest(tag_or_digest: str) -> bool:
    """Whether the reference part ``tag_or_digest`` is a digest (or ``name@digest``), not a tag.

    The reference grammar: a digest has a ``:``, a tag never does. Nothing is validated.
    """
    return ":" in tag_or_digest


def _refuse_scheme(value: object, part: str) -> None:
    """References carry no URL scheme: say so, and what chooses http, instead of a parse error."""
    if isinstance(value, str):
        scheme, sep, _ = value.partition("://")
        if sep and scheme.lower() in ("http", "https"):
            raise InvalidReference(
                f"{value!r} starts with {scheme}://: drop the scheme from the reference; "
                "use insecure=True (--plain-http on the command line) for a plain http registry",
                part=part,
                value=value,
            )


def parse_registry(registry: str) -> str:
    """Validate a registry ``host[:port]`` and return the API host for it.

    IPv4 addresses, ``[IPv6]`` literals and host names are accepted, each with an optional
    port. Docker Hub's names (``docker.io``, ``index.docker.io``) map to its API host
    ``registry-1.docker.io``. Raises [`InvalidReference`][aioras.exceptions.InvalidReference] with
    ``part="registry"`` (saying to drop it and use ``insecure`` when given an ``http://`` or
    ``https://`` URL).
    """
    _refuse_scheme(registry, "registry")
    match = _HOST_RE.fullmatch(registry) if isinstance(registry, str) else None
    if match is None:
        raise InvalidReference(
            f"invalid registry {registry!r}: expected host[:port]",
            part="registry",
            value=str(registry),
        )
    ipv6, port = match.group("ipv6"), match.group("port")
    if ipv6 is not None:
        try:
            ipaddress.IPv6Address(ipv6)
        except ValueError:
            raise InvalidReference(
                f"invalid IPv6 literal in registry {registry!r}", part="registry", value=registry
            ) from None
    if port is not None and not 0 < int(port) < 65536:
        raise InvalidReference(
            f"invalid port in registry {registry!r}", part="registry", value=registry
        )
    return DOCKER_HUB_API_HOST if registry.lower() in _DOCKER_HUB_ALIASES else registry


def _looks_like_registry(component: str) -> bool:
    # The rule docker and the oras CLI share: a first component naming a host has a dot or
    # a port (or is an IPv6 literal), or is exactly "localhost"; anything else is a path.
    return "." in component or ":" in component or component == "localhost"


class Container:
    """A parsed OCI reference: ``[registry/]namespace/repository[:tag][@digest]``.

    ``registry`` is the API host (``host[:port]``); a name without one uses the ``registry``
    argument, else Docker Hub (``registry-1.docker.io``, where single names get the
    ``library/`` namespace). ``tag`` defaults to ``"latest"`` when neither a tag nor a digest is
    given and is ``None`` when only a digest is. ``namespace`` is ``None`` for single-component
    repositories. Equality and hashing follow [`uri`][aioras.Container.uri].

    Raises [`InvalidReference`][aioras.exceptions.InvalidReference] (``part`` is ``"name"``,
    ``"tag"``, ``"digest"``, ``"registry"`` or ``"reference"``) when any part breaks the grammar.
    """

    registry: str
    namespace: str | None
    repository: str
    tag: str | None
    digest: str | None
    tag_given: bool
    """True when the name spelled a tag (False when ``tag`` is only the default)."""

    def __init__(self, name: str, registry: str | None = None) -> None:
        self._default_registry = parse_registry(registry) if registry else None
        self.parse(name)

    def parse(self, name: str) -> None:
        """Parse ``name`` into registry, namespace, repository, tag and digest, in place.

        Raises [`InvalidReference`][aioras.exceptions.InvalidReference] naming the offending part.
        """
        if not isinstance(name, str) or not name:
            raise InvalidReference(
                "empty reference: it does not match <registry>/<repository>:<tag|digest>",
                part="reference",
                value=str(name),
            )
        _refuse_scheme(name, "registry")

        remainder, at, digest = name.partition("@")
        if at:
            validate_digest(digest)

        # A tag follows the last "/"; a ":" before it belongs to a registry port.
        slash = remainder.rfind("/")
        colon = remainder.rfind(":")
        tag: str | None = None
        if colon > slash:
            remainder, tag = remainder[:colon], remainder[colon + 1 :]
            validate_tag(tag)

        registry: str | None = None
        path = remainder
        first, sep, rest = remainder.partition("/")
        if sep and _looks_like_registry(first):
            registry, path = parse_registry(first), rest
        registry = registry or self._default_registry or DOCKER_HUB_API_HOST

        if not _PATH_RE.fullmatch(path):
            raise InvalidReference(
                f"invalid repository name {path!r} in {name!r}: components must be lowercase "
                "alphanumerics separated by '.', '_', '__' or '-'",
                part="name",
                value=path,
            )
        if registry == DOCKER_HUB_API_HOST and "/" not in path:
            path = f"{_OFFICIAL_NAMESPACE}/{path}"
        if len(path) > _MAX_PATH_LENGTH:
            raise InvalidReference(
                f"repository name longer than {_MAX_PATH_LENGTH} characters",
                part="name",
                value=path,
            )

        namespace, _, repository = path.rpartition("/")
        self.registry = registry
        self.namespace = namespace or None
        self.repository = repository
        self.digest = digest if at else None
        self.tag = tag if tag is not None or at else defaults.default_tag
        # Whether the name spelled a tag: "latest" by default is not a tag asked for.
        self.tag_given = tag is not None

    @property
    def api_prefix(self) -> str:
        """The repository path used in ``/v2/<name>/...`` endpoints: ``namespace/repository``."""
        return f"{self.namespace}/{self.repository}" if self.namespace else self.repository

    @property
    def reference(self) -> str:
        """What manifest URLs use: the digest when set, else the tag."""
        # parse() guarantees one of them is set; the fallback keeps mutated objects usable.
        return self.digest or self.tag or defaults.default_tag

    @property
    def uri(self) -> str:
        """The complete reference: ``registry/namespace/repository[:tag][@digest]``."""
        uri = f"{self.registry}/{self.api_prefix}"
        if self.tag:
            uri += f":{self.tag}"
        if self.digest:
            uri += f"@{self.digest}"
        return uri

    def _base(self) -> str:
        return f"{self.registry}/v2/{self.api_prefix}"

    def manifest_url(self, tag: str | None = None) -> str:
        """URL of the manifest for ``tag`` (a tag or a digest), else for `reference`.

        Raises [`InvalidReference`][aioras.exceptions.InvalidReference] when ``tag`` is neither a
        valid tag nor a valid digest.
        """
        if tag is None:
            ref = self.reference
        elif names_digest(tag):
            ref = validate_digest(tag)
        else:
            ref = validate_tag(tag)
        return f"{self._base()}/manifests/{ref}"

    def get_blob_url(self, digest: str) -> str:
        """URL of the blob ``digest``; raises `InvalidDigest` when it is malformed."""
        return f"{self._base()}/blobs/{validate_digest(digest)}"

    def upload_blob_url(self) -> str:
        """URL that starts a blob upload session (POST)."""
        return f"{self._base()}/blobs/uploads/"

    def blob_mount_url(self, digest: str, from_repo: str | Container) -> str:
        """URL that mounts blob ``digest`` from another repository of the same registry.

        ``from_repo`` is a repository path (``namespace/repository``) or a
        [`Container`][aioras.Container], whose `api_prefix` is used. Raises
        [`InvalidReference`][aioras.exceptions.InvalidReference] when either is invalid.
        """
        source = from_repo.api_prefix if isinstance(from_repo, Container) else from_repo
        if not _PATH_RE.fullmatch(source):
            raise InvalidReference(f"invalid repository name {source!r}", part="name", value=source)
        query = urlencode({"mount": validate_digest(digest), "from": source}, safe="/:")
        return f"{self.upload_blob_url()}?{query}"

    def tags_url(self, N: int | None = None, *, last: str | None = None) -> str:
        """URL of the tag list, with ``n=N`` and ``last=`` (pagination) when given."""
        params: dict[str, str] = {}
        if N is not None:
            params["n"] = str(int(N))
        if last is not None:
            params["last"] = last
        url = f"{self._base()}/tags/list"
        return f"{url}?{urlencode(params)}" if params else url

    def referrers_url(self, digest: str, *, artifact_type: str | None = None) -> str:
        """URL of the referrers of manifest ``digest``, optionally filtered by artifact type."""
        url = f"{self._base()}/referrers/{validate_digest(digest)}"
        if artifact_type:
            # "+" must travel as %2B: servers read a bare "+" in a query as a space.
            url += f"?artifactType={quote(artifact_type, safe='/')}"
        return url

    def with_reference(self, tag_or_digest: str) -> Container:
        """Return a new Container for the same repository at another tag or digest.

        A value containing ``:`` is taken as a digest (tags cannot contain one). Raises
        [`InvalidReference`][aioras.exceptions.InvalidReference] when the value is neither.
        """
        new = copy.copy(self)
        if names_digest(tag_or_digest):
            new.tag, new.digest = None, validate_digest(tag_or_digest)
        else:
            new.tag, new.digest = validate_tag(tag_or_digest), None
        new.tag_given = new.tag is not None
        return new

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Container):
            return NotImplemented
        return self.uri == other.uri

    def __hash__(self) -> int:
        return hash(self.uri)
