"""User guide, "Authentication": log in with basic auth, work, log out (async).

``login`` checks the credentials against the registry, keeps them for this client and saves
them in the Docker config (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``);
``logout`` forgets them and removes that entry. Credentials come from ``ORAS_USER`` and
``ORAS_PASS`` (default: the guide's ``myuser`` / ``mypass``)::

    htpasswd -Bbn myuser mypass > auth.htpasswd   # then start a registry using it
    DOCKER_CONFIG=$(mktemp -d) python examples/guide_async/10_login_logout.py HOST:PORT
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import anyio

import aioras.client
import aioras.utils


async def main(host: str, username: str, password: str) -> None:
    async with aioras.client.AsyncOrasClient(hostname=host, insecure=True) as client:
        print(await client.login(username=username, password=password))

        await client.push(files=["artifact.txt"], target=f"{host}/dinosaur/private:v1")
        print(await client.get_tags(f"{host}/dinosaur/private"))

        await client.logout(host)


if __name__ == "__main__":
    default = os.environ.get("AIORAS_EXAMPLE_REGISTRY", "localhost:5000")
    host = sys.argv[1] if len(sys.argv) > 1 else default
    username = os.environ.get("ORAS_USER", "myuser")
    password = os.environ.get("ORAS_PASS", "mypass")
    with tempfile.TemporaryDirectory() as tmp, aioras.utils.workdir(tmp):
        Path("artifact.txt").write_text("Hello, dinosaur!\n")
        anyio.run(main, host, username, password)
