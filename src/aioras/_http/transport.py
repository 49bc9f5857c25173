"""The transport: the one owner of the ``httpx.AsyncClient``.

It sends every registry request and handles what no caller should see: the 401 challenge
and its answer, redirects, retries with jittered exponential backoff and ``Retry-After``,
and the mapping of httpx failures and error responses to the typed exceptions of
:mod:`aioras.exceptions`. Bodies are read through :mod:`aioras._http.responses`: capped, and bounded
in time (see :class:`Transport`).

Credentials are scoped by origin, one rule for every request and every redirect hop: the
origin a call was made for (see :attr:`Transport.registries`) gets the authenticator's
``Authorization`` and the session headers; any other origin (an upload or mount
``Location``, a redirect to storage) gets neither, only the request's own headers minus
credential headers, and a challenge from it is answered by :class:`AnonymousAuth`.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import httpx

from .. import defaults
from .. import exceptions as exc
from ..auth import Authenticator, scopes_for_request
from ..auth.authenticator import AnonymousAuth
from ..urls import Origin, origin, redact, resolve_location
from .headers import CREDENTIAL_HEADERS, check_header, check_headers, scrub
from .netbackend import http_transport, ssl_context
from .ratelimit import HostPacer
from .responses import Deadline, read_capped, read_paced, send_within

__all__ = [
    "Body",
    "BodyFactory",
    "RetryPolicy",
    "Transport",
    "raise_for_status",
    "read_capped",
    "wrap_http_error",
]

logger = logging.getLogger(__name__)

BodyFactory = Callable[[], AsyncIterator[bytes]]
"""Makes a fresh body stream each call, so a request can be replayed (auth, retries)."""
Body = bytes | BodyFactory | None

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_MAX_REDIRECTS = 10


@dataclass(frozen=True)
class RetryPolicy:
    """When and how often aioras retries, resumes or restarts after a fault.

    **Per request** (the transport): connection errors, timeouts, a response body that
    breaks off, and the ``statuses`` (408, 429, 500, 502, 503, 504) are retried for requests
    that are idempotent and whose body can be replayed (GET, HEAD, DELETE, PUT of a
    manifest; never the PATCH or PUT of a blob upload), at most ``attempts`` times
    (default 5; retries, not counting the first try); a refused connection once.
    Never retried: TLS verification failures, a host name that does not resolve, TLS
    spoken to a plain http server, 401 after credentials were answered, 403, and other
    4xx. The delay before retry ``n`` (from 0) is ``backoff * 2**n`` (0.25 s doubling)
    capped at ``max_backoff`` (3 s), times a random factor in ``[1 - jitter, 1 + jitter]``
    (20 %); a ``Retry-After`` header replaces it, capped at ``max_retry_after`` (60 s).

    **Per transfer** (blob uploads and downloads, on top of the per-request retries): a
    transfer that breaks off is resumed or restarted (default ``resumes`` 5): a chunked
    upload asks the registry where it stands and continues, a monolithic upload restarts
    its session, a download continues with ``Range`` where the registry allows it. An
    upload gives up after ``resumes`` failures in a row with no bytes landed in between, or
    when it would need more than ``resumes`` fresh sessions; a download after ``resumes``
    breaks.
    Content that fails verification (digest or size) is fetched again from scratch at most
    ``refetches`` times (default 2) before :class:`~aioras.exceptions.IntegrityError` is
    raised; bytes that fail verification are never kept.

    Worst case, a registry that stalls or trickles every request fails a call after about
    ``(attempts + 1) * timeout`` plus the backoffs (about 8 s); a transfer that keeps
    breaking off after ``(resumes + 1)`` times that.
    """

    attempts: int = 5
    backoff: float = 0.25
    max_backoff: float = 3.0
    jitter: float = 0.2
    max_retry_after: float = 60.0
    statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
    resumes: int = 5
    refetches: int = 2

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base: float = min(self.backoff * 2.0**retry, self.max_backoff)
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=0)
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=15.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=32)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _ssl_context(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext:
    return verify if isinstance(verify, ssl.SSLContext) else ssl_context(verify)


def _is_verification_failure(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(error)


def wrap_http_error(
    error: httpx.HTTPError, method: str, url: str, *, what: str = ""
) -> exc.TransportError:
    """The typed aioras error for an httpx failure (raise it ``from error``).

    Timeouts become :class:`~aioras.exceptions.TimeoutError`, failed connections
    :class:`~aioras.exceptions.ConnectError`, anything else
    :class:`~aioras.exceptions.TransportError`. ``what`` replaces ``METHOD URL`` at the
    start of the message; the URL is redacted either way. Quoted values (the header line
    or value httpx and h11 choke on, which may hold a token) are scrubbed from the message
    and from ``error`` and its causes, so a traceback shows none either.
    """
    where = what or f"{method} {redact(url)}"
    _scrub_chain(error)
    if isinstance(error, httpx.TimeoutException):
        return exc.TimeoutError(
            f"{where}: timed out ({type(error).__name__})", method=method, url=redact(url)
        )
    if isinstance(error, httpx.ConnectError):
        hint = _connect_hint(connect_failure(error), url)
        if hint:
            return exc.ConnectError(f"{where}: {hint}", method=method, url=redact(url))
        if _is_verification_failure(error):
            return exc.ConnectError(
                f"{where}: TLS certificate verification failed; pass tls_verify=<CA bundle path>"
                " to trust a private CA, or tls_verify=False to skip verification",
                method=method,
                url=redact(url),
            )
        return exc.ConnectError(
            f"{where}: cannot connect ({error})", method=method, url=redact(url)
        )
    return exc.TransportError(
        f"{where}: {type(error).__name__}: {error}", method=method, url=redact(url)
    )


# What OpenSSL says when the peer answered a ClientHello in plain http.
_PLAIN_HTTP_SIGNS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST")
# Connection refused is retried this often (after about 0.25 s), not the whole ladder: a
# registry restarting comes back quickly, a wrong port never does.
_REFUSED_RETRIES = 1


def connect_failure(error: BaseException) -> str:
    """Why a connection failed: ``"refused"``, ``"unresolved"``, ``"plain-http"`` or ``""``."""
    seen: BaseException | None = error
    depth = 0
    while seen is not None and depth < 16:
        if isinstance(seen, ConnectionRefusedError):
            return "refused"
        if isinstance(seen, socket.gaierror):
            return "unresolved"
        if isinstance(seen, ssl.SSLError) and any(s in str(seen) for s in _PLAIN_HTTP_SIGNS):
            return "plain-http"
        seen = seen.__cause__ or seen.__context__
        depth += 1
    return ""


def _connect_hint(kind: str, url: str) -> str:
    parts = urlsplit(redact(url))
    host = parts.netloc.rpartition("@")[2]
    if kind == "refused":
        return (
            f"nothing listens on {host} (connection refused); check the host and port, "
            "and that the registry is running"
        )
    if kind == "unresolved":
        return f"the host name {parts.hostname} does not resolve; check the registry's name"
    if kind == "plain-http":
        return (
            f"TLS handshake failed: {host} speaks plain http, not https; pass insecure=True "
            "(--plain-http on the command line) to use http"
        )
    return ""


def _scrub_chain(error: BaseException) -> None:
    """Scrub quoted values from the messages of ``error`` and the exceptions behind it."""
    seen: BaseException | None = error
    depth = 0
    while seen is not None and depth < 16:
        if not isinstance(seen, OSError) and seen.args and isinstance(seen.args[0], str):
            seen.args = (scrub(seen.args[0]), *seen.args[1:])
        seen = seen.__cause__ or seen.__context__
        depth += 1


class Transport:
    """Sends registry requests through one pooled ``httpx.AsyncClient``.

    The client is created on first use inside the running event loop and closed by
    :meth:`aclose`. ``transport`` substitutes the httpx transport (tests use it for faults
    a real server will not produce on demand).

    ``registries`` holds the origins credentials and session ``headers`` may go to
    (:class:`~aioras.AsyncRegistry` adds each registry a reference names). A request to
    another origin is sent without them. None, the default, trusts the origin of the URL
    each :meth:`send` is given (still not where it redirects to).

    ``timeout`` (seconds, or an ``httpx.Timeout``) bounds every wait for the network: a
    connection, a write, a read, a pooled connection. Its read timeout ``T`` bounds more
    than one read, so that a server trickling a byte now and then cannot hold a call: the
    answer to a request, once sent, must be complete within ``T`` (its headers, and its
    body unless it is a blob), and a blob body must average at least
    :data:`~aioras.defaults.min_blob_rate` bytes per second over each ``T``-second window.
    A request failing either is retried like any timeout, then raises
    :class:`~aioras.exceptions.TimeoutError`.
    """

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        verify: bool | str | ssl.SSLContext = True,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        headers: Mapping[str, str] | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        proxy: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.auth = authenticator
        self.retry = retry
        self.headers: dict[str, str] = dict(headers or {})
        check_headers(self.headers)
        self.registries: set[Origin] | None = None
        self._anonymous = AnonymousAuth(insecure=authenticator.insecure)
        self._verify = _ssl_context(verify)
        self._timeout = timeout
        self._limits = limits
        self._proxy = proxy
        self._custom_transport = transport
        self._client: httpx.AsyncClient | None = None
        self.pacer: HostPacer | None = None
        """Rate limits per host, shared pauses, request counts (:mod:`aioras._http.ratelimit`)."""

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client, created on first use."""
        if self._client is None or self._client.is_closed:
            transport = self._custom_transport or http_transport(
                verify=self._verify, limits=self._limits, proxy=self._proxy
            )
            # trust_env=False: no .netrc credentials or proxy settings slip in unseen.
            # Accept-Encoding: only the codings aioras._http.responses inflates in bounded steps.
            self._client = httpx.AsyncClient(
                headers={"Accept-Encoding": "gzip, deflate"},
                follow_redirects=False,
                trust_env=False,
                timeout=self._timeout,
                verify=self._verify,
                transport=transport,
            )
        return self._client

    async def set_verify(self, verify: bool | str | ssl.SSLContext) -> None:
        """Verify TLS this way from now on; open connections are closed, tokens are kept."""
        self._verify = _ssl_context(verify)
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled client and its connections."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def add_registry(self, url: str) -> None:
        """Let requests to the origin of ``url`` carry credentials and session headers."""
        if self.registries is None:
            self.registries = set()
        self.registries.add(origin(url))

    def _home(self, url: str) -> Origin | None:
        """The origin credentials may go to during a call to ``url``, or None for none."""
        home = origin(url)
        return home if self.registries is None or home in self.registries else None

    def _authenticator(self, trusted: bool) -> Authenticator:
        if trusted:
            return self.auth
        # A plain http registry permits plain http realms for anonymous tokens too.
        self._anonymous.insecure = self.auth.insecure
        return self._anonymous

    def _headers_for(self, trusted: bool, headers: Mapping[str, str] | None) -> dict[str, str]:
        """The headers of one request: the session's only for the registry's own origin.

        Another origin keeps the request's own headers (``Content-Range``, ``Accept``...)
        minus credentials, and of the session headers only ``User-Agent``. Every value is
        checked: one a header cannot carry raises
        :class:`~aioras.exceptions.InvalidHeaderValue` without showing it.
        """
        if trusted:
            merged = {**self.headers, **(headers or {})}
        else:
            merged = {k: v for k, v in self.headers.items() if k.lower() == "user-agent"}
            merged.update(
                (k, v) for k, v in (headers or {}).items() if k.lower() not in CREDENTIAL_HEADERS
            )
        check_headers(merged)
        return merged

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        scopes: tuple[str, ...] | None = None,
        stream: bool = False,
        retry: bool | None = None,
        follow_redirects: bool = True,
        max_body: int | None = defaults.max_response_size,
    ) -> httpx.Response:
        """Send one logical request; return the final response, whatever its status.

        Authentication, redirects and retries happen inside. An error response's body
        (status 400 and up) is always read, its first 64 KiB only
        (:data:`~aioras.defaults.max_error_body`). Otherwise, with ``stream=True`` the body
        is left unread and the caller must close the response (``await r.aclose()``);
        without, it is read whole: at most ``max_body`` bytes (16 MiB by default), or, with
        ``max_body=None`` (a blob), held to the minimum blob rate instead.
        ``retry`` defaults to True for idempotent methods. Raises
        :class:`~aioras.exceptions.ResponseTooLarge` for a body over ``max_body``,
        :class:`~aioras.exceptions.AuthenticationError` when the registry still answers 401
        after the challenge was answered (:class:`~aioras.exceptions.CredentialsNotForwarded`
        when another origin than the registry's wants credentials),
        :class:`~aioras.exceptions.InvalidHeaderValue` for a header value that cannot be
        sent, and a :class:`~aioras.exceptions.TransportError` when no answer came
        (:class:`~aioras.exceptions.TimeoutError` when it came too slowly).
        """
        method = method.upper()
        scopes = scopes_for_request(method, url) if scopes is None else scopes
        home = self._home(url)
        retry_on = (method in _IDEMPOTENT) if retry is None else retry
        current_url, current_method, current_body = url, method, body
        retries = auth_rounds = redirects = 0
        client = self.client
        while True:
            # One rule for every request and redirect hop: credentials and session
            # headers go to the origin the call was made for, and to no other.
            trusted = home is not None and origin(current_url) == home
            auth = self._authenticator(trusted)
            host = urlsplit(url if trusted else current_url).netloc
            request_headers = self._headers_for(trusted, headers)
            sent_auth = await auth.authorize(client, host, scopes)
            if sent_auth:
                request_headers["Authorization"] = check_header("Authorization", sent_auth)
            content = current_body() if callable(current_body) else current_body
            request = client.build_request(
                current_method, current_url, headers=request_headers, content=content
            )
            target_host = urlsplit(current_url).netloc
            if self.pacer is not None:
                await self.pacer.before(target_host, current_method)
            deadline = Deadline.of(client.timeout)
            try:
                response = await send_within(client, request, deadline)
            except httpx.HTTPError as error:
                wrapped = wrap_http_error(error, current_method, current_url)
                verification = isinstance(error, httpx.ConnectError) and _is_verification_failure(
                    error
                )
                # A request this side could not even encode fails the same way every time,
                # and so do a name that does not resolve and TLS spoken to plain http.
                local = isinstance(error, httpx.LocalProtocolError)
                failure = connect_failure(error) if isinstance(error, httpx.ConnectError) else ""
                hopeless = failure in ("unresolved", "plain-http") or (
                    failure == "refused" and retries >= _REFUSED_RETRIES
                )
                if (
                    retry_on
                    and not (verification or local or hopeless)
                    and retries < self.retry.attempts
                ):
                    delay = self.retry.delay(retries)
                    logger.debug("%s; retry %d in %.2fs", wrapped, retries + 1, delay)
                    retries += 1
                    await anyio.sleep(delay)
                    continue
                raise wrapped from error
            status = response.status_code
            logger.debug("%s %s -> %d", current_method, redact(current_url), status)
            if self.pacer is not None:
                self.pacer.after(target_host, status, response.headers)

            if status == 401:
                buffered = httpx.Response(
                    401,
                    headers=_decoded_headers(response.headers),
                    content=await _error_body(response, deadline),
                    request=request,
                )
                if auth_rounds < 2 and await auth.on_unauthorized(
                    client, host, scopes, buffered, sent_auth
                ):
                    auth_rounds += 1
                    continue
                codes = [e.code for e in exc.parse_error_body(buffered.content)]
                raise exc.AuthenticationError(
                    f"{current_method} {redact(current_url)}: HTTP 401, credentials "
                    + ("refused" if sent_auth else "required"),
                    status_code=401,
                    codes=codes,
                )

            if status in _REDIRECTS and follow_redirects and "location" in response.headers:
                await response.aclose()
                redirects += 1
                if redirects > _MAX_REDIRECTS:
                    raise exc.TransportError(
                        f"{method} {redact(url)}: more than {_MAX_REDIRECTS} redirects",
                        method=method,
                        url=redact(url),
                    )
                next_url = resolve_location(current_url, response.headers["location"])
                if status == 303 or (status in (301, 302) and current_method == "POST"):
                    current_method, current_body = "GET", None
                current_url = next_url
                continue

            if status in self.retry.statuses and retry_on and retries < self.retry.attempts:
                wait = self.retry.delay(
                    retries, parse_retry_after(response.headers.get("retry-after"))
                )
                await _error_body(response, deadline)
                logger.debug(
                    "%s %s -> %d; retry %d in %.2fs",
                    current_method,
                    redact(current_url),
                    status,
                    retries + 1,
                    wait,
                )
                retries += 1
                await anyio.sleep(wait)
                continue

            if "warning" in response.headers:
                for warning in response.headers.get_list("warning"):
                    logger.warning("registry warning for %s: %s", redact(current_url), warning)
            if not stream or status >= 400:
                try:
                    if status >= 400:
                        # An error body is the server's to size: keep 64 KiB of it (enough
                        # for the OCI error codes) and drop the connection, not read a flood.
                        body = await read_capped(
                            response, defaults.max_error_body, truncate=True, deadline=deadline
                        )
                    elif max_body is None:
                        body = await read_paced(response)
                    else:
                        body = await read_capped(response, max_body, deadline=deadline)
                except httpx.HTTPError as error:
                    # The body (an error's too) broke off: the answer did not arrive, which
                    # for a replayable request is one more fault like a reset before the
                    # headers, and otherwise a TransportError rather than the server's word.
                    wrapped = wrap_http_error(error, current_method, current_url)
                    if retry_on and retries < self.retry.attempts:
                        delay = self.retry.delay(retries)
                        logger.debug("%s; retry %d in %.2fs", wrapped, retries + 1, delay)
                        retries += 1
                        await response.aclose()
                        await anyio.sleep(delay)
                        continue
                    raise wrapped from error
                return _buffered(response, body)
            return response


