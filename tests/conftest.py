"""Shared fixtures: real registries on loopback, peers (skopeo, oras-py), auth and TLS material.

A missing external tool skips the tests that need it, with the command that installs it;
under ``CI=true`` it fails them instead, so CI never passes by skipping (``support.harness``).
The helpers and the other fixture modules live in the ``support`` package beside this file.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from aioras import AsyncRegistry
from aioras.testing import LocalRegistry, LocalRegistryError
from support.harness import (
    HTPASSWD_INSTALL,
    OPENSSL_INSTALL,
    ORAS_INSTALL,
    REGISTRY_INSTALL,
    SKOPEO_INSTALL,
    BasicAuthUser,
    RegistryFactory,
    TLSFiles,
    missing,
    require_binary,
)

# Tests start Python subprocesses in temporary directories (examples, interpreter exit): a
# relative PYTHONPATH such as ``src`` would stop resolving there, so it is made absolute once.
if os.environ.get("PYTHONPATH"):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        os.path.abspath(entry) if entry else entry
        for entry in os.environ["PYTHONPATH"].split(os.pathsep)
    )

# Fixture modules of the support package, registered once for every test module.
pytest_plugins = ["support.authfixtures", "support.faultproxy", "support.wanfixtures"]

# Tests that use any of these (directly or through another fixture) get the integration marker.
INTEGRATION_FIXTURES = frozenset(
    {
        "registry_binary",
        "registry",
        "fresh_registry",
        "registry_factory",
        "basic_auth_registry",
        "tls_registry",
        "skopeo_bin",
        "oras_py",
        "wan_proxy",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


# -- asyncio and the working directory -----------------------------------------------------


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """The backend of ``@pytest.mark.anyio`` tests (session-wide, so async fixtures may be too)."""
    return "asyncio"


@pytest.fixture
def tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path``, made the current directory for the test (oras-py checks paths against it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- registries ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def registry_binary() -> str:
    """Path of the CNCF distribution registry binary."""
    try:
        return LocalRegistry().find_binary()
    except LocalRegistryError:
        missing("the CNCF distribution registry (`docker-registry`)", REGISTRY_INSTALL)


def _started(registry_binary: str, **kwargs: Any) -> LocalRegistry:
    kwargs.setdefault("binary", registry_binary)
    return LocalRegistry(**kwargs).start()


@pytest.fixture(scope="session")
def registry(registry_binary: str) -> Iterator[LocalRegistry]:
    """One registry for the whole session (deletes enabled). Use unique repository names."""
    reg = _started(registry_binary)
    yield reg
    reg.stop()


@pytest.fixture
async def areg(registry: LocalRegistry) -> AsyncIterator[AsyncRegistry]:
    """An ``AsyncRegistry`` client of the session's registry (modules may override it)."""
    async with AsyncRegistry(registry.host, insecure=True) as reg:
        yield reg


@pytest.fixture
def fresh_registry(registry_binary: str) -> Iterator[LocalRegistry]:
    """An empty registry of the test's own (deletes enabled)."""
    reg = _started(registry_binary)
    yield reg
    reg.stop()


@pytest.fixture
def registry_factory(registry_binary: str) -> Iterator[RegistryFactory]:
    """A function taking :class:`LocalRegistry` keyword arguments and returning it started.

    Every registry it made is stopped when the test ends.
    """
    made: list[LocalRegistry] = []

    def factory(**kwargs: Any) -> LocalRegistry:
        reg = _started(registry_binary, **kwargs)
        made.append(reg)
        return reg

    yield factory
    for reg in reversed(made):
        reg.stop()


@pytest.fixture(scope="session")
def htpasswd_user(tmp_path_factory: pytest.TempPathFactory) -> BasicAuthUser:
    """An htpasswd file (bcrypt, as distribution requires) holding one user."""
    tool = require_binary("htpasswd", HTPASSWD_INSTALL)
    username, password = "aioras", "s3cret-pa55"
    line = subprocess.run(
        [tool, "-Bbn", username, password], check=True, capture_output=True, text=True
    ).stdout.strip()
    path = tmp_path_factory.mktemp("htpasswd") / "htpasswd"
    path.write_text(line + "\n", encoding="utf-8")
    return BasicAuthUser(username, password, path)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A self-signed EC certificate made by the ``openssl`` CLI, valid for 127.0.0.1."""
    tool = require_binary("openssl", OPENSSL_INSTALL)
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            tool, "req", "-x509", "-nodes", "-days", "2",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return TLSFiles(cert, key)


@pytest.fixture(scope="session")
def basic_auth_registry(
    registry_binary: str, htpasswd_user: BasicAuthUser
) -> Iterator[LocalRegistry]:
    """A session registry requiring basic auth as :func:`htpasswd_user`."""
    reg = _started(registry_binary, htpasswd=htpasswd_user.htpasswd)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def tls_registry(registry_binary: str, tls_files: TLSFiles) -> Iterator[LocalRegistry]:
    """A session registry serving HTTPS with :func:`tls_files` (verify against ``cert``)."""
    reg = _started(registry_binary, tls_cert=tls_files.cert, tls_key=tls_files.key)
    yield reg
    reg.stop()


# -- peers ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def skopeo_bin() -> str:
    """Path of the ``skopeo`` binary."""
    return require_binary("skopeo", SKOPEO_INSTALL)


@pytest.fixture(scope="session")
def oras_py() -> ModuleType:
    """The oras-py package (``oras``), with ``oras.client`` and ``oras.provider`` imported."""
    try:
        import oras
        import oras.client
        import oras.provider
    except ImportError:
        missing("oras-py (the `oras` package)", ORAS_INSTALL)
    return oras
