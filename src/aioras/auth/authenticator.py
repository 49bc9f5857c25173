"""Answering registry challenges: HTTP basic and bearer tokens, with a token cache.

The transport asks `Authenticator.authorize` for an ``Authorization`` value before each
request, and calls `Authenticator.on_unauthorized` when a 401 comes back. After the
first challenge from a host, credentials (basic) or a token for the needed scopes (bearer)
go with every request up front, so a large upload body is never sent only to be refused.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

import anyio
import httpx

from .. import defaults
from .._http.headers import check_header
from .._http.responses import Deadline, read_capped, send_within
from .._http.urls import redact
from .._jsondoc import load_json
from ..exceptions import (
    AuthenticationError,
    CredentialsNotForwarded,
    InsecureTokenRealm,
    InvalidHeaderValue,
    ResponseTooLarge,
    parse_error_body,
)
from .challenge import Challenge, parse_www_authenticate
from .credentials import Credentials, merge_scopes

__all__ = [
    "AnonymousAuth",
    "Authenticator",
    "BasicAuth",
    "CredentialSource",
    "Token",
    "TokenAuth",
]

logger = logging.getLogger(__name__)

CredentialSource = Callable[[str], Credentials | Awaitable[Credentials | None] | None]
"""Looks up the credentials for a registry host (``"ghcr.io"``, ``"127.0.0.1:5000"``).

A plain function or a coroutine function (or any callable returning an awaitable), so a
source may run a credential helper or ask a cloud API without blocking the event loop.
A source that has an ``invalidate(host)`` method is told when that host's credentials
should be looked up afresh (after `Authenticator.forget`, or refused credentials).
"""

_DEFAULT_TOKEN_LIFETIME = 60.0


def forget_host(cache: dict[str, Any], host: str | None) -> None:
    """Drop ``host``'s entry of a per-host ``cache``, or every entry when ``host`` is None."""
    if host is None:
        cache.clear()
    else:
        cache.pop(host, None)


@dataclass(frozen=True, slots=True)
class Ask:
    """What the transport asks before a request: the client, the host and the scopes."""

    client: httpx.AsyncClient
    host: str
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Refusal(Ask):
    """A 401 to answer: the request's `Ask`, the response, and the ``Authorization`` sent."""

    response: httpx.Response
    sent: str | None


@dataclass
class Token:
    """A bearer token, when it stops being usable (monotonic clock), and what it was for."""

    value: str = field(repr=False)
    expires_at: float
    scopes: tuple[str, ...] = ()

    def fresh(self, now: float) -> bool:
        """True while the token is not within its refresh margin of expiry."""
        return now < self.expires_at


