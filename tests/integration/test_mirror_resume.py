"""mirror: a run killed midway (SIGKILL) resumes from its state file without re-sending."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from aioras import AsyncRegistry
from aioras.digest import digest_bytes
from aioras.operations.mirror import IN_STATE, MirrorState
from aioras.testing import LocalRegistry
from support.faultproxy import FaultProxy
from support.mirrortools import digests, populate, unique

pytestmark = pytest.mark.anyio

CHILD = """
import json, sys, time
from aioras import Registry
from aioras.operations.mirror import ArtifactEvent

pairs = [tuple(p) for p in json.loads(sys.argv[1])]

def progress(event):
    if isinstance(event, ArtifactEvent):
        print("settled", event.destination, flush=True)
        time.sleep(0.4)  # slow enough to be killed between artifacts

with Registry(insecure=True) as reg:
    reg.mirror(pairs, concurrency=1, state=sys.argv[2], progress=progress)
print("finished", flush=True)
"""


async def test_killed_mirror_resumes_from_state_without_resending_what_landed(
    tmp_path: Path, registry_factory: Callable[..., LocalRegistry]
) -> None:
    source, target = registry_factory(), registry_factory()
    assert target.port is not None
    name = unique("resume")
    tags = [f"t{i}" for i in range(8)]
    async with AsyncRegistry(insecure=True) as reg:
        made = await populate(reg, f"{source.host}/{name}", tags)
    state = tmp_path / "state.json"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    async with FaultProxy(target.port) as proxy, AsyncRegistry(insecure=True) as reg:
        # Both runs reach the destination through the proxy, which counts what is sent.
        pairs = [(f"{source.host}/{name}:{t}", f"{proxy.host}/{name}:{t}") for t in tags]
        child = await anyio.open_process(
            [sys.executable, str(script), json.dumps(pairs), str(state)], env=env
        )
        async with child:
            assert child.stdout is not None
            lines = BufferedByteReceiveStream(child.stdout)
            settled = [await lines.receive_until(b"\n", 4096) for _ in range(3)]
            child.send_signal(signal.SIGKILL)
            await child.wait()
        assert all(line.startswith(b"settled") for line in settled)
        assert child.returncode == -signal.SIGKILL
        landed = MirrorState.load(state).done
        assert 3 <= len(landed) < len(tags)
        done_tags = {key.rsplit(":", 1)[1] for key in landed}
        proxy.log.clear()
        report = await reg.mirror(pairs, concurrency=2, state=state)
        uploaded = {
            e.target.split("digest=", 1)[1].replace("%3A", ":")
            for e in proxy.requests_matching("PUT", "/blobs/uploads/")
        }
        manifests = [e.target for e in proxy.requests_matching("PUT", "/manifests/")]
    assert {s.source.rsplit(":", 1)[1] for s in report.skipped if s.reason == IN_STATE} == (
        done_tags
    )
    for tag in done_tags:
        own = f"{source.host}/{name}:{tag}".encode() * 8
        config = json.dumps({"tag": tag}).encode()
        assert digest_bytes(own) not in uploaded
        assert digest_bytes(config) not in uploaded
        assert not [m for m in manifests if m.endswith(f"/manifests/{tag}")]
    async with AsyncRegistry(insecure=True) as reg:
        assert await digests(reg, f"{target.host}/{name}", tags) == made
    assert json.loads(state.read_text())["complete"] is True
