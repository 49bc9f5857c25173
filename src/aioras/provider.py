"""oras-py's ``oras.provider`` names: the registry classes and a few helpers.

``class MyProvider(aioras.provider.Registry)`` subclasses the synchronous facade, as the
oras-py user guide does with ``oras.provider.Registry``; ``AsyncRegistry`` is the async core.
``logger`` is oras-py's logger object (`aioras.logger.logger`); push reports
``Successfully pushed <container>`` through it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from . import defaults
from .container import Container
from .logger import logger
from .registry import AsyncRegistry
from .sync import Registry

__all__ = [
    "AsyncRegistry",
    "Registry",
    "container_type",
    "logger",
    "temporary_empty_config",
]

container_type = str | Container
"""A reference as a string or an already parsed [`Container`][aioras.Container]."""


@contextlib.contextmanager
def temporary_empty_config() -> Iterator[str]:
    """Yield the path of a new temporary file holding the empty config ``{}``.

    The file is removed when the block exits.
    """
    fd, path = tempfile.mkstemp(prefix="aioras-config-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(defaults.empty_config_bytes)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
