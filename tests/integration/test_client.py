"""``OrasClient`` and ``AsyncOrasClient``: oras-py's client shape, login and logout.

Login runs against a real registry requiring htpasswd basic auth; the Docker config it writes
lives in the test's temporary directory (``DOCKER_CONFIG`` points there too).
"""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

import aioras
import aioras.client
from aioras import defaults
from aioras.client import AsyncOrasClient, OrasClient
from aioras.exceptions import AuthenticationError
from aioras.registry import AsyncRegistry
from aioras.sync import Registry
from aioras.testing import LocalRegistry

if TYPE_CHECKING:
    from support.harness import BasicAuthUser, RegistryFactory


def unique(name: str) -> str:
    return f"client/{name}-{uuid.uuid4().hex[:10]}"


# No credentials from the environment or the real ~/.docker reach these tests.
pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture
def auth_registry(registry_factory: RegistryFactory, htpasswd_user: BasicAuthUser) -> LocalRegistry:
    """A registry of the test's own requiring basic auth (htpasswd made by ``htpasswd -Bbn``)."""
    return registry_factory(htpasswd=htpasswd_user.htpasswd)


@pytest.fixture
def client(auth_registry: LocalRegistry) -> Iterator[OrasClient]:
    with OrasClient(hostname=auth_registry.host, insecure=True) as c:
        yield c


def read_json(path: Path) -> dict[str, object]:
    doc = json.loads(path.read_text())
    assert isinstance(doc, dict)
    return doc


def basic(user: BasicAuthUser) -> str:
    return base64.b64encode(f"{user.username}:{user.password}".encode()).decode()


# -- login and logout ------------------------------------------------------------------------


def test_login_with_wrong_password_raises_and_writes_nothing(
    client: OrasClient, auth_registry: LocalRegistry, htpasswd_user: BasicAuthUser, tmp_path: Path
) -> None:
    config = tmp_path / "cfg" / "config.json"
    with pytest.raises(AuthenticationError):
        client.login(htpasswd_user.username, "wrong-password", config_path=str(config))
    assert not config.exists()
    assert not config.parent.exists()

    existing = tmp_path / "existing.json"
    original = json.dumps({"auths": {"other.example": {"auth": "eDp5"}}, "x": 1})
    existing.write_text(original)
    with pytest.raises(AuthenticationError):
        client.login("nobody", htpasswd_user.password, config_path=str(existing))
    assert existing.read_text() == original
    assert [p.name for p in tmp_path.iterdir()] == ["existing.json"]  # no temporary files

    # The refused credentials are not kept: the client is still anonymous.
    with pytest.raises(AuthenticationError):
        client.get_tags(unique("anything"))


def test_login_writes_a_private_config_a_fresh_client_can_use(
    client: OrasClient,
    auth_registry: LocalRegistry,
    htpasswd_user: BasicAuthUser,
    tmp_path: Path,
    tmp_cwd: Path,
) -> None:
    config = tmp_path / "cfg" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"auths": {"other.example": {"auth": "eDp5"}}, "psFormat": "x"}))
    os.chmod(config, 0o644)

    result = client.login(htpasswd_user.username, htpasswd_user.password, config_path=str(config))
    assert result == {"Status": "Login Succeeded"}
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    doc = read_json(config)
    assert doc["psFormat"] == "x"
    assert doc["auths"] == {
        "other.example": {"auth": "eDp5"},
        auth_registry.host: {"auth": basic(htpasswd_user)},
    }
    # No temporary file left; the sidecar lock file stays (removing it would race).
    assert sorted(p.name for p in config.parent.iterdir()) == ["config.json", "config.json.lock"]

    # The logged-in client itself can push now.
    (tmp_cwd / "a.txt").write_bytes(b"after login")
    target = auth_registry.reference(unique("login") + ":v1")
    assert client.push(target, files=["a.txt"]).status_code == 201

    # A fresh client knows nothing until it reads that config.
    with OrasClient(insecure=True) as fresh, pytest.raises(AuthenticationError):
        fresh.get_tags(target)
    with OrasClient(insecure=True) as fresh:
        (tmp_cwd / "b.txt").write_bytes(b"fresh client")
        other = auth_registry.reference(unique("fresh") + ":v2")
        assert fresh.push(other, files=["b.txt"], config_path=str(config)).status_code == 201
        pulled = fresh.pull(other, outdir=tmp_cwd / "out")
        assert Path(pulled[0]).read_bytes() == b"fresh client"
        assert fresh.get_tags(other) == ["v2"]


def test_logout_removes_the_entry_and_forgets_credentials(
    client: OrasClient,
    auth_registry: LocalRegistry,
    htpasswd_user: BasicAuthUser,
    isolated_env: Path,
    tmp_cwd: Path,
) -> None:
    # Default config path: $DOCKER_CONFIG/config.json; default hostname: the client's.
    client.login(htpasswd_user.username, htpasswd_user.password)
    config = isolated_env / "config.json"
    assert read_json(config)["auths"] == {auth_registry.host: {"auth": basic(htpasswd_user)}}
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    (tmp_cwd / "f.txt").write_bytes(b"x")
    target = auth_registry.reference(unique("logout") + ":v1")
    client.push(target, files=["f.txt"])

    assert client.logout(auth_registry.host) is True
    assert read_json(config)["auths"] == {}
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    with pytest.raises(AuthenticationError):
        client.get_tags(target)  # neither cached credentials nor the file serve any more
    with OrasClient(insecure=True) as fresh, pytest.raises(AuthenticationError):
        fresh.push(target, files=["f.txt"], config_path=str(config))
    assert client.logout(auth_registry.host) is False  # nothing left to remove


