"""Credentials from Docker ``config.json`` files (the ``auths`` section).

Keys may be a bare host (``ghcr.io``), a URL (``https://ghcr.io``) or, for Docker Hub, the
legacy index server ``https://index.docker.io/v1/``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from .. import defaults
from .credentials import Credentials

__all__ = ["DockerConfigSource", "config_keys", "credentials_from_config"]

logger = logging.getLogger(__name__)

_HUB_HOSTS = frozenset(
    {defaults.registry.index_name, defaults.registry.index_hostname, "registry-1.docker.io"}
)


def config_keys(host: str) -> list[str]:
    """The ``auths`` keys under which credentials for ``host`` may be stored."""
    keys = [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]
    if host in _HUB_HOSTS:
        keys.insert(0, defaults.registry.index_server)
        keys.append(defaults.registry.index_name)
    return keys


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
        username=username if isinstance(username, str) and username else None,
        password=password if isinstance(password, str) and password else None,
        identity_token=entry.get("identitytoken") or None,
        registry_token=entry.get("registrytoken") or None,
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


class DockerConfigSource:
    """A credential source reading one or more ``config.json`` files, first match wins.

    Files are re-read when they change on disk, so a ``login`` in another process is seen.
    A missing file is simply empty; a malformed one is logged and skipped.
    """

    def __init__(self, paths: list[str | os.PathLike[str]]) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    def _load(self, path: str) -> dict[str, Any]:
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return {}
        cached = self._cache.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            with open(path, encoding="utf-8") as fd:
                doc = json.load(fd)
        except (OSError, ValueError) as error:
            logger.warning("cannot read Docker config %s: %s", path, type(error).__name__)
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        self._cache[path] = (mtime, doc)
        return doc

    def __call__(self, host: str) -> Credentials | None:
        for path in self.paths:
            creds = credentials_from_config(self._load(path), host)
            if creds:
                return creds
        return None
