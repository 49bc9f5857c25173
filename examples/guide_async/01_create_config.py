"""User guide, "Creating OCI Objects": a manifest config, empty or from a file (async).

``ManifestConfig()`` describes the empty config. oras-py described it as size 0 backed by
``/dev/null``; aioras describes the bytes ``{}`` (size 2) and returns a packaged file holding
exactly them, so uploading the path delivers what the descriptor promises. With a path, the
descriptor describes that file. A config is a blob: upload it before the manifest naming it.

    python examples/guide_async/01_create_config.py HOST:PORT
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import anyio

import aioras
import aioras.oci


async def main(host: str, config_path: str) -> None:
    conf, config_file = aioras.oci.ManifestConfig()
    print(json.dumps(conf, indent=4), config_file, sep="\n")

    # Hashing reads the whole file: keep it off the event loop.
    custom_conf, custom_file = await anyio.to_thread.run_sync(
        aioras.oci.ManifestConfig, config_path
    )
    print(json.dumps(custom_conf, indent=4), custom_file, sep="\n")

    package = f"{host}/dinosaur/config"
    async with aioras.AsyncRegistry(insecure=True) as registry:
        for descriptor, path in ((conf, config_file), (custom_conf, custom_file)):
            await registry.upload_blob(path, package, descriptor)
            print(f"uploaded {descriptor['digest']} to {package}")


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "config.json")
        config.write_text('{"dinosaur": "t-rex", "diet": "avocado"}\n')
        anyio.run(main, host, str(config))
