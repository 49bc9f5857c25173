"""A registry object travels to worker processes: pickle and deepcopy by configuration.

The object that arrives builds its own pool, loop thread and locks and fetches its tokens
again; its options, headers, credentials and a subclass's own attributes come along. Workers
live in ``support.pickleworkers`` so that ``spawn`` children can import them.
"""

from __future__ import annotations

import copy
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from aioras import AsyncRegistry
from aioras._environment import Environment
from aioras.exceptions import RegistryInUse
from aioras.progress import TransferEvent
from aioras.provider import Registry
from aioras.testing import LocalRegistry
from support.authtools import TokenRegistry, unique
from support.pickleworkers import (
    MirrorClient,
    digests,
    pull_in_worker,
    pull_task,
    pull_with_local_credentials,
)

pytestmark = [pytest.mark.timeout(180)]


@pytest.fixture
def artifact(tmp_path: Path) -> list[str]:
    (tmp_path / "model.bin").write_bytes(bytes(range(256)) * 4096)
    (tmp_path / "notes.txt").write_text("pickled registries pull this\n")
    return [str(tmp_path / "model.bin"), str(tmp_path / "notes.txt")]


def used_client(
    token_registry: TokenRegistry, env: Environment, files: list[str]
) -> tuple[Registry, str]:
    """A configured registry that has pushed (a token cached), and what it pushed."""
    reg = Registry(token_registry.host, insecure=True, environment=env)
    reg.set_basic_auth(token_registry.username, token_registry.password)
    reg.set_header("X-Team", "pickling")
    target = f"{token_registry.host}/private/{unique('pickle')}:v1"
    reg.push(target=target, files=files, disable_path_validation=True)
    return reg, target


def expected(files: list[str]) -> dict[str, str]:
    return digests(files)


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_a_used_registry_pulls_with_auth_in_process_pool_workers(
    token_registry: TokenRegistry,
    docker_env: Environment,
    artifact: list[str],
    tmp_path: Path,
    method: str,
) -> None:
    reg, target = used_client(token_registry, docker_env, artifact)
    issued_before = len(token_registry.issuer.issued)
    context = multiprocessing.get_context(method)
    with reg, ProcessPoolExecutor(2, mp_context=context) as pool:
        futures = [
            pool.submit(pull_in_worker, reg, target, str(tmp_path / f"out-{i}")) for i in range(2)
        ]
        results = [f.result(timeout=120) for f in futures]
        # The parent's object still works after being sent.
        parent = reg.pull(target=target, outdir=str(tmp_path / "parent"))

    for result in results:
        assert result["files"] == expected(artifact)
    assert digests(parent) == expected(artifact)
    # Tokens did not travel: the workers fetched their own, with the credentials that did.
    fresh = token_registry.issuer.issued[issued_before:]
    assert any(t.username == token_registry.username for t in fresh)


def test_pool_map_with_the_client_inside_the_task_tuple(
    token_registry: TokenRegistry, docker_env: Environment, artifact: list[str], tmp_path: Path
) -> None:
    reg, target = used_client(token_registry, docker_env, artifact)
    tasks = [(reg, target, str(tmp_path / f"map-{i}")) for i in range(3)]
    with reg, multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(pull_task, tasks, chunksize=1)
    assert [r["files"] for r in results] == [expected(artifact)] * 3


def test_a_subclass_with_its_own_attributes_round_trips(
    token_registry: TokenRegistry, docker_env: Environment, artifact: list[str], tmp_path: Path
) -> None:
    original = MirrorClient(
        token_registry.host, insecure=True, environment=docker_env, channel="conda-forge"
    )
    original.set_basic_auth(token_registry.username, token_registry.password)
    original.set_header("X-Channel", "conda-forge")
    original.note("first")
    target = f"{token_registry.host}/private/{unique('subclass')}:v1"
    with original:
        original.push(target=target, files=artifact, disable_path_validation=True)

    arrived = pickle.loads(pickle.dumps(original))

    assert type(arrived) is MirrorClient
    assert (arrived.channel, arrived.seen, arrived.options) == (
        "conda-forge",
        ["first"],
        {"retries": 3, "labels": ("a", "b")},
    )
    assert arrived.hostname == original.hostname
    assert arrived.insecure
    assert arrived.headers["X-Channel"] == "conda-forge"
    assert arrived.aregistry is not original.aregistry
    with arrived:
        pulled = arrived.pull(target=target, outdir=str(tmp_path / "out"))
    assert digests(pulled) == expected(artifact)


def test_deepcopy_gives_an_independent_registry(docker_env: Environment) -> None:
    original = Registry("registry.example:5000", insecure=True, environment=docker_env)
    original.set_basic_auth("alice", "first-password")
    original.set_header("X-Mode", "original")

    twin = copy.deepcopy(original)
    twin.set_header("X-Mode", "copy")
    twin.set_basic_auth("bob", "second-password")
    twin.insecure = False

    assert original.headers["X-Mode"] == "original"
    assert original.insecure is True
    creds = original.auth.credentials_for("registry.example:5000")
    assert creds is not None
    assert creds.username == "alice"
    assert twin.aregistry._transport is not original.aregistry._transport
    assert twin.auth is not original.auth


def test_a_shallow_copy_is_refused_with_a_clear_error(docker_env: Environment) -> None:
    with pytest.raises(TypeError, match="deepcopy"):
        copy.copy(Registry(insecure=True, environment=docker_env))
    with pytest.raises(TypeError, match="deepcopy"):
        copy.copy(AsyncRegistry(insecure=True, environment=docker_env))


def test_a_registry_with_a_tls_context_pickles_before_first_use() -> None:
    # Once raised "cannot pickle 'SSLContext' object".
    arrived = pickle.loads(pickle.dumps(Registry(insecure=True)))
    assert arrived.insecure is True


@pytest.mark.anyio
async def test_pickling_while_a_call_is_running_is_refused(
    registry: LocalRegistry, artifact: list[str]
) -> None:
    host = registry.host
    refusals: list[BaseException] = []

    async with AsyncRegistry(host, insecure=True) as reg:

        def during(event: TransferEvent) -> None:
            if event.kind == "start" and not refusals:
                try:
                    pickle.dumps(reg)
                except RegistryInUse as error:
                    refusals.append(error)

        await reg.push(
            f"{host}/pickle/{unique('busy')}:v1",
            files=artifact,
            disable_path_validation=True,
            progress=during,
        )
        assert len(refusals) == 1
        assert "running" in str(refusals[0])
        # Once the call is over, the object pickles.
        assert isinstance(pickle.loads(pickle.dumps(reg)), AsyncRegistry)


def test_credentials_travel_unless_sent_without_them(
    token_registry: TokenRegistry,
    docker_env: Environment,
    artifact: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = Environment(
        docker_config_dir=docker_env.docker_config_dir,
        oras_user="parent-user",
        oras_pass="parent-only-secret",
    )
    reg, target = used_client(token_registry, env, artifact)
    with reg:
        assert token_registry.password.encode() in pickle.dumps(reg)  # as oras-py's does

        bare = reg.without_credentials()
        sent = pickle.dumps(bare)
        assert token_registry.password.encode() not in sent
        assert b"parent-only-secret" not in sent

        # The worker reads credentials where they live on its side: its own environment.
        monkeypatch.setenv("ORAS_USER", token_registry.username)
        monkeypatch.setenv("ORAS_PASS", token_registry.password)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            result = pool.submit(
                pull_with_local_credentials, bare, target, str(tmp_path / "bare")
            ).result(timeout=120)
    assert result["files"] == expected(artifact)
    assert result["environment_user"] == token_registry.username
