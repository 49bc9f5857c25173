"""``RegistryCore``: what every part of :class:`~aioras.remote.registry.AsyncRegistry` shares.

``AsyncRegistry`` is composed of mixins, one module per concern (blobs, manifests, tags and
catalog, operations); each builds on this base: the attributes ``AsyncRegistry.__init__``
sets that they read, ``get_container``, the request plumbing (``_url``, ``_send``,
``_limiter``, ``_check_200_response``) and the generic requests (``do_request``, ``ping``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import anyio
import httpx

from .. import defaults
from .. import exceptions as exc
from .._http.responses import raise_for_status
from .._http.transport import Body, Transport
from .._http.urls import redact
from ..container import Container
from .repository import RepositoryState

if TYPE_CHECKING:
    from ._downloads import SharedDownload
    from ._uploads import UploadInFlight
    from .registry import AsyncRegistry

__all__ = ["ContainerLike", "RegistryCore"]

ContainerLike = str | Container


class RegistryCore:
    """The state and request plumbing shared by the endpoint mixins of ``AsyncRegistry``.

    Not used alone: ``AsyncRegistry.__init__`` sets the attributes declared here.
    """

    hostname: str | None
    pull_concurrency: int
    max_transfers: int
    download_ranges: int
    range_threshold: int
    chunk_size: int
    _transport: Transport
    _transfers: anyio.CapacityLimiter | None
    _uploading: dict[tuple[str, str, str], UploadInFlight]
    _downloading: dict[tuple[str, str, str], SharedDownload]
    _repositories: dict[str, RepositoryState]
    _registry_verdicts: dict[str, str]

    if TYPE_CHECKING:

        @property
        def prefix(self) -> str: ...

    @property
    def _registry(self) -> AsyncRegistry:
        # A mixin is only ever part of an AsyncRegistry: this is ``self``, typed as the
        # whole, for calls into another concern's methods and operations taking a registry.
        return cast("AsyncRegistry", self)

    def get_container(self, name: ContainerLike) -> Container:
        """Parse ``name`` into a :class:`Container`, defaulting to this object's hostname.

        Raises :class:`~aioras.exceptions.InvalidReference` for a malformed name.
        """
        if isinstance(name, Container):
            return name
        return Container(name, registry=self.hostname)

    def _url(self, path: str) -> str:
        url = f"{self.prefix}://{path}"
        self._transport.add_registry(url)
        return url

    def _check_200_response(self, response: httpx.Response) -> None:
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

    async def _limiter(self) -> anyio.CapacityLimiter:
        # Created lazily: a limiter belongs to the event loop that first uses it.
        if self._transfers is None:
            self._transfers = anyio.CapacityLimiter(self.max_transfers)
        return self._transfers

    async def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
        retry: bool | None = None,
        scopes: tuple[str, ...] | None = None,
        max_body: int | None = defaults.max_response_size,
    ) -> httpx.Response:
        response = await self._transport.send(
            method,
            url,
            headers=headers,
            body=body,
            stream=stream,
            retry=retry,
            scopes=scopes,
            max_body=max_body,
        )
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
        verdict = self._registry_verdicts.get(parts.netloc)
        if verdict is None:
            try:
                probe = await self._transport.send(
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
            self._registry_verdicts[parts.netloc] = verdict
        if verdict:
            raise exc.NotARegistry(
                f"{parts.netloc} is not an OCI registry ({verdict}); check the host and port",
                status_code=404,
                url=redact(url),
            )

    # -- generic request -----------------------------------------------------------------
    async def do_request(
        self,
        url: str,
        method: str = "GET",
        data: dict[str, Any] | bytes | None = None,
        headers: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send a request with authentication, redirects and retries; return the response.

        Unlike the endpoint methods this does not raise for an error status. With
        ``stream=True`` the caller must close the response (``await response.aclose()``);
        without, a body over 16 MiB (:data:`aioras.defaults.max_response_size`) raises
        :class:`~aioras.exceptions.ResponseTooLarge`: stream larger ones.
        The origin of ``url`` is treated as a registry: it gets credentials.
        """
        self._transport.add_registry(url)
        hdrs = dict(headers or {})
        body: bytes | None
        if json is not None:
            body = _json_bytes(json)
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(data, dict):
            body = httpx.QueryParams(data).__str__().encode()
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        else:
            body = data
        return await self._send(method, url, headers=hdrs, body=body, stream=stream)

    async def ping(self, hostname: str | None = None) -> httpx.Response:
        """``GET /v2/``: check the registry speaks the distribution API (authenticating)."""
        host = hostname or self.hostname
        if not host:
            raise ValueError("ping() needs a hostname")
        response = await self._send("GET", self._url(f"{host}/v2/"))
        await raise_for_status(response, (200,), what=f"registry {host}")
        return response


def _json_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()
