"""Soak: 50 artifacts pushed and pulled through a proxy faulting about 10% of requests.

Artifacts have several layers each: small files, a directory in some, a layer over 10 MiB in
some, and some are pushed chunked. Every request the proxy sees has a 10% chance (seeded)
of one fault: connection resets before, during and after the request, 500/502/503 (before
or after the registry did the work), 429 with ``Retry-After``, stalls longer than the
client's timeout, truncated bodies and flipped bytes in either direction. Every artifact
must land and come back byte-identical, and no partial or temporary file may remain.

The figures (requests, faults by kind, faults survived, artifacts verified, data lost) are
printed at the end and written to ``soak-figures.json`` in the test's temporary directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import anyio
import httpx
import pytest

from aioras import RetryPolicy
from aioras.registry import AsyncRegistry
from support.faultproxy import Fault, FaultProxy

pytestmark = pytest.mark.anyio

ARTIFACTS = 50
CONCURRENCY = 8
FAULT_RATE = 0.10
SEED = 4_2024
MiB = 1 << 20

FAULTS = [
    Fault("reset", where="request", fraction=0.5),
    Fault("reset", where="request", fraction=0.3, forward_partial=True),
    Fault("reset", where="headers"),
    Fault("reset", where="response", fraction=0.4),
    Fault("status", status=500),
    Fault("status", status=502),
    Fault("status", status=503, forward=True),
    Fault("status", status=429, retry_after="1", body=b"slow down"),
    Fault("stall", where="headers", seconds=30),
    Fault("stall", where="response", fraction=0.6, seconds=30),
    Fault("truncate", where="response", fraction=0.5),
    Fault("corrupt", where="response", fraction=0.3),
    Fault("corrupt", where="request", fraction=0.8),
]

POLICY = RetryPolicy(
    attempts=6, backoff=0.05, max_backoff=0.5, max_retry_after=1.0, resumes=8, refetches=3
)
TIMEOUT = httpx.Timeout(3.0)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fd:
        while chunk := fd.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def make_artifact(root: Path, i: int) -> tuple[list[str], dict[str, str]]:
    """Write artifact ``i``'s files under ``root/a<i>``; return push paths and expected hashes."""
    folder = root / f"a{i}"
    folder.mkdir()
    expected: dict[str, str] = {}
    files: list[str] = []
    for n in range(3):
        path = folder / f"part{n}.bin"
        path.write_bytes(os.urandom(1024 + (i * 7919 + n * 104729) % (300 * 1024)))
        files.append(str(path.relative_to(root)))
        expected[path.name] = sha256(path)
    if i % 10 == 3:  # five artifacts carry a layer over 10 MiB
        big = folder / "big.bin"
        big.write_bytes(os.urandom(10 * MiB + 4096 * i))
        files.append(str(big.relative_to(root)))
        expected[big.name] = sha256(big)
    if i % 5 == 1:  # ten carry a directory, packed and unpacked
        tree = folder / "tree"
        (tree / "nested").mkdir(parents=True)
        for name, size in (("x.txt", 100 + i), ("nested/y.bin", 50_000 + i)):
            (tree / name).write_bytes(os.urandom(size))
            expected[f"tree/{name}"] = sha256(tree / name)
        files.append(str(tree.relative_to(root)))
    return files, expected


async def test_soak_50_artifacts_through_10_percent_faults(
    fault_proxy: FaultProxy,
    tmp_cwd: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    systmp = tmp_path_factory.mktemp("systmp")
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))
    outroot = tmp_path_factory.mktemp("pulled")
    artifacts = {i: make_artifact(tmp_cwd, i) for i in range(ARTIFACTS)}
    name = f"soak/{uuid.uuid4().hex[:8]}"
    fault_proxy.rng.seed(SEED)
    fault_proxy.add(*FAULTS, probability=FAULT_RATE)
    limiter = anyio.CapacityLimiter(CONCURRENCY)
    started = time.monotonic()

    async with AsyncRegistry(fault_proxy.host, insecure=True, retry=POLICY, timeout=TIMEOUT) as reg:

        async def push(i: int) -> None:
            async with limiter:
                await reg.push(
                    f"{fault_proxy.host}/{name}:a{i}",
                    files=artifacts[i][0],
                    do_chunked=i % 3 == 0,
                    chunk_size=MiB if i % 2 else 256 * 1024,
                )

        async def pull(i: int) -> None:
            async with limiter:
                await reg.pull(f"{fault_proxy.host}/{name}:a{i}", outdir=str(outroot / f"a{i}"))

        with anyio.fail_after(600):
            async with anyio.create_task_group() as tg:
                for i in artifacts:
                    tg.start_soon(push, i)
            async with anyio.create_task_group() as tg:
                for i in artifacts:
                    tg.start_soon(pull, i)

    verified = lost = 0
    for i, (_, expected) in artifacts.items():
        out = outroot / f"a{i}"
        got = {str(p.relative_to(out)): sha256(p) for p in out.rglob("*") if p.is_file()}
        if got == expected:
            verified += 1
        else:
            lost += 1
    partial = [
        str(p)
        for root in (outroot, tmp_cwd, systmp)
        for p in root.rglob("*")
        if p.name.startswith(".") or p.name.endswith((".aioras-part", ".tar.gz"))
    ]
    figures = {
        "artifacts": ARTIFACTS,
        "artifacts_verified": verified,
        "data_lost": lost,
        "partial_files": len(partial),
        "requests": fault_proxy.requests,
        "faults_injected": fault_proxy.injected,
        "faults_by_kind": dict(sorted(fault_proxy.faults.items())),
        "faults_survived": fault_proxy.injected if lost == 0 else None,
        "bytes_of_artifacts": sum(p.stat().st_size for p in tmp_cwd.rglob("*") if p.is_file()),
        "seconds": round(time.monotonic() - started, 1),
    }
    (tmp_path_factory.getbasetemp() / "soak-figures.json").write_text(json.dumps(figures))
    print("\nsoak figures:", json.dumps(figures, indent=1))

    assert lost == 0
    assert verified == ARTIFACTS
    assert partial == []
    # The proxy really did fault about a tenth of the traffic, in most of its ways (which
    # kinds land depends on the seeded draw: not every kind fits every request).
    assert fault_proxy.injected >= 0.05 * fault_proxy.requests
    assert len([kind for kind, n in fault_proxy.faults.items() if n]) >= 10
