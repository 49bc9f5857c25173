"""Transport behaviour a plain registry will not show on demand, scripted with MockTransport.

Bearer challenges, scope upgrades, throttling, cross-origin redirects and broken error
bodies are played by a small scripted server; the real-registry suites cover the rest.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest

from aioras import RetryPolicy
from aioras._http.headers import header_number
from aioras._http.retry import parse_retry_after
from aioras._http.transport import Transport
from aioras.auth import Credentials, TokenAuth, parse_www_authenticate
from aioras.auth.credentials import merge_scopes, scopes_for_request
from aioras.exceptions import (
    AuthenticationError,
    ConnectError,
    NotFoundError,
    PermissionDenied,
    ServerError,
    TooManyRequests,
    TransportError,
)
from aioras.registry import AsyncRegistry

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002, max_retry_after=0.01)
Handler = Callable[[httpx.Request], httpx.Response]


def transport_for(
    handler: Handler, *, retry: RetryPolicy = FAST, insecure: bool = False
) -> Transport:
    return Transport(
        authenticator=TokenAuth(insecure=insecure),
        retry=retry,
        transport=httpx.MockTransport(handler),
    )


class TokenRegistry:
    """A registry demanding bearer tokens whose scope covers each request."""

    def __init__(self) -> None:
        self.token_requests: list[httpx.Request] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            self.token_requests.append(request)
            scopes = request.url.params.get_list("scope")
            return httpx.Response(200, json={"token": "tok:" + " ".join(scopes), "expires_in": 300})
        self.requests.append(request)
        needed = scopes_for_request(request.method, str(request.url))
        granted = request.headers.get("authorization", "").removeprefix("Bearer tok:").split()
        if set(merge_scopes(needed, granted)) != set(merge_scopes(granted)):
            challenge = (
                'Bearer realm="https://auth.example/token",service="registry.example",'
                f'scope="{" ".join(needed)}"'
            )
            if granted:
                challenge += ',error="insufficient_scope"'
            return httpx.Response(
                401,
                headers={"WWW-Authenticate": challenge},
                json={"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
            )
        return httpx.Response(200 if request.method != "POST" else 202, json={})


async def test_anonymous_bearer_token_then_scope_upgrade() -> None:
    server = TokenRegistry()
    transport = transport_for(server)
    base = "https://registry.example/v2/team/app"

    head = await transport.send("HEAD", f"{base}/blobs/sha256:{'a' * 64}")
    post = await transport.send("POST", f"{base}/blobs/uploads/", body=b"")
    again = await transport.send("GET", f"{base}/manifests/v1")

    assert (head.status_code, post.status_code, again.status_code) == (200, 202, 200)
    assert [r.url.params.get_list("scope") for r in server.token_requests] == [
        ["repository:team/app:pull"],
        ["repository:team/app:pull,push"],
    ]
    assert server.token_requests[0].url.params["service"] == "registry.example"
    assert "authorization" not in server.token_requests[0].headers  # anonymous
    # The GET after the upgrade is answered from the cache, without another 401.
    assert [r.headers.get("authorization") is not None for r in server.requests][-1]
    await transport.aclose()


async def test_token_is_fetched_once_for_concurrent_requests() -> None:
    server = TokenRegistry()
    transport = transport_for(server)
    url = "https://registry.example/v2/team/app/manifests/v1"
    await transport.send("GET", url)  # learns the challenge
    transport.auth.forget("registry.example")
    transport.auth._bearer["registry.example"] = parse_www_authenticate(  # type: ignore[attr-defined]
        'Bearer realm="https://auth.example/token",service="registry.example"'
    )[0]
    before = len(server.token_requests)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(transport.send, "GET", url)

    assert len(server.token_requests) - before == 1
    await transport.aclose()


async def test_basic_credentials_go_up_front_after_the_first_challenge() -> None:
    expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        if request.headers.get("authorization") != expected:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        return httpx.Response(200)

    transport = transport_for(handler)
    transport.auth.set_basic_auth("alice", "s3cret")
    await transport.send("GET", "https://r.example/v2/a/manifests/v1")
    await transport.send("PUT", "https://r.example/v2/a/manifests/v1", body=b"{}")

    assert seen == [None, expected, expected]
    await transport.aclose()


async def test_refused_basic_credentials_raise_without_leaking_them() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            headers={"WWW-Authenticate": 'Basic realm="r"'},
            json={"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
        )

    transport = transport_for(handler)
    transport.auth.set_basic_auth("alice", "hunter2-secret")
    with pytest.raises(AuthenticationError) as info:
        await transport.send("GET", "https://r.example/v2/a/tags/list")

    assert info.value.codes == ("UNAUTHORIZED",)
    assert "hunter2-secret" not in str(info.value)
    assert "hunter2-secret" not in repr(transport.auth.credentials_for("r.example"))
    await transport.aclose()


async def test_basic_challenge_without_credentials_says_how_to_fix_it() -> None:
    transport = transport_for(
        lambda r: httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    )
    with pytest.raises(AuthenticationError, match="set_basic_auth"):
        await transport.send("GET", "https://r.example/v2/a/tags/list")
    await transport.aclose()


async def test_http_token_realm_is_refused_for_an_https_registry() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, headers={"WWW-Authenticate": 'Bearer realm="http://auth.example/token"'}
        )

    transport = transport_for(handler)
    with pytest.raises(AuthenticationError, match="realm must be https"):
        await transport.send("GET", "https://registry.example/v2/a/manifests/v1")
    await transport.aclose()


async def test_redirect_to_another_origin_drops_authorization() -> None:
    storage_headers: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "storage.example":
            storage_headers.append(request.headers)
            return httpx.Response(200, content=b"blob-bytes")
        return httpx.Response(
            307, headers={"Location": "https://storage.example/bucket/blob?sig=abc"}
        )

    transport = transport_for(handler)
    transport.auth.set_credentials(Credentials(registry_token="T0K3N"))
    response = await transport.send("GET", "https://registry.example/v2/a/blobs/sha256:" + "b" * 64)

    assert response.content == b"blob-bytes"
    assert "authorization" not in storage_headers[0]
    await transport.aclose()


async def test_same_origin_redirect_keeps_authorization() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        if request.url.path.startswith("/moved"):
            return httpx.Response(200)
        return httpx.Response(302, headers={"Location": "/moved/here"})

    transport = transport_for(handler)
    transport.auth.set_credentials(Credentials(registry_token="T0K3N"))
    await transport.send("GET", "https://registry.example/v2/a/manifests/v1")
    assert seen == ["Bearer T0K3N", "Bearer T0K3N"]
    await transport.aclose()


async def test_throttling_is_retried_honouring_retry_after() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            return httpx.Response(429, headers={"Retry-After": "0"}, text="slow down")
        return httpx.Response(200, json={"tags": ["a"]})

    transport = transport_for(handler)
    response = await transport.send("GET", "https://r.example/v2/a/tags/list")
    assert response.status_code == 200
    assert calls == 3
    await transport.aclose()


async def test_retries_are_bounded_and_end_in_a_typed_error() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, text="<html>down</html>")

    async with AsyncRegistry(
        "r.example", retry=FAST, transport=httpx.MockTransport(handler)
    ) as reg:
        with pytest.raises(ServerError) as info:
            await reg.get_manifest("r.example/a:v1")
    assert calls == FAST.attempts + 1
    assert info.value.status_code == 503
    assert info.value.codes == ()


async def test_non_idempotent_requests_are_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503)

    transport = transport_for(handler)
    response = await transport.send("PATCH", "https://r.example/v2/a/blobs/uploads/x", body=b"1")
    assert response.status_code == 503
    assert calls == 1
    await transport.aclose()


async def test_connection_failures_are_retried_then_wrapped() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("connection refused", request=request)

    transport = transport_for(handler)
    with pytest.raises(ConnectError) as info:
        await transport.send("GET", "https://user:pw@r.example/v2/a/tags/list?x=secret")
    assert calls == FAST.attempts + 1
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert "pw" not in str(info.value)
    assert "secret" not in str(info.value)
    await transport.aclose()


def scripted(*steps: str) -> tuple[Handler, list[str]]:
    """A handler playing ``steps`` in turn ("503", "reset", "hang-up"), then 200s."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        step = steps[len(seen)] if len(seen) < len(steps) else "200"
        seen.append(step)
        if step == "hang-up":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if step == "reset":
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(int(step), json={})

    return handler, seen