class Authenticator:
    """Base class of authentication backends; subclass it to plug in your own.

    A backend keeps per-host state and credentials. ``insecure`` tells it the registry
    speaks plain http, which permits an http token realm.

    The transport calls two coroutines: `authorize` before each request (return the
    ``Authorization`` value to send, or None) and `on_unauthorized` after a 401
    (return True to have the request sent again). Credentials come from
    `lookup_credentials`: explicit ones (`set_basic_auth`,
    `set_credentials`) first, then each source added with `add_source`.

    A backend pickles (and deep-copies) with its settings, explicit credentials and sources;
    what one process learned (tokens, challenges, looked-up credentials, locks) stays behind
    and is learned again on the other side. A subclass lists its own such attributes in
    `_runtime_state`.
    """

    _runtime_state: ClassVar[Mapping[str, Callable[[], Any]]] = {"_found": dict}
    """Attributes a pickle leaves out, each with the factory that rebuilds it empty."""

    def __init__(self, *, insecure: bool = False) -> None:
        self.insecure = insecure
        self._explicit: dict[str | None, Credentials] = {}
        self._sources: list[CredentialSource] = []
        self._found: dict[str, Credentials] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._runtime_state}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for name, factory in self._runtime_state.items():
            setattr(self, name, factory())

    def _drop_credentials(self) -> None:
        """Forget the credentials that were set and all that was learned (a copy sent bare)."""
        self._explicit.clear()
        self.forget()

    def _detached(self, keep: Callable[[CredentialSource], bool]) -> Authenticator:
        """A shallow copy of this backend whose sources are those ``keep`` accepts."""
        clone = object.__new__(type(self))
        clone.__setstate__(self.__getstate__())
        clone._sources = [source for source in self._sources if keep(source)]
        return clone

    def __repr__(self) -> str:
        return f"{type(self).__name__}(insecure={self.insecure})"

    # -- credentials -------------------------------------------------------------------
    def set_basic_auth(self, username: str, password: str, *, host: str | None = None) -> None:
        """Use these credentials for ``host``, or for every host when ``host`` is None."""
        self._explicit[host] = Credentials(username=username, password=password)
        self.forget(host)

    def set_credentials(self, credentials: Credentials, *, host: str | None = None) -> None:
        """Use these credentials (any kind) for ``host``, or for every host.

        Empty credentials (``Credentials()``) for a host withdraw what was set for it, so
        its lookup falls through to the global credentials and the sources again.
        """
        self._explicit[host] = credentials
        self.forget(host)

    def explicit_credentials(self, host: str | None) -> Credentials | None:
        """What `set_credentials` set for ``host`` (None: for every host), if anything."""
        creds = self._explicit.get(host)
        return creds if creds else None

    def add_source(self, source: CredentialSource) -> None:
        """Consult ``source`` (after explicit credentials) when a host needs credentials."""
        self._sources.append(source)

    def load_configs(self, container: object = None, configs: list[str] | None = None) -> None:
        """Read credentials from these Docker ``config.json`` files first (oras-py's name).

        They go ahead of the files of every source that reads such files (its ``paths``).
        ``container`` is accepted for oras-py compatibility; the files serve every host.
        """
        for source in self._sources:
            paths = getattr(source, "paths", None)
            if not isinstance(paths, list):
                continue
            for path in reversed(configs or []):
                if os.fspath(path) not in paths:
                    paths.insert(0, os.fspath(path))

    async def lookup_credentials(self, host: str) -> Credentials | None:
        """The credentials for ``host``: explicit per host, explicit global, then sources.

        Sources are asked in the order they were added; the first non-empty answer wins.
        """
        for key in (host, None):
            creds = self._explicit.get(key)
            if creds:
                return creds
        for source in self._sources:
            result = source(host)
            found = await result if inspect.isawaitable(result) else result
            if found:
                self._found[host] = found
                return found
        self._found.pop(host, None)
        return None

    def credentials_for(self, host: str) -> Credentials | None:
        """The credentials known for ``host`` now, without running any source.

        Explicit credentials, else what the last `lookup_credentials` found.
        """
        for key in (host, None):
            creds = self._explicit.get(key)
            if creds:
                return creds
        return self._found.get(host)

    def forget(self, host: str | None = None) -> None:
        """Drop cached tokens, learned schemes and looked-up credentials (for ``host``, or all).

        Sources with an ``invalidate(host)`` method are told too.
        """
        forget_host(self._found, host)
        self._invalidate_sources(host)

    def _invalidate_sources(self, host: str | None) -> None:
        for source in self._sources:
            invalidate = getattr(source, "invalidate", None)
            if callable(invalidate):
                invalidate(host)

    # -- the transport's two calls -----------------------------------------------------
    async def authorize(
        self, client: httpx.AsyncClient, host: str, scopes: tuple[str, ...]
    ) -> str | None:
        """Return the ``Authorization`` value to send up front, or None."""
        return await self._authorize(Ask(client, host, scopes))

    async def on_unauthorized(
        self,
        client: httpx.AsyncClient,
        host: str,
        scopes: tuple[str, ...],
        response: httpx.Response,
        sent: str | None,
    ) -> bool:
        """React to a 401; return True when the request is worth sending again.

        Raises [`AuthenticationError`][aioras.exceptions.AuthenticationError] when the registry
        wants credentials that are not configured, or a token cannot be had.
        """
        return await self._answer(Refusal(client, host, scopes, response, sent))

    # The built-in backends answer here, the transport's arguments in one object; a
    # subclass may override these or the two public methods above.
    async def _authorize(self, ask: Ask) -> str | None:
        return None

    async def _answer(self, refusal: Refusal) -> bool:
        return False


