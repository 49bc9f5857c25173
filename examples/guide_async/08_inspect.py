"""User guide, "Pull Interactions": a custom ``inspect`` reading a manifest and a blob (async).

The provider fetches the manifest, groups its layers by media type, and reads the small
``info.json`` layer in memory with ``get_blob`` (verified against its digest) instead of
downloading it. The artifact it inspects is pushed first.

    python examples/guide_async/08_inspect.py HOST:PORT
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio

import aioras.provider
import aioras.utils

INFO_TYPE = "application/vnd.dinosaur.info+json"


class MyProvider(aioras.provider.AsyncRegistry):
    async def inspect(self, name: str) -> tuple[dict[str, list[dict[str, Any]]], Any]:
        """Return the layers of ``name`` by media type, and its parsed info.json."""
        container = self.get_container(name)
        manifest = await self.get_manifest(container)
        layers = self._organize_layers(manifest)
        # get_blob reads the whole body: right for small metadata, use download_blob otherwise.
        response = await self.get_blob(container, layers[INFO_TYPE][0]["digest"])
        return layers, response.json()

    def _organize_layers(self, manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """Group the manifest's layers by media type."""
        layers = defaultdict(list)
        for layer in manifest.get("layers", []):
            layers[layer["mediaType"]].append(layer)
        return dict(layers)


async def main(host: str) -> None:
    target = f"{host}/wolfv/conda-forge/linux-64/xtensor:0.9.0-0"
    async with MyProvider(insecure=True) as reg:
        files = [f"info.json:{INFO_TYPE}", "xtensor.tar.bz2:application/x-bzip2", "LICENSE"]
        await reg.push(target, files=files)

        layers, info = await reg.inspect(target)
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
        anyio.run(main, host)