async def test_a_hang_up_after_other_faults_still_gets_the_whole_retry_budget() -> None:
    # Two hang-ups in a row are allowed a retry each; earlier faults of other kinds do not
    # count toward that quick limit (a soak through 10% faults met 503, reset, hang-up).
    handler, seen = scripted("503", "reset", "hang-up", "503", "hang-up", "hang-up")
    policy = RetryPolicy(attempts=6, backoff=0.001, max_backoff=0.002)
    transport = transport_for(handler, retry=policy)
    response = await transport.send("PUT", "https://r.example/v2/a/manifests/v1", body=b"{}")
    assert response.status_code == 200
    assert len(seen) == 7
    await transport.aclose()


async def test_three_hang_ups_in_a_row_fail_fast_whatever_came_before() -> None:
    handler, seen = scripted("503", "hang-up", "hang-up", "hang-up", "hang-up")
    policy = RetryPolicy(attempts=8, backoff=0.001, max_backoff=0.002)
    transport = transport_for(handler, retry=policy)
    with pytest.raises(ConnectError, match="closed the connection without answering"):
        await transport.send("GET", "https://r.example/v2/a/manifests/v1")
    assert seen == ["503", "hang-up", "hang-up", "hang-up"]
    await transport.aclose()


@pytest.mark.parametrize(
    ("status", "body", "error", "codes"),
    [
        (
            404,
            b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}',
            NotFoundError,
            ("MANIFEST_UNKNOWN",),
        ),
        (403, b'{"errors":[{"code":"DENIED","message":"no"}]}', PermissionDenied, ("DENIED",)),
        (429, b"Too Many Requests", TooManyRequests, ()),
        (404, b"<html>not json</html>", NotFoundError, ()),
        (404, b'{"errors": "not a list"}', NotFoundError, ()),
    ],
)
async def test_error_responses_map_to_typed_errors_with_oci_codes(
    status: int, body: bytes, error: type[Exception], codes: tuple[str, ...]
) -> None:
    handler = lambda r: httpx.Response(status, content=body)  # noqa: E731
    async with AsyncRegistry(
        "r.example", retry=RetryPolicy(attempts=0), transport=httpx.MockTransport(handler)
    ) as reg:
        with pytest.raises(error) as info:
            await reg.get_manifest("r.example/a:v1")
    assert info.value.codes == codes  # type: ignore[attr-defined]


