"""User guide, "Creating OCI Objects": layers with a custom media type and a title.

Each blob becomes a layer descriptor; the title annotation tells pulling clients which
relative path to write the layer to. The blobs are then uploaded, ready for a manifest to
list them (see 03_create_manifest.py).

    python examples/guide/02_create_layers.py HOST:PORT
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import aioras.defaults
import aioras.oci
import aioras.provider


def main(host: str, blobs: list[str]) -> None:
    layers = []
    for blob in blobs:
        layer = aioras.oci.NewLayer(blob, is_dir=False, media_type="org.dinosaur.tools.blobish")

        # This is important so oras clients can derive the relative name you want to download to
        # Using basename assumes a flat directory of files - it doesn't have to be.
        # You can add more annotations here!
        layer["annotations"] = {aioras.defaults.annotation_title: os.path.basename(blob)}
        layers.append(layer)
    print(json.dumps(layers, indent=4))

    reg = aioras.provider.Registry(insecure=True)
    for blob, layer in zip(blobs, layers, strict=True):
        reg.upload_blob(blob, f"{host}/dinosaur/layers", layer)
    print(f"uploaded {len(layers)} blobs to {host}/dinosaur/layers")


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "t-rex.txt").write_text("tyrannosaurus rex: big teeth, small arms\n")
        Path(tmp, "stego.txt").write_text("stegosaurus: plates on the back\n")
        main(host, [str(Path(tmp, "t-rex.txt")), str(Path(tmp, "stego.txt"))])