def test_login_details(
    client: OrasClient,
    auth_registry: LocalRegistry,
    htpasswd_user: BasicAuthUser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "c.json"
    # The password may come from standard input, the host may be written as a URL.
    monkeypatch.setattr("sys.stdin", io.StringIO(htpasswd_user.password + "\n"))
    result = client.login(
        htpasswd_user.username,
        "",
        password_stdin=True,
        hostname=f"http://{auth_registry.host}/",
        config_path=str(config),
    )
    assert result["Status"] == "Login Succeeded"
    assert auth_registry.host in read_json(config)["auths"]  # type: ignore[operator]

    with pytest.raises(ValueError, match="username and a password"):
        client.login(htpasswd_user.username, "", config_path=str(config))
    with OrasClient(insecure=True) as no_host, pytest.raises(ValueError, match="hostname"):
        no_host.login("u", "p", config_path=str(config))

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        client.login(htpasswd_user.username, htpasswd_user.password, config_path=str(broken))
    assert broken.read_text() == "{not json"


# -- the client shape ------------------------------------------------------------------------


def test_client_operations_on_an_open_registry(registry: LocalRegistry, tmp_cwd: Path) -> None:
    (tmp_cwd / "artifact.txt").write_bytes(b"dinosaur")
    target = registry.reference(unique("dinosaur") + ":v1")
    client = OrasClient(insecure=True)
    try:
        assert isinstance(client.remote, Registry)
        response = client.push(files=["artifact.txt"], target=target)
        assert response.status_code == 201
        res = client.pull(target=target, outdir=tmp_cwd / "out")
        assert Path(res[0]).read_bytes() == b"dinosaur"
        assert client.get_tags(target) == ["v1"]
        assert client.get_tags(target, N=0) == []
        assert client.delete_tags(target, ["v1", "v9"]) == ["v1"]
        assert client.get_tags(target) == []
        assert "Version" in client.version(return_items=True)
        assert isinstance(client.version(), str)
    finally:
        client.close()


def test_guide_subclass_of_the_client_and_a_given_registry(
    registry: LocalRegistry, tmp_cwd: Path
) -> None:
    class MyProvider(aioras.client.OrasClient):
        pass

    (tmp_cwd / "artifact.txt").write_bytes(b"mine")
    target = registry.reference(unique("provider") + ":v1")
    with MyProvider(insecure=True) as mine:
        assert mine.push(target, files=["artifact.txt"]).status_code == 201

    # As in oras-py 0.2.43 the client is the registry: every endpoint method is on it.
    with OrasClient(registry.host, insecure=True) as client:
        assert isinstance(client, Registry)
        assert client.remote is client
        assert client.get_tags(target) == ["v1"]
        manifest = client.get_manifest(target)
        assert manifest["layers"][0]["annotations"][defaults.annotation_title] == "artifact.txt"
        assert client.delete_tag(target, "v1") is True


def test_set_basic_auth_and_set_token_auth(
    auth_registry: LocalRegistry, htpasswd_user: BasicAuthUser
) -> None:
    with OrasClient(hostname=auth_registry.host, insecure=True) as c:
        c.set_basic_auth(htpasswd_user.username, htpasswd_user.password)
        assert c.remote.ping().status_code == 200

    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"name": "a/b", "tags": ["t1"]})

    with OrasClient("registry.test", transport=httpx.MockTransport(handler)) as c:
        c.set_token_auth("registry-token-123")
        assert c.get_tags("a/b") == ["t1"]
    assert seen == ["Bearer registry-token-123"]


@pytest.mark.anyio
async def test_async_client_login_push_pull_logout(
    auth_registry: LocalRegistry,
    htpasswd_user: BasicAuthUser,
    tmp_path: Path,
    tmp_cwd: Path,
) -> None:
    config = tmp_path / "async-config.json"
    (tmp_cwd / "async.txt").write_bytes(b"async client")
    target = auth_registry.reference(unique("async") + ":v1")
    async with AsyncOrasClient(hostname=auth_registry.host, insecure=True) as c:
        assert isinstance(c.remote, AsyncRegistry)
        with pytest.raises(AuthenticationError):
            await c.login(htpasswd_user.username, "nope", config_path=str(config))
        assert not config.exists()
        assert await c.login(
            htpasswd_user.username, htpasswd_user.password, config_path=str(config)
        ) == {"Status": "Login Succeeded"}
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert (await c.push(target, files=["async.txt"])).status_code == 201
        paths = await c.pull(target, outdir=tmp_cwd / "out")
        assert Path(paths[0]).read_bytes() == b"async client"
        assert await c.get_tags(target) == ["v1"]
        assert await c.delete_tags(target, "v1") == ["v1"]
        assert await c.logout(auth_registry.host, config_path=str(config)) is True
        assert read_json(config)["auths"] == {}
        with pytest.raises(AuthenticationError):
            await c.get_tags(target)
        assert isinstance(c.version(), str)
        c.set_basic_auth(htpasswd_user.username, htpasswd_user.password)
        assert await c.get_tags(target) == []


def test_public_names() -> None:
    assert aioras.OrasClient is OrasClient
    assert aioras.AsyncOrasClient is AsyncOrasClient
    assert aioras.Registry is Registry
    for name in ("Registry", "OrasClient", "AsyncOrasClient", "provider", "client"):
        assert name in aioras.__all__
        assert hasattr(aioras, name)
