"""oras-py's OCI image layout API under its names: ``from aioras.layout import Layout``."""

from .layout import Layout, NewLayout, NewLayoutFromRegistry

__all__ = ["Layout", "NewLayout", "NewLayoutFromRegistry"]
