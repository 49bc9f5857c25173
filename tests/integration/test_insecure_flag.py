"""``insecure`` set after construction decides the URL scheme: ``prefix`` is derived from it.

oras-py code switches a registry to plain http by setting ``registry.insecure = True``;
requests must then go to ``http://``, and back to ``https://`` when it is set to False.
"""

from __future__ import annotations

import pytest

from aioras import Registry, RetryPolicy
from aioras.exceptions import ConnectError
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry

NO_RETRY = RetryPolicy(attempts=0)


def test_setting_insecure_after_construction_switches_requests_to_http(
    registry: LocalRegistry,
) -> None:
    with Registry(registry.host) as reg:
        reg.insecure = True
        assert reg.prefix == "http"
        assert reg.auth.insecure is True
        response = reg.ping()
        assert response.status_code == 200
        assert response.request.url.scheme == "http"


def test_clearing_insecure_switches_requests_back_to_https(registry: LocalRegistry) -> None:
    # The registry speaks plain http only: an https request to it fails the TLS handshake.
    with Registry(registry.host, insecure=True, retry=NO_RETRY) as reg:
        assert reg.ping().status_code == 200
        reg.insecure = False
        assert reg.prefix == "https"
        assert reg.auth.insecure is False
        with pytest.raises(ConnectError):
            reg.ping()


def test_setting_prefix_sets_insecure_and_refuses_other_schemes() -> None:
    areg = AsyncRegistry("registry.example")
    assert (areg.insecure, areg.prefix) == (False, "https")
    areg.prefix = "http"
    assert (areg.insecure, areg.prefix, areg.auth.insecure) == (True, "http", True)
    with pytest.raises(ValueError, match="prefix"):
        areg.prefix = "ftp"
    assert areg.prefix == "http"
