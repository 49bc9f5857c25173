"""User guide, "Push Interactions": custom push of an ``archives`` dict with annotations.

``archives`` maps each path (unique) to its media type (not unique). Annotations follow the
oras CLI's annotation file: ``$manifest`` and ``$config`` sections, plus one per path. The
provider creates a layer per path (packing directories), uploads the blobs, then the config
and the manifest.

    python examples/guide/05_custom_push.py HOST:PORT
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import aioras.defaults
import aioras.oci
import aioras.provider
import aioras.utils  # fix: the guide calls aioras.utils.make_targz without importing it
from aioras.decorator import ensure_container
from aioras.logger import logger  # fix: the guide uses logger.exit without defining logger


class Registry(aioras.provider.Registry):
    @ensure_container
    def push(self, container, archives: dict, annotations=None):
        """
        Given a dict of layers (paths and corresponding mediaType) push.
        """
        # Prepare a new manifest
        manifest = aioras.oci.NewManifest()

        # A lookup of annotations we can add
        annotset = aioras.oci.Annotations(annotations or {})

        # Upload files as blobs
        for blob, mediaType in archives.items():
            # Must exist
            if not os.path.exists(blob):
                logger.exit(f"{blob} does not exist.")

            # Save directory or blob name before compressing
            blob_name = os.path.basename(blob)

            # If it's a directory, we need to compress
            cleanup_blob = False
            if os.path.isdir(blob):
                blob = aioras.utils.make_targz(blob)
                cleanup_blob = True

            # Create a new layer from the blob
            layer = aioras.oci.NewLayer(blob, mediaType, is_dir=cleanup_blob)
            annotations = annotset.get_annotations(blob)
            layer["annotations"] = {aioras.defaults.annotation_title: blob_name}
            if annotations:
                layer["annotations"].update(annotations)

            # update the manifest with the new layer
            manifest["layers"].append(layer)

            # Upload the blob layer
            response = self.upload_blob(blob, container, layer)
            self._check_200_response(response)

            # Do we need to cleanup a temporary targz?
            if cleanup_blob and os.path.exists(blob):
                os.remove(blob)

        # Add annotations to the manifest, if provided
        manifest_annots = annotset.get_annotations("$manifest")
        if manifest_annots:
            manifest["annotations"] = manifest_annots

        # Prepare the manifest config (temporary or one provided)
        config_annots = annotset.get_annotations("$config")
        conf, config_file = aioras.oci.ManifestConfig()

        # Config annotations?
        if config_annots:
            conf["annotations"] = config_annots

        # Config is just another layer blob!
        response = self.upload_blob(config_file, container, conf)
        self._check_200_response(response)

        # Final upload of the manifest
        manifest["config"] = conf
        self._check_200_response(self.upload_manifest(manifest, container))
        print(f"Successfully pushed {container}")
        return response


def main(host: str, archives: dict[str, str]) -> None:
    sbom = next(path for path, media_type in archives.items() if "cyclonedx" in media_type)
    annotations = {
        "$manifest": {"org.opencontainers.image.description": "pakages 0.0.16"},
        "$config": {"org.dinosaur.config.kind": "empty"},
        sbom: {"org.dinosaur.sbom.format": "cyclonedx-1.5"},
    }
    reg = Registry(insecure=True)
    reg.push(f"{host}/vsoch/excellent-dinosaur:latest", archives, annotations)


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
        main(host, archives)
