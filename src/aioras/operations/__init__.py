"""High-level operations built from the registry's endpoint methods: push, pull."""
