"""Authentication backends, credentials, credential helpers and challenge parsing.

``get_auth_backend(name)`` builds a backend by its oras-py name: ``"token"`` (default:
answers basic and bearer challenges), ``"basic"`` (sends basic credentials up front),
``"ecr"`` (Amazon ECR through boto3, ``pip install 'aioras[ecr]'``).

A custom backend is an `Authenticator` subclass. Pass an instance as
``AsyncRegistry(auth_backend=...)``, or register a factory under a name with
`register_auth_backend` so that ``auth_backend="name"`` finds it::

    class StaticToken(aioras.auth.Authenticator):
        def __init__(self, *, insecure: bool = False, token: str = "") -> None:
            super().__init__(insecure=insecure)
            self.token = token

        async def authorize(self, client, host, scopes):
            return f"Bearer {self.token}"

    aioras.auth.register_auth_backend("static", StaticToken)
    registry = aioras.AsyncRegistry("example.com", auth_backend="static")

A backend written for oras-py, with ``authenticate_request(original_response, headers,
refresh)`` returning ``(headers, retry)``, works as it is: pass it as ``auth_backend`` (it
is wrapped in a `RequestAuthAdapter`), or subclass `TokenAuth` and override
that method; it is called in a worker thread when the registry challenges. oras-py's
modules are here under their names: ``aioras.auth.token``, ``aioras.auth.basic``,
``aioras.auth.utils``, ``aioras.auth.ecr``.

Subclassing `TokenAuth` keeps the challenge handling and token cache and lets a
backend change only where credentials come from (override
`Authenticator.lookup_credentials`, as the ``ecr`` backend does). See ``docs/auth.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..exceptions import AuthenticationError, AuthenticationException
from .adapter import RequestAuthAdapter, as_authenticator
from .authenticator import Authenticator, CredentialSource, Token
from .basic import BasicAuth
from .challenge import Challenge, parse_www_authenticate
from .credentials import Credentials, merge_scopes, repository_scope, scopes_for_request
from .credhelpers import CredentialHelper, CredentialHelperError
from .dockerconfig import DockerConfigSource
from .ecr import EcrAuth
from .token import TokenAuth

__all__ = [
    "AuthenticationError",
    "AuthenticationException",
    "Authenticator",
    "BasicAuth",
    "Challenge",
    "CredentialHelper",
    "CredentialHelperError",
    "CredentialSource",
    "Credentials",
    "DockerConfigSource",
    "EcrAuth",
    "Token",
    "TokenAuth",
    "available_auth_backends",
    "get_auth_backend",
    "merge_scopes",
    "parse_www_authenticate",
    "RequestAuthAdapter",
    "as_authenticator",
    "register_auth_backend",
    "repository_scope",
    "scopes_for_request",
]

BackendFactory = Callable[..., Authenticator]

_BACKENDS: dict[str, BackendFactory] = {"token": TokenAuth, "basic": BasicAuth, "ecr": EcrAuth}


def register_auth_backend(name: str, factory: BackendFactory, *, replace: bool = False) -> None:
    """Make ``auth_backend=name`` build a backend with ``factory(insecure=..., **kwargs)``.

    ``factory`` is usually an `Authenticator` subclass. Raises `ValueError`
    when ``name`` is taken and ``replace`` is false.
    """
    if not name:
        raise ValueError("an auth backend needs a name")
    if name in _BACKENDS and not replace:
        raise ValueError(f"auth backend {name!r} is already registered (pass replace=True)")
    _BACKENDS[name] = factory


def available_auth_backends() -> list[str]:
    """The names ``get_auth_backend`` knows, sorted."""
    return sorted(_BACKENDS)


def get_auth_backend(
    name: str = "token", session: Any = None, insecure: bool = False, **kwargs: Any
) -> Authenticator:
    """Build the authentication backend called ``name``.

    ``session`` is accepted for oras-py compatibility and ignored: the transport owns the
    HTTP client. Other keyword arguments go to the backend (``ecr`` takes
    ``boto3_session``). Raises `ValueError` for an unknown name, and
    `ImportError` for ``ecr`` without boto3.
    """
    try:
        factory = _BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"unknown auth backend {name!r}; choose one of {available_auth_backends()} "
            "or pass an Authenticator instance"
        ) from None
    backend = factory(insecure=insecure, **kwargs)
    if not isinstance(backend, Authenticator):
        raise TypeError(f"auth backend {name!r} did not build an Authenticator")
    return backend
