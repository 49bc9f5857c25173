"""User guide, "Create a Client Class": subclass the provider, or the client for login.

``aioras.provider.Registry`` is the synchronous registry (push, pull, manifests, blobs,
tags); ``aioras.client.OrasClient`` wraps one and adds login and logout. Both subclass as
in oras-py.

    python examples/guide/00_client_class.py HOST:PORT
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import aioras.client
import aioras.provider
import aioras.utils


class MyProvider(aioras.provider.Registry):
    pass


class MyClient(aioras.client.OrasClient):
    pass


def main(host: str) -> None:
    # insecure=True: the example registry speaks plain http.
    provider = MyProvider(insecure=True)
    provider.push(f"{host}/dinosaur/provider:v1", files=["artifact.txt"])
    print(provider.get_tags(f"{host}/dinosaur/provider"))

    client = MyClient(insecure=True)
    client.push(files=["artifact.txt"], target=f"{host}/dinosaur/client:v1")
    print(client.get_tags(f"{host}/dinosaur/client"))


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp, aioras.utils.workdir(tmp):
        Path("artifact.txt").write_text("Hello, dinosaur!\n")
        main(host)
