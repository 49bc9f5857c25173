"""Helpers of the auth suites: repository names, Docker configs, a credential helper program.

The fixtures built on them live in :mod:`support.authfixtures`, registered by ``conftest.py``.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aioras.testing import LocalRegistry
from support.tokenserver import TokenServer

__all__ = [
    "HELPER_NAME",
    "TOKEN_PASSWORD",
    "TOKEN_USER",
    "BasicTLSRegistry",
    "CredHelper",
    "TokenRegistry",
    "make_cred_helper",
    "unique",
    "write_config",
]


HELPER_NAME = "aioras-test"
TOKEN_USER, TOKEN_PASSWORD = "tokenuser", "t0ken-pa55word"


def unique(prefix: str) -> str:
    """A repository name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def write_config(directory: Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` as ``directory/config.json`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


# -- bearer-token registry ---------------------------------------------------------------


@dataclass
class TokenRegistry:
    """A registry in ``auth: token`` mode and the issuer it trusts."""

    registry: LocalRegistry
    issuer: TokenServer
    username: str = TOKEN_USER
    password: str = TOKEN_PASSWORD

    @property
    def host(self) -> str:
        return self.registry.host

    def reset(self) -> None:
        """Clear the issuer's records and knobs between tests sharing it."""
        self.issuer.requests.clear()
        self.issuer.issued.clear()
        self.issuer.expire_next = 0
        self.issuer.expires_in = 300
        self.issuer.response_keys = ("token", "access_token")


# -- basic auth over TLS ---------------------------------------------------------------


@dataclass
class BasicTLSRegistry:
    """A registry requiring htpasswd basic auth over HTTPS with a self-signed certificate."""

    registry: LocalRegistry
    username: str
    password: str
    ca: Path

    @property
    def host(self) -> str:
        return self.registry.host


# -- a credential helper -----------------------------------------------------------------

_HELPER_SOURCE = """\
import json, os, sys
store_path = {store!r}
calls_path = {calls!r}
action = sys.argv[1] if len(sys.argv) > 1 else ""
data = sys.stdin.read()
with open(calls_path, "a") as log:
    log.write(action + " " + (data.strip() if action in ("get", "erase") else "") + "\\n")
try:
    with open(store_path) as fd:
        store = json.load(fd)
except FileNotFoundError:
    store = {{}}
if action == "get":
    entry = store.get(data.strip())
    if entry is None:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": data.strip(), "Username": entry[0], "Secret": entry[1]}}))
elif action == "store":
    doc = json.loads(data)
    store[doc["ServerURL"]] = [doc["Username"], doc["Secret"]]
    with open(store_path, "w") as fd:
        json.dump(store, fd)
elif action == "erase":
    if store.pop(data.strip(), None) is None:
        print("credentials not found in native keychain")
        sys.exit(1)
    with open(store_path, "w") as fd:
        json.dump(store, fd)
elif action == "list":
    print(json.dumps({{k: v[0] for k, v in store.items()}}))
else:
    sys.exit(2)
"""


@dataclass
class CredHelper:
    """A ``docker-credential-<name>`` program on ``PATH`` keeping its store in a JSON file."""

    name: str
    bin_dir: Path
    store_path: Path
    calls_path: Path

    def put(self, server: str, username: str, secret: str) -> None:
        store = self.store()
        store[server] = [username, secret]
        self.store_path.write_text(json.dumps(store))

    def store(self) -> dict[str, list[str]]:
        if not self.store_path.exists():
            return {}
        doc: dict[str, list[str]] = json.loads(self.store_path.read_text())
        return doc

    def calls(self) -> list[str]:
        if not self.calls_path.exists():
            return []
        return self.calls_path.read_text().splitlines()


def make_cred_helper(
    directory: Path, monkeypatch: pytest.MonkeyPatch, name: str = HELPER_NAME
) -> CredHelper:
    """Write the helper into ``directory/bin`` and put that first on ``PATH``."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    helper = CredHelper(name, bin_dir, directory / f"{name}-store.json", directory / f"{name}.log")
    program = bin_dir / f"docker-credential-{name}"
    source = _HELPER_SOURCE.format(store=str(helper.store_path), calls=str(helper.calls_path))
    program.write_text(f"#!{sys.executable}\n{source}", encoding="utf-8")
    program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return helper
