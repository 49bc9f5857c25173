"""The synchronous facade: [`Registry`][aioras.sync.Registry], every
[`AsyncRegistry`][aioras.registry.AsyncRegistry] method, blocking.

``registry`` holds the class, ``_portal`` the event-loop thread it runs the async core on
(fork safety, close at exit), ``_overrides`` how push and pull honour a subclass's sync
endpoint overrides.
"""

from __future__ import annotations

from .registry import Registry

__all__ = ["Registry"]
