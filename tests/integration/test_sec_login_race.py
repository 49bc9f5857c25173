"""Concurrent ``login``/``logout`` on one Docker config keep every entry.

Each change to the config is a read-modify-write under an exclusive ``flock`` on a sidecar
lock file, re-reading the file once the lock is held and replacing it atomically (mode
0600). The races run many rounds against two real registries (two hosts), in threads, in
tasks of one event loop and in separate processes, each round on a fresh config file.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import anyio
import pytest

import aioras
from aioras import Registry
from aioras.auth.login import login, logout
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry

ROUNDS = 25


def auth_of(user: str) -> str:
    return base64.b64encode(f"{user}:secret-{user}".encode()).decode()


def assert_config(path: Path, expected: dict[str, str]) -> None:
    """The config holds exactly these ``auths`` (host -> user), mode 0600, no temp file."""
    doc = json.loads(path.read_text())
    assert {host: entry.get("auth") for host, entry in doc["auths"].items()} == {
        host: auth_of(user) for host, user in expected.items()
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(path.parent)) == ["config.json", "config.json.lock"]


@pytest.fixture
def hosts(registry: LocalRegistry, fresh_registry: LocalRegistry) -> list[str]:
    return [registry.host, fresh_registry.host]


def login_in_threads(registries: list[Registry], path: Path, round_: int) -> None:
    """Each registry logs in to its own host from a thread of its own, all at once."""
    barrier = threading.Barrier(len(registries))
    errors: list[BaseException] = []

    def log_in(reg: Registry, user: str) -> None:
        try:
            barrier.wait()
            reg.login(user, f"secret-{user}", config_path=str(path))
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=log_in, args=(reg, f"user{i}-{round_}"))
        for i, reg in enumerate(registries)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_logins_racing_in_threads_keep_both_entries(hosts: list[str], tmp_path: Path) -> None:
    # One Registry per thread: two event loops, truly concurrent.
    registries = [Registry(host, insecure=True) for host in hosts]
    try:
        for round_ in range(ROUNDS):
            path = tmp_path / str(round_) / "config.json"
            login_in_threads(registries, path, round_)
            assert_config(path, {host: f"user{i}-{round_}" for i, host in enumerate(hosts)})
    finally:
        for reg in registries:
            reg.close()


async def login_and_logout_in_tasks(
    areg: AsyncRegistry, hosts: list[str], path: Path, round_: int
) -> None:
    """Log in to every host and log out of ``gone.example``, as concurrent tasks."""

    async def log_in(host: str, user: str) -> None:
        await login(areg, user, f"secret-{user}", hostname=host, config_path=path)

    async with anyio.create_task_group() as tg:
        for i, host in enumerate(hosts):
            tg.start_soon(log_in, host, f"user{i}-{round_}")
        tg.start_soon(lambda: logout(areg, "gone.example", config_path=path))


@pytest.mark.anyio
async def test_logins_and_a_logout_racing_as_tasks_keep_every_other_entry(
    hosts: list[str], tmp_path: Path
) -> None:
    before = {"auths": {"kept.example": {"auth": auth_of("kept")}, "gone.example": {}}}
    async with AsyncRegistry(insecure=True) as areg:
        for round_ in range(ROUNDS):
            path = tmp_path / str(round_) / "config.json"
            path.parent.mkdir()
            path.write_text(json.dumps(before))
            path.chmod(0o600)
            await login_and_logout_in_tasks(areg, hosts, path, round_)
            expected = {host: f"user{i}-{round_}" for i, host in enumerate(hosts)}
            assert_config(path, {"kept.example": "kept", **expected})


# One login per line of stdin (a round number), each into that round's config file.
LOGIN_SCRIPT = textwrap.dedent(
    """
    import sys
    import aioras
    host, root, index = sys.argv[1], sys.argv[2], sys.argv[3]
    with aioras.Registry(host, insecure=True) as reg:
        for line in sys.stdin:
            round_ = line.strip()
            user = f"user{index}-{round_}"
            reg.login(user, f"secret-{user}", config_path=f"{root}/{round_}/config.json")
            print(round_, flush=True)
    """
)


def test_logins_racing_in_two_processes_keep_both_entries(hosts: list[str], tmp_path: Path) -> None:
    source = str(Path(aioras.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": source}
    with contextlib.ExitStack() as stack:
        processes = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", LOGIN_SCRIPT, host, str(tmp_path), str(i)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
            for i, host in enumerate(hosts)
        ]
        for process in processes:
            stack.callback(process.kill)  # runs first: a failed round ends both
        for round_ in range(ROUNDS):
            for process in processes:  # both start the round at once
                assert process.stdin is not None
                process.stdin.write(f"{round_}\n")
                process.stdin.flush()
            for process in processes:
                assert process.stdout is not None
                assert process.stdout.readline().strip() == str(round_)
            path = tmp_path / str(round_) / "config.json"
            assert_config(path, {host: f"user{i}-{round_}" for i, host in enumerate(hosts)})
        for process in processes:
            stdout, _ = process.communicate(timeout=60)
            assert process.returncode == 0
            assert stdout == ""


def test_login_waits_while_another_writer_holds_the_config_lock(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {}}))
    path.chmod(0o600)
    with open(tmp_path / "config.json.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another writer (say, another aioras) is at work
        with Registry(registry.host, insecure=True) as reg:
            done = threading.Event()

            def log_in() -> None:
                reg.login("waiter", "secret-waiter", config_path=str(path))
                done.set()

            thread = threading.Thread(target=log_in)
            thread.start()
            time.sleep(1.0)
            assert not done.is_set()
            assert json.loads(path.read_text()) == {"auths": {}}
            fcntl.flock(lock, fcntl.LOCK_UN)
            thread.join(timeout=30)
            assert done.is_set()
    assert_config(path, {registry.host: "waiter"})
