"""Authentication backends, credentials and challenge parsing.

``get_auth_backend(name)`` builds a backend by its oras-py name: ``"token"`` (default:
answers basic and bearer challenges), ``"basic"`` (sends basic credentials up front). A
custom backend is any :class:`Authenticator` subclass, passed as ``auth_backend=``.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import AuthenticationError, AuthenticationException
from .authenticator import Authenticator, BasicAuth, CredentialSource, Token, TokenAuth
from .challenge import Challenge, parse_www_authenticate
from .credentials import Credentials, merge_scopes, repository_scope, scopes_for_request

__all__ = [
    "AuthenticationError",
    "AuthenticationException",
    "Authenticator",
    "BasicAuth",
    "Challenge",
    "CredentialSource",
    "Credentials",
    "Token",
    "TokenAuth",
    "get_auth_backend",
    "merge_scopes",
    "parse_www_authenticate",
    "repository_scope",
    "scopes_for_request",
]

_BACKENDS: dict[str, type[Authenticator]] = {"token": TokenAuth, "basic": BasicAuth}


def get_auth_backend(
    name: str = "token", session: Any = None, insecure: bool = False, **kwargs: Any
) -> Authenticator:
    """Build the authentication backend called ``name``.

    ``session`` is accepted for oras-py compatibility and ignored: the transport owns the
    HTTP client. Raises :class:`ValueError` for an unknown name.
    """
    try:
        cls = _BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"unknown auth backend {name!r}; choose one of {sorted(_BACKENDS)} "
            "or pass an Authenticator instance"
        ) from None
    return cls(insecure=insecure, **kwargs)
