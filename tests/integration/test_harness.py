"""The test harness itself: LocalRegistry against the real CNCF distribution registry."""

from __future__ import annotations

import hashlib
import shutil
import socket
import ssl
import stat
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

import aioras.testing
from aioras.exceptions import OrasError
from aioras.testing import LocalRegistry, LocalRegistryError

if TYPE_CHECKING:
    from support.harness import BasicAuthUser, RegistryFactory, TLSFiles


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as c:
        yield c


def unique_repo() -> str:
    return f"harness/repo-{uuid.uuid4().hex[:12]}"


def push_blob(client: httpx.Client, base: str, repo: str, data: bytes) -> str:
    """Monolithic upload in two requests: POST for a session, PUT ?digest= with the bytes."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = client.post(f"{base}/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
    assert started.status_code == 202, started.text
    location = started.url.join(started.headers["Location"]).copy_add_param("digest", digest)
    done = client.put(location, content=data, headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == digest
    return digest


def test_v2_answers_with_api_version(
    registry: LocalRegistry, client: httpx.Client, request: pytest.FixtureRequest
) -> None:
    assert request.node.get_closest_marker("integration") is not None
    assert registry.host.startswith("127.0.0.1:")
    assert registry.url == f"http://{registry.host}"
    assert registry.running
    response = client.get(f"{registry.url}/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_blob_push_and_read_back(registry: LocalRegistry, client: httpx.Client) -> None:
    repo, data = unique_repo(), uuid.uuid4().bytes * 1000
    digest = push_blob(client, registry.url, repo, data)

    head = client.head(f"{registry.url}/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == len(data)
    got = client.get(f"{registry.url}/v2/{repo}/blobs/{digest}")
    assert got.status_code == 200
    assert got.content == data


def test_delete_follows_delete_enabled(
    registry_factory: RegistryFactory, client: httpx.Client
) -> None:
    for enabled, expected in ((True, 202), (False, 405)):
        reg = registry_factory(delete_enabled=enabled)
        repo = unique_repo()
        digest = push_blob(client, reg.url, repo, b"delete me")
        assert client.delete(f"{reg.url}/v2/{repo}/blobs/{digest}").status_code == expected


def test_fresh_registry_is_empty(fresh_registry: LocalRegistry, client: httpx.Client) -> None:
    assert fresh_registry.storage_dir.is_dir()
    catalog = client.get(f"{fresh_registry.url}/v2/_catalog")
    assert catalog.status_code == 200
    assert catalog.json() == {"repositories": []}


def test_stop_removes_storage_and_process(registry_binary: str, client: httpx.Client) -> None:
    reg = LocalRegistry(binary=registry_binary).start()
    url, root = reg.url, reg.root_dir
    assert root is not None
    push_blob(client, url, unique_repo(), b"some bytes")
    assert any(p.is_file() for p in reg.storage_dir.rglob("data"))
    assert reg.config_path.is_file()
    assert reg.log_path.is_file()

    reg.stop()
    assert not reg.running
    assert not root.exists()
    with pytest.raises(httpx.ConnectError):
        client.get(f"{url}/v2/")
    reg.stop()  # idempotent


def test_keep_leaves_directory(registry_binary: str) -> None:
    with LocalRegistry(binary=registry_binary, keep=True) as reg:
        root = reg.root_dir
    assert root is not None
    try:
        assert (root / "config.yml").is_file()
        assert "GET /v2/" in (root / "registry.log").read_text()
    finally:
        shutil.rmtree(root)


@pytest.mark.anyio
async def test_async_context_manager(registry_binary: str) -> None:
    async with LocalRegistry(binary=registry_binary) as reg:
        async with httpx.AsyncClient(trust_env=False) as client:
            response = await client.get(f"{reg.url}/v2/")
        assert response.status_code == 200
        root = reg.root_dir
    assert root is not None
    assert not root.exists()


def test_missing_binary_names_the_install_command(tmp_path: Path) -> None:
    reg = LocalRegistry(binary=tmp_path / "no-such-registry")
    with pytest.raises(LocalRegistryError, match="apt-get install docker-registry") as info:
        reg.start()
    assert isinstance(info.value, OrasError)
    assert reg.root_dir is None


def test_startup_failure_reports_log_tail(registry_binary: str) -> None:
    # Two storage drivers: the registry refuses the configuration and exits.
    reg = LocalRegistry(binary=registry_binary, extra_config={"storage": {"inmemory": {}}})
    with pytest.raises(LocalRegistryError, match="exactly one storage type"):
        reg.start()
    assert not reg.running


def test_startup_timeout_reports_log_tail(tmp_path: Path) -> None:
    fake = tmp_path / "fake-registry"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import time\n"
        "print('fake registry never listens', flush=True)\n"
        "time.sleep(60)\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    reg = LocalRegistry(binary=fake, startup_timeout=0.5)
    with pytest.raises(LocalRegistryError, match=r"(?s)did not answer.*never listens"):
        reg.start()
    assert not reg.running


def test_retries_when_port_is_taken(
    registry_binary: str, monkeypatch: pytest.MonkeyPatch, client: httpx.Client
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = iter([taken])
        real_free_port = aioras.testing._free_port
        monkeypatch.setattr(
            aioras.testing, "_free_port", lambda: next(ports, None) or real_free_port()
        )
        with LocalRegistry(binary=registry_binary) as reg:
            assert reg.port != taken
            assert client.get(f"{reg.url}/v2/").status_code == 200
            assert "address already in use" in reg.log_tail()


def test_extra_config_is_merged(registry_factory: RegistryFactory, client: httpx.Client) -> None:
    reg = registry_factory(extra_config={"http": {"headers": {"X-Aioras-Test": ["yes"]}}})
    response = client.get(f"{reg.url}/v2/")
    assert response.headers["X-Aioras-Test"] == "yes"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="together"):
        LocalRegistry(tls_cert="cert.pem")
    with pytest.raises(ValueError, match="mutually exclusive"):
        LocalRegistry(htpasswd="x", token_auth={"realm": "r"})
    with pytest.raises(LocalRegistryError, match="not running"):
        _ = LocalRegistry().host


def test_start_twice_is_an_error(registry_factory: RegistryFactory) -> None:
    reg = registry_factory()
    with pytest.raises(LocalRegistryError, match="already started"):
        reg.start()


def test_htpasswd_requires_credentials(
    basic_auth_registry: LocalRegistry, htpasswd_user: BasicAuthUser, client: httpx.Client
) -> None:
    url = f"{basic_auth_registry.url}/v2/"
    anonymous = client.get(url)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    assert client.get(url, auth=(htpasswd_user.username, "wrong")).status_code == 401
    authed = client.get(url, auth=(htpasswd_user.username, htpasswd_user.password))
    assert authed.status_code == 200
    assert authed.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_tls_serves_https(tls_registry: LocalRegistry, tls_files: TLSFiles) -> None:
    assert tls_registry.url == f"https://{tls_registry.host}"
    verify = ssl.create_default_context(cafile=str(tls_files.cert))
    with httpx.Client(verify=verify, trust_env=False) as client:
        response = client.get(f"{tls_registry.url}/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"

    with (
        httpx.Client(trust_env=False) as untrusting,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        untrusting.get(f"{tls_registry.url}/v2/")


def test_unit_tests_are_not_marked_integration(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("integration") is None
