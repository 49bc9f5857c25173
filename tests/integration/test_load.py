"""Concurrency under load: one AsyncRegistry, 200 artifacts at once, transfers bounded.

Two independent witnesses check the bound: the registry object itself (a subclass counting
the upload and download calls that run under its transfer limiter) and the fault proxy on
the wire (requests that move blob bytes, in flight at the same moment).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aioras import RetryPolicy
from aioras.registry import AsyncRegistry
from support.faultproxy import FaultProxy

pytestmark = pytest.mark.anyio

ARTIFACTS = 200
LIMIT = 6


class CountingRegistry(AsyncRegistry):
    """An AsyncRegistry that records how many blob transfers run at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.active = 0
        self.peak = 0
        self.transfers = 0

    def _enter(self) -> None:
        self.active += 1
        self.transfers += 1
        self.peak = max(self.peak, self.active)

    async def put_upload(self, *args: Any, **kwargs: Any) -> httpx.Response:
        self._enter()
        try:
            return await super().put_upload(*args, **kwargs)
        finally:
            self.active -= 1

    async def chunked_upload(self, *args: Any, **kwargs: Any) -> httpx.Response:
        self._enter()
        try:
            return await super().chunked_upload(*args, **kwargs)
        finally:
            self.active -= 1


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_200_artifacts_at_once_stay_within_the_transfer_limit_and_all_land(
    fault_proxy: FaultProxy, tmp_cwd: Path, tmp_path: Path
) -> None:
    fault_proxy.track("uploads", method="PUT|PATCH", path=r"/blobs/uploads/")
    fault_proxy.track("downloads", method="GET", path=r"/blobs/sha256:")
    name = f"load/{uuid.uuid4().hex[:8]}"
    sources: dict[int, list[Path]] = {}
    for i in range(ARTIFACTS):
        folder = tmp_cwd / f"a{i}"
        folder.mkdir()
        one, two = folder / "one.bin", folder / "two.txt"
        one.write_bytes(os.urandom(1000 + 97 * i))
        two.write_text(f"artifact {i}\n" * (i + 1))
        sources[i] = [one, two]

    reg = CountingRegistry(
        fault_proxy.host,
        insecure=True,
        max_transfers=LIMIT,
        retry=RetryPolicy(backoff=0.01),
    )
    async with reg:

        async def push(i: int) -> None:
            await reg.push(
                f"{fault_proxy.host}/{name}:v{i}",
                files=[f"a{i}/one.bin", f"a{i}/two.txt"],
                do_chunked=i % 4 == 0,
                chunk_size=1024,
            )

        async def pull(i: int) -> None:
            paths = await reg.pull(
                f"{fault_proxy.host}/{name}:v{i}", outdir=str(tmp_path / "out" / f"a{i}")
            )
            assert [sha256(Path(p)) for p in paths] == [sha256(s) for s in sources[i]]

        with anyio.fail_after(240):
            async with anyio.create_task_group() as tg:
                for i in range(ARTIFACTS):
                    tg.start_soon(push, i)
            pushed_peak = reg.peak
            async with anyio.create_task_group() as tg:
                for i in range(ARTIFACTS):
                    tg.start_soon(pull, i)

        tags = await reg.get_tags(f"{fault_proxy.host}/{name}")

    assert len(tags) == ARTIFACTS
    # Every distinct blob was uploaded (the shared empty config may race and go up a few times).
    assert reg.transfers >= 2 * ARTIFACTS + 1
    assert 2 <= pushed_peak <= LIMIT
    assert 2 <= fault_proxy.peak["uploads"] <= LIMIT
    assert 2 <= fault_proxy.peak["downloads"] <= LIMIT
    assert len(fault_proxy.requests_matching("GET", r"/blobs/sha256:")) == 2 * ARTIFACTS
    leftovers = [p for p in (tmp_path / "out").rglob("*") if p.name.startswith(".")]
    assert leftovers == []
