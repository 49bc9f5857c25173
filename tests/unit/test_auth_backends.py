"""Auth backends: ``ecr`` (with a fake ``boto3``: ECR is not reachable), custom backends,
credential sources and ``WWW-Authenticate`` parsing.

The registry side is scripted with ``httpx.MockTransport``: ECR answers ``Basic`` challenges,
ECR Public answers ``Bearer`` ones.
"""

from __future__ import annotations

import base64
import datetime as dt
import sys
import types
from typing import Any

import httpx
import pytest

import aioras.auth
from aioras import RetryPolicy
from aioras._http.transport import Transport
from aioras.auth import (
    Authenticator,
    EcrAuth,
    TokenAuth,
    get_auth_backend,
    parse_www_authenticate,
)
from aioras.auth.ecr import parse_ecr_host
from aioras.exceptions import AuthenticationError

pytestmark = pytest.mark.anyio

ECR_HOST = "123456789012.dkr.ecr.eu-west-3.amazonaws.com"
NO_RETRY = RetryPolicy(attempts=0)


class FakeEcrClient:
    def __init__(self, boto: FakeBoto3, service: str, region: str) -> None:
        self.boto, self.service, self.region = boto, service, region

    def get_authorization_token(self, **kwargs: Any) -> dict[str, Any]:
        self.boto.calls.append((self.service, self.region, kwargs))
        if self.boto.error is not None:
            raise self.boto.error
        password = (
            self.boto.passwords.pop(0) if len(self.boto.passwords) > 1 else self.boto.passwords[0]
        )
        data = {
            "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
            "expiresAt": self.boto.expires_at,
        }
        if self.service == "ecr-public":
            return {"authorizationData": data}
        return {"authorizationData": [{**data, "proxyEndpoint": f"https://{ECR_HOST}"}]}


class FakeBoto3(types.ModuleType):
    def __init__(self) -> None:
        super().__init__("boto3")
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.passwords = ["ecr-pass-1"]
        self.expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=12)
        self.error: Exception | None = None

    def client(self, service: str, region_name: str) -> FakeEcrClient:
        return FakeEcrClient(self, service, region_name)


@pytest.fixture
def boto3(monkeypatch: pytest.MonkeyPatch) -> FakeBoto3:
    fake = FakeBoto3()
    monkeypatch.setitem(sys.modules, "boto3", fake)
    return fake


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()


class EcrRegistry:
    """Accepts ``AWS:<password>`` for any password in ``valid``."""

    def __init__(self, *valid: str) -> None:
        self.valid = {basic(p) for p in valid}
        self.seen: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization")
        self.seen.append(auth)
        if auth in self.valid:
            return httpx.Response(200, json={"tags": ["v1"]})
        return httpx.Response(
            401,
            headers={
                "WWW-Authenticate": f'Basic realm="https://{ECR_HOST}/",service="ecr.amazonaws.com"'
            },
        )


def transport(auth: Authenticator, handler: Any) -> Transport:
    return Transport(authenticator=auth, retry=NO_RETRY, transport=httpx.MockTransport(handler))


def test_parse_ecr_host() -> None:
    assert parse_ecr_host(ECR_HOST) == ("123456789012", "eu-west-3")
    assert parse_ecr_host("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com") == (
        "123456789012",
        "us-east-1",
    )
    assert parse_ecr_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn") == (
        "123456789012",
        "cn-north-1",
    )
    assert parse_ecr_host("ghcr.io") is None
    assert parse_ecr_host("evil.com/123456789012.dkr.ecr.x.amazonaws.com") is None


def test_missing_boto3_is_a_clear_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes `import boto3` fail
    with pytest.raises(ImportError, match=r"pip install 'aioras\[ecr\]'"):
        get_auth_backend("ecr")


async def test_ecr_credentials_go_up_front_and_are_cached(boto3: FakeBoto3) -> None:
    auth = get_auth_backend("ecr")
    assert isinstance(auth, EcrAuth)
    server = EcrRegistry("ecr-pass-1")
    t = transport(auth, server)
    for _ in range(3):
        response = await t.send("GET", f"https://{ECR_HOST}/v2/team/app/tags/list")
        assert response.status_code == 200
    assert server.seen == [basic("ecr-pass-1")] * 3  # no challenge round trip
    assert boto3.calls == [("ecr", "eu-west-3", {"registryIds": ["123456789012"]})]
    await t.aclose()


async def test_token_near_expiry_is_fetched_again(boto3: FakeBoto3) -> None:
    boto3.expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)  # within the margin
    boto3.passwords = ["old", "new"]
    server = EcrRegistry("old", "new")
    t = transport(EcrAuth(), server)
    await t.send("GET", f"https://{ECR_HOST}/v2/a/tags/list")
    await t.send("GET", f"https://{ECR_HOST}/v2/a/tags/list")
    assert len(boto3.calls) == 2
    assert server.seen == [basic("old"), basic("new")]
    await t.aclose()


async def test_refused_token_is_replaced_once_then_the_error_is_raised(boto3: FakeBoto3) -> None:
    boto3.passwords = ["revoked", "fresh"]
    server = EcrRegistry("fresh")
    t = transport(EcrAuth(), server)
    response = await t.send("GET", f"https://{ECR_HOST}/v2/a/tags/list")
    assert response.status_code == 200
    assert server.seen == [basic("revoked"), basic("fresh")]

    server.valid.clear()
    with pytest.raises(AuthenticationError) as info:
        await t.send("GET", f"https://{ECR_HOST}/v2/a/tags/list")
    assert "fresh" not in str(info.value)
    await t.aclose()


