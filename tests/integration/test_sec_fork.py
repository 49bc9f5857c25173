"""Fork safety of the sync facade: a child forked after the parent used a ``Registry``.

``fork()`` copies only the calling thread, so the child inherits a ``Registry`` whose loop
thread does not exist. Each scenario runs in a script of its own (``subprocess``) that forks
with ``os.fork``; the script's parent waits for the child with a deadline and kills it when it
hangs, and the test's own timeout stops the script, so a hang fails the test instead of
hanging the suite.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

import aioras
from aioras.testing import LocalRegistry
from support.faultproxy import Fault, FaultProxy
from support.tokenserver import TokenServer

CHILD_DEADLINE = 30.0
SCRIPT_TIMEOUT = 90.0

# The script's parent half: fork, let the child run `child()`, wait for it with a deadline,
# then report as JSON what the child did and whether the parent still works.
HARNESS = textwrap.dedent(
    """
    import json, os, signal, sys, time
    import aioras

    def fork_and_wait(child, deadline):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            with os.fdopen(write_end, "w") as out:
                out.write(json.dumps(child()))
            sys.exit(0)  # a normal exit: atexit handlers and finalizers run
        os.close(write_end)
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
            return {"hung": True}
        with os.fdopen(read_end) as answer:
            text = answer.read()
        return {"hung": False, "exit": os.waitstatus_to_exitcode(status),
                "child": json.loads(text) if text else None}
    """
)


def script_env() -> dict[str, str]:
    """The environment of a script: this aioras importable from anywhere, warnings strict."""
    source = str(Path(aioras.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONWARNINGS": "error,always::ResourceWarning"}


def run_script(body: str, *args: str, cwd: Path) -> tuple[dict[str, Any], str]:
    """Run HARNESS + ``body``; return its JSON report and its stderr."""
    env = script_env()
    proc = subprocess.Popen(
        [sys.executable, "-c", HARNESS + textwrap.dedent(body), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=SCRIPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the script and any child it forked
        proc.communicate()
        pytest.fail(f"the fork script did not finish in {SCRIPT_TIMEOUT} s")
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


def repo() -> str:
    return f"fork/{uuid.uuid4().hex[:10]}"


def test_forked_child_uses_the_parents_registry_and_parent_keeps_working(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    (tmp_path / "data.txt").write_bytes(b"pushed by the parent\n")
    (tmp_path / "child.txt").write_bytes(b"pushed by the child\n")
    target = registry.reference(repo())
    body = """
        host, target = sys.argv[1], sys.argv[2]
        reg = aioras.Registry(host, insecure=True)
        reg.push(target + ":parent", files=["data.txt"])  # loop thread and pool now exist

        def child():
            pulled = reg.pull(target + ":parent", outdir="out")
            reg.push(target + ":child", files=["child.txt"])
            with open(pulled[0]) as fd:
                return {"pulled": fd.read()}

        report = fork_and_wait(child, float(sys.argv[3]))
        report["parent_tags"] = sorted(reg.get_tags(target))
        report["parent_ping"] = reg.ping().status_code
        print(json.dumps(report))
    """
    report, stderr = run_script(body, registry.host, target, str(CHILD_DEADLINE), cwd=tmp_path)
    assert report["hung"] is False, "the child hung using the Registry"
    assert report["exit"] == 0
    assert report["child"]["pulled"] == "pushed by the parent\n"
    # The child's push reached the registry, and the parent's Registry still works.
    assert report["parent_tags"] == ["child", "parent"]
    assert report["parent_ping"] == 200
    assert stderr == ""


def test_forked_child_exits_normally_without_using_the_registry(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    body = """
        reg = aioras.Registry(sys.argv[1], insecure=True)
        assert reg.ping().status_code == 200
        report = fork_and_wait(lambda: {}, float(sys.argv[2]))
        report["parent_ping"] = reg.ping().status_code
        print(json.dumps(report))
    """
    report, stderr = run_script(body, registry.host, str(CHILD_DEADLINE), cwd=tmp_path)
    assert report["hung"] is False, "sys.exit in the child hung"
    assert report["exit"] == 0
    assert report["parent_ping"] == 200
    assert stderr == ""


@pytest.mark.anyio
async def test_child_forked_during_an_upload_in_another_thread_can_upload_the_same_blob(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    # The parent's upload stalls at its PUT and is in flight when the parent forks: what
    # it holds in the parent (its pooled connection, the note that this blob is on its way)
    # must not hold up the child, which uploads the same blob itself.
    data = b"one blob, two processes\n" * 100
    (tmp_path / "blob.bin").write_bytes(data)
    layer = {
        "mediaType": "application/octet-stream",
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    fault_proxy.add(
        Fault("stall", where="request", seconds=60), method="PUT", path="/uploads/", times=1
    )
    target = fault_proxy.reference(repo())
    body = """
        import threading
        host, target, layer = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        reg = aioras.Registry(host, insecure=True)
        threading.Thread(
            target=reg.upload_blob, args=("blob.bin", target, layer), daemon=True
        ).start()
        sys.stdin.readline()  # the test says when the parent's PUT is stalled

        def child():
            status = reg.upload_blob("blob.bin", target, layer).status_code
            return {"status": status, "exists": reg.blob_exists(layer, target)}

        print(json.dumps(fork_and_wait(child, float(sys.argv[4]))))
    """
    env = script_env()
    args = [target, json.dumps(layer), str(CHILD_DEADLINE)]
    process = await anyio.open_process(
        [sys.executable, "-c", HARNESS + textwrap.dedent(body), fault_proxy.host, *args],
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )
    try:
        with anyio.fail_after(SCRIPT_TIMEOUT):
            while fault_proxy.faults["stall-request"] < 1:  # noqa: ASYNC110 - no proxy event
                await anyio.sleep(0.05)
            assert process.stdin is not None
            assert process.stdout is not None
            await process.stdin.send(b"go\n")
            out = b""
            async for chunk in process.stdout:
                out += chunk
            await process.wait()
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report["hung"] is False, "the child waited for the parent's upload"
    assert report["exit"] == 0
    assert report["child"] == {"status": 201, "exists": True}


@pytest.mark.parametrize(
    "backend",
    [
        # What answers another origin (an upload Location, a redirect): anonymous tokens.
        "reg.aregistry._transport._anonymous",
        # auth_backend="basic", a TokenAuth of the core but not of aioras.auth.token.
        "reg.auth",
    ],
)
def test_child_forked_during_a_token_fetch_gets_its_own_token(tmp_path: Path, backend: str) -> None:
    # A token fetch in flight in the parent at fork time holds its backend's lock for its
    # key; the child's fetch for the same key must not wait on it forever.
    (tmp_path / "issuer").mkdir()
    with TokenServer(tmp_path / "issuer") as issuer:
        body = """
            import threading
            import anyio
            from aioras.auth.challenge import Challenge
            realm = sys.argv[1]
            host, scopes = "127.0.0.1:9", ("repository:public/x:pull",)
            challenge = Challenge("bearer", {"realm": realm, "service": "aioras-test-registry"})
            reg = aioras.Registry("127.0.0.1:9", insecure=True, auth_backend="basic")
            anonymous = eval(sys.argv[3])
            held, done = threading.Event(), threading.Event()

            async def fetch_in_flight():
                async with anonymous._locks.setdefault((host, scopes), anyio.Lock()):
                    held.set()
                    while not done.is_set():
                        await anyio.sleep(0.02)

            threading.Thread(target=reg._call, args=(fetch_in_flight,), daemon=True).start()
            held.wait()

            async def fetch():
                client = reg.aregistry._transport.client
                token = await anonymous._token(client, host, challenge, scopes, stale=None)
                return token.value

            report = fork_and_wait(lambda: {"token": bool(reg._call(fetch))}, float(sys.argv[2]))
            done.set()
            print(json.dumps(report))
        """
        report, stderr = run_script(body, issuer.realm, str(CHILD_DEADLINE), backend, cwd=tmp_path)
    assert report["hung"] is False, "the child waited on a lock its parent held at fork"
    assert report["exit"] == 0
    assert report["child"] == {"token": True}
    assert stderr == ""
