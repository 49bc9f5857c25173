"""``Session``: the request plumbing every store of one registry client shares.

URLs for a registry (``http`` or ``https`` by the client's ``insecure`` flag, the origin
trusted with credentials), one send that tells a web server from a registry, and the check
of a plain status. Built from a `Transport` alone, so each
store (blobs, manifests, tags) can be built and tested with one.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from .. import exceptions as exc
from .._http.transport import Transport
from .._http.urls import redact
from .._signatures import same_parameters_as

__all__ = ["SendFn", "Session", "check_200_response"]


class SendFn(Protocol):
    """The shape of `Session.send` (and `Transport.send`): what uploads and downloads call."""

    @same_parameters_as(Transport.send)
    def __call__(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, httpx.Response]: ...


class Session:
    """Sends a registry client's requests over ``transport``; see the module docstring."""

    def __init__(self, transport: Transport, *, insecure: bool = False) -> None:
        self.transport = transport
        self.insecure = insecure
        # Per server: why it is not an OCI registry ("" when it is, or may be).
        self._verdicts: dict[str, str] = {}

    @property
    def prefix(self) -> str:
        """``http`` or ``https``, after ``insecure``."""
        return "http" if self.insecure else "https"

    def url(self, path: str) -> str:
        """The URL of ``host/path``; its origin is trusted with credentials from now on."""
        url = f"{self.prefix}://{path}"
        self.transport.add_registry(url)
        return url

    @same_parameters_as(Transport.send)
    async def send(self, method: str, url: str, **options: Any) -> httpx.Response:
        """Send one request as `Transport.send` does; a web server's 404 raises NotARegistry."""
        response = await self.transport.send(method, url, **options)
        if response.status_code == 404 and "html" in response.headers.get("content-type", ""):
            try:
                await self._check_is_registry(url)
            except exc.NotARegistry:
                await response.aclose()
                raise
        return response

    async def _check_is_registry(self, url: str) -> None:
        """Raise NotARegistry when ``GET /v2/`` of ``url``'s server answers 404 or HTML.

        Asked once per server, after a 404 with an HTML page (registries answer errors in
        JSON, web servers and proxies in HTML). An answer that needs credentials, or none at
        all, leaves the 404 to speak for itself.
        """
        parts = urlsplit(url)
        if not parts.path.startswith("/v2/") or parts.path == "/v2/":
            return
        verdict = self._verdicts.get(parts.netloc)
        if verdict is None:
            try:
                probe = await self.transport.send(
                    "GET", f"{parts.scheme}://{parts.netloc}/v2/", retry=False
                )
            except exc.OrasError:
                probe = None
            verdict = ""
            if probe is not None:
                html = "html" in probe.headers.get("content-type", "").lower()
                if probe.status_code == 404 or (probe.status_code < 300 and html):
                    verdict = f"GET /v2/ answered {probe.status_code}" + (
                        " with an HTML page" if html else ""
                    )
            self._verdicts[parts.netloc] = verdict
        if verdict:
            raise exc.NotARegistry(
                f"{parts.netloc} is not an OCI registry ({verdict}); check the host and port",
                status_code=404,
                url=redact(url),
            )


def check_200_response(response: httpx.Response) -> None:
    """Raise the typed error for ``response`` unless its status is 200, 201 or 202."""
    if response.status_code in (200, 201, 202):
        return
    try:
        body = response.content
    except httpx.ResponseNotRead:
        body = b""
    raise exc.error_for_status(
        response.status_code,
        method=response.request.method,
        url=redact(str(response.request.url)),
        body=body,
    )
