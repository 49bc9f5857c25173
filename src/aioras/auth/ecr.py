"""The ``ecr`` backend: Amazon ECR credentials from the AWS API, through boto3.

Install with ``pip install 'aioras[ecr]'``. For a private ECR host
(``<account>.dkr.ecr.<region>.amazonaws.com``) the backend asks ECR's
``GetAuthorizationToken`` for that account and region and sends the answer (user ``AWS``,
a 12-hour password) as basic credentials from the first request. For ``public.ecr.aws`` it
asks ECR Public (region ``us-east-1``) and uses the answer to obtain bearer tokens. Tokens
are cached until shortly before ``expiresAt``; a refused one is fetched again once.

boto3 finds AWS credentials the usual way (environment, shared config, instance role);
pass ``boto3_session`` to choose a profile or region yourself. Other hosts get the
ordinary behaviour of the ``token`` backend, with explicit credentials and Docker configs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import importlib
import logging
import re
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, ClassVar

import anyio
import anyio.to_thread

from ..exceptions import AuthenticationError
from . import utils as auth_utils
from .authenticator import Ask, Refusal, forget_host
from .credentials import Credentials
from .token import TokenAuth

__all__ = ["ECR_PUBLIC_HOST", "EcrAuth", "parse_ecr_host"]

logger = logging.getLogger(__name__)

ECR_PUBLIC_HOST = "public.ecr.aws"
_ECR_PUBLIC_REGION = "us-east-1"
_PRIVATE_HOST = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
)
_ECR_REALM = re.compile(r"https://\d{12}\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/")
# Refresh this long before ECR says the token expires, so no request carries a dying one.
_REFRESH_MARGIN = dt.timedelta(minutes=5)


def parse_ecr_host(host: str) -> tuple[str, str] | None:
    """``(account, region)`` of a private ECR registry host, or None for any other host."""
    match = _PRIVATE_HOST.fullmatch(host.split(":", 1)[0].lower())
    if match is None:
        return None
    return match["account"], match["region"]


def _import_boto3() -> ModuleType:
    try:
        return importlib.import_module("boto3")
    except ImportError:
        raise ImportError(
            "the 'ecr' auth backend needs boto3: install it with pip install 'aioras[ecr]'"
        ) from None


class EcrAuth(TokenAuth):
    """Authentication for Amazon ECR registries, with AWS credentials via boto3.

    ``boto3_session`` is a ``boto3.Session`` to create clients from (default: boto3's
    default session). Raises `ImportError` at construction when boto3 is not
    installed; `lookup_credentials` raises
    [`AuthenticationError`][aioras.exceptions.AuthenticationError] when the AWS call fails (the
    message names the error code, never a credential).
    """

    # A boto3 session (and the module) do not pickle: a backend sent to another process
    # uses boto3's default session there, which reads the AWS credentials where they live.
    _runtime_state: ClassVar[Mapping[str, Callable[[], Any]]] = {
        **TokenAuth._runtime_state,
        "_boto3": _import_boto3,
        "_session": lambda: None,
        "_ecr_tokens": dict,
        "_ecr_locks": dict,
        "_tokens": dict,
    }

    def __init__(self, *, insecure: bool = False, boto3_session: Any = None) -> None:
        super().__init__(insecure=insecure)
        self._boto3 = _import_boto3()
        self._session = boto3_session
        self._ecr_tokens: dict[str, tuple[dt.datetime, Credentials]] = {}
        self._ecr_locks: dict[str, anyio.Lock] = {}
        # oras-py's protocol: ECR authorization tokens by challenge realm.
        self._tokens: dict[str, str] = {}

    def _client(self, service: str, region: str) -> Any:
        factory = self._session if self._session is not None else self._boto3
        return factory.client(service, region_name=region)

    def _get_authorization(self, host: str) -> tuple[dt.datetime, Credentials]:
        """Call the AWS API (blocking: run in a worker thread)."""
        parsed = parse_ecr_host(host)
        if parsed is not None:
            account, region = parsed
            answer = self._client("ecr", region).get_authorization_token(registryIds=[account])
            data = (answer.get("authorizationData") or [{}])[0]
        else:
            answer = self._client("ecr-public", _ECR_PUBLIC_REGION).get_authorization_token()
            data = answer.get("authorizationData") or {}
        encoded = data.get("authorizationToken")
        try:
            username, _, password = base64.b64decode(encoded or "").decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, TypeError):
            username = password = ""
        if not username or not password:
            raise AuthenticationError(f"ECR returned no usable authorization token for {host}")
        expires = data.get("expiresAt")
        if not isinstance(expires, dt.datetime):
            expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        elif expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
        return expires, Credentials(username=username, password=password)

    async def ecr_credentials(self, host: str) -> Credentials:
        """The ECR credentials for ``host`` (cached until shortly before they expire)."""
        cached = self._ecr_tokens.get(host)
        if cached and cached[0] - _REFRESH_MARGIN > dt.datetime.now(dt.UTC):
            return cached[1]
        async with self._ecr_locks.setdefault(host, anyio.Lock()):
            cached = self._ecr_tokens.get(host)
            if cached and cached[0] - _REFRESH_MARGIN > dt.datetime.now(dt.UTC):
                return cached[1]
            logger.debug("asking AWS for an ECR authorization token for %s", host)
            try:
                expires, creds = await anyio.to_thread.run_sync(self._get_authorization, host)
            except AuthenticationError:
                raise
            except Exception as error:
                # botocore errors carry a code; their text may quote request details.
                code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
                raise AuthenticationError(
                    f"cannot get an ECR authorization token for {host}: "
                    f"{type(error).__name__}{f' ({code})' if code else ''}"
                ) from None
            self._ecr_tokens[host] = (expires, creds)
            return creds

    def authenticate_request(
        self, original: Any, headers: dict[str, str] | None = None, refresh: bool = False
    ) -> tuple[dict[str, str], bool]:
        """oras-py's protocol: answer an ECR challenge with ECR's token; blocking.

        A challenge whose service is not ``ecr.amazonaws.com`` goes to the token backend.
        The token is kept per realm; ``refresh`` asks AWS again.
        """
        result = dict(headers or {})
        raw = original.headers.get("Www-Authenticate")
        if not raw:
            return result, False
        h = auth_utils.parse_auth_header(raw)
        if h.service != "ecr.amazonaws.com" or h.realm is None:
            return super().authenticate_request(original, headers, refresh)
        token = self._tokens.get(h.realm)
        if not token or refresh:
            match = _ECR_REALM.fullmatch(h.realm)
            if match is None:
                return super().authenticate_request(original, headers, refresh)
            answer = self._client("ecr", match["region"]).get_authorization_token()
            token = str((answer.get("authorizationData") or [{}])[0].get("authorizationToken", ""))
            self._tokens[h.realm] = token
        result["Authorization"] = f"Basic {token}"
        return result, True

    @staticmethod
    def is_ecr_host(host: str) -> bool:
        """True for private ECR hosts and ``public.ecr.aws``."""
        return parse_ecr_host(host) is not None or host.lower() == ECR_PUBLIC_HOST

    async def lookup_credentials(self, host: str) -> Credentials | None:
        """Explicit credentials first, then ECR's for ECR hosts, then the other sources."""
        explicit = self._explicit_for(host)
        if explicit is not None:
            return explicit
        if self.is_ecr_host(host):
            return await self.ecr_credentials(host)
        return await super().lookup_credentials(host)

    def forget(self, host: str | None = None) -> None:
        super().forget(host)
        forget_host(self._ecr_tokens, host)

    def _explicit_for(self, host: str) -> Credentials | None:
        for key in (host, None):
            creds = self._explicit.get(key)
            if creds:
                return creds
        return None

    async def _authorize(self, ask: Ask) -> str | None:
        # Private ECR always answers with a basic challenge: skip that round trip.
        if parse_ecr_host(ask.host) is not None and self._explicit_for(ask.host) is None:
            return (await self.ecr_credentials(ask.host)).basic_header()
        return await super()._authorize(ask)

    async def _answer(self, refusal: Refusal) -> bool:
        host, sent = refusal.host, refusal.sent
        if (
            parse_ecr_host(host) is not None
            and self._explicit_for(host) is None
            and sent
            and sent.startswith("Basic ")
        ):
            # Revoked or rotated early: fetch a new token once, then give up.
            self._ecr_tokens.pop(host, None)
            fresh = await self.ecr_credentials(host)
            return fresh.basic_header() != sent
        return await super()._answer(refusal)
