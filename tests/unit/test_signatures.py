"""A forwarding method shows the parameters of the method it forwards to."""

from __future__ import annotations

import inspect

from aioras._http.transport import Transport
from aioras.remote._session import Session


def _after_self(function: object) -> list[inspect.Parameter]:
    return list(inspect.signature(function).parameters.values())[1:]  # type: ignore[arg-type]


def test_session_send_takes_every_parameter_of_transport_send() -> None:
    assert _after_self(Session.send) == _after_self(Transport.send)
    assert "follow_redirects" in inspect.signature(Session.send).parameters
    # Its own docstring stays: the 404 check it adds is said there.
    assert "NotARegistry" in (Session.send.__doc__ or "")
