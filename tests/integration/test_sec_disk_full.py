"""A full disk, as the kernel makes it: a short write, then an error; never a "verified" blob.

Each scenario runs in a child process whose file size limit (``RLIMIT_FSIZE``) is set below
the blob, with ``SIGXFSZ`` ignored: a write reaching the limit is cut short, and the next one
fails with ``EFBIG``, the same shape as ``ENOSPC`` on a disk that fills up. No root, no
tmpfs, no mock: the writes are the library's own, the refusals the kernel's. The child
reports the exception it got; the parent looks at what was left on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import aioras
from aioras import OCILayout, defaults
from aioras.descriptor import Descriptor
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry
from support.rawartifacts import fresh_reference, plain, push_layers

pytestmark = pytest.mark.anyio

# Run in the child: limit file sizes, ignore SIGXFSZ (else the kernel kills the process at
# the limit rather than failing the write), then await the scenario and report its error.
CHILD = """
import json, resource, signal, sys
import anyio
from aioras.exceptions import OrasError

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
args = json.loads(sys.argv[2])

{body}

try:
    anyio.run(main)
except BaseException as error:
    print(json.dumps({{
        "error": type(error).__name__,
        "typed": isinstance(error, OrasError),
        "errno": getattr(error, "errno", None),
        "message": str(error),
    }}))
else:
    print(json.dumps({{"error": None}}))
"""

PULL = """
from aioras.registry import AsyncRegistry

async def main():
    async with AsyncRegistry(args["host"], insecure=True, **args.get("options", {})) as reg:
        await reg.pull(args["target"], outdir=args["outdir"])
"""

LAYOUT_PUSH = """
from aioras import OCILayout

async def one_chunk():
    yield bytes.fromhex(args["data"]) if "data" in args else b"\\x5a" * args["size"]

async def main():
    await OCILayout(args["root"]).push(args["descriptor"], one_chunk())
"""

SAVE_TAR = """
from aioras import OCILayout

async def main():
    await OCILayout(args["root"]).save_tar(args["out"])
"""


async def run_limited(body: str, limit: int, args: dict[str, Any]) -> dict[str, Any]:
    """Run ``main()`` of ``body`` in a child limited to files of ``limit`` bytes."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(aioras.__file__).parent.parent), os.environ.get("PYTHONPATH", "")]
        ),
        # A .pyc written under the limit would be cut short: write none.
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    script = CHILD.format(body=body)
    done = await anyio.run_process(
        [sys.executable, "-c", script, str(limit), json.dumps(args)], env=env, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def tree(root: Path) -> dict[str, bytes | None]:
    """Every entry under ``root``, hidden ones included: files with their bytes."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def describe(data: bytes, media_type: str = defaults.default_blob_media_type) -> Descriptor:
    return {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }


async def test_pull_of_a_layer_past_the_space_left_fails_typed_and_keeps_the_old_files(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_path: Path
) -> None:
    # The case: a 6144-byte layer with 4096 bytes of room, arriving in one write.
    target = fresh_reference(registry, "diskfull/pull")
    big = os.urandom(6144)
    await push_layers(areg, target, [plain("small.txt", b"new small"), plain("big.bin", big)])
    out = tmp_path / "out"
    out.mkdir()
    (out / "small.txt").write_bytes(b"old small")
    (out / "big.bin").write_bytes(b"old big")
    before = tree(out)

    result = await run_limited(
        PULL, 4096, {"host": registry.host, "target": target, "outdir": str(out)}
    )

    assert result["error"] == "StorageError", result
    assert result["typed"]
    assert tree(out) == before  # nothing new, nothing half-written, the old files put back


@pytest.mark.parametrize(
    "options",
    [{}, {"range_threshold": 256 * 1024, "download_ranges": 4}],
    ids=["one-stream", "ranges"],
)
async def test_pull_of_a_large_layer_past_the_space_left_fails_typed_and_leaves_nothing(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_path: Path, options: dict[str, int]
) -> None:
    # One stream: many writes, the one reaching the limit cut short, the next refused.
    # Ranges: written at their offsets into a file sized up front, which the limit refuses.
    target = fresh_reference(registry, "diskfull/large")
    await push_layers(areg, target, [plain("big.bin", os.urandom(3 * (1 << 20) + 5))])
    out = tmp_path / "out"
    out.mkdir()
    args = {"host": registry.host, "target": target, "outdir": str(out), "options": options}

    result = await run_limited(PULL, 1 << 20, args)

    assert tree(out) == {}
    assert result["error"] == "StorageError", result


async def test_layout_push_of_a_blob_past_the_space_left_commits_nothing(tmp_path: Path) -> None:
    # The case: a 4 MiB blob handed over as one chunk with 3 MiB of room.
    root = tmp_path / "layout"
    size = 4 * (1 << 20)
    descriptor = describe(b"\x5a" * size)

    result = await run_limited(
        LAYOUT_PUSH, 3 * (1 << 20), {"root": str(root), "descriptor": descriptor, "size": size}
    )

    blobs = root / "blobs" / "sha256"
    assert sorted(p.name for p in blobs.iterdir()) == []  # no blob, no temporary file
    assert not await OCILayout(root).exists(descriptor)
    assert result["error"] == "StorageError", result
    assert result["typed"]


@pytest.mark.parametrize("limit", [1024, 256 * 1024], ids=["in-the-head", "in-a-blob"])
async def test_save_tar_past_the_space_left_leaves_no_part_file(tmp_path: Path, limit: int) -> None:
    # In the head, the refused bytes were still buffered when the file was closed: the close
    # failed again, and the part file used to stay.
    root = tmp_path / "layout"
    layout = OCILayout(root)
    data = os.urandom(1 << 20)
    descriptor = describe(data)
    await layout.push(descriptor, _one(data))
    previous = tmp_path / "out.tar"
    previous.write_bytes(b"previous archive")

    result = await run_limited(SAVE_TAR, limit, {"root": str(root), "out": str(previous)})

    assert sorted(p.name for p in tmp_path.iterdir()) == ["layout", "out.tar"]  # no part file
    assert previous.read_bytes() == b"previous archive"
    assert result["error"] == "StorageError", result
    assert result["typed"]


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data
