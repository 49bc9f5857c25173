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
    ``oras_cache``: the blob cache directory ``ORAS_CACHE`` names (the oras CLI's
    variable), or None when it is unset or empty.

    The network settings requests (and so oras-py) honours: ``https_proxy``,
    ``http_proxy``, ``all_proxy`` and ``no_proxy`` (lower or upper case, lower first);
    ``ca_bundle`` from ``REQUESTS_CA_BUNDLE`` or else ``CURL_CA_BUNDLE``; ``ssl_cert_file``
    and ``ssl_cert_dir`` from ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``. Explicit arguments
    (``proxy=``, a ``tls_verify`` path or False) win over them.
    """

    oras_user: str | None = None
    oras_pass: str | None = field(default=None, repr=False)
    docker_config_dir: Path = field(default_factory=lambda: Path.home() / ".docker")
    https_proxy: str | None = field(default=None, repr=False)
    http_proxy: str | None = field(default=None, repr=False)
    all_proxy: str | None = field(default=None, repr=False)
    no_proxy: str | None = None
    ca_bundle: str | None = None
    ssl_cert_file: str | None = None
    ssl_cert_dir: str | None = None
    oras_cache: Path | None = None

    def default_verify(self) -> bool | str:
        """What ``tls_verify=True`` means here: the CA bundle the environment names, or True.

        ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` first, then ``SSL_CERT_FILE``, then
        ``SSL_CERT_DIR``; True (the bundled CA set) when none is set.
        """
        return self.ca_bundle or self.ssl_cert_file or self.ssl_cert_dir or True

    @property
    def has_proxies(self) -> bool:
        """True when any proxy variable is set."""
        return bool(self.https_proxy or self.http_proxy or self.all_proxy)

    @property
    def docker_config_file(self) -> Path:
        """Path of the Docker ``config.json`` holding saved credentials."""
        return self.docker_config_dir / "config.json"


def read_environment(environ: Mapping[str, str] | None = None) -> Environment:
    """Read the settings from ``environ`` (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    docker_dir = env.get("DOCKER_CONFIG")

    def either_case(name: str) -> str | None:
        # As urllib (and so requests) reads them: the lower-case name first.
        return env.get(name.lower()) or env.get(name.upper()) or None

    return Environment(
        oras_user=env.get("ORAS_USER") or None,
        oras_pass=env.get("ORAS_PASS") or None,
        docker_config_dir=Path(docker_dir) if docker_dir else Path.home() / ".docker",
        https_proxy=either_case("https_proxy"),
        http_proxy=either_case("http_proxy"),
        all_proxy=either_case("all_proxy"),
        no_proxy=either_case("no_proxy"),
        ca_bundle=env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or None,
        ssl_cert_file=env.get("SSL_CERT_FILE") or None,
        ssl_cert_dir=env.get("SSL_CERT_DIR") or None,
        oras_cache=Path(env["ORAS_CACHE"]).expanduser() if env.get("ORAS_CACHE") else None,
    )


def read_variable(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of the variable ``name`` (a credential a caller named), or None when unset."""
    env = os.environ if environ is None else environ
    return env.get(name) or None
