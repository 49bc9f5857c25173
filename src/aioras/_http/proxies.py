"""Proxies from the environment, chosen per request as requests chooses them.

`proxy_for` picks the proxy of one URL: none for a host ``no_proxy`` names, else
``https_proxy`` for https and ``http_proxy`` for http URLs, else ``all_proxy``.
`EnvironmentProxies` is an httpx transport that sends each request through the
proxy `proxy_for` picks (or directly), one pooled transport per proxy.
"""

from __future__ import annotations

import ssl

import httpx

from .._environment import Environment
from .netbackend import http_transport

__all__ = ["EnvironmentProxies", "bypasses_proxy", "proxy_for"]


def bypasses_proxy(no_proxy: str | None, host: str, port: int | None) -> bool:
    """True when ``no_proxy`` (comma-separated hosts, domains, or ``*``) covers the host.

    An entry matches the host itself, ``host:port``, or any host in its domain
    (``example.com`` and ``.example.com`` both cover ``reg.example.com``).
    """
    host = host.lower().strip("[]")
    for raw in (no_proxy or "").replace(" ", "").split(","):
        entry = raw.lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and port is not None and entry_port != str(port):
            continue
        domain = (name or entry).lstrip(".")
        if host == domain or host.endswith("." + domain):
            return True
    return False


def proxy_for(environment: Environment, url: httpx.URL) -> str | None:
    """The proxy URL for a request to ``url``, or None to connect directly."""
    if bypasses_proxy(environment.no_proxy, url.host, url.port):
        return None
    scheme_proxy = environment.https_proxy if url.scheme == "https" else environment.http_proxy
    return scheme_proxy or environment.all_proxy


class EnvironmentProxies(httpx.AsyncBaseTransport):
    """Sends each request directly or through the proxy the environment names for it.

    Transports are made on first use and dropped at `aclose`, so the object serves
    again after being closed.
    """

    def __init__(
        self, environment: Environment, *, verify: ssl.SSLContext, limits: httpx.Limits
    ) -> None:
        self.environment = environment
        self._verify = verify
        self._limits = limits
        self._transports: dict[str | None, httpx.AsyncBaseTransport] = {}

    def set_verify(self, verify: ssl.SSLContext) -> None:
        """Use this TLS context for connections made from now on (after `aclose`)."""
        self._verify = verify

    def _for(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        proxy = proxy_for(self.environment, url)
        transport = self._transports.get(proxy)
        if transport is None:
            transport = http_transport(verify=self._verify, limits=self._limits, proxy=proxy)
            self._transports[proxy] = transport
        return transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._for(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            await transport.aclose()
