"""Registries seen as stores: one repository of a registry as a content Target."""
