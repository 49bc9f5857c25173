"""User guide, "Authentication": credentials from GITHUB_USER / GITHUB_TOKEN, pull and push (async).

The guide targets ghcr.io; this script targets any registry with basic auth, for example a
local one made with ``htpasswd -Bbn myuser mypass``::

    GITHUB_USER=myuser GITHUB_TOKEN=mypass \\
        python examples/guide_async/11_github_credentials.py HOST:PORT

``MyProvider.inspect`` comes from 08_inspect.py and ``Registry.push`` from 05_custom_push.py,
shortened. Against ghcr.io the same credentials are exchanged for bearer tokens.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
import httpx

import aioras.defaults
import aioras.oci
import aioras.provider
import aioras.utils
from aioras.container import Container
from aioras.decorator import ensure_container


class MyProvider(aioras.provider.AsyncRegistry):
    async def inspect(self, name: str) -> dict[str, Any]:
        container = self.get_container(name)
        manifest = await self.get_manifest(container)
        for layer in manifest["layers"]:
            title = layer["annotations"][aioras.defaults.annotation_title]
            print(f"{container}: {title} ({layer['mediaType']}, {layer['size']} bytes)")
        return manifest


class Registry(aioras.provider.AsyncRegistry):
    @ensure_container
    async def push(self, container: Container, archives: dict[str, str]) -> httpx.Response:
        manifest = aioras.oci.NewManifest()
        conf, config_file = aioras.oci.ManifestConfig()
        manifest["config"] = conf
        async with anyio.create_task_group() as tg:
            for blob, media_type in archives.items():
                layer = await anyio.to_thread.run_sync(aioras.oci.NewLayer, blob, media_type)
                layer["annotations"] = {aioras.defaults.annotation_title: os.path.basename(blob)}
                manifest["layers"].append(layer)
                tg.start_soon(self.upload_blob, blob, container, layer)
            tg.start_soon(self.upload_blob, config_file, container, conf)
        response = await self.upload_manifest(manifest, container)
        print(f"Successfully pushed {container}")
        return response


async def main(host: str, workdir: str) -> None:
    token = os.environ.get("GITHUB_TOKEN")
    user = os.environ.get("GITHUB_USER")
    if not token or not user:
        sys.exit("GITHUB_TOKEN and GITHUB_USER are required in the environment.")

    # Something to pull: the guide inspects an existing package on ghcr.io.
    package = f"{host}/wolfv/conda-forge/linux-64/xtensor:0.9.0-0"

    # Pull Example (insecure=True throughout: the example registry speaks plain http)
    async with MyProvider(insecure=True) as reg:
        reg.set_basic_auth(user, token)
        with aioras.utils.workdir(workdir):
            await reg.push(package, files=["info.json:application/vnd.dinosaur.info+json"])
        await reg.inspect(package)

    # Push Example
    async with Registry(insecure=True) as reg:
        reg.set_basic_auth(user, token)
        archives = {
            f"{workdir}/pakages-0.0.16.tar.gz": "application/vnd.oci.image.layer.v1.tar+gzip",
            f"{workdir}/sbom.json": "application/vnd.cyclonedx",
        }
        await reg.push(f"{host}/vsoch/excellent-dinosaur:latest", archives)


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory(prefix="pakages-tmp.") as tmp:
        Path(tmp, "info.json").write_text('{"name": "xtensor", "version": "0.9.0", "build": 0}\n')
        Path(tmp, "pakages-0.0.16.tar.gz").write_bytes(b"\x1f\x8b pretend this is a release")
        Path(tmp, "sbom.json").write_text('{"bomFormat": "CycloneDX", "specVersion": "1.5"}\n')
        anyio.run(main, host, tmp)