class TokenAuth(Authenticator):
    """The default backend: answers whatever the registry challenges with.

    Bearer challenges get a token from the realm (anonymously, with basic credentials, or
    by OAuth2 refresh-token grant for identity tokens), cached per host and scope set;
    basic challenges get the configured username and password.
    """

    _runtime_state: ClassVar[Mapping[str, Callable[[], Any]]] = {
        **Authenticator._runtime_state,
        "_basic_hosts": set,
        "_bearer": dict,
        "_bearers": dict,
        "_locks": dict,
    }

    def __init__(self, *, insecure: bool = False, clock: Callable[[], float] = time.monotonic):
        super().__init__(insecure=insecure)
        self._clock = clock
        self._basic_hosts: set[str] = set()
        self._bearer: dict[str, Challenge] = {}
        self._bearers: dict[tuple[str, tuple[str, ...]], Token] = {}
        self._locks: dict[tuple[str, tuple[str, ...]], anyio.Lock] = {}

    def forget(self, host: str | None = None) -> None:
        super().forget(host)
        if host is None:
            self._basic_hosts.clear()
            self._bearer.clear()
            self._bearers.clear()
            return
        self._basic_hosts.discard(host)
        self._bearer.pop(host, None)
        for key in [k for k in self._bearers if k[0] == host]:
            del self._bearers[key]

    async def _authorize(self, ask: Ask) -> str | None:
        client, host, scopes = ask.client, ask.host, ask.scopes
        creds = await self.lookup_credentials(host)
        if creds and creds.registry_token:
            return f"Bearer {creds.registry_token}"
        if host in self._basic_hosts and creds and creds.has_basic:
            return creds.basic_header()
        challenge = self._bearer.get(host)
        if challenge is None:
            return None
        token = await self._token(client, host, challenge, merge_scopes(scopes), stale=None)
        return f"Bearer {token.value}"

    async def _answer(self, refusal: Refusal) -> bool:
        client, host, scopes = refusal.client, refusal.host, refusal.scopes
        response, sent = refusal.response, refusal.sent
        challenges = parse_www_authenticate(response.headers.get("www-authenticate", ""))
        by_scheme = {c.scheme: c for c in challenges}
        creds = await self.lookup_credentials(host)
        if "bearer" in by_scheme and not (creds and creds.registry_token):
            challenge = by_scheme["bearer"]
            wanted = merge_scopes(scopes, challenge.scopes)
            # Whether the token lacked scope or expired, the one just sent must not be
            # reused: the fetch below skips a cached token equal to it.
            stale = sent[len("Bearer ") :] if sent and sent.startswith("Bearer ") else None
            self._check_realm(response, challenge, creds)
            self._bearer[host] = challenge
            if stale and challenge.error == "insufficient_scope":
                self._raise_if_scope_was_denied(host, stale, challenge, creds, response)
            token = await self._token(client, host, challenge, wanted, stale=stale)
            requested = merge_scopes(scopes)
            if requested != wanted:
                # The challenge asked for more than this request's scopes; the retry
                # looks its token up under those, so the wider token must be found there
                # rather than the one just refused.
                self._bearers[(host, requested)] = token
            return True
        if "basic" in by_scheme:
            if not (creds and creds.has_basic):
                raise AuthenticationError(
                    f"registry {host} requires credentials: call set_basic_auth() or login()",
                    status_code=401,
                    codes=_codes(response),
                )
            if sent and sent.startswith("Basic "):
                # Refused: a helper or config may hold newer ones (a login elsewhere).
                self._invalidate_sources(host)
                fresh = await self.lookup_credentials(host)
                return bool(fresh and fresh.has_basic and fresh.basic_header() != sent)
            self._basic_hosts.add(host)
            return True
        return False

    def _check_realm(
        self, response: httpx.Response, challenge: Challenge, creds: Credentials | None
    ) -> None:
        """Refuse a plain http token realm that may not see the request's credentials.

        Credentials go to a realm over https, or over http only when the registry itself
        is plain http on the same host; a plain http realm for an https registry is refused
        even without credentials (its token would then travel in clear).
        """
        realm = urlsplit(challenge.realm or "")
        if realm.scheme.lower() != "http":
            return
        try:
            registry = urlsplit(str(response.request.url))
        except RuntimeError:  # a response built without its request
            return
        if registry.scheme.lower() == "https":
            raise InsecureTokenRealm(
                f"refusing token realm {redact(challenge.realm or '')}: a realm must be https "
                f"unless the registry itself is plain http, and {registry.netloc} is https; "
                "nothing was sent there",
                status_code=401,
            )
        secret = creds is not None and (creds.has_basic or bool(creds.identity_token))
        if secret and (realm.hostname or "").lower() != (registry.hostname or "").lower():
            raise InsecureTokenRealm(
                f"token realm {redact(challenge.realm or '')} is plain http on another host "
                f"than registry {registry.netloc}: credentials are not sent there",
                status_code=401,
            )

    def _raise_if_scope_was_denied(
        self,
        host: str,
        stale: str,
        challenge: Challenge,
        creds: Credentials | None,
        response: httpx.Response,
    ) -> None:
        """Raise when the refused token was already asked for what the registry wants.

        The token service then granted less than asked: another token would be no better.
        """
        held = next(
            (t.scopes for (h, _), t in self._bearers.items() if h == host and t.value == stale),
            None,
        )
        if held is None or merge_scopes(held, challenge.scopes) != merge_scopes(held):
            return
        needed = " ".join(challenge.scopes) or "more access"
        if creds and (creds.has_basic or creds.identity_token):
            who = f" as {creds.username}" if creds.username else ""
            hint = ""
        else:
            who, hint = " anonymously", ": log in or set credentials"
        raise AuthenticationError(
            f"registry {host} needs {needed}, which the token service did not grant{who}{hint}",
            status_code=401,
            codes=_codes(response),
        )

    async def _token(
        self,
        client: httpx.AsyncClient,
        host: str,
        challenge: Challenge,
        scopes: tuple[str, ...],
        *,
        stale: str | None,
    ) -> Token:
        key = (host, scopes)
        cached = self._bearers.get(key)
        if cached and cached.fresh(self._clock()) and cached.value != stale:
            return cached
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            # Another task may have fetched it while this one waited: fetch once.
            cached = self._bearers.get(key)
            if cached and cached.fresh(self._clock()) and cached.value != stale:
                return cached
            token = await self._fetch_token(client, host, challenge, scopes)
            self._bearers[key] = token
            return token

    async def _fetch_token(
        self,
        client: httpx.AsyncClient,
        host: str,
        challenge: Challenge,
        scopes: tuple[str, ...],
    ) -> Token:
        realm = challenge.realm
        if not realm:
            raise AuthenticationError(f"bearer challenge from {host} names no realm")
        scheme = urlsplit(realm).scheme.lower()
        if scheme not in ("https", "http") or (scheme == "http" and not self.insecure):
            raise AuthenticationError(
                f"refusing token realm {redact(realm)}: a realm must be https unless the "
                "registry itself is plain http"
            )
        creds = await self.lookup_credentials(host)
        service = challenge.service
        started = self._clock()
        if creds and creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "aioras",
                "scope": " ".join(scopes),
            }
            if service:
                form["service"] = service
            request = client.build_request("POST", realm, data=form)
        else:
            params: list[tuple[str, str | int | float | bool | None]] = []
            if service:
                params.append(("service", service))
            params.extend(("scope", s) for s in scopes)
            headers = {"Authorization": creds.basic_header()} if creds and creds.has_basic else {}
            request = client.build_request("GET", realm, params=params, headers=headers)
        logger.debug("requesting token from %s for %s", redact(realm), " ".join(scopes) or "-")
        deadline = Deadline.of(client.timeout)
        try:
            response = await send_within(client, request, deadline)
            refused = response.status_code != 200
            limit = defaults.max_error_body if refused else defaults.max_token_size
            body = await read_capped(response, limit, truncate=refused, deadline=deadline)
        except httpx.HTTPError as exc:
            raise AuthenticationError(
                f"token request to {redact(realm)} failed: {type(exc).__name__}"
            ) from exc
        except ResponseTooLarge as exc:
            raise AuthenticationError(
                f"token response from {redact(realm)} exceeds the {exc.limit}-byte limit"
            ) from None
        if refused:
            who = f" as {creds.username}" if creds and creds.username else " anonymously"
            raise AuthenticationError(
                f"token service {redact(realm)} refused{who} (HTTP {response.status_code}) "
                f"for {' '.join(scopes) or 'no scope'}",
                status_code=response.status_code,
                codes=[e.code for e in parse_error_body(body)],
            )
        return self._parse_token(body, started, realm, scopes)

    def _parse_token(
        self, body: bytes, started: float, realm: str, scopes: tuple[str, ...]
    ) -> Token:
        try:
            doc = load_json(body)
        except ValueError as exc:
            raise AuthenticationError(f"token response from {redact(realm)} is not JSON") from exc
        value = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(value, str) or not value:
            raise AuthenticationError(f"token response from {redact(realm)} holds no token")
        try:
            check_header("Authorization", value, what=f"the token from {redact(realm)}")
        except InvalidHeaderValue as error:
            raise AuthenticationError(str(error)) from None
        lifetime = doc.get("expires_in", _DEFAULT_TOKEN_LIFETIME)
        if not isinstance(lifetime, (int, float)) or not math.isfinite(lifetime) or lifetime <= 0:
            lifetime = _DEFAULT_TOKEN_LIFETIME
        # Refresh early: a token that expires in flight fails a long upload.
        margin = min(30.0, lifetime / 5)
        return Token(value=value, expires_at=started + lifetime - margin, scopes=scopes)


