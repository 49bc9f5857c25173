"""User guide, "Creating OCI Objects": wrap a manifest around layers and a config (async).

Blobs (layers and config) go up first, then the manifest that names them, under a tag.

    python examples/guide_async/03_create_manifest.py HOST:PORT
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

import aioras
import aioras.defaults
import aioras.oci

BLOBISH = "org.dinosaur.tools.blobish"


def make_layer(blob: str) -> dict[str, Any]:
    layer = aioras.oci.NewLayer(blob, media_type=BLOBISH)
    layer["annotations"] = {aioras.defaults.annotation_title: os.path.basename(blob)}
    return layer


async def main(host: str, blobs: list[str], config_path: str) -> None:
    package = f"{host}/dinosaur/manifest:v1"

    # Creating layers and configs hashes files: do it in a worker thread.
    layers = [await anyio.to_thread.run_sync(make_layer, blob) for blob in blobs]
    conf, config_file = await anyio.to_thread.run_sync(aioras.oci.ManifestConfig, config_path)

    # Prepare a new manifest
    manifest = aioras.oci.NewManifest()
    manifest["layers"] = layers
    manifest["annotations"] = {"org.dinosaur.tool.food": "avocado"}
    manifest["config"] = conf

    async with aioras.AsyncRegistry(insecure=True) as registry:
        async with anyio.create_task_group() as tg:
            for path, descriptor in [*zip(blobs, layers, strict=True), (config_file, conf)]:
                tg.start_soon(registry.upload_blob, path, package, descriptor)
        response = await registry.upload_manifest(manifest, package)
    print(f"pushed {package} as {response.headers['docker-content-digest']}")


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "t-rex.txt").write_text("tyrannosaurus rex: big teeth, small arms\n")
        Path(tmp, "stego.txt").write_text("stegosaurus: plates on the back\n")
        Path(tmp, "config.json").write_text('{"dinosaur": "t-rex", "diet": "avocado"}\n')
        blobs = [str(Path(tmp, "t-rex.txt")), str(Path(tmp, "stego.txt"))]
        anyio.run(main, host, blobs, str(Path(tmp, "config.json")))