def _buffered(response: httpx.Response, body: bytes) -> httpx.Response:
    """A closed ``response`` again, holding ``body`` (read capped, and decoded)."""
    kept = httpx.Response(
        response.status_code,
        headers=_decoded_headers(response.headers),
        content=body,
        request=response.request,
        extensions=response.extensions,
    )
    with contextlib.suppress(RuntimeError):  # unset for a body that came already read
        kept.elapsed = response.elapsed
    return kept


def _decoded_headers(headers: httpx.Headers) -> httpx.Headers:
    """``headers`` for a body kept decoded: no ``Content-Encoding``, no stale length."""
    kept = httpx.Headers(headers)
    if kept.pop("content-encoding", None) is not None:
        kept.pop("content-length", None)
    return kept


async def _error_body(response: httpx.Response, deadline: Deadline | None = None) -> bytes:
    """The first 64 KiB of an error body; nothing when it breaks off.

    A broken error body must not hide the status that matters.
    """
    try:
        return await read_capped(
            response, defaults.max_error_body, truncate=True, deadline=deadline
        )
    except httpx.HTTPError:
        return b""


async def raise_for_status(
    response: httpx.Response,
    expected: tuple[int, ...] = (200,),
    *,
    what: str = "",
) -> None:
    """Raise the typed error for ``response`` unless its status is one of ``expected``.

    Reads at most 64 KiB of the error body (for its OCI error codes) and closes the
    response before raising.
    """
    if response.status_code in expected:
        return
    body = await _error_body(response)
    raise exc.error_for_status(
        response.status_code,
        method=response.request.method,
        url=redact(str(response.request.url)),
        body=body,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        what=what,
    )
