"""Bearer-token auth against the real CNCF registry in ``auth: token`` mode.

The registry trusts :mod:`tokenserver`, an issuer in this suite signing ES256 JWTs with an
``x5c`` chain; anonymous clients may pull ``public/*``, the test user may do anything.
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

from aioras._environment import Environment
from aioras.auth import TokenAuth
from aioras.client import OrasClient
from aioras.exceptions import AuthenticationError
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry
from support.authtools import TokenRegistry, unique, write_config
from support.tokenserver import TokenServer

if TYPE_CHECKING:
    from support.harness import TLSFiles

pytestmark = pytest.mark.anyio


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding ``a.txt`` and ``b.bin`` to push."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.txt").write_text("token auth payload\n")
    (work / "b.bin").write_bytes(bytes(range(256)) * 64)
    monkeypatch.chdir(work)
    return work


def client(
    env: Environment, host: str, *, auth: TokenAuth | None = None, user: TokenRegistry | None = None
) -> AsyncRegistry:
    reg = AsyncRegistry(host, insecure=True, environment=env, auth_backend=auth or "token")
    if user is not None:
        reg.set_basic_auth(user.username, user.password)
    return reg


async def push_as_user(tr: TokenRegistry, env: Environment, target: str) -> None:
    async with client(env, tr.host, user=tr) as reg:
        await reg.push(target, files=["a.txt", "b.bin"])


async def test_anonymous_pull_of_a_public_repository(
    token_registry: TokenRegistry, docker_env: Environment, files: Path
) -> None:
    target = f"{token_registry.host}/public/{unique('anon')}:v1"
    await push_as_user(token_registry, docker_env, target)
    token_registry.issuer.requests.clear()

    async with client(docker_env, token_registry.host) as reg:
        pulled = await reg.pull(target, outdir=str(files / "out"))

    assert sorted(Path(p).name for p in pulled) == ["a.txt", "b.bin"]
    assert (files / "out" / "b.bin").read_bytes() == (files / "b.bin").read_bytes()
    grants = {(r.grant, r.scopes) for r in token_registry.issuer.requests}
    name = target.split("/", 1)[1].split(":")[0]
    assert grants == {("anonymous", (f"repository:{name}:pull",))}


async def test_push_needs_credentials_and_says_so(
    token_registry: TokenRegistry, docker_env: Environment, files: Path
) -> None:
    target = f"{token_registry.host}/public/{unique('anon-push')}:v1"
    async with client(docker_env, token_registry.host) as reg:
        with pytest.raises(AuthenticationError, match="log in or set credentials") as info:
            await reg.push(target, files=["a.txt"])
    assert info.value.status_code == 401
    # Refused at once: one token for the push scope, not one per retry.
    requests = token_registry.issuer.requests
    pushes = [r for r in requests if any(s.endswith(":pull,push") for s in r.scopes)]
    assert len(pushes) == 1
    assert pushes[0].grant == "anonymous"


async def test_private_repository_refuses_anonymous_pull(
    token_registry: TokenRegistry, docker_env: Environment, files: Path
) -> None:
    target = f"{token_registry.host}/private/{unique('p')}:v1"
    await push_as_user(token_registry, docker_env, target)
    async with client(docker_env, token_registry.host) as reg:
        with pytest.raises(AuthenticationError, match="did not grant anonymously"):
            await reg.pull(target, outdir=str(files / "out"))


async def test_push_with_credentials_asks_for_push_scope_up_front(
    token_registry: TokenRegistry, docker_env: Environment, files: Path
) -> None:
    name = f"private/{unique('push')}"
    target = f"{token_registry.host}/{name}:v1"
    async with client(docker_env, token_registry.host, user=token_registry) as reg:
        await reg.push(target, files=["a.txt", "b.bin"])
        pulled = await reg.pull(target, outdir=str(files / "out"))
        await reg.delete_tag(f"{token_registry.host}/{name}", "v1")
    assert len(pulled) == 2

    requests = token_registry.issuer.requests
    assert {r.grant for r in requests} == {"basic"}
    assert all(r.status == 200 and r.username == token_registry.username for r in requests)
    scopes = [r.scopes for r in requests]
    assert (f"repository:{name}:pull,push",) in scopes
    assert (f"repository:{name}:delete",) in scopes
    # One token per scope set, reused for every request that needs it.
    assert len(scopes) == len(set(scopes))


async def test_401_for_more_scope_gets_a_new_token_not_the_old_one(
    token_registry: TokenRegistry, docker_env: Environment, files: Path
) -> None:
    name = f"private/{unique('upgrade')}"
    target = f"{token_registry.host}/{name}:v1"
    await push_as_user(token_registry, docker_env, target)
    token_registry.issuer.requests.clear()
    async with client(docker_env, token_registry.host, user=token_registry) as reg:
        await reg.get_manifest(target)  # holds a pull token now
        # An upload start sent with only the pull scope: the registry answers 401
        # insufficient_scope and names pull,push; the client must fetch that and retry.
        url = f"http://{token_registry.host}/v2/{name}/blobs/uploads/"
        response = await reg._transport.send(
            "POST", url, body=b"", scopes=(f"repository:{name}:pull",)
        )
        assert response.status_code == 202
        await reg._cancel_upload(response.headers["location"])

    scopes = [r.scopes for r in token_registry.issuer.requests]
    # (then a delete token, for cancelling the upload session)
    assert scopes[:2] == [(f"repository:{name}:pull",), (f"repository:{name}:pull,push",)]


async def test_mount_asks_for_pull_on_the_source_repository(
    token_registry: TokenRegistry, docker_env: Environment, files: Path
) -> None:
    source = f"private/{unique('src')}"
    dest = f"private/{unique('dst')}"
    await push_as_user(token_registry, docker_env, f"{token_registry.host}/{source}:v1")
    token_registry.issuer.requests.clear()
    async with client(docker_env, token_registry.host, user=token_registry) as reg:
        manifest = await reg.get_manifest(f"{token_registry.host}/{source}:v1")
        digest = manifest["layers"][0]["digest"]
        mounted = await reg.mount_blob(f"{token_registry.host}/{dest}:v1", digest, source)
    assert mounted is True
    assert (
        f"repository:{dest}:pull,push",
        f"repository:{source}:pull",
    ) in [r.scopes for r in token_registry.issuer.requests]


async def test_concurrent_requests_fetch_the_token_once(
    token_registry: TokenRegistry, docker_env: Environment, files: Path
) -> None:
    name = f"public/{unique('many')}"
    target = f"{token_registry.host}/{name}:v1"
    await push_as_user(token_registry, docker_env, target)
    token_registry.issuer.requests.clear()

    results: list[object] = []
    async with client(docker_env, token_registry.host) as reg:

        async def fetch() -> None:
            results.append(await reg.get_manifest(target))

        async with anyio.create_task_group() as tg:
            for _ in range(12):
                tg.start_soon(fetch)
    assert len(results) == 12
    assert len(token_registry.issuer.requests) == 1


async def test_token_is_refreshed_early_before_it_expires(
    token_registry: TokenRegistry, docker_env: Environment, files: Path
) -> None:
    target = f"{token_registry.host}/public/{unique('refresh')}:v1"
    await push_as_user(token_registry, docker_env, target)
    token_registry.issuer.requests.clear()
    token_registry.issuer.expires_in = 100
    now = [time.monotonic()]
    auth = TokenAuth(insecure=True, clock=lambda: now[0])

    async with client(docker_env, token_registry.host, auth=auth) as reg:
        await reg.get_manifest(target)
        await reg.get_manifest(target)
        assert len(token_registry.issuer.requests) == 1
        now[0] += 79  # lifetime 100 s, refreshed 20 s (a fifth) early: still fresh
        await reg.get_manifest(target)
        assert len(token_registry.issuer.requests) == 1
        now[0] += 2  # inside the refresh margin: fetched again before any 401
        await reg.get_manifest(target)
        assert len(token_registry.issuer.requests) == 2


async def test_token_the_registry_finds_expired_is_replaced(
    token_registry: TokenRegistry, docker_env: Environment, files: Path
) -> None:
    target = f"{token_registry.host}/public/{unique('expired')}:v1"
    await push_as_user(token_registry, docker_env, target)
    token_registry.issuer.issued.clear()
    token_registry.issuer.expire_next = 1  # the next token is already past exp + leeway

    async with client(docker_env, token_registry.host) as reg:
        await reg.get_manifest(target)  # 401, anonymous token (expired), 401, new token
        await reg.get_manifest(target)

    issued = token_registry.issuer.issued
    assert [t.expired for t in issued] == [True, False]


@pytest.mark.parametrize("keys", [("token",), ("access_token",)])
async def test_token_or_access_token_is_accepted(
    token_registry: TokenRegistry, docker_env: Environment, files: Path, keys: tuple[str, ...]
) -> None:
    target = f"{token_registry.host}/public/{unique('keys')}:v1"
    await push_as_user(token_registry, docker_env, target)
    token_registry.issuer.response_keys = keys
    async with client(docker_env, token_registry.host) as reg:
        assert (await reg.get_manifest(target))["schemaVersion"] == 2


async def test_wrong_password_is_refused_by_the_token_service(
    token_registry: TokenRegistry, docker_env: Environment, files: Path
) -> None:
    target = f"{token_registry.host}/private/{unique('wrong')}:v1"
    async with client(docker_env, token_registry.host) as reg:
        reg.set_basic_auth(token_registry.username, "not-the-password")
        with pytest.raises(AuthenticationError) as info:
            await reg.push(target, files=["a.txt"])
    message = str(info.value)
    assert "refused as tokenuser (HTTP 401)" in message
    assert "not-the-password" not in message


async def test_identity_token_uses_the_oauth2_refresh_grant(
    token_registry: TokenRegistry, isolated_env: Path, files: Path
) -> None:
    refresh = token_registry.issuer.issue_refresh_token(token_registry.username)
    write_config(isolated_env, {"auths": {token_registry.host: {"identitytoken": refresh}}})
    target = f"{token_registry.host}/private/{unique('identity')}:v1"

    async with AsyncRegistry(token_registry.host, insecure=True) as reg:  # reads DOCKER_CONFIG
        await reg.push(target, files=["a.txt"])
        assert len(await reg.pull(target, outdir=str(files / "out"))) == 1

    requests = token_registry.issuer.requests
    assert requests
    assert {(r.method, r.grant, r.username) for r in requests} == {
        ("POST", "refresh_token", token_registry.username)
    }


async def test_credentials_from_docker_config_get_a_token(
    token_registry: TokenRegistry, isolated_env: Path, files: Path
) -> None:
    auth = base64.b64encode(f"{token_registry.username}:{token_registry.password}".encode())
    write_config(
        isolated_env, {"auths": {f"http://{token_registry.host}": {"auth": auth.decode()}}}
    )
    target = f"{token_registry.host}/private/{unique('config')}:v1"
    async with AsyncRegistry(token_registry.host, insecure=True) as reg:
        await reg.push(target, files=["a.txt"])
    assert {r.grant for r in token_registry.issuer.requests} == {"basic"}


async def test_no_credential_or_token_in_debug_logs_or_reprs(
    token_registry: TokenRegistry,
    docker_env: Environment,
    files: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    target = f"{token_registry.host}/private/{unique('logs')}:v1"
    async with client(docker_env, token_registry.host, user=token_registry) as reg:
        await reg.push(target, files=["a.txt", "b.bin"])
        await reg.pull(target, outdir=str(files / "out"))
        shown = repr(reg) + repr(reg.auth) + repr(reg.auth.credentials_for(token_registry.host))
        shown += repr(list(reg.auth._bearers.values()))  # type: ignore[attr-defined]
    basic = base64.b64encode(f"{token_registry.username}:{token_registry.password}".encode())
    secrets = [token_registry.password, basic.decode(), *token_registry.issuer.token_values()]
    assert len(secrets) > 2
    logged = caplog.text
    assert "requesting token" in logged  # the capture did see the auth flow
    for secret in secrets:
        assert secret not in logged
        assert secret not in shown
        # JWT parts are long enough to spot even when a token is logged cut in two
        for part in secret.split(".") if secret.count(".") == 2 else []:
            assert part not in logged


async def test_http_realm_is_refused_for_an_https_registry(
    registry_binary: str, tls_files: TLSFiles, tmp_path: Path, docker_env: Environment
) -> None:
    (tmp_path / "issuer").mkdir()
    with (
        TokenServer(tmp_path / "issuer") as ts,
        LocalRegistry(
            binary=registry_binary,
            tls_cert=tls_files.cert,
            tls_key=tls_files.key,
            token_auth=ts.registry_token_auth(),
        ) as reg,
    ):
        assert ts.realm.startswith("http://")
        async with AsyncRegistry(
            reg.host, tls_verify=str(tls_files.cert), environment=docker_env
        ) as c:
            with pytest.raises(AuthenticationError, match="realm must be https"):
                await c.get_tags(f"{reg.host}/public/x")
        assert ts.requests == []


async def test_tls_on_registry_and_token_service(
    registry_binary: str, tls_files: TLSFiles, tmp_path: Path, docker_env: Environment, files: Path
) -> None:
    cert, key = tls_files.cert, tls_files.key
    (tmp_path / "issuer").mkdir()
    with (
        TokenServer(
            tmp_path / "issuer", users={"tls": "tls-pass"}, tls_cert=cert, tls_key=key
        ) as ts,
        LocalRegistry(
            binary=registry_binary, tls_cert=cert, tls_key=key, token_auth=ts.registry_token_auth()
        ) as reg,
    ):
        assert ts.realm.startswith("https://")
        async with AsyncRegistry(reg.host, tls_verify=str(cert), environment=docker_env) as c:
            c.set_basic_auth("tls", "tls-pass")
            await c.push(f"{reg.host}/private/tls:v1", files=["a.txt"])
            assert await c.get_tags(f"{reg.host}/private/tls") == ["v1"]
        assert {r.grant for r in ts.requests} == {"basic"}


def test_sync_client_login_push_logout_against_token_auth(
    token_registry: TokenRegistry, isolated_env: Path, files: Path
) -> None:
    host = token_registry.host
    config = isolated_env / "config.json"
    with OrasClient(hostname=host, insecure=True) as client:
        with pytest.raises(AuthenticationError, match="refused as tokenuser"):
            client.login(token_registry.username, "wrong-password")
        assert not config.exists()
        client.login(token_registry.username, token_registry.password)
    assert host in json.loads(config.read_text())["auths"]

    target = f"{host}/private/{unique('sync-login')}:v1"
    with OrasClient(hostname=host, insecure=True) as client:  # reads the saved login
        client.push(target, files=["a.txt"])
        assert client.get_tags(target) == ["v1"]
        assert client.logout(host) is True
        with pytest.raises(AuthenticationError, match="did not grant anonymously"):
            client.get_tags(target)
    grants = {r.grant for r in token_registry.issuer.requests}
    assert grants == {"basic", "anonymous"}
