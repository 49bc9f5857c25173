"""A push cancelled while an upload session is being opened leaves no session behind.

The registry's ``_uploads`` directory of the repository is the witness: every session it
opened must be gone once the cancelled push returned. The fault proxy cancels the push at
the worst moment: the registry has opened the session (its answer, with the session's
``Location``, is on its way) and the client has not read that answer yet.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import anyio
import httpx
import pytest

from aioras import RetryPolicy
from aioras.exceptions import RegistryError
from aioras.remote.registry import AsyncRegistry
from aioras.testing import LocalRegistry
from support.faultproxy import Fault, FaultProxy, Head

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(backoff=0.01, max_backoff=0.05)
UPLOADS = "/blobs/uploads/"


def open_sessions(registry: LocalRegistry, name: str) -> list[str]:
    """The sessions the registry holds for ``name``: those with their ``startedat`` mark.

    (A cancelled session's directory may stay, holding only ``hashstates``: the CNCF
    registry writes that back after the DELETE. Without ``startedat`` it is unknown to the
    API and nothing can resume it.)
    """
    uploads = registry.storage_dir / "docker/registry/v2/repositories" / name / "_uploads"
    return sorted(p.parent.name for p in uploads.glob("*/startedat"))


async def test_push_cancelled_while_a_session_opens_cancels_that_session(
    registry: LocalRegistry, fault_proxy: FaultProxy, tmp_cwd: Path
) -> None:
    name = f"sessions/{uuid.uuid4().hex[:10]}"
    (tmp_cwd / "a.bin").write_bytes(os.urandom(64 * 1024))
    cancel = anyio.CancelScope()

    def cancel_on_answer(request: Head, response: Head, body: bytes) -> tuple[Head, bytes]:
        cancel.cancel()  # the registry opened the session; the client has not heard yet
        return response, body

    fault_proxy.add(Fault("transform", on_response=cancel_on_answer), method="POST", path=UPLOADS)
    async with AsyncRegistry(
        fault_proxy.host, insecure=True, retry=FAST, timeout=httpx.Timeout(30.0)
    ) as areg:
        with cancel:
            await areg.push(f"{fault_proxy.host}/{name}:v1", files=["a.bin"])
    assert cancel.cancelled_caught, "the push was cancelled"
    posts = fault_proxy.requests_matching("POST", UPLOADS)
    assert posts, "a session was opened"
    assert len(fault_proxy.requests_matching("DELETE", UPLOADS)) == len(posts)
    assert open_sessions(registry, name) == []


async def test_push_failing_in_its_upload_cancels_the_session(
    registry: LocalRegistry, fault_proxy: FaultProxy, tmp_cwd: Path
) -> None:
    name = f"sessions/{uuid.uuid4().hex[:10]}"
    (tmp_cwd / "a.bin").write_bytes(os.urandom(64 * 1024))
    # The blob's PUT refused for good (not a code that a new session would cure).
    fault_proxy.add(Fault("status", status=400, body=b"refused"), method="PUT", path=UPLOADS)
    async with AsyncRegistry(
        fault_proxy.host, insecure=True, retry=FAST, timeout=httpx.Timeout(30.0)
    ) as areg:
        with pytest.raises(RegistryError):
            await areg.push(f"{fault_proxy.host}/{name}:v1", files=["a.bin"])
    posts = fault_proxy.requests_matching("POST", UPLOADS)
    assert posts
    assert len(fault_proxy.requests_matching("DELETE", UPLOADS)) == len(posts)
    assert open_sessions(registry, name) == []
