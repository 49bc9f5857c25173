"""Credentials from Docker ``config.json`` files: ``auths``, ``credHelpers`` and ``credsStore``.

For a registry host the lookup in one file goes: the helper named for that host in
``credHelpers``, else the ``credsStore`` helper; then the inline ``auths`` entry (``auth``
= base64 ``user:password``, ``username``/``password``, ``identitytoken``,
``registrytoken``). The inline entry comes last so that a file whose helper lacks an entry
still works for tools that wrote credentials inline.

``auths`` keys may be a bare host (``ghcr.io``), a URL (``https://ghcr.io``) or, for Docker
Hub, the legacy index server ``https://index.docker.io/v1/``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from .. import defaults
from .._jsondoc import load_json
from ..exceptions import InvalidHeaderValue
from .credentials import Credentials
from .credhelpers import DEFAULT_HELPER_TIMEOUT, CredentialHelper, CredentialHelperError

__all__ = [
    "DockerConfigSource",
    "config_keys",
    "credentials_from_config",
    "helper_keys",
    "helper_name",
    "server_key",
]

logger = logging.getLogger(__name__)

_HUB_HOSTS = frozenset(
    {defaults.registry.index_name, defaults.registry.index_hostname, "registry-1.docker.io"}
)
DEFAULT_HELPER_TTL = 300.0


def config_keys(host: str) -> list[str]:
    """The ``auths`` keys under which credentials for ``host`` may be stored, best first."""
    keys = [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]
    if host in _HUB_HOSTS:
        keys.insert(0, defaults.registry.index_server)
        keys.append(defaults.registry.index_name)
    return keys


def server_key(host: str) -> str:
    """The key Docker itself uses for ``host``: the host, or Hub's legacy index URL."""
    return config_keys(host)[0]


def helper_name(config: Mapping[str, Any], host: str) -> str | None:
    """The credential helper a parsed config names for ``host``, or None.

    ``credHelpers`` (per host) wins over ``credsStore`` (every host).
    """
    helpers = config.get("credHelpers")
    if isinstance(helpers, Mapping):
        for key in config_keys(host):
            name = helpers.get(key)
            if isinstance(name, str) and name:
                return name
    store = config.get("credsStore")
    return store if isinstance(store, str) and store else None


def helper_keys(config: Mapping[str, Any], host: str) -> list[str]:
    """Server URLs to ask a helper about for ``host``: Docker's key, then other spellings.

    Other spellings are only those the config's ``auths`` lists (Docker writes an empty
    placeholder there for each login through a helper), so a miss costs one helper run.
    """
    keys = [server_key(host)]
    auths = config.get("auths")
    if isinstance(auths, Mapping):
        keys.extend(k for k in config_keys(host) if k in auths and k not in keys)
    return keys


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _entry_credentials(entry: Mapping[str, Any]) -> Credentials | None:
    username = entry.get("username")
    password = entry.get("password")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            logger.warning("ignoring a malformed 'auth' entry in a Docker config")
        else:
            username, _, password = decoded.partition(":")
    creds = Credentials(
        username=_text(username),
        password=_text(password),
        identity_token=_text(entry.get("identitytoken")),
        registry_token=_text(entry.get("registrytoken")),
    )
    return creds or None


def credentials_from_config(config: Mapping[str, Any], host: str) -> Credentials | None:
    """Look ``host`` up in a parsed config's ``auths``; None when absent or empty."""
    auths = config.get("auths")
    if not isinstance(auths, Mapping):
        return None
    for key in config_keys(host):
        entry = auths.get(key)
        if isinstance(entry, Mapping):
            creds = _entry_credentials(entry)
            if creds:
                return creds
    return None


_HelperAnswer = tuple[float, Credentials | None]


class DockerConfigSource:
    """A credential source reading one or more ``config.json`` files, first match wins.

    Await it with a host to get that host's credentials (or None). Files are re-read when
    they change on disk, so a ``login`` in another process is seen; a missing file is
    empty; a malformed one is logged and skipped.

    Helper answers, misses included, are kept for ``helper_ttl`` seconds, because the
    transport looks credentials up before every request and a helper is a process to
    start; concurrent lookups of one key run the helper once. A helper that cannot be run
    or fails is logged (without anything it printed) and counts as a miss.
    `invalidate` drops kept answers.
    """

    def __init__(
        self,
        paths: list[str | os.PathLike[str]],
        *,
        helper_ttl: float = DEFAULT_HELPER_TTL,
        helper_timeout: float = DEFAULT_HELPER_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.helper_ttl = helper_ttl
        self.helper_timeout = helper_timeout
        self._clock = clock
        self._cache: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}
        self._answers: dict[tuple[str, str], _HelperAnswer] = {}
        self._locks: dict[tuple[str, str], anyio.Lock] = {}

    def __repr__(self) -> str:
        return f"DockerConfigSource({self.paths!r})"

    def load(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """The parsed config at ``path`` (``{}`` when missing or malformed), cached by stat."""
        path = os.fspath(path)
        try:
            st = os.stat(path)
        except OSError:
            return {}
        # An atomic replace changes the inode even within one mtime tick.
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._cache.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        try:
            with open(path, encoding="utf-8") as fd:
                doc = load_json(fd.read())
        except (OSError, ValueError) as error:
            logger.warning("cannot read Docker config %s: %s", path, type(error).__name__)
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        self._cache[path] = (stamp, doc)
        return doc

    async def __call__(self, host: str) -> Credentials | None:
        for path in self.paths:
            doc = self.load(path)
            name = helper_name(doc, host)
            if name:
                for key in helper_keys(doc, host):
                    creds = await self.helper_get(name, key)
                    if creds:
                        return creds
            try:
                creds = credentials_from_config(doc, host)
            except InvalidHeaderValue as error:
                # Raised, not skipped: the entry is meant for this host, and an anonymous
                # fallback would fail later with a less useful error.
                raise InvalidHeaderValue(
                    f"the entry for {host} in Docker config {path}: {error}", name=error.name
                ) from None
            if creds:
                return creds
        return None

    async def helper_get(self, name: str, server_url: str) -> Credentials | None:
        """Ask helper ``name`` for ``server_url``, through the answer cache."""
        key = (name, server_url)
        answer = self._answers.get(key)
        if answer and answer[0] > self._clock():
            return answer[1]
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            answer = self._answers.get(key)
            if answer and answer[0] > self._clock():
                return answer[1]
            try:
                creds = await CredentialHelper(name, timeout=self.helper_timeout).get(server_url)
            except CredentialHelperError as error:
                logger.warning("no credentials for %s: %s", server_url, error)
                creds = None
            self._answers[key] = (self._clock() + self.helper_ttl, creds)
            return creds

    def invalidate(self, host: str | None = None) -> None:
        """Forget kept helper answers for ``host`` (every spelling of it), or all."""
        if host is None:
            self._answers.clear()
            return
        spellings = set(config_keys(host))
        for key in [k for k in self._answers if k[1] in spellings]:
            del self._answers[key]
