"""What the suite's fixtures hand out, and the rule for a missing external tool.

A missing external tool skips the tests that need it, with the command that installs it;
under ``CI=true`` it fails them instead, so CI never passes by skipping. ``conftest.py``
builds its fixtures on these; test modules import the types from here.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from aioras.testing import LocalRegistry

__all__ = [
    "HTPASSWD_INSTALL",
    "OPENSSL_INSTALL",
    "ORAS_INSTALL",
    "REGISTRY_INSTALL",
    "SKOPEO_INSTALL",
    "BasicAuthUser",
    "RegistryFactory",
    "TLSFiles",
    "in_ci",
    "missing",
    "require_binary",
]

REGISTRY_INSTALL = "apt-get install docker-registry"
SKOPEO_INSTALL = "apt-get install skopeo"
ORAS_INSTALL = "pip install oras"
HTPASSWD_INSTALL = "apt-get install apache2-utils"
OPENSSL_INSTALL = "apt-get install openssl"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def missing(what: str, install: str) -> NoReturn:
    """Skip (or, under CI=true, fail) because an external tool is not installed."""
    message = f"{what} is not available; install it with `{install}`"
    if in_ci():
        pytest.fail(f"{message} (CI=true: missing tools fail instead of skipping)", pytrace=False)
    pytest.skip(message)


def require_binary(name: str, install: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"`{name}`", install)
    return path


RegistryFactory = Callable[..., LocalRegistry]


@dataclass(frozen=True)
class BasicAuthUser:
    """A user in a bcrypt htpasswd file."""

    username: str
    password: str
    htpasswd: Path


@dataclass(frozen=True)
class TLSFiles:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM)."""

    cert: Path
    key: Path
