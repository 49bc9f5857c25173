"""Referrers: attach an SBOM to an artifact, sign the SBOM, then discover the tree (async).

``attach`` pushes an OCI 1.1 artifact whose ``subject`` is the manifest named, by digest and
without a tag. Registries without the referrers API get the fallback index maintained.

    python examples/guide_async/13_attach_discover.py HOST:PORT
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import anyio

import aioras.client
import aioras.utils

SBOM_TYPE = "application/vnd.cyclonedx+json"
SIGNATURE_TYPE = "application/vnd.dinosaur.signature"


async def main(host: str) -> None:
    async with aioras.client.AsyncOrasClient(insecure=True) as client:
        target = f"{host}/dinosaur/app:v1"
        await client.push(target, files=["artifact.txt"])
        sbom = await client.attach(target, ["sbom.json"], artifact_type=SBOM_TYPE)
        await client.attach(
            f"{host}/dinosaur/app@{sbom['digest']}",
            artifact_type=SIGNATURE_TYPE,
            annotations={"signer": "t-rex"},
        )
        for referrer in await client.get_referrers(target, artifact_type=SBOM_TYPE):
            print("sbom:", referrer["digest"])
        tree = await client.discover(target)
        for depth, node in tree.walk():
            print("  " * depth + f"{node.artifact_type or node.media_type} {node.digest}")
        print(json.dumps(tree.to_dict()))


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp, aioras.utils.workdir(tmp):
        Path("artifact.txt").write_text("Hello, dinosaur!\n")
        Path("sbom.json").write_text('{"bomFormat": "CycloneDX", "specVersion": "1.5"}\n')
        anyio.run(main, host)
