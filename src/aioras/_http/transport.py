"""The transport: the one owner of the ``httpx.AsyncClient``.

It sends every registry request and handles what no caller should see: the 401 challenge
and its answer, redirects, retries with jittered exponential backoff and ``Retry-After``,
and the mapping of httpx failures and error responses to the typed exceptions of
[`aioras.exceptions`][aioras.exceptions]. Bodies are read through `aioras._http.responses`: capped,
and bounded in time (see `Transport`).

`Transport.send` is layered as httpx's own send is, each layer one job, outside in:
the redirect layer (`Transport._follow`: one hop after another), the auth layer
(`Transport._authenticated`: a 401 challenge answered, then the hop sent again), the
retry layer (`Transport._retrying`: faults and retryable statuses, through one
`Retrying` per call) and one request (`Transport._send_one`:
credentials for the hop, the host's politeness (`aioras._http.ratelimit`), the send
within its deadline). The body of the final answer is read last (`Transport._read`);
one that breaks off sends the hop again.

Credentials are scoped by origin, one rule for every request and every redirect hop: the
origin a call was made for (see `Transport.registries`) gets the authenticator's
``Authorization`` and the session headers; any other origin (an upload or mount
``Location``, a redirect to storage) gets neither, only the request's own headers minus
credential headers, and a challenge from it is answered by `AnonymousAuth`.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from .. import defaults
from .. import exceptions as exc
from .._retry import DEFAULT_RETRY, Retrying, RetryPolicy
from ..auth import Authenticator, scopes_for_request
from ..auth.authenticator import AnonymousAuth
from .headers import CREDENTIAL_HEADERS, check_header, check_headers
from .netbackend import http_transport, ssl_context
from .ratelimit import MAX_WINDOW, HostPacer, Ticket
from .responses import (
    Deadline,
    buffered_response,
    connect_failure,
    decoded_headers,
    hung_up,
    is_verification_failure,
    read_capped,
    read_error_body,
    read_paced,
    send_within,
    wrap_http_error,
)
from .retry import parse_retry_after
from .urls import Origin, origin, redact, resolve_location

__all__ = ["DEFAULT_LIMITS", "DEFAULT_TIMEOUT", "Body", "BodyFactory", "Transport"]

logger = logging.getLogger(__name__)

BodyFactory = Callable[[], AsyncIterator[bytes]]
"""Makes a fresh body stream each call, so a request can be replayed (auth, retries)."""
Body = bytes | BodyFactory | None

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_MAX_REDIRECTS = 10
# A 401 is answered at most this often in one call (a token, then maybe a wider one).
_AUTH_ROUNDS = 2
# Connection refused is retried this often (after about 0.25 s), not the whole ladder: a
# registry restarting comes back quickly, a wrong port never does.
_REFUSED_RETRIES = 1
# A server that closes the connection before any byte of an answer: twice (about 0.75 s),
# enough to get past a stale pooled connection; a server that is no registry never answers.
_HANG_UP_RETRIES = 2

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=15.0)
# The pool must not queue a request the host's pacer let go: one held there past a
# Retry-After pause goes out after it, unpaced (a mirror at 20 ms each way through a 429 rate
# rule, 64 connections: a burst of 11 more 429s right after each pause). Requests in flight
# are bounded by each host's window (at most MAX_WINDOW), blob bodies by max_transfers: the
# pool's cap stays above both, a backstop rather than a limit. Idle connections kept: 64
# (was 32): across a network each one closed costs a round trip to open again, and an idle
# one costs nothing per request since the pool stopped polling them all (netbackend._Pool).
DEFAULT_LIMITS = httpx.Limits(
    max_connections=MAX_WINDOW + 4 * defaults.default_max_transfers, max_keepalive_connections=64
)


def _ssl_context(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext:
    return verify if isinstance(verify, ssl.SSLContext) else ssl_context(verify)


def _retryable(error: BaseException) -> bool:
    """Whether a failed send may be tried again (within the budget).

    A request this side could not even encode fails the same way every time, and so do a
    failed certificate check, a name that does not resolve and TLS spoken to plain http.
    """
    if isinstance(error, httpx.LocalProtocolError):
        return False
    if isinstance(error, httpx.ConnectError):
        if is_verification_failure(error):
            return False
        return connect_failure(error) not in ("unresolved", "plain-http")
    return True


def _congested(error: BaseException) -> bool:
    """Whether a failed send is a sign of strain (a timeout, a reset), not a cancel or a bug."""
    strain = httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
    return isinstance(error, strain)


def _quick_failure(error: BaseException) -> tuple[str, int] | None:
    """The kind of a failure retried only briefly, and its limit: refused, or hung up on."""
    if hung_up(error):
        return "hung up", _HANG_UP_RETRIES
    if isinstance(error, httpx.ConnectError) and connect_failure(error) == "refused":
        return "refused", _REFUSED_RETRIES
    return None


def _quick_limit_spent(call: _Call, error: BaseException) -> bool:
    """Count ``error`` in the call's streak; True once its kind's quick limit is spent.

    Only failures of one kind in a row count: a server that hangs up on every attempt is
    no registry, while one hang-up after a 503 or a reset (a flaky network, a stale pooled
    connection) still gets the whole retry budget.
    """
    quick = _quick_failure(error)
    if quick is None:
        call.streak = None
        return False
    kind, limit = quick
    count = call.streak[1] + 1 if call.streak and call.streak[0] == kind else 1
    call.streak = (kind, count)
    return count > limit


@dataclass
class _Call:
    """One logical request on its way: what was asked, where it is now, what it spent."""

    client: httpx.AsyncClient
    method: str
    url: str
    headers: Mapping[str, str] | None
    scopes: tuple[str, ...]
    home: Origin | None
    retries: Retrying
    stream: bool
    follow_redirects: bool
    max_body: int | None
    # The current hop (a redirect moves it).
    hop_method: str
    hop_url: str
    hop_body: Body
    redirects: int = 0
    auth_rounds: int = 0
    sent_auth: str | None = None
    deadline: Deadline | None = None
    ticket: Ticket | None = None
    # The last failures, if all of one quick kind (see _quick_failure): its name and count.
    streak: tuple[str, int] | None = None

    @property
    def trusted(self) -> bool:
        """True when the current hop is the origin the call was made for."""
        return self.home is not None and origin(self.hop_url) == self.home

    @property
    def auth_host(self) -> str:
        """The host whose credentials and tokens the current hop uses."""
        return urlsplit(self.url if self.trusted else self.hop_url).netloc

    def where(self) -> str:
        return f"{self.hop_method} {redact(self.hop_url)}"


class Transport:
    """Sends registry requests through one pooled ``httpx.AsyncClient``.

    The client is created on first use inside the running event loop and closed by
    `aclose`. ``transport`` substitutes the httpx transport (tests use it for faults
    a real server will not produce on demand).

    ``registries`` holds the origins credentials and session ``headers`` may go to
    ([`AsyncRegistry`][aioras.registry.AsyncRegistry] adds each registry a reference names). A
    request to another origin is sent without them. None, the default, trusts the origin of the URL
    each `send` is given (still not where it redirects to). ``headers`` is kept as
    given, not copied, so an owner that changes its dict later reaches every later request;
    ``pacer`` paces requests per host (None: no pacing).

    ``timeout`` (seconds, or an ``httpx.Timeout``) bounds every wait for the network: a
    connection, a write, a read, a pooled connection. Its read timeout ``T`` bounds more
    than one read, so that a server trickling a byte now and then cannot hold a call: the
    answer to a request, once sent, must be complete within ``T`` (its headers, and its
    body unless it is a blob), and a blob body must average at least
    [`min_blob_rate`][aioras.defaults.min_blob_rate] bytes per second over each ``T``-second window.
    A request failing either is retried like any timeout, then raises
    [`TimeoutError`][aioras.exceptions.TimeoutError].
    """

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        verify: bool | str | ssl.SSLContext = True,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        headers: dict[str, str] | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        proxy: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        registries: set[Origin] | None = None,
        pacer: HostPacer | None = None,
    ) -> None:
        self.auth = authenticator
        self.retry = retry
        self.headers: dict[str, str] = headers if headers is not None else {}
        check_headers(self.headers)
        self.registries = registries
        self._anonymous = AnonymousAuth(insecure=authenticator.insecure)
        self._verify = _ssl_context(verify)
        self._timeout = timeout
        self._limits = limits
        self._proxy = proxy
        self._custom_transport = transport
        self._client: httpx.AsyncClient | None = None
        # The client's own transport: registry requests, built whole by _prepare, go
        # straight to it (see send_within); the client serves token requests.
        self._sender: httpx.AsyncBaseTransport | None = None
        self._base_headers = httpx.Headers()
        self._timeouts: dict[str, float | None] = {}
        self.pacer = pacer
        """Rate limits per host, shared pauses, request counts (`aioras._http.ratelimit`)."""

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
            self._sender = transport
            self._base_headers = self._client.headers
            self._timeouts = self._client.timeout.as_dict()
        return self._client

    async def set_verify(self, verify: bool | str | ssl.SSLContext) -> None:
        """Verify TLS this way from now on; open connections are closed, tokens are kept."""
        self._verify = _ssl_context(verify)
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled client and its connections."""
        if self._client is not None:
            client, self._client = self._client, None
            self._sender = None
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
        [`InvalidHeaderValue`][aioras.exceptions.InvalidHeaderValue] without showing it.
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
        ([`max_error_body`][aioras.defaults.max_error_body]). Otherwise, with ``stream=True`` the
        body is left unread and the caller must close the response (``await r.aclose()``);
        without, it is read whole: at most ``max_body`` bytes (16 MiB by default), or, with
        ``max_body=None`` (a blob), held to the minimum blob rate instead.
        ``retry`` defaults to True for idempotent methods. Raises
        [`ResponseTooLarge`][aioras.exceptions.ResponseTooLarge] for a body over ``max_body``,
        [`AuthenticationError`][aioras.exceptions.AuthenticationError] when the registry still
        answers 401 after the challenge was answered
        ([`CredentialsNotForwarded`][aioras.exceptions.CredentialsNotForwarded] when another origin
        than the registry's wants credentials),
        [`InvalidHeaderValue`][aioras.exceptions.InvalidHeaderValue] for a header value that cannot
        be sent, and a [`TransportError`][aioras.exceptions.TransportError] when no answer came
        ([`TimeoutError`][aioras.exceptions.TimeoutError] when it came too slowly).
        """
        method = method.upper()
        retry_on = (method in _IDEMPOTENT) if retry is None else retry
        call = _Call(
            client=self.client,
            method=method,
            url=url,
            headers=headers,
            scopes=scopes_for_request(method, url) if scopes is None else scopes,
            home=self._home(url),
            retries=self.retry.retrying(self.retry.attempts if retry_on else 0, on=_retryable),
            stream=stream,
            follow_redirects=follow_redirects,
            max_body=max_body,
            hop_method=method,
            hop_url=url,
            hop_body=body,
        )
        while True:
            response = await self._follow(call)
            try:
                return await self._read(call, response)
            except httpx.HTTPError as error:
                # The body (an error's too) broke off: the answer did not arrive, which for
                # a replayable request is one more fault like a reset before the headers,
                # and otherwise a TransportError rather than the server's word.
                wrapped = wrap_http_error(error, call.hop_method, call.hop_url)
                if self.pacer is not None and call.ticket is not None:
                    self.pacer.broke(call.ticket)
                if not call.retries.allows():
                    raise wrapped from error
                await response.aclose()
                await call.retries.wait(wrapped)

    # -- redirect layer: one hop after another ---------------------------------------------
    async def _follow(self, call: _Call) -> httpx.Response:
        """The answer of the last hop: redirects are followed, at most ten."""
        while True:
            response = await self._authenticated(call)
            status = response.status_code
            location = response.headers.get("location")
            if status not in _REDIRECTS or not call.follow_redirects or location is None:
                return response
            await response.aclose()
            call.redirects += 1
            if call.redirects > _MAX_REDIRECTS:
                raise exc.TransportError(
                    f"{call.method} {redact(call.url)}: more than {_MAX_REDIRECTS} redirects",
                    method=call.method,
                    url=redact(call.url),
                )
            if status == 303 or (status in (301, 302) and call.hop_method == "POST"):
                call.hop_method, call.hop_body = "GET", None
            # Each hop is judged by its own origin (see _credentials).
            call.hop_url = resolve_location(call.hop_url, location)

    # -- auth layer: credentials by origin, challenges answered ----------------------------
    async def _authenticated(self, call: _Call) -> httpx.Response:
        """The hop's answer once any 401 challenge was answered (twice at most)."""
        while True:
            response = await self._retrying(call)
            if response.status_code != 401:
                return response
            await self._answer_challenge(call, response)

    async def _answer_challenge(self, call: _Call, response: httpx.Response) -> None:
        """Answer a 401 so that the hop can be sent again, or raise AuthenticationError."""
        buffered = httpx.Response(
            401,
            headers=decoded_headers(response.headers),
            content=await read_error_body(response, call.deadline),
            request=response.request,
        )
        auth = self._authenticator(call.trusted)
        if call.auth_rounds < _AUTH_ROUNDS and await auth.on_unauthorized(
            call.client, call.auth_host, call.scopes, buffered, call.sent_auth
        ):
            call.auth_rounds += 1
            return
        codes = [e.code for e in exc.parse_error_body(buffered.content)]
        raise exc.AuthenticationError(
            f"{call.where()}: HTTP 401, credentials "
            + ("refused" if call.sent_auth else "required"),
            status_code=401,
            codes=codes,
        )

    async def _credentials(self, call: _Call) -> dict[str, str]:
        """The hop's headers: credentials and session headers only for the call's origin."""
        trusted = call.trusted
        headers = self._headers_for(trusted, call.headers)
        auth = self._authenticator(trusted)
        call.sent_auth = await auth.authorize(call.client, call.auth_host, call.scopes)
        if call.sent_auth:
            headers["Authorization"] = check_header("Authorization", call.sent_auth)
        return headers

    # -- retry layer: faults and retryable statuses ----------------------------------------
    async def _retrying(self, call: _Call) -> httpx.Response:
        """The hop's answer, sent again after faults and retryable statuses (``self.retry``)."""
        while True:
            request = await self._prepare(call)
            try:
                response = await self._send_one(call, request)
            except httpx.HTTPError as error:
                wrapped = wrap_http_error(error, call.hop_method, call.hop_url)
                if not call.retries.allows(error) or _quick_limit_spent(call, error):
                    raise wrapped from error
                await call.retries.wait(wrapped)
                continue
            call.streak = None
            status = response.status_code
            if status not in self.retry.statuses or not call.retries.allows():
                return response
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            await read_error_body(response, call.deadline)
            await call.retries.wait(note=f"{call.where()} -> {status}", retry_after=retry_after)

    # -- one request: paced, sent within its deadline --------------------------------------
    async def _prepare(self, call: _Call) -> httpx.Request:
        """The current hop as a request with its credentials, once the host's pace allows."""
        headers = await self._credentials(call)
        body = call.hop_body() if callable(call.hop_body) else call.hop_body
        # The request the client would build (its headers under the hop's, its timeouts),
        # without its base-URL, cookie and query merging, which no registry call uses.
        merged = httpx.Headers(self._base_headers)
        merged.update(headers)
        request = httpx.Request(
            call.hop_method,
            call.hop_url,
            headers=merged,
            content=body,
            extensions={"timeout": self._timeouts},
        )
        return request

    async def _send_one(self, call: _Call, request: httpx.Request) -> httpx.Response:
        """Send ``request`` (body left unread) within its deadline; raises httpx errors.

        The host's pacer lets it go (a slot in its window, its pause and pace kept) and
        learns from how it ended (see `aioras._http.ratelimit`).
        """
        pacer = self.pacer
        call.ticket = None
        if pacer is not None:
            call.ticket = await pacer.before(urlsplit(call.hop_url).netloc, call.hop_method)
        try:
            call.deadline = Deadline.of(call.client.timeout)
            if call.client.is_closed or self._sender is None:
                # aclose() or set_verify() ran while this call was under way.
                raise exc.TransportError(
                    f"{call.where()}: the registry's connections were closed during the call",
                    method=call.hop_method,
                    url=redact(call.hop_url),
                )
            response = await send_within(self._sender, request, call.deadline)
        except BaseException as error:
            if pacer is not None and call.ticket is not None:
                pacer.failed(call.ticket, congested=_congested(error))
            raise
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s -> %d", call.where(), response.status_code)
        if pacer is not None and call.ticket is not None:
            pacer.after(call.ticket, response.status_code, response.headers)
        return response

    # -- the final answer's body ------------------------------------------------------------
    async def _read(self, call: _Call, response: httpx.Response) -> httpx.Response:
        """``response`` as the caller gets it: streamed, or read within its caps."""
        status = response.status_code
        for warning in response.headers.get_list("warning"):
            logger.warning("registry warning for %s: %s", redact(call.hop_url), warning)
        if call.stream and status < 400:
            return response
        if call.hop_method == "HEAD" and status < 400:
            # No body follows a HEAD answer: end it (the connection goes back to the pool)
            # and hand over the response itself; its headers are what a caller reads.
            with call.deadline.bound(response.request) if call.deadline else nullcontext():
                await response.aread()
            if "content-encoding" not in response.headers:
                return response
            # Its Content-Length would be the encoded size, not the resource's: drop both.
            return buffered_response(response, b"")
        if status >= 400:
            # An error body is the server's to size: keep 64 KiB of it (enough for the OCI
            # error codes) and drop the connection, not read a flood.
            body = await read_capped(
                response, defaults.max_error_body, truncate=True, deadline=call.deadline
            )
        elif call.max_body is None:
            body = await read_paced(response)
        else:
            body = await read_capped(response, call.max_body, deadline=call.deadline)
        return buffered_response(response, body)