class BasicAuth(TokenAuth):
    """Sends basic credentials with every request from the start, without a challenge."""

    async def _authorize(self, ask: Ask) -> str | None:
        creds = await self.lookup_credentials(ask.host)
        if creds and creds.has_basic:
            return creds.basic_header()
        return await super()._authorize(ask)


class AnonymousAuth(TokenAuth):
    """Answers challenges without credentials: an anonymous bearer token at most.

    The transport uses it for requests to another origin than the registry's (an upload
    ``Location``, a redirect): credentials belong to the registry they were given for.
    A basic challenge, or anything but a bearer one, raises
    [`CredentialsNotForwarded`][aioras.exceptions.CredentialsNotForwarded].
    """

    async def lookup_credentials(self, host: str) -> Credentials | None:
        return None

    def credentials_for(self, host: str) -> Credentials | None:
        return None

    async def _answer(self, refusal: Refusal) -> bool:
        response = refusal.response
        challenges = parse_www_authenticate(response.headers.get("www-authenticate", ""))
        if any(c.scheme == "bearer" for c in challenges):
            return await super()._answer(refusal)
        raise CredentialsNotForwarded(
            f"{refusal.host} is not the registry's origin and asks for credentials; "
            "they are only sent to the registry they are for",
            status_code=401,
            codes=_codes(response),
        )


def _codes(response: httpx.Response) -> Iterable[str]:
    try:
        body = response.content
    except httpx.ResponseNotRead:
        return ()
    return [e.code for e in parse_error_body(body)]
