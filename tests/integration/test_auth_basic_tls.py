"""htpasswd basic auth over TLS (a self-signed certificate the fixtures make) on the real registry.

Login checks credentials before saving anything; a fresh client reads what login saved;
logout removes it. TLS: a CA bundle path, ``tls_verify=False``, and a failing verification.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import stat
import time
from pathlib import Path

import pytest

from aioras import RetryPolicy
from aioras._environment import Environment
from aioras.auth import Credentials
from aioras.auth.login import login, logout
from aioras.client import OrasClient
from aioras.exceptions import AuthenticationError, ConnectError
from aioras.registry import AsyncRegistry
from support.authtools import BasicTLSRegistry, unique

pytestmark = pytest.mark.anyio


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "data.txt").write_text("basic auth over TLS\n")
    monkeypatch.chdir(work)
    return work


def basic_b64(reg: BasicTLSRegistry) -> str:
    return base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()


def fresh(reg: BasicTLSRegistry, env: Environment, **kwargs: object) -> AsyncRegistry:
    kwargs.setdefault("tls_verify", str(reg.ca))
    return AsyncRegistry(reg.host, environment=env, **kwargs)  # type: ignore[arg-type]


async def test_wrong_password_fails_and_writes_nothing(
    basic_tls_registry: BasicTLSRegistry, docker_env: Environment
) -> None:
    config = docker_env.docker_config_file
    async with fresh(basic_tls_registry, docker_env) as reg:
        with pytest.raises(AuthenticationError) as info:
            await login(reg, basic_tls_registry.username, "wrong-password")
    assert "wrong-password" not in str(info.value)
    assert not config.exists()
    assert not config.parent.exists() or list(config.parent.iterdir()) == []

    # An existing config is left exactly as it was.
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('{"auths": {"other.example": {"auth": "eDp5"}}}')
    before = config.read_bytes()
    async with fresh(basic_tls_registry, docker_env) as reg:
        with pytest.raises(AuthenticationError):
            await login(reg, "nobody", basic_tls_registry.password)
    assert config.read_bytes() == before


async def test_login_saves_then_a_fresh_client_pushes_and_pulls_then_logout(
    basic_tls_registry: BasicTLSRegistry, docker_env: Environment, files: Path
) -> None:
    host = basic_tls_registry.host
    config = docker_env.docker_config_file
    async with fresh(basic_tls_registry, docker_env) as reg:
        result = await login(reg, basic_tls_registry.username, basic_tls_registry.password)
    assert result == {"Status": "Login Succeeded"}
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
    saved = json.loads(config.read_text())
    assert saved["auths"][host]["auth"] == basic_b64(basic_tls_registry)

    target = f"{host}/{unique('tls/login')}:v1"
    async with fresh(basic_tls_registry, docker_env) as reg:  # knows only the config file
        await reg.push(target, files=["data.txt"])
    async with fresh(basic_tls_registry, docker_env) as reg:
        pulled = await reg.pull(target, outdir=str(files / "out"))
    assert (files / "out" / "data.txt").read_text() == "basic auth over TLS\n"
    assert len(pulled) == 1

    async with fresh(basic_tls_registry, docker_env) as reg:
        assert await logout(reg, host) is True
    assert host not in json.loads(config.read_text()).get("auths", {})
    async with fresh(basic_tls_registry, docker_env) as reg:
        with pytest.raises(AuthenticationError, match="requires credentials"):
            await reg.get_tags(target)


async def test_ca_bundle_path_verifies_the_self_signed_certificate(
    basic_tls_registry: BasicTLSRegistry, docker_env: Environment
) -> None:
    async with fresh(basic_tls_registry, docker_env, tls_verify=str(basic_tls_registry.ca)) as reg:
        reg.set_basic_auth(basic_tls_registry.username, basic_tls_registry.password)
        response = await reg.ping()
    assert response.status_code == 200


async def test_tls_verify_false_skips_verification(
    basic_tls_registry: BasicTLSRegistry, docker_env: Environment
) -> None:
    async with fresh(basic_tls_registry, docker_env, tls_verify=False) as reg:
        reg.set_basic_auth(basic_tls_registry.username, basic_tls_registry.password)
        assert (await reg.ping()).status_code == 200


async def test_failing_verification_is_a_clear_error_and_not_retried(
    basic_tls_registry: BasicTLSRegistry, docker_env: Environment
) -> None:
    slow_retries = RetryPolicy(attempts=3, backoff=5.0, max_backoff=5.0)
    started = time.monotonic()
    async with fresh(basic_tls_registry, docker_env, tls_verify=True, retry=slow_retries) as reg:
        reg.set_basic_auth(basic_tls_registry.username, basic_tls_registry.password)
        with pytest.raises(ConnectError) as info:
            await reg.ping()
    assert time.monotonic() - started < 4.0  # a retry would have slept 5 s
    message = str(info.value)
    assert "certificate verification failed" in message
    assert "tls_verify" in message
    assert basic_tls_registry.password not in message


async def test_login_against_an_untrusted_certificate_writes_nothing(
    basic_tls_registry: BasicTLSRegistry, docker_env: Environment
) -> None:
    async with fresh(basic_tls_registry, docker_env, tls_verify=True) as reg:
        with pytest.raises(ConnectError):
            await login(reg, basic_tls_registry.username, basic_tls_registry.password)
    assert not docker_env.docker_config_file.exists()


async def test_no_credential_in_debug_logs_during_login_and_push(
    basic_tls_registry: BasicTLSRegistry,
    docker_env: Environment,
    files: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    target = f"{basic_tls_registry.host}/{unique('tls/logs')}:v1"
    async with fresh(basic_tls_registry, docker_env) as reg:
        await login(reg, basic_tls_registry.username, basic_tls_registry.password)
        await reg.push(target, files=["data.txt"])
        await reg.pull(target, outdir=str(files / "out"))
        shown = repr(reg) + repr(reg.auth) + repr(reg.auth.credentials_for(reg.hostname or ""))
    assert f"GET https://{basic_tls_registry.host}/v2/" in caplog.text  # DEBUG was captured
    for secret in (basic_tls_registry.password, basic_b64(basic_tls_registry)):
        assert secret not in caplog.text
        assert secret not in shown


async def test_login_tls_verify_argument_applies_to_later_calls(
    basic_tls_registry: BasicTLSRegistry, docker_env: Environment
) -> None:
    user, password = basic_tls_registry.username, basic_tls_registry.password
    async with fresh(basic_tls_registry, docker_env, tls_verify=True) as reg:
        with pytest.raises(ConnectError):
            await reg.ping()  # the fixture's self-signed certificate is not trusted yet
        await login(reg, user, password, tls_verify=str(basic_tls_registry.ca))
        assert reg.tls_verify == str(basic_tls_registry.ca)
        assert (await reg.ping()).status_code == 200
    assert basic_tls_registry.host in json.loads(docker_env.docker_config_file.read_text())["auths"]


async def test_refused_login_restores_the_previous_tls_verification(
    basic_tls_registry: BasicTLSRegistry, docker_env: Environment
) -> None:
    async with fresh(basic_tls_registry, docker_env, tls_verify=True) as reg:
        with pytest.raises(AuthenticationError):
            await login(reg, basic_tls_registry.username, "wrong-password", tls_verify=False)
        assert reg.tls_verify is True
        with pytest.raises(ConnectError):
            await reg.ping()
    assert not docker_env.docker_config_file.exists()


async def test_login_reads_password_stdin_accepts_a_url_and_a_config_path(
    basic_tls_registry: BasicTLSRegistry,
    docker_env: Environment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(basic_tls_registry.password + "\n"))
    custom = tmp_path / "custom" / "config.json"
    async with fresh(basic_tls_registry, docker_env) as reg:
        await login(
            reg,
            basic_tls_registry.username,
            "",
            password_stdin=True,
            hostname=f"https://{basic_tls_registry.host}/v2/",
            config_path=str(custom),
        )
        # The custom file is read from now on: a new lookup finds the saved entry.
        reg.auth.set_credentials(Credentials(), host=basic_tls_registry.host)
        assert (await reg.ping()).status_code == 200
    assert not docker_env.docker_config_file.exists()
    auths = json.loads(custom.read_text())["auths"]
    assert auths == {basic_tls_registry.host: {"auth": basic_b64(basic_tls_registry)}}
    assert stat.S_IMODE(os.stat(custom).st_mode) == 0o600


def test_sync_client_login_push_pull_logout_over_tls(
    basic_tls_registry: BasicTLSRegistry, isolated_env: Path, files: Path
) -> None:
    host, ca = basic_tls_registry.host, str(basic_tls_registry.ca)
    config = isolated_env / "config.json"
    with OrasClient(hostname=host, tls_verify=ca) as client:
        with pytest.raises(AuthenticationError):
            client.login(basic_tls_registry.username, "wrong-password")
        assert not config.exists()
        assert client.login(basic_tls_registry.username, basic_tls_registry.password) == {
            "Status": "Login Succeeded"
        }
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600

    target = f"{host}/{unique('tls/sync')}:v1"
    with OrasClient(hostname=host, tls_verify=ca) as client:
        client.push(target, files=["data.txt"])
    with OrasClient(hostname=host, tls_verify=ca) as client:
        pulled = client.pull(target, outdir=str(files / "out"))
        assert [Path(p).name for p in pulled] == ["data.txt"]
        assert client.logout(host) is True
        with pytest.raises(AuthenticationError):
            client.get_tags(target)
    assert json.loads(config.read_text())["auths"] == {}
