"""Run a backend written for oras-py's auth protocol as an aioras `Authenticator`.

oras-py backends answer a 401 with ``authenticate_request(original_response, headers,
refresh)``, returning ``(headers, retry)``: the headers to send again (``Authorization``
among them) and whether a retry is worth it. `RequestAuthAdapter` calls that method
in a worker thread (it may block on its own HTTP requests) when the registry challenges,
and sends the ``Authorization`` it returned with that host's later requests.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import anyio.to_thread

from .authenticator import Ask, Authenticator, Refusal, forget_host

__all__ = ["RequestAuthAdapter", "RequestAuthBackend", "as_authenticator", "defines_own_protocol"]


class RequestAuthBackend(Protocol):
    """oras-py's backend protocol."""

    def authenticate_request(
        self, original: Any, headers: dict[str, str], refresh: bool = False
    ) -> tuple[dict[str, str], bool]: ...


def defines_own_protocol(backend: object) -> bool:
    """True when ``backend``'s ``authenticate_request`` was written outside aioras."""
    for cls in type(backend).__mro__:
        if "authenticate_request" in vars(cls):
            return not cls.__module__.startswith("aioras.")
    return False


async def ask_backend(
    backend: RequestAuthBackend, answers: dict[str, str], refusal: Refusal
) -> bool:
    """Ask ``backend`` to answer the refused response; keep its answer in ``answers[host]``.

    ``refresh`` is true when a value was sent and refused (oras-py's retry after a 403).
    True when there is a new ``Authorization`` value worth a retry.
    """
    sent = refusal.sent
    call = functools.partial(backend.authenticate_request, refusal.response, {}, sent is not None)
    headers, retry = await anyio.to_thread.run_sync(call)
    value = (headers or {}).get("Authorization")
    if not retry or not value or value == sent:
        return False
    answers[refusal.host] = str(value)
    return True


class RequestAuthAdapter(Authenticator):
    """An `Authenticator` that asks an oras-py style ``backend`` on each challenge.

    The answer is kept per host and sent up front with that host's later requests.
    """

    def __init__(self, backend: RequestAuthBackend, *, insecure: bool = False) -> None:
        super().__init__(insecure=insecure)
        self.backend = backend
        self._answers: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"RequestAuthAdapter({type(self.backend).__name__})"

    def forget(self, host: str | None = None) -> None:
        super().forget(host)
        forget_host(self._answers, host)

    async def _authorize(self, ask: Ask) -> str | None:
        return self._answers.get(ask.host)

    async def _answer(self, refusal: Refusal) -> bool:
        return await ask_backend(self.backend, self._answers, refusal)


def as_authenticator(backend: object, *, insecure: bool = False) -> Authenticator:
    """``backend`` itself when it is an `Authenticator`, else adapted.

    Raises `TypeError` for an object with neither shape.
    """
    if isinstance(backend, Authenticator):
        return backend
    if callable(getattr(backend, "authenticate_request", None)):
        return RequestAuthAdapter(backend, insecure=insecure)  # type: ignore[arg-type]
    raise TypeError(
        f"auth_backend must be a name, an Authenticator, or an object with oras-py's "
        f"authenticate_request(); got {type(backend).__name__}"
    )