async def test_aws_errors_become_authentication_errors_without_details(
    boto3: FakeBoto3,
) -> None:
    class ClientError(Exception):
        def __init__(self) -> None:
            super().__init__("An error occurred (ExpiredTokenException): secret-ish detail")
            self.response = {"Error": {"Code": "ExpiredTokenException"}}

    boto3.error = ClientError()
    t = transport(EcrAuth(), EcrRegistry())
    with pytest.raises(AuthenticationError, match=r"ClientError \(ExpiredTokenException\)") as info:
        await t.send("GET", f"https://{ECR_HOST}/v2/a/tags/list")
    assert "secret-ish" not in str(info.value)
    await t.aclose()


async def test_other_hosts_use_the_ordinary_sources(boto3: FakeBoto3) -> None:
    auth = EcrAuth()
    auth.set_basic_auth("alice", "pw", host="other.example")
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        if request.headers.get("authorization"):
            return httpx.Response(200)
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="x"'})

    t = transport(auth, handler)
    await t.send("GET", "https://other.example/v2/a/tags/list")
    assert seen[0] is None
    assert seen[1] is not None
    assert seen[1].startswith("Basic ")
    assert boto3.calls == []
    await t.aclose()


async def test_ecr_public_gets_bearer_tokens_with_ecr_public_credentials(
    boto3: FakeBoto3,
) -> None:
    token_requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            token_requests.append(request)
            return httpx.Response(200, json={"token": "pub-token"})
        if request.headers.get("authorization") == "Bearer pub-token":
            return httpx.Response(200)
        return httpx.Response(
            401,
            headers={
                "WWW-Authenticate": 'Bearer realm="https://public.ecr.aws/token",'
                'service="public.ecr.aws",scope="aws"'
            },
        )

    t = transport(EcrAuth(), handler)
    response = await t.send("GET", "https://public.ecr.aws/v2/team/app/manifests/v1")
    assert response.status_code == 200
    assert boto3.calls == [("ecr-public", "us-east-1", {})]
    assert token_requests[0].headers["authorization"] == basic("ecr-pass-1")
    await t.aclose()


async def test_boto3_session_is_used_when_given(boto3: FakeBoto3) -> None:
    class Session:
        def __init__(self) -> None:
            self.used: list[tuple[str, str]] = []

        def client(self, service: str, region_name: str) -> FakeEcrClient:
            self.used.append((service, region_name))
            return FakeEcrClient(boto3, service, region_name)

    session = Session()
    t = transport(get_auth_backend("ecr", boto3_session=session), EcrRegistry("ecr-pass-1"))
    await t.send("GET", f"https://{ECR_HOST}/v2/a/tags/list")
    assert session.used == [("ecr", "eu-west-3")]
    await t.aclose()


# -- custom backends ------------------------------------------------------------------------


class StaticToken(Authenticator):
    def __init__(self, *, insecure: bool = False, token: str = "") -> None:
        super().__init__(insecure=insecure)
        self.token = token

    async def authorize(
        self, client: httpx.AsyncClient, host: str, scopes: tuple[str, ...]
    ) -> str | None:
        return f"Bearer {self.token}"


async def test_a_registered_custom_backend_is_built_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aioras.auth, "_BACKENDS", dict(aioras.auth._BACKENDS))
    aioras.auth.register_auth_backend("static", StaticToken)
    assert "static" in aioras.auth.available_auth_backends()
    with pytest.raises(ValueError, match="already registered"):
        aioras.auth.register_auth_backend("static", StaticToken)
    with pytest.raises(ValueError, match="unknown auth backend 'nope'"):
        get_auth_backend("nope")

    auth = get_auth_backend("static", insecure=True, token="s3cr3t")
    assert isinstance(auth, StaticToken)
    assert auth.insecure is True
    assert "s3cr3t" not in repr(auth)
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200)

    t = transport(auth, handler)
    await t.send("GET", "https://r.example/v2/a/tags/list")
    assert seen == ["Bearer s3cr3t"]
    await t.aclose()


async def test_async_credential_sources_are_awaited() -> None:
    auth = TokenAuth()
    asked: list[str] = []

    async def source(host: str) -> aioras.auth.Credentials | None:
        asked.append(host)
        return aioras.auth.Credentials(username="u", password="p") if host == "a.example" else None

    auth.add_source(source)
    assert await auth.lookup_credentials("a.example") == aioras.auth.Credentials("u", "p")
    assert auth.credentials_for("a.example") == aioras.auth.Credentials("u", "p")
    assert await auth.lookup_credentials("b.example") is None
    assert asked == ["a.example", "b.example"]


# -- challenges ------------------------------------------------------------------------------


def test_challenge_parameters_quoted_escaped_unquoted_and_errors() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service=registry.example,'
        'scope="repository:a/b:pull,push repository:c:pull",error="insufficient_scope", '
        'Basic realm="say \\"hi\\"", Negotiate'
    )
    bearer, basic_challenge, negotiate = parse_www_authenticate(header)
    assert bearer.scheme == "bearer"
    assert bearer.realm == "https://auth.example/token"
    assert bearer.service == "registry.example"
    assert bearer.scopes == ("repository:a/b:pull,push", "repository:c:pull")
    assert bearer.error == "insufficient_scope"
    assert (basic_challenge.scheme, basic_challenge.realm) == ("basic", 'say "hi"')
    assert (negotiate.scheme, negotiate.params) == ("negotiate", {})
    assert parse_www_authenticate("") == []
    assert parse_www_authenticate('=x, BEARER REALM="r"')[-1].realm == "r"
