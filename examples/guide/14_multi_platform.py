"""A multi-platform artifact: one build per platform, an index over them, pulls by platform.

Each build's config records its platform (``os``, ``architecture``, ``variant``), which
``push_index`` copies into the index; ``pull(..., platform=...)`` picks the matching build
and refuses, listing what there is, a platform the index lacks.

    python examples/guide/14_multi_platform.py HOST:PORT
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import aioras.client
import aioras.utils
from aioras.exceptions import PlatformNotFound

PLATFORMS = {
    "amd64": {"os": "linux", "architecture": "amd64"},
    "arm64": {"os": "linux", "architecture": "arm64", "variant": "v8"},
    "arm": {"os": "linux", "architecture": "arm", "variant": "v7"},
}
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


def main(host: str) -> None:
    name = f"{host}/dinosaur/multi"
    with aioras.client.OrasClient(insecure=True) as client:
        for arch in PLATFORMS:
            client.push(
                f"{name}:{arch}",
                files=[f"{arch}/dinosaur.txt"],
                manifest_config=f"{arch}/config.json:{CONFIG_TYPE}",
            )
        index = client.push_index(f"{name}:v1", [f"{name}:{arch}" for arch in PLATFORMS])
        print("index:", index["digest"])
        for platform in ("linux/amd64", "linux/arm64", "linux/arm/v7"):
            outdir = f"out-{platform.split('/')[1]}"
            paths = client.pull(f"{name}:v1", platform=platform, outdir=outdir)
            print(platform, Path(paths[0]).read_text().strip())
        try:
            client.pull(f"{name}:v1", platform="linux/s390x", outdir="out-s390x")
        except PlatformNotFound as error:
            print("refused:", ", ".join(error.available))


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp, aioras.utils.workdir(tmp):
        for arch, platform in PLATFORMS.items():
            Path(arch).mkdir()
            Path(arch, "config.json").write_text(json.dumps(platform))
            Path(arch, "dinosaur.txt").write_text(f"a dinosaur built for {arch}\n")
        main(host)
