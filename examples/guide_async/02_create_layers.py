"""User guide, "Creating OCI Objects": layers with a custom media type and a title (async).

Each blob becomes a layer descriptor; the title annotation tells pulling clients which
relative path to write the layer to. The blobs are then uploaded, concurrently, ready for a
manifest to list them (see 03_create_manifest.py).

    python examples/guide_async/02_create_layers.py HOST:PORT
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

import aioras
import aioras.defaults
import aioras.oci


def make_layer(blob: str) -> dict[str, Any]:
    layer = aioras.oci.NewLayer(blob, is_dir=False, media_type="org.dinosaur.tools.blobish")
    # Pulling clients write the layer to this relative path. A basename assumes a flat
    # directory of files; any relative path works.
    layer["annotations"] = {aioras.defaults.annotation_title: os.path.basename(blob)}
    return layer


async def main(host: str, blobs: list[str]) -> None:
    # NewLayer hashes the file: a worker thread keeps the event loop free meanwhile.
    layers = [await anyio.to_thread.run_sync(make_layer, blob) for blob in blobs]
    print(json.dumps(layers, indent=4))

    package = f"{host}/dinosaur/layers"
    async with aioras.AsyncRegistry(insecure=True) as registry, anyio.create_task_group() as tg:
        for blob, layer in zip(blobs, layers, strict=True):
            tg.start_soon(registry.upload_blob, blob, package, layer)
    print(f"uploaded {len(layers)} blobs to {package}")


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "t-rex.txt").write_text("tyrannosaurus rex: big teeth, small arms\n")
        Path(tmp, "stego.txt").write_text("stegosaurus: plates on the back\n")
        anyio.run(main, host, [str(Path(tmp, "t-rex.txt")), str(Path(tmp, "stego.txt"))])
