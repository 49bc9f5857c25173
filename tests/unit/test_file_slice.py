"""Upload file reads go through aiofiles: one worker-thread call to open, none per chunk.

And a cancelled read is waited for, so no executor thread touches the file afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from aioras._files import blobio
from aioras._files.blobio import FileSlice
from support.hops import count_thread_hops

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_file_slice_reads_through_aiofiles_after_one_thread_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    (tmp_path / "f").write_bytes(data)
    hops = count_thread_hops(monkeypatch)
    got = b"".join([chunk async for chunk in FileSlice(tmp_path / "f", offset=5)])
    assert got == data[5:]
    assert hops[0] == 1  # the open; the five reads went through aiofiles


async def test_a_cancelled_file_slice_read_is_finished_before_the_file_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "f").write_bytes(os.urandom(1024 * 1024))
    stream = FileSlice(tmp_path / "f")
    reading = anyio.Event()
    release = anyio.Event()
    wrap = blobio.aiofiles.threadpool.wrap

    class SlowRead:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        async def read(self, size: int) -> bytes:
            reading.set()
            await release.wait()  # the read is "in its executor thread"
            return await self.inner.read(size)  # type: ignore[attr-defined,no-any-return]

    monkeypatch.setattr(blobio.aiofiles.threadpool, "wrap", lambda fd: SlowRead(wrap(fd)))
    finished: list[bytes] = []
    scopes: list[anyio.CancelScope] = []

    async def consume() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            finished.append(await stream.__anext__())

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await reading.wait()
        scopes[0].cancel()
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        # Cancelled, yet the read is still awaited: the file stays open until it ends.
        assert stream._fd is not None
        assert not stream._fd.closed
        assert finished == []
        release.set()
    assert finished == []  # the cancellation took effect once the read was done
    await stream.aclose()
    assert stream._fd is None
