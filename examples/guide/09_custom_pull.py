"""User guide, "Pull Interactions": download only the layers of one media type.

``download_layers`` reads the manifest, picks the layers whose media type matches, checks
each title against the download directory with ``sanitize_path`` (a title such as
``../../etc/passwd`` raises ``UnsafePathError``) and streams each blob to disk with
``download_blob``, which verifies it against its digest and creates the directory.

    python examples/guide/09_custom_pull.py HOST:PORT
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import aioras.provider
import aioras.utils
from aioras.decorator import ensure_container


class Registry(aioras.provider.Registry):
    @ensure_container
    def download_layers(self, download_dir, package, media_type):
        """
        Given a manifest of layers, retrieve a layer based on desired media type
        """
        # If you intend to call this function again, you might cache this response
        # for the package of interest.
        manifest = self.get_manifest(package)

        # Let's return a list of download paths to the user
        paths = []

        # Find the layer of interest! Currently we look for presence of the string
        # e.g., "prices" can come from "prices" or "prices-web"
        for layer in manifest.get("layers", []):
            # E.g., google.prices or google.prices-web or aws.prices
            if layer["mediaType"] == media_type:
                # This annotation is currently the practice for a relative path to extract to
                artifact = layer["annotations"]["org.opencontainers.image.title"]

                # This raises an error if there is a malicious path
                outfile = aioras.utils.sanitize_path(
                    download_dir, os.path.join(download_dir, artifact)
                )

                # download blob ensures we stream, otherwise get_blob would return request
                # this function also handles creating the output directory if does not exist
                path = self.download_blob(package, layer["digest"], outfile)
                paths.append(path)

        return paths


def main(host: str) -> None:
    package = f"{host}/dinosaur/prices:v1"
    reg = Registry(insecure=True)
    reg.push(
        package,
        files=[
            "google-prices.json:application/vnd.google.prices",
            "google-prices-web.json:application/vnd.google.prices-web",
            "aws-prices.json:application/vnd.aws.prices",
        ],
    )
    download_dir = aioras.utils.get_tmpdir(prefix="prices")
    print(reg.download_layers(download_dir, package, "application/vnd.google.prices"))


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp, aioras.utils.workdir(tmp):
        Path("google-prices.json").write_text('{"e2-micro": 0.0084}\n')
        Path("google-prices-web.json").write_text('{"e2-micro": "$0.0084 / hour"}\n')
        Path("aws-prices.json").write_text('{"t4g.nano": 0.0042}\n')
        main(host)
