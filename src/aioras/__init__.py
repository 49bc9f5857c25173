"""aioras: an asyncio-native SDK for OCI registries.

``AsyncRegistry`` is the async core; ``Registry`` its synchronous facade (also reachable as
``aioras.provider.Registry``); ``aioras.client.OrasClient`` the oras-py client shape.
"""

from . import client, defaults, exceptions, oci, provider
from .client import AsyncOrasClient, OrasClient
from .container import Container
from .content.layout import OCILayout
from .content.memory import MemoryStore
from .exceptions import (
    AuthenticationError,
    DigestMismatch,
    InvalidReference,
    ManifestValidationError,
    NotFoundError,
    OrasError,
    RegistryError,
    TransportError,
    UnsafePathError,
)
from .operations.copy import copy
from .progress import TransferEvent
from .registry import AsyncRegistry
from .remote.repository import Repository
from .sync import Registry
from .transport import RetryPolicy
from .version import __version__

__all__ = [
    "AsyncRegistry",
    "AuthenticationError",
    "Container",
    "DigestMismatch",
    "InvalidReference",
    "ManifestValidationError",
    "MemoryStore",
    "NotFoundError",
    "OCILayout",
    "OrasError",
    "RegistryError",
    "Repository",
    "RetryPolicy",
    "TransferEvent",
    "TransportError",
    "copy",
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
