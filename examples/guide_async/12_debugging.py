"""User guide, "Debugging": oras-py style console logging at debug level (async).

``setup_logger`` sends aioras's log records to standard error (coloured on a terminal);
with ``debug=True`` the library's own debug lines show as well, here for a push. Configure
``logging`` yourself instead if your application already does: aioras only logs to
``logging.getLogger("aioras...")``.

    python examples/guide_async/12_debugging.py HOST:PORT
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import anyio

import aioras
import aioras.utils
from aioras.logger import logger, setup_logger


async def main(host: str) -> None:
    setup_logger(quiet=False, debug=True)
    logger.debug("This is my debug message!")

    # More verbose output should appear.
    async with aioras.AsyncRegistry(insecure=True) as registry:
        await registry.push(f"{host}/dinosaur/debug:v1", files=["artifact.txt"])


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp, aioras.utils.workdir(tmp):
        Path("artifact.txt").write_text("Hello, dinosaur!\n")
        anyio.run(main, host)
