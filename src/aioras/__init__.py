"""aioras: an asyncio-native SDK for OCI registries.

``AsyncRegistry`` is the async core; ``Registry`` its synchronous facade (also reachable as
``aioras.provider.Registry``); ``aioras.client.OrasClient`` the oras-py client shape.

The names below are imported on first use (module ``__getattr__``), so that ``import aioras``
and the command line's ``--help`` stay quick; ``from aioras import X`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from . import client, defaults, exceptions, oci, provider
    from ._http.ratelimit import RateLimits
    from ._retry import RetryPolicy
    from .client import AsyncOrasClient, OrasClient
    from .container import Container
    from .content.cache import BlobCache
    from .content.layout import OCILayout
    from .content.memory import MemoryStore
    from .exceptions import (
        AuthenticationError,
        DigestMismatch,
        InvalidReference,
        ManifestValidationError,
        NotFoundError,
        OrasError,
        PlatformNotFound,
        RegistryError,
        TransportError,
        UnsafePathError,
    )
    from .operations.attach import AttachOptions
    from .operations.copy import CopyOptions, copy
    from .operations.discover import ReferrerNode
    from .operations.mirror.plan import MirrorSpec, load_plan
    from .operations.mirror.report import MirrorReport
    from .operations.mirror.run import MirrorOptions
    from .operations.pull import PullOptions
    from .operations.push import PushOptions
    from .operations.stores import attach_in_store, pull_from_store, push_to_store
    from .progress import TransferEvent
    from .registry import AsyncRegistry
    from .remote.repository import Repository
    from .sync import Registry

# Public name -> the module that defines it ("" for a submodule of the same name).
_LAZY: dict[str, str] = {
    "client": "",
    "defaults": "",
    "exceptions": "",
    "oci": "",
    "provider": "",
    "AsyncOrasClient": "client",
    "OrasClient": "client",
    "Container": "container",
    "BlobCache": "content.cache",
    "OCILayout": "content.layout",
    "MemoryStore": "content.memory",
    "AuthenticationError": "exceptions",
    "DigestMismatch": "exceptions",
    "InvalidReference": "exceptions",
    "ManifestValidationError": "exceptions",
    "NotFoundError": "exceptions",
    "OrasError": "exceptions",
    "PlatformNotFound": "exceptions",
    "RegistryError": "exceptions",
    "TransportError": "exceptions",
    "UnsafePathError": "exceptions",
    "AttachOptions": "operations.attach",
    "copy": "operations.copy",
    "CopyOptions": "operations.copy",
    "MirrorOptions": "operations.mirror.run",
    "PullOptions": "operations.pull",
    "PushOptions": "operations.push",
    "attach_in_store": "operations.stores",
    "pull_from_store": "operations.stores",
    "push_to_store": "operations.stores",
    "ReferrerNode": "operations.discover",
    "MirrorSpec": "operations.mirror.plan",
    "load_plan": "operations.mirror.plan",
    "MirrorReport": "operations.mirror.report",
    "TransferEvent": "progress",
    "RateLimits": "_http.ratelimit",
    "AsyncRegistry": "registry",
    "Repository": "remote.repository",
    "Registry": "sync",
    "RetryPolicy": "_retry",
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{where or name}", __name__)
    value = module if not where else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AsyncRegistry",
    "AuthenticationError",
    "BlobCache",
    "Container",
    "DigestMismatch",
    "InvalidReference",
    "ManifestValidationError",
    "MemoryStore",
    "MirrorReport",
    "MirrorSpec",
    "RateLimits",
    "load_plan",
    "NotFoundError",
    "OCILayout",
    "OrasError",
    "PlatformNotFound",
    "ReferrerNode",
    "RegistryError",
    "Repository",
    "RetryPolicy",
    "TransferEvent",
    "TransportError",
    "copy",
    "attach_in_store",
    "pull_from_store",
    "push_to_store",
    "AttachOptions",
    "CopyOptions",
    "MirrorOptions",
    "PullOptions",
    "PushOptions",
    "UnsafePathError",
    "__version__",
    "defaults",
    "exceptions",
    "oci",
    "Registry",
    "OrasClient",
    "AsyncOrasClient",
    "provider",
    "client",
]
