"""User guide, "Pull Interactions": the basic pull (async).

The artifact is pushed first (as in 04_basic_push.py), then pulled. Without ``outdir`` the
files land in a new temporary directory; ``pull`` returns their paths. Layers download
concurrently and each is verified against its digest before it is moved into place.

    python examples/guide_async/07_basic_pull.py HOST:PORT
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import anyio

import aioras.client
import aioras.utils


async def main(host: str) -> None:
    target = f"{host}/dinosaur/artifact:v1"
    async with aioras.client.AsyncOrasClient(insecure=True) as client:
        await client.push(files=["artifact.txt"], target=target)
        res = await client.pull(target=target)
    print(res)  # ['/tmp/oras-tmp.e5itvzfi/artifact.txt']


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp, aioras.utils.workdir(tmp):
        Path("artifact.txt").write_text("Hello, dinosaur!\n")
        anyio.run(main, host)
