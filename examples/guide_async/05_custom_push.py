"""User guide, "Push Interactions": custom push of an ``archives`` dict with annotations (async).

``archives`` maps each path (unique) to its media type (not unique). Annotations follow the
oras CLI's annotation file: ``$manifest`` and ``$config`` sections, plus one per path. The
provider hashes (and, for directories, packs) each path in a worker thread, uploads the
blobs concurrently, then the config and the manifest.

    python examples/guide_async/05_custom_push.py HOST:PORT
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
from aioras.logger import logger


def make_layer(path: str, media_type: str, annotset: aioras.oci.Annotations) -> tuple[str, dict]:
    """Return the file to upload (a temporary tar.gz for a directory) and its layer."""
    if not os.path.exists(path):
        logger.exit(f"{path} does not exist.")
    is_dir = os.path.isdir(path)
    blob = aioras.utils.make_targz(path) if is_dir else path
    layer = aioras.oci.NewLayer(blob, media_type, is_dir=is_dir)
    layer["annotations"] = {
        aioras.defaults.annotation_title: os.path.basename(path),
        **annotset.get_annotations(path),
    }
    return blob, layer


class Registry(aioras.provider.AsyncRegistry):
    @ensure_container
    async def push(
        self, container: Container, archives: dict[str, str], annotations: Any = None
    ) -> httpx.Response:
        """Push each path of ``archives`` as a layer of the media type it maps to."""
        annotset = aioras.oci.Annotations(annotations or {})
        prepared = [
            await anyio.to_thread.run_sync(make_layer, path, media_type, annotset)
            for path, media_type in archives.items()
        ]
        conf, config_file = aioras.oci.ManifestConfig()
        if config_annots := annotset.get_annotations("$config"):
            conf["annotations"] = config_annots
        try:
            async with anyio.create_task_group() as tg:
                for blob, descriptor in [*prepared, (config_file, conf)]:
                    tg.start_soon(self.upload_blob, blob, container, descriptor)
        finally:
            for (blob, _), path in zip(prepared, archives, strict=True):
                if blob != path:  # a temporary tar.gz of a directory
                    await anyio.Path(blob).unlink(missing_ok=True)

        manifest = aioras.oci.NewManifest()
        manifest["layers"] = [layer for _, layer in prepared]
        manifest["config"] = conf
        if manifest_annots := annotset.get_annotations("$manifest"):
            manifest["annotations"] = manifest_annots
        response = await self.upload_manifest(manifest, container)
        print(f"Successfully pushed {container}")
        return response


async def main(host: str, archives: dict[str, str]) -> None:
    sbom = next(path for path, media_type in archives.items() if "cyclonedx" in media_type)
    annotations = {
        "$manifest": {"org.opencontainers.image.description": "pakages 0.0.16"},
        "$config": {"org.dinosaur.config.kind": "empty"},
        sbom: {"org.dinosaur.sbom.format": "cyclonedx-1.5"},
    }
    async with Registry(insecure=True) as reg:
        await reg.push(f"{host}/vsoch/excellent-dinosaur:latest", archives, annotations)


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory(prefix="pakages-tmp.") as tmp:
        package_dir = Path(tmp, "pakages-0.0.16")
        package_dir.mkdir()
        Path(package_dir, "README.md").write_text("# pakages 0.0.16\n")
        tarball = aioras.utils.make_targz(package_dir, Path(tmp, "pakages-0.0.16.tar.gz"))
        Path(tmp, "sbom.json").write_text('{"bomFormat": "CycloneDX", "specVersion": "1.5"}\n')
        archives = {
            tarball: "application/vnd.oci.image.layer.v1.tar+gzip",
            str(Path(tmp, "sbom.json")): "application/vnd.cyclonedx",
        }
        anyio.run(main, host, archives)
