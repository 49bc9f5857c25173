"""The package's version: the one source that packaging and ``aioras.version()`` read."""

__version__ = "0.1.0"
AUTHOR = "The aioras developers"
NAME = "aioras"
PACKAGE_URL = "https://example.invalid/aioras"
KEYWORDS = "oci, registry, artifacts, oras, asyncio"
DESCRIPTION = "Asyncio-native SDK for OCI registries"
LICENSE = "Apache-2.0"

package_name = NAME
