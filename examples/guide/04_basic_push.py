"""User guide, "Push Interactions": the basic push of one file with ``OrasClient``.

We are assuming an artifact.txt in the present working directory (the script makes one).

    python examples/guide/04_basic_push.py HOST:PORT
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import aioras.client
import aioras.utils


def main(host: str) -> None:
    client = aioras.client.OrasClient(insecure=True)
    response = client.push(files=["artifact.txt"], target=f"{host}/dinosaur/artifact:v1")
    print(response)  # <Response [201 Created]>


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp, aioras.utils.workdir(tmp):
        Path("artifact.txt").write_text("Hello, dinosaur!\n")
        main(host)
