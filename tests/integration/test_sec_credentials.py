"""Credentials never cross origins: they belong to the registry they were given for.

The real registry (basic auth, plain http) sits behind the fault proxy, which rewrites the
``Location`` of an upload or mount answer to a second loopback origin: the catcher
(:mod:`catcher`), which records every header it is sent and challenges for credentials
(basic, or bearer with a token realm of its own). The catcher must never see the user's
password, neither directly, nor through its token realm, nor up front with
``auth_backend="basic"``, nor on the ``DELETE`` that cancels the session; nor the headers
the user set for the registry.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from aioras._environment import Environment
from aioras.exceptions import CredentialsNotForwarded, InsecureTokenRealm, OrasError
from aioras.registry import AsyncRegistry
from support.authtools import unique
from support.catcher import ANON_TOKEN, Catcher, catching
from support.faultproxy import Fault, FaultProxy, Head

if TYPE_CHECKING:
    from aioras.testing import LocalRegistry
    from support.harness import BasicAuthUser

pytestmark = pytest.mark.anyio
UPLOADS = r"/blobs/uploads/"
BASIC = 'Basic realm="catcher"'
BEARER = 'Bearer realm="{origin}/token",service="catcher"'


@pytest.fixture
async def proxy(basic_auth_registry: LocalRegistry) -> AsyncIterator[FaultProxy]:
    """The fault proxy in front of the session's basic-auth registry."""
    assert basic_auth_registry.port is not None
    async with FaultProxy(basic_auth_registry.port) as fp:
        yield fp


def location_to(url: str) -> Fault:
    """A transform fault pointing the answer's ``Location`` at ``url``."""

    def rewrite(request: Head, response: Head, body: bytes) -> tuple[Head, bytes]:
        if response.get("Location"):
            response.set("Location", url)
        return response, body

    return Fault("transform", on_response=rewrite)