def test_retry_after_parses_seconds_and_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@pytest.mark.parametrize("value", ["²", "³", "¹", " ¹² ", "٣", "1²", "+3", "-1", "1.5", "1" * 5000])
def test_a_number_header_in_other_than_ascii_digits_counts_as_absent(value: str) -> None:
    # str.isdigit() takes superscripts (int() then raised an untyped ValueError) and other
    # scripts' digits; the HTTP grammar has ASCII digits only.
    assert header_number(value) is None
    assert parse_retry_after(value) is None


def test_a_number_header_in_ascii_digits_is_read() -> None:
    assert header_number(" 42\t") == 42
    assert header_number("0") == 0
    assert header_number(None) is None
    assert parse_retry_after(" 7 ") == 7.0


def latin1(name: str, value: str) -> tuple[bytes, bytes]:
    """A header as it comes off the wire: ``²`` is one Latin-1 byte, as httpx reads it."""
    return name.encode(), value.encode("latin-1")


async def test_a_429_with_retry_after_in_superscript_digits_ends_typed() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(429, headers=[latin1("Retry-After", "²")], text="slow down")

    async with AsyncRegistry(
        "r.example", retry=FAST, transport=httpx.MockTransport(handler)
    ) as reg:
        with pytest.raises(TooManyRequests) as info:
            await reg.get_tags("r.example/a")
    assert info.value.retry_after is None
    assert calls == FAST.attempts + 1


async def test_chunk_min_length_in_superscript_digits_counts_as_absent(tmp_path: Path) -> None:
    data = b"x" * 10
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (tmp_path / "blob").write_bytes(data)
    received = bytearray()
    patches = []

    def handler(request: httpx.Request) -> httpx.Response:
        session = {"Location": "/v2/a/blobs/uploads/u1"}
        if request.method == "HEAD":
            return httpx.Response(404)
        if request.method == "POST":
            return httpx.Response(
                202, headers=[*session.items(), latin1("OCI-Chunk-Min-Length", "²")]
            )
        if request.method == "PATCH":
            patches.append(len(request.content))
            received.extend(request.content)
            return httpx.Response(202, headers={**session, "Range": f"0-{len(received) - 1}"})
        received.extend(request.content)
        return httpx.Response(201, headers={"Docker-Content-Digest": digest})

    async with AsyncRegistry(
        "r.example", retry=FAST, transport=httpx.MockTransport(handler)
    ) as reg:
        layer = {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)}
        await reg.upload_blob(
            str(tmp_path / "blob"), "r.example/a", layer, do_chunked=True, chunk_size=4
        )
    assert bytes(received) == data
    assert patches == [4, 4, 2]  # the chunk size asked for, not one the header made up


