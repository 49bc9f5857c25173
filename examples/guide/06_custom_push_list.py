"""User guide, "Push Interactions": custom push of a list of items, with basic auth.

Each item names a ``path``, and optionally a ``title``, ``media_type`` and ``annotations``.
``get_oras_client()`` builds the provider with credentials from ``ORAS_USER`` and
``ORAS_PASS``; ``push()`` lists a directory and pushes inside ``aioras.utils.workdir(root)``
so that relative paths resolve against it. Try it against a registry with htpasswd auth::

    htpasswd -Bbn myuser mypass > auth.htpasswd   # then start a registry using it
    ORAS_USER=myuser ORAS_PASS=mypass python examples/guide/06_custom_push_list.py HOST:PORT
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import aioras.defaults
import aioras.oci
import aioras.provider
import aioras.utils
from aioras.decorator import ensure_container

logger = logging.getLogger(__name__)

DATATYPE = "org.dinosaur.tool.datatype"


def get_oras_client():
    """
    Consistent method to get an oras client
    """
    user = os.environ.get("ORAS_USER")
    password = os.environ.get("ORAS_PASS")
    reg = Registry(insecure=True)  # fix: insecure=True, the example registry speaks http
    if user and password:
        print("Found username and password for basic auth")
        reg.set_basic_auth(user, password)
    else:
        sys.exit("ORAS_USER or ORAS_PASS is missing, and required.")
    return reg


class Registry(aioras.provider.Registry):
    @ensure_container
    def push(self, container, archives: list):
        """
        Given a list of layer metadata (paths and corresponding mediaType) push.
        """
        # Prepare a new manifest
        manifest = aioras.oci.NewManifest()

        # Upload files as blobs
        for item in archives:
            blob = item.get("path")
            media_type = item.get("media_type") or DATATYPE
            annots = item.get("annotations") or {}

            if not blob or not os.path.exists(blob):
                logger.warning(f"Path {blob} does not exist or is not defined.")
                continue

            # Artifact title is basename or user defined
            blob_name = item.get("title") or os.path.basename(blob)

            # If it's a directory, we need to compress
            cleanup_blob = False
            if os.path.isdir(blob):
                blob = aioras.utils.make_targz(blob)
                cleanup_blob = True

            # Create a new layer from the blob
            layer = aioras.oci.NewLayer(blob, media_type, is_dir=cleanup_blob)
            logger.debug(f"Preparing layer {layer}")

            # Update annotations with title we will need for extraction
            annots.update({aioras.defaults.annotation_title: blob_name})
            layer["annotations"] = annots

            # update the manifest with the new layer
            manifest["layers"].append(layer)

            # Upload the blob layer
            logger.info(f"Uploading {blob} to {container.uri}")
            response = self.upload_blob(blob, container, layer)
            self._check_200_response(response)

            # Do we need to cleanup a temporary targz?
            if cleanup_blob and os.path.exists(blob):
                os.remove(blob)

        # Prepare manifest and config (add your custom annotations here)
        manifest["annotations"] = {}
        conf, config_file = aioras.oci.ManifestConfig()
        conf["annotations"] = {}

        # Config is just another layer blob!
        response = self.upload_blob(config_file, container, conf)
        self._check_200_response(response)

        # Final upload of the manifest
        manifest["config"] = conf
        self._check_200_response(self.upload_manifest(manifest, container))
        print(f"Successfully pushed {container}")
        return response


def push(uri, root):
    """
    Given an ORAS identifier, save artifacts to it.
    """
    oras_cli = get_oras_client()

    # Create lookup of archives - relative path and mediatype
    archives = []
    now = datetime.now()

    # Using os.listdir assumes we have single files at the base of our root.
    for filename in os.listdir(root):
        # use some logic here to derive the mediaType
        media_type = DATATYPE

        # Add some custom annotations!
        size = os.path.getsize(os.path.join(root, filename))  # bytes
        annotations = {"creationTime": str(now), "size": str(size)}
        archives.append(
            {
                "path": filename,
                "title": filename,
                "media_type": media_type,
                "annotations": annotations,
            }
        )

    # Push should be relative to cache context
    with aioras.utils.workdir(root):
        oras_cli.push(uri, archives)


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as root:
        Path(root, "fossils.csv").write_text("name,era\nt-rex,cretaceous\n")
        Path(root, "notes.txt").write_text("found near the river\n")
        push(f"{host}/dinosaur/tool-data:v1", root)
