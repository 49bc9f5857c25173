"""Credentials for one registry, and the scopes operations ask for."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .._http.headers import check_header

__all__ = ["Credentials", "merge_scopes", "repository_scope", "scopes_for_request"]


@dataclass(frozen=True)
class Credentials:
    """A username/password pair, an identity (refresh) token, or a ready bearer token.

    The secret fields never appear in ``repr``; log and error messages name only the user.
    Raises [`InvalidHeaderValue`][aioras.exceptions.InvalidHeaderValue] for a ``registry_token``
    holding a control or non-ASCII character (a token pasted with its newline).
    """

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    registry_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # A token travels as a header value: one with a newline would make the HTTP
        # library quote the whole header, token included, in its error.
        if self.registry_token is not None:
            check_header("Authorization", self.registry_token, what="a registry token")

    def __bool__(self) -> bool:
        return bool((self.username and self.password) or self.identity_token or self.registry_token)

    @property
    def has_basic(self) -> bool:
        """True when a username and password are both present."""
        return bool(self.username and self.password)

    def basic_header(self) -> str:
        """The ``Authorization`` value for HTTP basic auth."""
        raw = f"{self.username or ''}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def repository_scope(name: str, actions: str | tuple[str, ...] = "pull") -> str:
    """``repository:<name>:<actions>`` as the token service expects it."""
    acts = actions if isinstance(actions, str) else ",".join(actions)
    return f"repository:{name}:{acts}"


_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
_REPO_ENDPOINTS = ("/blobs/", "/manifests/", "/tags/", "/referrers/")


def scopes_for_request(method: str, url: str) -> tuple[str, ...]:
    """Derive the scope a request needs from its method and ``/v2/<name>/...`` path.

    Reads need ``pull``; uploads and tagging ``pull,push``; deletes ``delete``. A request
    outside a repository (``/v2/``, ``/v2/_catalog``) needs none (the catalog asks for
    ``registry:catalog:*``).
    """
    path = urlsplit(url).path
    if not path.startswith("/v2/"):
        return ()
    rest = path[len("/v2/") :]
    if rest.startswith("_catalog"):
        return ("registry:catalog:*",)
    for marker in _REPO_ENDPOINTS:
        idx = rest.find(marker)
        if idx > 0:
            name = rest[:idx]
            method = method.upper()
            if method == "DELETE":
                return (repository_scope(name, "delete"),)
            if method in _WRITE_METHODS:
                return (repository_scope(name, ("pull", "push")),)
            return (repository_scope(name, "pull"),)
    return ()


def merge_scopes(*groups: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Union scopes, merging actions per resource: ``pull`` + ``push`` -> ``pull,push``.

    The result is sorted so that equal sets give equal cache keys.
    """
    actions: dict[str, set[str]] = {}
    for group in groups:
        for scope in group:
            resource, sep, acts = scope.rpartition(":")
            if not sep or not resource:
                continue
            actions.setdefault(resource, set()).update(a for a in acts.split(",") if a)
    return tuple(
        f"{resource}:{','.join(sorted(acts))}" for resource, acts in sorted(actions.items())
    )