def test_www_authenticate_with_several_challenges_and_unquoted_values() -> None:
    header = 'Basic realm="a, b", Bearer realm=https://auth/t,service=svc,scope="x:y:pull x:z:push"'
    basic, bearer = parse_www_authenticate(header)
    assert (basic.scheme, basic.realm) == ("basic", "a, b")
    assert (bearer.realm, bearer.service) == ("https://auth/t", "svc")
    assert bearer.scopes == ("x:y:pull", "x:z:push")


def test_scopes_merge_actions_per_repository() -> None:
    assert merge_scopes(["repository:a:pull"], ["repository:a:push", "repository:b:pull"]) == (
        "repository:a:pull,push",
        "repository:b:pull",
    )
    assert scopes_for_request("DELETE", "https://h/v2/a/b/manifests/sha256:x") == (
        "repository:a/b:delete",
    )


async def test_registry_requests_carry_the_client_defaults_and_its_timeouts() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"Set-Cookie": "session=abc; Path=/"})

    transport = Transport(
        authenticator=TokenAuth(),
        timeout=httpx.Timeout(7.0, connect=3.0),
        headers={"User-Agent": "aioras-test"},
        transport=httpx.MockTransport(handler),
    )
    await transport.send("HEAD", "https://r.example/v2/a/manifests/v1", headers={"Accept": "x/y"})
    await transport.send("HEAD", "https://r.example/v2/a/manifests/v1")
    first, second = seen
    assert first.headers["accept-encoding"] == "gzip, deflate"
    assert first.headers["user-agent"] == "aioras-test"
    assert first.headers["accept"] == "x/y"
    assert first.headers["host"] == "r.example"
    assert first.extensions["timeout"] == {"connect": 3.0, "read": 7.0, "write": 7.0, "pool": 7.0}
    # Registries are not cookie-based sessions: a Set-Cookie is not sent back.
    assert "cookie" not in second.headers
    await transport.aclose()


async def test_a_transport_error_without_its_request_still_names_the_call() -> None:
    # httpx's own transports raise errors that do not know their request yet.
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset")

    transport = transport_for(handler, retry=RetryPolicy(attempts=0))
    with pytest.raises(TransportError) as info:
        await transport.send("GET", "https://r.example/v2/a/tags/list")
    assert isinstance(info.value.__cause__, httpx.ReadError)
    assert info.value.__cause__.request.url == "https://r.example/v2/a/tags/list"
    assert "r.example/v2/a/tags/list" in str(info.value)
    await transport.aclose()


async def test_an_encoded_head_answer_does_not_pass_its_encoded_length_off_as_the_size() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Docker-Content-Digest": "sha256:" + "a" * 64, "Content-Length": "190"}
        if request.url.path.endswith("/gz"):
            headers["Content-Encoding"] = "gzip"
        return httpx.Response(200, headers=headers)

    transport = transport_for(handler)
    plain = await transport.send("HEAD", "https://r.example/v2/a/manifests/plain")
    encoded = await transport.send("HEAD", "https://r.example/v2/a/manifests/gz")
    assert plain.headers["content-length"] == "190"  # the resource's size, kept
    assert "content-length" not in encoded.headers  # the encoded size: not the resource's
    assert encoded.headers["docker-content-digest"] == "sha256:" + "a" * 64
    await transport.aclose()


async def test_answers_report_the_time_their_headers_took() -> None:
    transport = transport_for(lambda r: httpx.Response(200, json={}))
    for method in ("HEAD", "GET"):
        response = await transport.send(method, "https://r.example/v2/")
        assert response.elapsed.total_seconds() >= 0
    await transport.aclose()


async def test_a_call_under_way_when_the_transport_closes_fails_typed() -> None:
    transport: Transport

    async def closing(request: httpx.Request) -> httpx.Response:
        await transport.aclose()  # as aclose() or set_tls_verify() from another task
        return httpx.Response(503)  # retried: the next attempt finds the client closed

    transport = Transport(
        authenticator=TokenAuth(), retry=FAST, transport=httpx.MockTransport(closing)
    )
    with pytest.raises(TransportError, match="closed during the call"):
        await transport.send("GET", "https://r.example/v2/a/tags/list")
