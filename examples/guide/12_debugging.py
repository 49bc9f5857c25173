"""User guide, "Debugging": oras-py style console logging at debug level.

``setup_logger`` sends aioras's log records to standard error (coloured on a terminal);
with ``debug=True`` the library's own debug lines show as well, here for a push.

    python examples/guide/12_debugging.py HOST:PORT
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import aioras.client
import aioras.utils
from aioras.logger import logger, setup_logger


def main(host: str) -> None:
    setup_logger(quiet=False, debug=True)
    logger.debug("This is my debug message!")

    # More verbose output should appear.
    client = aioras.client.OrasClient(insecure=True)
    client.push(files=["artifact.txt"], target=f"{host}/dinosaur/debug:v1")


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp, aioras.utils.workdir(tmp):
        Path("artifact.txt").write_text("Hello, dinosaur!\n")
        main(host)
