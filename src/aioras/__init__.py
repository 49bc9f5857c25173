"""aioras: an asyncio-native SDK for OCI registries."""

from .version import __version__

__all__ = ["__version__"]
