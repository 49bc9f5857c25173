"""Fixtures of the auth suites: token-auth and basic+TLS registries, a helper, isolation.

The top ``conftest.py`` registers this module once (``pytest_plugins``), so every test module
may ask for them. Everything started here listens on 127.0.0.1 only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aioras._environment import Environment
from aioras.testing import LocalRegistry
from support.authtools import (
    TOKEN_PASSWORD,
    TOKEN_USER,
    BasicTLSRegistry,
    CredHelper,
    TokenRegistry,
    make_cred_helper,
)
from support.tokenserver import TokenServer

if TYPE_CHECKING:
    from support.harness import BasicAuthUser, TLSFiles


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``DOCKER_CONFIG`` in the test's directory; no ``ORAS_USER``/``ORAS_PASS``."""
    docker_dir = tmp_path / "docker"
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_dir))
    monkeypatch.delenv("ORAS_USER", raising=False)
    monkeypatch.delenv("ORAS_PASS", raising=False)
    return docker_dir


@pytest.fixture
def docker_env(isolated_env: Path) -> Environment:
    """An :class:`Environment` whose Docker config directory is the test's own."""
    return Environment(docker_config_dir=isolated_env)


@pytest.fixture(scope="module")
def _token_registry(
    registry_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TokenRegistry]:
    directory = tmp_path_factory.mktemp("token-issuer")
    with TokenServer(directory, users={TOKEN_USER: TOKEN_PASSWORD}) as issuer:
        reg = LocalRegistry(binary=registry_binary, token_auth=issuer.registry_token_auth())
        with reg:
            yield TokenRegistry(reg, issuer)


@pytest.fixture
def token_registry(_token_registry: TokenRegistry) -> TokenRegistry:
    """The module's token-auth registry (plain http, http realm), issuer records cleared."""
    _token_registry.reset()
    return _token_registry


@pytest.fixture(scope="module")
def basic_tls_registry(
    registry_binary: str, htpasswd_user: BasicAuthUser, tls_files: TLSFiles
) -> Iterator[BasicTLSRegistry]:
    """One registry per module: htpasswd basic auth, TLS with the fixture's own certificate."""
    reg = LocalRegistry(
        binary=registry_binary,
        htpasswd=htpasswd_user.htpasswd,
        tls_cert=tls_files.cert,
        tls_key=tls_files.key,
    )
    with reg:
        yield BasicTLSRegistry(reg, htpasswd_user.username, htpasswd_user.password, tls_files.cert)


@pytest.fixture
def cred_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CredHelper:
    """The test credential helper ``docker-credential-aioras-test``, on ``PATH``."""
    return make_cred_helper(tmp_path / "helper", monkeypatch)
