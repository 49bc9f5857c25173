"""Cancelling a push or pull leaves no running tasks, no busy threads and no temporary files.

Transfers are held in flight by the fault proxy (a stalled upload, a stalled or throttled
download) so that cancellation lands mid-transfer, then the test checks what is left: tasks
other than the proxy's own, threads still executing aioras code, temporary archives and
partial downloads, and upload sessions not cancelled on the registry. The synchronous
facade is interrupted with a real SIGINT (Ctrl-C) delivered to the main thread.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import FrameType

import anyio
import httpx
import pytest
from anyio.from_thread import start_blocking_portal

import aioras
from aioras import RetryPolicy
from aioras.registry import AsyncRegistry
from aioras.sync import Registry
from aioras.testing import LocalRegistry
from support.faultproxy import Fault, FaultProxy

FAST = RetryPolicy(backoff=0.01, max_backoff=0.05)
MiB = 1 << 20
AIORAS_DIR = os.path.dirname(os.path.abspath(aioras.__file__))


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary directory of the test's own, made the default for ``tempfile``."""
    path = tmp_path / "systmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture
def workdir(tmp_cwd: Path) -> Path:
    """An artifact to push: two files and a directory (which push packs into a temp archive)."""
    (tmp_cwd / "small.txt").write_text("small")
    (tmp_cwd / "big.bin").write_bytes(os.urandom(6 * MiB))
    tree = tmp_cwd / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "data.bin").write_bytes(os.urandom(2 * MiB))
    return tmp_cwd


FILES = ["small.txt", "big.bin", "tree"]


def busy_aioras_threads() -> list[str]:
    """Threads other than the caller's whose stack is inside aioras right now."""
    me = threading.get_ident()
    names = {t.ident: t.name for t in threading.enumerate()}
    busy = []
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        f: FrameType | None = frame
        while f is not None:
            if f.f_code.co_filename.startswith(AIORAS_DIR):
                busy.append(f"{names.get(ident, ident)}: {f.f_code.co_name}")
                break
            f = f.f_back
    return busy


def is_proxy_task(task: asyncio.Task[object]) -> bool:
    return "FaultProxy" in getattr(task.get_coro(), "__qualname__", "")


def stray_tasks(baseline: set[asyncio.Task[object]]) -> list[str]:
    return [
        repr(t.get_coro())
        for t in asyncio.all_tasks()
        if t not in baseline and not t.done() and not is_proxy_task(t)
    ]


def partial_files(*roots: Path) -> list[str]:
    found = []
    for root in roots:
        try:
            found += [
                str(p)
                for p in root.rglob("*")
                if p.name.endswith((".aioras-part", ".tar.gz")) or p.name.startswith(".aioras-")
            ]
        except FileNotFoundError:
            # Removed while listed (a rollback going on in the loop thread): not settled yet.
            if root.exists():
                found.append(f"{root} (changing)")
    return found


async def wait_for(condition: Callable[[], bool], within: float = 10.0) -> None:
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - the proxy has no event to wait on
            await anyio.sleep(0.01)


async def assert_clean(baseline: set[asyncio.Task[object]], *roots: Path) -> None:
    """Right after cancellation returned: nothing running, nothing half-written."""
    # Two loop turns: enough for callbacks already scheduled to run, too few to do I/O.
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert stray_tasks(baseline) == []
    assert busy_aioras_threads() == []
    assert partial_files(*roots) == []


@pytest.fixture
async def areg(fault_proxy: FaultProxy) -> AsyncIterator[AsyncRegistry]:
    async with AsyncRegistry(
        fault_proxy.host, insecure=True, retry=FAST, timeout=httpx.Timeout(30.0)
    ) as reg:
        yield reg


def repo() -> str:
    return f"cancel/{uuid.uuid4().hex[:10]}"


pytestmark = pytest.mark.anyio


async def test_cancelled_push_cancels_its_upload_sessions_and_leaves_nothing(
    areg: AsyncRegistry,
    fault_proxy: FaultProxy,
    workdir: Path,
    private_tmp: Path,
) -> None:
    fault_proxy.add(Fault("stall", where="request", seconds=60), method="PUT", path="/uploads/")
    baseline = set(asyncio.all_tasks())

    with anyio.move_on_after(30) as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: areg.push(fault_proxy.reference(f"{repo()}:v1"), files=FILES))
            await wait_for(lambda: fault_proxy.faults["stall-request"] >= 2)
            tg.cancel_scope.cancel()
    assert not scope.cancelled_caught, "the push never reached its stalled uploads"

    await assert_clean(baseline, private_tmp, workdir)
    stalled = {e.target.split("?")[0] for e in fault_proxy.requests_matching("PUT", "/uploads/")}
    cancelled = {
        e.target.split("?")[0] for e in fault_proxy.requests_matching("DELETE", "/uploads/")
    }
    assert stalled <= cancelled
    assert sorted(os.listdir(private_tmp)) == []


