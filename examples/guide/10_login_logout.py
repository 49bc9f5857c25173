"""User guide, "Authentication": log in with basic auth, work, log out.

``login`` checks the credentials against the registry, keeps them for this client and saves
them in the Docker config (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``);
``logout`` forgets them and removes that entry. Credentials come from ``ORAS_USER`` and
``ORAS_PASS`` (default: the guide's ``myuser`` / ``mypass``)::

    htpasswd -Bbn myuser mypass > auth.htpasswd   # then start a registry using it
    DOCKER_CONFIG=$(mktemp -d) python examples/guide/10_login_logout.py HOST:PORT
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import aioras.client
import aioras.utils


def main(host: str, username: str, password: str) -> None:
    # fix: the guide's OrasClient() names no registry to log in to, so pass hostname.
    client = aioras.client.OrasClient(hostname=host)
    # fix: the guide passes password="myuser"; its htpasswd example sets "mypass".
    print(client.login(password=password, username=username, insecure=True))

    client.push(files=["artifact.txt"], target=f"{host}/dinosaur/private:v1")
    print(client.get_tags(f"{host}/dinosaur/private"))

    # And logout!
    client.logout(host)


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    username = os.environ.get("ORAS_USER", "myuser")
    password = os.environ.get("ORAS_PASS", "mypass")
    with tempfile.TemporaryDirectory() as tmp, aioras.utils.workdir(tmp):
        Path("artifact.txt").write_text("Hello, dinosaur!\n")
        main(host, username, password)
