"""Calls uploading one blob into one repository at once share one check and one upload.

Scripted with MockTransport: the registry's existence check is held long enough for every
call to arrive while it is still unanswered, which a real registry will not do on demand.
"""

from __future__ import annotations

import collections
import hashlib
import os
from pathlib import Path

import anyio
import httpx
import pytest

from aioras.registry import AsyncRegistry

pytestmark = pytest.mark.anyio

CALLS = 5


class SlowCheckRegistry:
    """A registry whose HEAD answers after ``delay`` seconds: ``present`` says what."""

    def __init__(self, *, present: bool, delay: float = 0.3) -> None:
        self.present = present
        self.delay = delay
        self.requests: collections.Counter[str] = collections.Counter()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests[request.method] += 1
        if request.method == "HEAD":
            await anyio.sleep(self.delay)
            return httpx.Response(200 if self.present else 404)
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "/v2/a/b/blobs/uploads/u1?s=1"})
        assert request.method == "PUT"
        await request.aread()
        return httpx.Response(201)


async def upload_at_once(registry: SlowCheckRegistry, tmp_path: Path) -> list[int]:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(4096))
    layer = {"digest": "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest(), "size": 4096}
    statuses: list[int] = []
    async with AsyncRegistry(
        "r.example", insecure=True, transport=httpx.MockTransport(registry)
    ) as reg:

        async def upload() -> None:
            response = await reg.upload_blob(str(blob), "r.example/a/b", layer)
            statuses.append(response.status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(CALLS):
                tg.start_soon(upload)
    return statuses


async def test_calls_arriving_during_the_check_wait_for_it_and_share_one_upload(
    tmp_path: Path,
) -> None:
    registry = SlowCheckRegistry(present=False)
    statuses = await upload_at_once(registry, tmp_path)
    assert registry.requests == {"HEAD": 1, "POST": 1, "PUT": 1}
    assert statuses == [201] * CALLS


async def test_a_blob_found_by_the_shared_check_is_not_asked_for_again(tmp_path: Path) -> None:
    registry = SlowCheckRegistry(present=True)
    statuses = await upload_at_once(registry, tmp_path)
    assert registry.requests == {"HEAD": 1}
    assert statuses == [200] * CALLS
