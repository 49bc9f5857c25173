"""User guide, "Push Interactions": custom push of a list of items, with basic auth (async).

Each item names a ``path``, and optionally a ``title``, ``media_type`` and ``annotations``.
``get_oras_client()`` builds the provider with credentials from ``ORAS_USER`` and
``ORAS_PASS``; the caller pushes inside ``aioras.utils.workdir(root)`` so that relative paths
resolve against the artifact's directory. Try it against a registry with htpasswd auth::

    htpasswd -Bbn myuser mypass > auth.htpasswd   # then start a registry using it
    ORAS_USER=myuser ORAS_PASS=mypass python examples/guide_async/06_custom_push_list.py HOST:PORT
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from datetime import datetime
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

logger = logging.getLogger(__name__)

DATATYPE = "org.dinosaur.tool.datatype"


def get_oras_client() -> Registry:
    """Consistent method to get an oras client"""
    user = os.environ.get("ORAS_USER")
    password = os.environ.get("ORAS_PASS")
    # The example registry speaks plain http on loopback, hence insecure=True.
    reg = Registry(insecure=True)
    if user and password:
        print("Found username and password for basic auth")
        reg.set_basic_auth(user, password)
    else:
        sys.exit("ORAS_USER or ORAS_PASS is missing, and required.")
    return reg


class Registry(aioras.provider.AsyncRegistry):
    @ensure_container
    async def push(self, container: Container, archives: list[dict[str, Any]]) -> httpx.Response:
        """Push each item of ``archives`` (path, title, media_type, annotations) as a layer."""
        manifest = aioras.oci.NewManifest()
        async with anyio.create_task_group() as tg:
            for item in archives:
                blob = item.get("path")
                if not blob or not await anyio.Path(blob).exists():
                    logger.warning(f"Path {blob} does not exist or is not defined.")
                    continue
                # Files only, as the caller lists them; see 05_custom_push.py for directories.
                media_type = item.get("media_type") or DATATYPE
                layer = await anyio.to_thread.run_sync(aioras.oci.NewLayer, blob, media_type)
                layer["annotations"] = {
                    **(item.get("annotations") or {}),
                    aioras.defaults.annotation_title: item.get("title") or os.path.basename(blob),
                }
                manifest["layers"].append(layer)
                logger.info(f"Uploading {blob} to {container.uri}")
                tg.start_soon(self.upload_blob, blob, container, layer)

            conf, config_file = aioras.oci.ManifestConfig()
            tg.start_soon(self.upload_blob, config_file, container, conf)

        manifest["config"] = conf
        response = await self.upload_manifest(manifest, container)
        print(f"Successfully pushed {container}")
        return response


async def push(uri: str, root: str) -> None:
    """Given an ORAS identifier, save artifacts to it."""
    async with get_oras_client() as oras_cli:
        now = datetime.now()
        archives = []
        # Listing only the top level assumes we have single files at the base of our root.
        async for path in anyio.Path(root).iterdir():
            size = (await path.stat()).st_size  # bytes
            archives.append(
                {
                    "path": path.name,
                    "title": path.name,
                    "media_type": DATATYPE,
                    "annotations": {"creationTime": str(now), "size": str(size)},
                }
            )
        # Push relative to the artifact's directory. The working directory is process-wide:
        # nothing else in this program may depend on it meanwhile.
        with aioras.utils.workdir(root):
            await oras_cli.push(uri, archives)


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as root:
        Path(root, "fossils.csv").write_text("name,era\nt-rex,cretaceous\n")
        Path(root, "notes.txt").write_text("found near the river\n")
        anyio.run(push, f"{host}/dinosaur/tool-data:v1", root)
