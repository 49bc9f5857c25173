"""A signature is written once: a forwarding method shows its target's, endpoints inherit theirs."""

from __future__ import annotations

import inspect

import pytest

from aioras._http.transport import Transport
from aioras.operations.endpoints import Endpoints
from aioras.operations.stores import StoreEndpoints
from aioras.remote._session import Session
from aioras.sync._overrides import OverridingEndpoints


def _after_self(function: object) -> list[inspect.Parameter]:
    return list(inspect.signature(function).parameters.values())[1:]  # type: ignore[arg-type]


def test_session_send_takes_every_parameter_of_transport_send() -> None:
    assert _after_self(Session.send) == _after_self(Transport.send)
    assert "follow_redirects" in inspect.signature(Session.send).parameters
    # Its own docstring stays: the 404 check it adds is said there.
    assert "NotARegistry" in (Session.send.__doc__ or "")


@pytest.mark.parametrize("endpoints", [StoreEndpoints, OverridingEndpoints])
@pytest.mark.parametrize(
    "name", ["upload_blob", "upload_new_blob", "upload_manifest", "download_blob"]
)
def test_endpoints_take_the_blob_and_manifest_calls_from_the_protocol(
    endpoints: type[Endpoints], name: str
) -> None:
    # One definition, the protocol's: the store's and the sync overrides' answer in hooks.
    assert getattr(endpoints, name) is getattr(Endpoints, name)
