"""oras-py's ``oras.auth.token``: the token backend, with oras-py's request protocol.

`TokenAuth` is aioras's default backend (`aioras.auth.authenticator.TokenAuth`)
plus oras-py's synchronous ``authenticate_request(original, headers, refresh)``,
``request_token`` and ``token``. A subclass that overrides ``authenticate_request``, as an
oras-py backend does, is asked on every challenge through that method (in a worker thread)
instead of the built-in token handling.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import httpx

from .. import defaults
from .._http.netbackend import deadline_transport
from .._http.urls import redact
from .._jsondoc import load_json
from . import authenticator
from . import utils as auth_utils
from .adapter import ask_backend, defines_own_protocol

__all__ = ["TokenAuth"]

logger = logging.getLogger(__name__)


class TokenAuth(authenticator.TokenAuth):
    """Answers basic and bearer challenges; speaks oras-py's protocol too.

    ``token`` is the bearer token oras-py's protocol last obtained (or set with
    `set_token_auth`); ``tls_verify`` is used for its token requests.
    """

    _runtime_state: ClassVar[Mapping[str, Callable[[], Any]]] = {
        **authenticator.TokenAuth._runtime_state,
        "_protocol_answers": dict,
    }

    def __init__(self, *, insecure: bool = False, clock: Callable[[], float] = time.monotonic):
        super().__init__(insecure=insecure, clock=clock)
        self.token: str | None = None
        self.tls_verify: bool | str = True
        self._protocol_answers: dict[str, str] = {}

    def _drop_credentials(self) -> None:
        super()._drop_credentials()
        self.token = None

    def set_token_auth(self, token: str) -> None:
        """Use ``token`` as the bearer token of oras-py's protocol."""
        self.token = token

    def authenticate_request(
        self, original: Any, headers: dict[str, str] | None = None, refresh: bool = False
    ) -> tuple[dict[str, str], bool]:
        """oras-py's protocol: the headers to retry ``original``'s request with, and whether to.

        Reads ``original.headers["Www-Authenticate"]``: a basic challenge is answered with the
        configured credentials, a bearer one with a token from the realm (anonymous when no
        credentials are set); ``refresh`` drops the kept token first. Blocking.
        """
        result = dict(headers or {})
        raw = original.headers.get("Www-Authenticate")
        if not raw:
            logger.debug("no Www-Authenticate in the response: cannot authenticate")
            return result, False
        if refresh:
            self.token = None
        creds = self.explicit_credentials(None)
        if raw.strip().lower().startswith("basic"):
            if creds is None or not creds.username:
                return result, False
            result["Authorization"] = creds.basic_header()
            return result, True
        if not self.token:
            self.token = self.request_token(auth_utils.parse_auth_header(raw))
        if not self.token:
            return result, False
        result["Authorization"] = f"Bearer {self.token}"
        return result, True

    def request_token(self, h: auth_utils.authHeader) -> str | None:
        """GET a token from the challenge's realm (with basic credentials when set); blocking.

        Returns None when the realm refuses or sends no token. An http realm is refused
        unless the backend is ``insecure``, so credentials never travel in clear text.
        """
        if not h.realm or (h.realm.startswith("http://") and not self.insecure):
            logger.debug("token realm %r refused", h.realm)
            return None
        params = {k: v for k, v in (("service", h.service), ("scope", h.scope)) if v}
        creds = self.explicit_credentials(None)
        auth = (creds.username, creds.password or "") if creds and creds.username else None
        body = _get_token_body(h.realm, params, auth, self.tls_verify)
        if body is None:
            return None
        try:
            doc = load_json(body)
        except ValueError:  # not JSON, or nested too deep
            logger.debug("token response from %s is not JSON", redact(h.realm))
            return None
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        return str(token) if token else None

    async def _authorize(self, ask: authenticator.Ask) -> str | None:
        if defines_own_protocol(self):
            return self._protocol_answers.get(ask.host)
        return await super()._authorize(ask)

    async def _answer(self, refusal: authenticator.Refusal) -> bool:
        if not defines_own_protocol(self):
            return await super()._answer(refusal)
        return await ask_backend(self, self._protocol_answers, refusal)


TOKEN_DEADLINE = 60.0
"""Seconds a token service has for its whole answer (the registry read timeout's default)."""


def _get_token_body(
    realm: str, params: dict[str, str], auth: tuple[str, str] | None, verify: bool | str
) -> bytes | None:
    """GET the realm's answer, at most [`max_token_size`][aioras.defaults.max_token_size] bytes of
    it.

    None when the realm refuses, sends more, or has not finished its answer within
    `TOKEN_DEADLINE` seconds (each read waits at most 5 s, but a realm trickling a
    byte now and then would otherwise hold the call). Unencoded bytes only, so the cap holds
    for what is kept; no ``.netrc`` or proxy from the environment (``trust_env=False``).
    """
    limit = defaults.max_token_size
    deadline = time.monotonic() + TOKEN_DEADLINE
    transport = deadline_transport(verify=verify, deadline=deadline)
    try:
        return _read_token_body(realm, params, auth, transport, limit)
    except httpx.TimeoutException:
        # A wait cut short by the deadline ends at it (give or take the clock's grain).
        if time.monotonic() < deadline - 0.1:
            raise  # one read's own timeout, as before
        logger.debug("token response from %s too slow", redact(realm))
        return None


def _read_token_body(
    realm: str,
    params: dict[str, str],
    auth: tuple[str, str] | None,
    transport: httpx.HTTPTransport,
    limit: int,
) -> bytes | None:
    with (
        httpx.Client(transport=transport, trust_env=False) as client,
        client.stream(
            "GET", realm, params=params, auth=auth, headers={"Accept-Encoding": "identity"}
        ) as response,
    ):
        if response.status_code != 200:
            logger.debug("token request answered %d", response.status_code)
            return None
        body = bytearray()
        for chunk in response.iter_raw():
            body += chunk
            if len(body) > limit:
                logger.debug("token response from %s exceeds %d bytes", redact(realm), limit)
                return None
        return bytes(body)
