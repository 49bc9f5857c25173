"""User guide, "Create a Client Class": subclass the provider, or the client for login (async).

``aioras.provider.AsyncRegistry`` is the async registry (push, pull, manifests, blobs,
tags); ``aioras.client.AsyncOrasClient`` wraps one and adds login and logout. Both are
async context managers that close their connection pool on exit.

    python examples/guide_async/00_client_class.py HOST:PORT
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import anyio

import aioras.client
import aioras.provider
import aioras.utils


class MyProvider(aioras.provider.AsyncRegistry):
    pass


class MyClient(aioras.client.AsyncOrasClient):
    pass


async def main(host: str) -> None:
    # insecure=True: the example registry speaks plain http.
    async with MyProvider(insecure=True) as provider:
        await provider.push(f"{host}/dinosaur/provider:v1", files=["artifact.txt"])
        print(await provider.get_tags(f"{host}/dinosaur/provider"))

    async with MyClient(insecure=True) as client:
        await client.push(files=["artifact.txt"], target=f"{host}/dinosaur/client:v1")
        print(await client.get_tags(f"{host}/dinosaur/client"))


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp, aioras.utils.workdir(tmp):
        Path("artifact.txt").write_text("Hello, dinosaur!\n")
        anyio.run(main, host)
