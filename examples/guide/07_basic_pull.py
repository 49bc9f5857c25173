"""User guide, "Pull Interactions": the basic pull with ``OrasClient``.

The artifact is pushed first (as in 04_basic_push.py), then pulled. Without ``outdir`` the
files land in a new temporary directory; ``pull`` returns their paths.

    python examples/guide/07_basic_pull.py HOST:PORT
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
    client.push(files=["artifact.txt"], target=f"{host}/dinosaur/artifact:v1")

    res = client.pull(target=f"{host}/dinosaur/artifact:v1")
    print(res)  # ['/tmp/oras-tmp.e5itvzfi/artifact.txt']


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp, aioras.utils.workdir(tmp):
        Path("artifact.txt").write_text("Hello, dinosaur!\n")
        main(host)
