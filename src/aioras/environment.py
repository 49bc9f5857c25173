"""The one place aioras reads the process environment.

Everything else receives these values as arguments, so behaviour never depends on an
environment variable read deep inside a call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Environment", "read_environment", "read_variable"]


@dataclass(frozen=True)
class Environment:
    """The settings aioras takes from the environment.

    ``oras_user``/``oras_pass``: default basic credentials (oras-py's ``ORAS_USER`` and
    ``ORAS_PASS``). ``docker_config_dir``: ``$DOCKER_CONFIG`` or ``~/.docker``.
    """

    oras_user: str | None = None
    oras_pass: str | None = field(default=None, repr=False)
    docker_config_dir: Path = field(default_factory=lambda: Path.home() / ".docker")

    @property
    def docker_config_file(self) -> Path:
        """Path of the Docker ``config.json`` holding saved credentials."""
        return self.docker_config_dir / "config.json"


def read_environment(environ: Mapping[str, str] | None = None) -> Environment:
    """Read the settings from ``environ`` (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    docker_dir = env.get("DOCKER_CONFIG")
    return Environment(
        oras_user=env.get("ORAS_USER") or None,
        oras_pass=env.get("ORAS_PASS") or None,
        docker_config_dir=Path(docker_dir) if docker_dir else Path.home() / ".docker",
    )


def read_variable(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of the variable ``name`` (a credential a caller named), or None when unset."""
    env = os.environ if environ is None else environ
    return env.get(name) or None