def blob_file(tmp_path: Path, size: int = 4096) -> tuple[Path, dict[str, Any]]:
    data = bytes(range(256)) * (size // 256)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    layer = {
        "mediaType": "application/octet-stream",
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    return path, layer


def basic_value(user: BasicAuthUser) -> str:
    return base64.b64encode(f"{user.username}:{user.password}".encode()).decode()


def assert_no_credentials(catcher: Catcher, user: BasicAuthUser) -> None:
    """Nothing the catcher got carries the user's credentials; a token only its own."""
    seen = catcher.seen()
    assert seen, "nothing reached the other origin: the test proves nothing"
    for request in seen:
        auth = request.headers.get("authorization")
        assert auth in (None, f"Bearer {ANON_TOKEN}"), (request.method, request.path)
    text = catcher.headers_seen()
    assert basic_value(user) not in text
    assert user.password not in text


def signed_in(
    proxy: FaultProxy, env: Environment, user: BasicAuthUser, backend: str = "token", **kw: Any
) -> AsyncRegistry:
    """A client of the registry behind ``proxy`` holding ``user``'s password (not entered)."""
    reg = AsyncRegistry(proxy.host, insecure=True, auth_backend=backend, environment=env, **kw)
    reg.set_basic_auth(user.username, user.password)
    return reg


Configure = Callable[[AsyncRegistry], None]


@pytest.fixture(params=["set_basic_auth", "ORAS_USER/ORAS_PASS"])
def credentials(
    request: pytest.FixtureRequest, htpasswd_user: BasicAuthUser, docker_env: Environment
) -> tuple[Environment, Configure]:
    """The environment and configuration step of each way to give global credentials."""
    if request.param == "set_basic_auth":
        return docker_env, lambda r: r.set_basic_auth(
            htpasswd_user.username, htpasswd_user.password
        )
    env = replace(docker_env, oras_user=htpasswd_user.username, oras_pass=htpasswd_user.password)
    return env, lambda r: None


@pytest.mark.parametrize("backend", ["token", "basic"])
@pytest.mark.parametrize("challenge", [BASIC, BEARER], ids=["basic", "bearer"])
async def test_upload_location_on_another_origin_never_gets_the_password(
    proxy: FaultProxy,
    htpasswd_user: BasicAuthUser,
    credentials: tuple[Environment, Configure],
    tmp_path: Path,
    backend: str,
    challenge: str,
) -> None:
    env, configure = credentials
    path, layer = blob_file(tmp_path)
    with catching(challenge=challenge) as catcher:
        proxy.add(location_to(catcher.url("/upload/s1?_state=x")), method="POST", path=UPLOADS)
        async with AsyncRegistry(
            proxy.host, insecure=True, auth_backend=backend, environment=env
        ) as reg:
            configure(reg)
            with pytest.raises(OrasError) as raised:
                await reg.upload_blob(path, proxy.reference(unique("sec/loc")), layer)
    if challenge == BASIC:
        assert isinstance(raised.value, CredentialsNotForwarded)
    else:
        token_requests = [s for s in catcher.seen() if s.path.startswith("/token")]
        assert token_requests, "the bearer challenge was not answered at all"
    methods = [s.method for s in catcher.seen()]
    assert "PUT" in methods
    assert "DELETE" in methods, "the abandoned session was not cancelled"
    assert_no_credentials(catcher, htpasswd_user)


@pytest.mark.parametrize("backend", ["token", "basic"])
async def test_patch_location_on_another_origin_never_gets_the_password(
    proxy: FaultProxy,
    htpasswd_user: BasicAuthUser,
    docker_env: Environment,
    tmp_path: Path,
    backend: str,
) -> None:
    path, layer = blob_file(tmp_path, size=4096)
    with catching(challenge=BASIC) as catcher:
        proxy.add(location_to(catcher.url("/upload/s2")), method="PATCH", path=UPLOADS)
        async with signed_in(proxy, docker_env, htpasswd_user, backend) as reg:
            with pytest.raises(CredentialsNotForwarded):
                await reg.upload_blob(path, proxy.reference(unique("sec/patch")), layer, True, 1024)
    assert [e.status for e in proxy.requests_matching("PATCH")] == [202]
    assert "PATCH" in [s.method for s in catcher.seen()]
    assert_no_credentials(catcher, htpasswd_user)


@pytest.mark.parametrize("backend", ["token", "basic"])
async def test_mount_answer_on_another_origin_is_cancelled_without_the_password(
    proxy: FaultProxy,
    htpasswd_user: BasicAuthUser,
    docker_env: Environment,
    backend: str,
) -> None:
    digest = "sha256:" + hashlib.sha256(b"never pushed " + unique("x").encode()).hexdigest()
    with catching(challenge=BASIC) as catcher:
        proxy.add(location_to(catcher.url("/upload/s3")), method="POST", path=UPLOADS)
        async with signed_in(proxy, docker_env, htpasswd_user, backend) as reg:
            mounted = await reg.mount_blob(
                proxy.reference(unique("sec/mount")), digest, unique("sec/elsewhere")
            )
    assert mounted is False
    assert [s.method for s in catcher.seen()][:1] == ["DELETE"]
    assert_no_credentials(catcher, htpasswd_user)


async def test_headers_set_for_the_registry_stay_with_the_registry(
    proxy: FaultProxy, htpasswd_user: BasicAuthUser, docker_env: Environment, tmp_path: Path
) -> None:
    path, layer = blob_file(tmp_path)
    with catching(status=404) as catcher:
        proxy.add(location_to(catcher.url("/upload/s4")), method="POST", path=UPLOADS)
        async with signed_in(
            proxy, docker_env, htpasswd_user, headers={"X-Api-Key": "constructor-header-secret"}
        ) as reg:
            reg.set_header("X-Tenant-Token", "set-header-secret")
            with pytest.raises(OrasError):
                await reg.upload_blob(path, proxy.reference(unique("sec/hdr")), layer)
    seen = catcher.seen()
    assert "PUT" in [s.method for s in seen]
    for request in seen:
        assert "x-api-key" not in request.headers
        assert "x-tenant-token" not in request.headers
        assert request.headers.get("user-agent", "").startswith("aioras/")
    assert "secret" not in catcher.headers_seen()
    assert_no_credentials(catcher, htpasswd_user)


async def test_plain_http_realm_on_another_host_gets_no_credentials(
    htpasswd_user: BasicAuthUser, docker_env: Environment
) -> None:
    # The registry is plain http on 127.0.0.1; its realm is plain http on 127.0.0.2.
    with (
        catching(host="127.0.0.2") as realm,
        catching(challenge=f'Bearer realm="{realm.url("/token")}",service="x"') as registry,
    ):
        host = f"127.0.0.1:{registry.port}"
        async with AsyncRegistry(host, insecure=True, environment=docker_env) as reg:
            reg.set_basic_auth(htpasswd_user.username, htpasswd_user.password)
            with pytest.raises(InsecureTokenRealm) as raised:
                await reg.get_tags(f"{host}/sec/realm")
    assert registry.seen(), "the registry was never asked"
    assert realm.seen() == []
    assert htpasswd_user.password not in str(raised.value)


async def test_plain_http_realm_on_another_host_still_gives_anonymous_tokens(
    docker_env: Environment,
) -> None:
    with (
        catching(host="127.0.0.2") as realm,
        catching(
            challenge=f'Bearer realm="{realm.url("/token")}",service="x"',
            status=200,
            headers=[("Content-Type", "application/json")],
            body=b'{"name": "sec/anon", "tags": ["v1"]}',
        ) as registry,
    ):
        host = f"127.0.0.1:{registry.port}"
        async with AsyncRegistry(host, insecure=True, environment=docker_env) as reg:
            assert await reg.get_tags(f"{host}/sec/anon") == ["v1"]
    assert [s.path.split("?")[0] for s in realm.seen()] == ["/token"]
    assert "authorization" not in realm.seen()[0].headers
