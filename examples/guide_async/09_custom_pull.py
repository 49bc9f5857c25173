"""User guide, "Pull Interactions": download only the layers of one media type (async).

``download_layers`` reads the manifest, picks the layers whose media type matches, checks
each title against the download directory with ``sanitize_path`` (a title such as
``../../etc/passwd`` raises ``UnsafePathError``) and streams the matching blobs to disk
concurrently; ``download_blob`` verifies each against its digest and creates the directory.

    python examples/guide_async/09_custom_pull.py HOST:PORT
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import anyio

import aioras.provider
import aioras.utils
from aioras.container import Container
from aioras.decorator import ensure_container


class Registry(aioras.provider.AsyncRegistry):
    @ensure_container
    async def download_layers(
        self, download_dir: str, package: Container, media_type: str
    ) -> list[str]:
        """Download the layers of ``package`` whose media type is ``media_type``."""
        manifest = await self.get_manifest(package)
        paths = []
        async with anyio.create_task_group() as tg:
            for layer in manifest.get("layers", []):
                if layer["mediaType"] == media_type:
                    artifact = layer["annotations"]["org.opencontainers.image.title"]
                    outfile = aioras.utils.sanitize_path(
                        download_dir, os.path.join(download_dir, artifact)
                    )
                    tg.start_soon(self.download_blob, package, layer["digest"], outfile)
                    paths.append(outfile)
        return paths


async def main(host: str) -> None:
    package = f"{host}/dinosaur/prices:v1"
    async with Registry(insecure=True) as reg:
        await reg.push(
            package,
            files=[
                "google-prices.json:application/vnd.google.prices",
                "google-prices-web.json:application/vnd.google.prices-web",
                "aws-prices.json:application/vnd.aws.prices",
            ],
        )
        download_dir = aioras.utils.get_tmpdir(prefix="prices")
        paths = await reg.download_layers(download_dir, package, "application/vnd.google.prices")
    print(paths)


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp, aioras.utils.workdir(tmp):
        Path("google-prices.json").write_text('{"e2-micro": 0.0084}\n')
        Path("google-prices-web.json").write_text('{"e2-micro": "$0.0084 / hour"}\n')
        Path("aws-prices.json").write_text('{"t4g.nano": 0.0042}\n')
        anyio.run(main, host)
