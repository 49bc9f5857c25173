"""User guide, "Creating OCI Objects": wrap a manifest around layers and a config.

Blobs (layers and config) go up first, then the manifest that names them, under a tag:
``upload_manifest(manifest, package)`` with ``package`` the complete reference.

    python examples/guide/03_create_manifest.py HOST:PORT
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import aioras.defaults
import aioras.oci
import aioras.provider

BLOBISH = "org.dinosaur.tools.blobish"


def main(host: str, blobs: list[str], config_path: str) -> None:
    layers = []
    for blob in blobs:
        layer = aioras.oci.NewLayer(blob, is_dir=False, media_type=BLOBISH)
        layer["annotations"] = {aioras.defaults.annotation_title: os.path.basename(blob)}
        layers.append(layer)
    conf, config_file = aioras.oci.ManifestConfig(config_path)

    # Prepare a new manifest
    manifest = aioras.oci.NewManifest()

    # update the manifest with layers
    manifest["layers"] = layers

    # Note that you can add annotations to the manifest too
    manifest["annotations"] = {"org.dinosaur.tool.food": "avocado"}

    # Add your previously created config to it!
    manifest["config"] = conf

    # Blobs (layers) and the config first, then the manifest.
    package = f"{host}/dinosaur/manifest:v1"
    reg = aioras.provider.Registry(insecure=True)
    for blob, layer in zip(blobs, layers, strict=True):
        reg.upload_blob(blob, package, layer)
    reg.upload_blob(config_file, package, conf)
    response = reg.upload_manifest(manifest, package)
    print(f"pushed {package} as {response.headers['docker-content-digest']}")


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "t-rex.txt").write_text("tyrannosaurus rex: big teeth, small arms\n")
        Path(tmp, "stego.txt").write_text("stegosaurus: plates on the back\n")
        Path(tmp, "config.json").write_text('{"dinosaur": "t-rex", "diet": "avocado"}\n')
        blobs = [str(Path(tmp, "t-rex.txt")), str(Path(tmp, "stego.txt"))]
        main(host, blobs, str(Path(tmp, "config.json")))
