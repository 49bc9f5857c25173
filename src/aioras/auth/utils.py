"""oras-py's ``oras.auth.utils`` names: challenge parsing, basic auth and config loading."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping
from typing import Any

from .._environment import read_environment
from ..utils import read_json
from .challenge import parse_www_authenticate

__all__ = ["authHeader", "get_basic_auth", "load_configs", "parse_auth_header"]

logger = logging.getLogger(__name__)


class authHeader:  # noqa: N801 (oras-py's name)
    """The ``realm``, ``service`` and ``scope`` of a ``WWW-Authenticate`` challenge."""

    def __init__(self, lookup: Mapping[str, str]) -> None:
        self.realm: str | None = lookup.get("realm")
        self.service: str | None = lookup.get("service")
        self.scope: str | None = lookup.get("scope")

    def __repr__(self) -> str:
        return f"authHeader(realm={self.realm!r}, service={self.service!r}, scope={self.scope!r})"


def parse_auth_header(authHeaderRaw: str) -> authHeader:
    """Parse the first challenge of a ``WWW-Authenticate`` value (any scheme)."""
    challenges = parse_www_authenticate(authHeaderRaw)
    return authHeader(challenges[0].params if challenges else {})


def get_basic_auth(username: str, password: str) -> str:
    """``base64(username:password)``, the credential part of a basic ``Authorization``."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def load_configs(configs: list[str] | None = None) -> dict[str, Any]:
    """Merge the Docker configs ``configs`` and the default one into one dict.

    Returns ``{"auths": ..., "credsStore": ..., "credHelpers": ...}``; a file that does
    not exist is logged and skipped.
    """
    paths = list(dict.fromkeys([*(configs or []), str(read_environment().docker_config_file)]))
    merged: dict[str, Any] = {"auths": {}, "credsStore": None, "credHelpers": {}}
    for path in paths:
        if not os.path.exists(path):
            logger.debug("%s does not exist", path)
            continue
        doc = read_json(path)
        merged["auths"].update(doc.get("auths") or {})
        merged["credsStore"] = doc.get("credsStore") or merged["credsStore"]
        merged["credHelpers"].update(doc.get("credHelpers") or {})
    return merged
