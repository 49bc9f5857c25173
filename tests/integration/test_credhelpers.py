"""Docker credential helpers (``credsStore``, ``credHelpers``) and Docker config lookups.

The helper is a real program, ``docker-credential-aioras-test``, written by the fixture into
a directory put first on ``PATH``; it keeps its store in a JSON file and logs each call.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from aioras.auth import CredentialHelper, CredentialHelperError, Credentials
from aioras.auth.dockerconfig import DockerConfigSource, helper_keys, helper_name, server_key
from aioras.auth.login import login, logout
from aioras.client import OrasClient
from aioras.exceptions import AuthenticationError
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry
from support.authtools import (
    HELPER_NAME,
    CredHelper,
    TokenRegistry,
    make_cred_helper,
    unique,
    write_config,
)

if TYPE_CHECKING:
    from support.harness import BasicAuthUser

pytestmark = pytest.mark.anyio
HUB_KEY = "https://index.docker.io/v1/"


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "f.txt").write_text("from a credential helper\n")
    monkeypatch.chdir(work)
    return work


# -- the helper protocol ------------------------------------------------------------------


async def test_helper_get_store_erase_list(cred_helper: CredHelper) -> None:
    helper = CredentialHelper(HELPER_NAME)
    assert await helper.get("r.example") is None
    await helper.store("r.example", Credentials(username="u", password="p@ss"))
    await helper.store("t.example", Credentials(identity_token="refresh-me"))
    assert cred_helper.store() == {
        "r.example": ["u", "p@ss"],
        "t.example": ["<token>", "refresh-me"],
    }

    got = await helper.get("r.example")
    assert got == Credentials(username="u", password="p@ss")
    assert await helper.get("t.example") == Credentials(identity_token="refresh-me")
    assert await helper.list() == {"r.example": "u", "t.example": "<token>"}
    assert await helper.erase("r.example") is True
    assert await helper.erase("r.example") is False
    assert await helper.get("r.example") is None
    assert "p@ss" not in repr(got)


async def test_helper_failures_are_errors_without_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    broken = bin_dir / "docker-credential-broken"
    broken.write_text("#!/bin/sh\necho 'secret-in-output'\nexit 3\n")
    broken.chmod(0o755)
    slow = bin_dir / "docker-credential-slow"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")

    with pytest.raises(CredentialHelperError, match="exit status 3") as info:
        await CredentialHelper("broken").get("r.example")
    assert "secret-in-output" not in str(info.value)
    with pytest.raises(CredentialHelperError, match="is it installed"):
        await CredentialHelper("not-installed").get("r.example")
    started = time.monotonic()
    with pytest.raises(CredentialHelperError, match="did not finish"):
        await CredentialHelper("slow", timeout=0.5).get("r.example")
    assert time.monotonic() - started < 5
    for bad in ("../evil", "a/b", "", "-x"):
        with pytest.raises(CredentialHelperError, match="invalid credential helper name"):
            CredentialHelper(bad)


# -- which helper, which key ----------------------------------------------------------------


def test_helper_selection_and_keys() -> None:
    config = {
        "credsStore": "desktop",
        "credHelpers": {"ghcr.io": "gh", "https://quay.io": "quay"},
        "auths": {"https://ghcr.io": {}, "ghcr.io": {}},
    }
    assert helper_name(config, "ghcr.io") == "gh"
    assert helper_name(config, "quay.io") == "quay"
    assert helper_name(config, "other.example") == "desktop"
    assert helper_name({}, "ghcr.io") is None
    assert helper_keys(config, "ghcr.io") == ["ghcr.io", "https://ghcr.io"]
    assert server_key("docker.io") == HUB_KEY
    assert server_key("registry-1.docker.io") == HUB_KEY


async def test_docker_hub_legacy_key_is_found_for_docker_io(tmp_path: Path) -> None:
    auth = base64.b64encode(b"hubuser:hubpass").decode()
    path = write_config(tmp_path, {"auths": {HUB_KEY: {"auth": auth}}})
    source = DockerConfigSource([path])
    for host in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        assert await source(host) == Credentials(username="hubuser", password="hubpass")
    assert await source("ghcr.io") is None


async def test_hub_lookup_asks_the_helper_for_the_legacy_key(
    cred_helper: CredHelper, tmp_path: Path
) -> None:
    cred_helper.put(HUB_KEY, "hubuser", "hub-secret")
    path = write_config(tmp_path / "cfg", {"credsStore": HELPER_NAME})
    source = DockerConfigSource([path])
    assert await source("registry-1.docker.io") == Credentials(
        username="hubuser", password="hub-secret"
    )
    assert cred_helper.calls() == [f"get {HUB_KEY}"]


async def test_helper_answers_are_cached_and_run_once_concurrently(
    cred_helper: CredHelper, tmp_path: Path
) -> None:
    cred_helper.put("r.example", "u", "p")
    path = write_config(tmp_path / "cfg", {"credsStore": HELPER_NAME})
    now = [0.0]
    source = DockerConfigSource([path], helper_ttl=60, clock=lambda: now[0])
    answers: list[Credentials | None] = []

    async def look() -> None:
        answers.append(await source("r.example"))

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(look)
    assert await source("missing.example") is None
    assert await source("missing.example") is None  # a miss is kept too
    assert answers == [Credentials(username="u", password="p")] * 8
    assert cred_helper.calls() == ["get r.example", "get missing.example"]

    now[0] = 61.0
    await source("r.example")
    assert cred_helper.calls()[-1] == "get r.example"
    source.invalidate("r.example")
    await source("r.example")
    assert len(cred_helper.calls()) == 4


# -- against real registries ----------------------------------------------------------------


async def test_creds_store_supplies_basic_credentials_for_push_and_pull(
    basic_auth_registry: LocalRegistry,
    htpasswd_user: BasicAuthUser,
    cred_helper: CredHelper,
    isolated_env: Path,
    files: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    host = basic_auth_registry.host
    cred_helper.put(host, htpasswd_user.username, htpasswd_user.password)
    write_config(isolated_env, {"credsStore": HELPER_NAME, "auths": {host: {}}})
    target = f"{host}/{unique('helper/store')}:v1"

    async with AsyncRegistry(host, insecure=True) as reg:
        await reg.push(target, files=["f.txt"])
        await reg.pull(target, outdir=str(files / "out"))
    assert (files / "out" / "f.txt").read_text() == "from a credential helper\n"
    # Many requests, one helper run: answers are kept.
    assert cred_helper.calls() == [f"get {host}"]
    assert htpasswd_user.password not in caplog.text


async def test_cred_helpers_entry_wins_over_creds_store(
    basic_auth_registry: LocalRegistry,
    htpasswd_user: BasicAuthUser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    isolated_env: Path,
    files: Path,
) -> None:
    host = basic_auth_registry.host
    right = make_cred_helper(tmp_path / "right", monkeypatch, name="aioras-right")
    wrong = make_cred_helper(tmp_path / "wrong", monkeypatch, name="aioras-wrong")
    right.put(host, htpasswd_user.username, htpasswd_user.password)
    wrong.put(host, htpasswd_user.username, "not-it")
    write_config(
        isolated_env, {"credsStore": "aioras-wrong", "credHelpers": {host: "aioras-right"}}
    )

    async with AsyncRegistry(host, insecure=True) as reg:
        await reg.push(f"{host}/{unique('helper/per-host')}:v1", files=["f.txt"])
    assert right.calls() == [f"get {host}"]
    assert wrong.calls() == []


async def test_inline_auth_is_used_when_the_helper_has_nothing(
    basic_auth_registry: LocalRegistry,
    htpasswd_user: BasicAuthUser,
    cred_helper: CredHelper,
    isolated_env: Path,
    files: Path,
) -> None:
    host = basic_auth_registry.host
    auth = base64.b64encode(f"{htpasswd_user.username}:{htpasswd_user.password}".encode())
    write_config(
        isolated_env, {"credsStore": HELPER_NAME, "auths": {host: {"auth": auth.decode()}}}
    )
    async with AsyncRegistry(host, insecure=True) as reg:
        await reg.push(f"{host}/{unique('helper/inline')}:v1", files=["f.txt"])
    assert cred_helper.calls() == [f"get {host}"]


async def test_missing_helper_is_logged_and_the_request_goes_anonymous(
    basic_auth_registry: LocalRegistry,
    isolated_env: Path,
    files: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = basic_auth_registry.host
    write_config(isolated_env, {"credsStore": "aioras-absent"})
    async with AsyncRegistry(host, insecure=True) as reg:
        with pytest.raises(AuthenticationError, match="requires credentials"):
            await reg.get_tags(f"{host}/helper/none")
    assert "docker-credential-aioras-absent" in caplog.text


async def test_helper_identity_token_gets_a_bearer_token_by_refresh_grant(
    token_registry: TokenRegistry,
    cred_helper: CredHelper,
    isolated_env: Path,
    files: Path,
) -> None:
    refresh = token_registry.issuer.issue_refresh_token(token_registry.username)
    cred_helper.put(token_registry.host, "<token>", refresh)
    write_config(isolated_env, {"credHelpers": {token_registry.host: HELPER_NAME}})
    target = f"{token_registry.host}/private/{unique('helper-identity')}:v1"
    async with AsyncRegistry(token_registry.host, insecure=True) as reg:
        await reg.push(target, files=["f.txt"])
    grants = {(r.method, r.grant, r.username) for r in token_registry.issuer.requests}
    assert grants == {("POST", "refresh_token", token_registry.username)}


# -- login and logout through a helper ------------------------------------------------------


async def test_login_saves_through_creds_store_and_logout_erases(
    basic_auth_registry: LocalRegistry,
    htpasswd_user: BasicAuthUser,
    cred_helper: CredHelper,
    isolated_env: Path,
    files: Path,
) -> None:
    host = basic_auth_registry.host
    config = write_config(isolated_env, {"credsStore": HELPER_NAME})

    async with AsyncRegistry(host, insecure=True) as reg:
        with pytest.raises(AuthenticationError):
            await login(reg, htpasswd_user.username, "wrong-password")
    assert cred_helper.store() == {}
    assert json.loads(config.read_text()) == {"credsStore": HELPER_NAME}

    async with AsyncRegistry(host, insecure=True) as reg:
        await login(reg, htpasswd_user.username, htpasswd_user.password)
    assert cred_helper.store() == {host: [htpasswd_user.username, htpasswd_user.password]}
    saved = json.loads(config.read_text())
    assert saved["auths"] == {host: {}}  # a placeholder, as Docker writes; no secret
    assert htpasswd_user.password not in config.read_text()

    target = f"{host}/{unique('helper/login')}:v1"
    async with AsyncRegistry(host, insecure=True) as reg:  # a fresh client: helper only
        await reg.push(target, files=["f.txt"])

    async with AsyncRegistry(host, insecure=True) as reg:
        assert await logout(reg, host) is True
        assert cred_helper.store() == {}
        assert host not in json.loads(config.read_text()).get("auths", {})
        with pytest.raises(AuthenticationError, match="requires credentials"):
            await reg.get_tags(target)
        assert await logout(reg, host) is False


async def test_login_replaces_inline_secrets_when_a_helper_is_configured(
    basic_auth_registry: LocalRegistry,
    htpasswd_user: BasicAuthUser,
    cred_helper: CredHelper,
    isolated_env: Path,
) -> None:
    host = basic_auth_registry.host
    old = base64.b64encode(b"old:stale-secret").decode()
    config = write_config(
        isolated_env,
        {"credHelpers": {host: HELPER_NAME}, "auths": {f"https://{host}": {"auth": old}}},
    )
    async with AsyncRegistry(host, insecure=True) as reg:
        await login(reg, htpasswd_user.username, htpasswd_user.password)
    text = config.read_text()
    assert old not in text
    assert htpasswd_user.password not in text
    assert json.loads(text)["auths"] == {host: {}, f"https://{host}": {}}
    assert host in cred_helper.store()


async def test_login_with_a_missing_helper_fails_and_writes_nothing(
    basic_auth_registry: LocalRegistry, htpasswd_user: BasicAuthUser, isolated_env: Path
) -> None:
    config = write_config(isolated_env, {"credsStore": "aioras-absent"})
    before = config.read_bytes()
    async with AsyncRegistry(basic_auth_registry.host, insecure=True) as reg:
        with pytest.raises(CredentialHelperError, match="docker-credential-aioras-absent"):
            await login(reg, htpasswd_user.username, htpasswd_user.password)
    assert config.read_bytes() == before


def test_sync_client_login_and_logout_through_cred_helpers(
    basic_auth_registry: LocalRegistry,
    htpasswd_user: BasicAuthUser,
    cred_helper: CredHelper,
    isolated_env: Path,
    files: Path,
) -> None:
    host = basic_auth_registry.host
    config = write_config(isolated_env, {"credHelpers": {host: HELPER_NAME}})
    with OrasClient(hostname=host, insecure=True) as client:
        assert client.login(htpasswd_user.username, htpasswd_user.password) == {
            "Status": "Login Succeeded"
        }
    assert host in cred_helper.store()
    target = f"{host}/{unique('helper/sync')}:v1"
    with OrasClient(hostname=host, insecure=True) as client:
        client.push(target, files=["f.txt"])
        assert client.get_tags(target) == ["v1"]
        assert client.logout(host) is True
    assert cred_helper.store() == {}
    assert json.loads(config.read_text()) == {"credHelpers": {host: HELPER_NAME}, "auths": {}}
