"""User guide, "Authentication": credentials from GITHUB_USER / GITHUB_TOKEN, pull and push.

The guide targets ghcr.io; this script targets any registry with basic auth, for example a
local one made with ``htpasswd -Bbn myuser mypass``::

    GITHUB_USER=myuser GITHUB_TOKEN=mypass python examples/guide/11_github_credentials.py HOST:PORT

``MyProvider.inspect`` comes from 08_inspect.py and ``Registry.push`` from 05_custom_push.py,
shortened.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import aioras.defaults
import aioras.oci
import aioras.provider
import aioras.utils
from aioras.decorator import ensure_container


class MyProvider(aioras.provider.Registry):
    def inspect(self, name):
        container = self.get_container(name)
        manifest = self.get_manifest(container)
        for layer in manifest["layers"]:
            title = layer["annotations"][aioras.defaults.annotation_title]
            print(f"{container}: {title} ({layer['mediaType']}, {layer['size']} bytes)")
        return manifest


class Registry(aioras.provider.Registry):
    @ensure_container
    def push(self, container, archives: dict):
        manifest = aioras.oci.NewManifest()
        for blob, media_type in archives.items():
            layer = aioras.oci.NewLayer(blob, media_type)
            layer["annotations"] = {aioras.defaults.annotation_title: os.path.basename(blob)}
            self._check_200_response(self.upload_blob(blob, container, layer))
            manifest["layers"].append(layer)
        conf, config_file = aioras.oci.ManifestConfig()
        self._check_200_response(self.upload_blob(config_file, container, conf))
        manifest["config"] = conf
        response = self.upload_manifest(manifest, container)
        self._check_200_response(response)
        print(f"Successfully pushed {container}")
        return response


def main(host: str, workdir: str) -> None:
    # We will need GitHub personal access token or token
    token = os.environ.get("GITHUB_TOKEN")
    # fix: the guide reads GITHUB_USER into `password`, then uses an undefined `user`.
    user = os.environ.get("GITHUB_USER")

    if not token or not user:
        sys.exit("GITHUB_TOKEN and GITHUB_USER are required in the environment.")

    # Something to pull: the guide inspects an existing package on ghcr.io.
    package = f"{host}/wolfv/conda-forge/linux-64/xtensor:0.9.0-0"
    with aioras.utils.workdir(workdir):
        setup = aioras.provider.Registry(insecure=True)
        setup.set_basic_auth(user, token)
        setup.push(package, files=["info.json:application/vnd.dinosaur.info+json"])

    # Pull Example (insecure=True added throughout: the example registry speaks http)
    reg = MyProvider(insecure=True)
    reg.set_basic_auth(user, token)  # fix: the guide passes `password`, its user name
    reg.inspect(package)

    # Push Example
    reg = Registry(insecure=True)
    reg.set_basic_auth(user, token)
    archives = {
        f"{workdir}/pakages-0.0.16.tar.gz": "application/vnd.oci.image.layer.v1.tar+gzip",
        f"{workdir}/sbom.json": "application/vnd.cyclonedx",
    }
    reg.push(f"{host}/vsoch/excellent-dinosaur:latest", archives)


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory(prefix="pakages-tmp.") as tmp:
        Path(tmp, "info.json").write_text('{"name": "xtensor", "version": "0.9.0", "build": 0}\n')
        Path(tmp, "pakages-0.0.16.tar.gz").write_bytes(b"\x1f\x8b pretend this is a release")
        Path(tmp, "sbom.json").write_text('{"bomFormat": "CycloneDX", "specVersion": "1.5"}\n')
        main(host, tmp)
