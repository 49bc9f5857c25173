"""User guide, "Creating OCI Objects": a manifest config, empty or from a file.

``ManifestConfig()`` describes the empty config. oras-py described it as size 0 backed by
``/dev/null``; aioras describes the bytes ``{}`` (size 2) and returns a packaged file holding
exactly them, so uploading the path delivers what the descriptor promises. With a path, the
descriptor describes that file. A config is a blob: upload it before the manifest naming it.

    python examples/guide/01_create_config.py HOST:PORT
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import aioras.oci
import aioras.provider


def main(host: str, config_path: str) -> None:
    reg = aioras.provider.Registry(insecure=True)
    package = f"{host}/dinosaur/config"

    conf, config_file = aioras.oci.ManifestConfig()
    print(json.dumps(conf, indent=4), config_file, sep="\n")
    reg.upload_blob(config_file, package, conf)

    # Here is a config for a file that you already have existing:
    conf, config_file = aioras.oci.ManifestConfig(config_path)
    print(json.dumps(conf, indent=4), config_file, sep="\n")
    reg.upload_blob(config_file, package, conf)


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "config.json")
        config.write_text('{"dinosaur": "t-rex", "diet": "avocado"}\n')
        main(host, str(config))
