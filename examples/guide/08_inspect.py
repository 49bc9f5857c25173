"""User guide, "Pull Interactions": a custom ``inspect`` reading a manifest and a blob.

The provider fetches the manifest, groups its layers by media type, and reads the small
``info.json`` layer in memory with ``get_blob`` (verified against its digest) instead of
downloading it. The artifact it inspects is pushed first.

    python examples/guide/08_inspect.py HOST:PORT
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import aioras.provider
import aioras.utils

INFO_TYPE = "application/vnd.dinosaur.info+json"


class MyProvider(aioras.provider.Registry):
    def inspect(self, name):
        # Parse the name into a container
        container = self.get_container(name)

        # Get the manifest with the three layers
        manifest = self.get_manifest(container)

        # Organize layers based on media_types
        layers = self._organize_layers(manifest)

        # Read info.json media type, find correct blob...
        # download correct blob, etc.
        info = self.get_blob(container, layers[INFO_TYPE][0]["digest"]).json()
        return layers, info

    # Added: the guide calls _organize_layers but does not show it (oras-py has none).
    def _organize_layers(self, manifest):
        layers = {}
        for layer in manifest.get("layers", []):
            layers.setdefault(layer["mediaType"], []).append(layer)
        return layers


def main(host: str) -> None:
    target = f"{host}/wolfv/conda-forge/linux-64/xtensor:0.9.0-0"
    reg = MyProvider(insecure=True)
    files = [f"info.json:{INFO_TYPE}", "xtensor.tar.bz2:application/x-bzip2", "LICENSE"]
    reg.push(target, files=files)

    layers, info = reg.inspect(target)
    for media_type, group in layers.items():
        titles = [layer["annotations"]["org.opencontainers.image.title"] for layer in group]
        print(f"{media_type}: {titles}")
    print("info.json:", json.dumps(info))


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp, aioras.utils.workdir(tmp):
        Path("info.json").write_text('{"name": "xtensor", "version": "0.9.0", "build": 0}\n')
        Path("xtensor.tar.bz2").write_bytes(b"BZh9 pretend this is a conda package")
        Path("LICENSE").write_text("BSD-3-Clause\n")
        main(host)