async def test_cancelled_pull_leaves_no_partial_file(
    areg: AsyncRegistry,
    fault_proxy: FaultProxy,
    workdir: Path,
    private_tmp: Path,
    tmp_path: Path,
) -> None:
    target = fault_proxy.reference(f"{repo()}:v1")
    await areg.push(target, files=FILES)
    fault_proxy.add(
        Fault("stall", where="response", fraction=0.5, seconds=60), method="GET", path="/blobs/"
    )
    outdir = tmp_path / "out"
    baseline = set(asyncio.all_tasks())

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: areg.pull(target, outdir=str(outdir)))
        await wait_for(lambda: fault_proxy.faults["stall-response"] >= 3)
        assert partial_files(outdir), "downloads should be under way"
        tg.cancel_scope.cancel()

    await assert_clean(baseline, outdir, private_tmp)
    assert sorted(os.listdir(private_tmp)) == []


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.4])
async def test_cancellation_at_any_moment_leaves_nothing_and_the_registry_usable(
    areg: AsyncRegistry,
    fault_proxy: FaultProxy,
    workdir: Path,
    private_tmp: Path,
    tmp_path: Path,
    delay: float,
) -> None:
    # Responses trickle, so that pulls are still running when the cancellation comes.
    fault_proxy.add(Fault("throttle", rate=20 * MiB), method="GET", path="/blobs/")
    target = fault_proxy.reference(f"{repo()}:v1")
    outdir = tmp_path / "out"
    baseline = set(asyncio.all_tasks())

    with anyio.move_on_after(delay):
        await areg.push(target, files=FILES, do_chunked=delay > 0.05, chunk_size=MiB)
    await assert_clean(baseline, private_tmp, workdir)

    await areg.push(target, files=FILES)
    with anyio.move_on_after(delay):
        await areg.pull(target, outdir=str(outdir))
    await assert_clean(baseline, private_tmp, outdir)

    # The same AsyncRegistry goes on working after being cancelled.
    paths = await areg.pull(target, outdir=str(outdir))
    assert Path(paths[1]).read_bytes() == (workdir / "big.bin").read_bytes()
    assert partial_files(outdir, private_tmp) == []


# -- Ctrl-C in the synchronous facade --------------------------------------------------------


@pytest.fixture
def threaded_proxy(registry: LocalRegistry) -> Iterator[tuple[FaultProxy, Callable[..., object]]]:
    """A FaultProxy on an event loop in a thread of its own (the sync facade has no loop)."""
    assert registry.port is not None
    with start_blocking_portal() as portal:
        proxy = portal.call(FaultProxy(registry.port).start)
        yield proxy, portal.call
        portal.call(proxy.aclose)


def sigint_main_thread_when(condition: Callable[[], bool]) -> threading.Thread:
    """Deliver a real SIGINT to the main thread (as Ctrl-C does) once ``condition`` holds."""
    main = threading.main_thread().ident
    assert main is not None

    def watch() -> None:
        deadline = time.monotonic() + 30
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        signal.pthread_kill(main, signal.SIGINT)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def settle(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_ctrl_c_in_a_sync_push_and_pull_leaves_nothing(
    threaded_proxy: tuple[FaultProxy, Callable[..., object]],
    workdir: Path,
    private_tmp: Path,
    tmp_path: Path,
) -> None:
    proxy, _ = threaded_proxy
    target = proxy.reference(f"{repo()}:v1")
    outdir = tmp_path / "out"
    with Registry(proxy.host, insecure=True, retry=FAST) as reg:
        reg.push(target, files=FILES)
        proxy.add(Fault("stall", where="request", seconds=60), method="PUT", path="/uploads/")
        proxy.add(
            Fault("stall", where="response", fraction=0.5, seconds=60),
            method="GET",
            path="/blobs/",
        )

        watcher = sigint_main_thread_when(lambda: proxy.faults["stall-request"] >= 2)
        with pytest.raises(KeyboardInterrupt):
            reg.push(proxy.reference(f"{repo()}:v2"), files=FILES)
        watcher.join()

        # The loop thread finishes the cleanup on its own: sessions cancelled, archive gone.
        def push_cleaned_up() -> bool:
            stalled = {e.target for e in proxy.requests_matching("PUT", "/uploads/") if e.fault}
            deleted = {e.target for e in proxy.requests_matching("DELETE", "/uploads/")}
            return (
                {t.split("?")[0] for t in stalled} <= {t.split("?")[0] for t in deleted}
                and not os.listdir(private_tmp)
                and not busy_aioras_threads()
            )

        assert settle(push_cleaned_up), (
            os.listdir(private_tmp),
            busy_aioras_threads(),
            "\n".join(f"{e.method} {e.target[:90]} {e.status} {e.fault}" for e in proxy.log),
        )

        watcher = sigint_main_thread_when(lambda: proxy.faults["stall-response"] >= 2)
        with pytest.raises(KeyboardInterrupt):
            reg.pull(target, outdir=str(outdir))
        watcher.join()
        assert settle(lambda: not partial_files(outdir) and not busy_aioras_threads()), (
            partial_files(outdir),
            busy_aioras_threads(),
        )

        proxy.clear()
        # The facade is still usable after Ctrl-C.
        paths = reg.pull(target, outdir=str(outdir))
        assert Path(paths[1]).read_bytes() == (workdir / "big.bin").read_bytes()
