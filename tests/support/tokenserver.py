"""A bearer-token issuer for the CNCF registry's ``auth: token`` mode, on loopback.

The registry (distribution 2.8) verifies each token as a compact JWS signed ES256 whose
header carries ``x5c``, a certificate chain ending at a certificate in
``auth.token.rootcertbundle``, and whose claims hold ``iss`` (= ``auth.token.issuer``),
``aud`` (= ``auth.token.service``), ``exp`` and ``nbf`` (checked with 60 s of leeway),
``sub``, ``iat``, ``jti`` and ``access``: ``[{"type", "name", "actions"}]``. This server
makes a throwaway CA and signing certificate, serves ``GET /token`` (the Docker token
protocol: ``service``, repeated ``scope``, optional basic credentials) and ``POST /token``
(OAuth2: ``grant_type=password`` or ``refresh_token``), and applies a small policy:

- anonymous clients get ``pull`` on repositories under a public prefix, nothing else;
- a known user gets every action asked for (``pull``, ``push``, ``delete``, ``*``);
- a wrong password is answered 401; scopes not granted are left out of the token (as real
  token services do), so the registry then refuses the request.

Knobs for tests: ``expires_in`` (what clients are told), ``expire_next`` (issue the next N
tokens already expired for the registry), ``response_keys`` (``token``, ``access_token``
or both); and records: every request, every token issued.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

__all__ = ["IssuedToken", "TokenRequest", "TokenServer"]

ALL_ACTIONS = frozenset({"pull", "push", "delete", "*"})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The ``kid`` libtrust derives from a key: SHA-256 of its SPKI DER, 240 bits, base32."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """``type:name:actions`` into its parts (a name may hold ``:`` for a port); None if bad."""
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not kind or not name:
        return None
    return kind, name, [a for a in actions.split(",") if a]


@dataclass(frozen=True)
class TokenRequest:
    """One request the server answered."""

    method: str
    grant: str  # "anonymous", "basic", "password", "refresh_token"
    username: str | None
    service: str | None
    scopes: tuple[str, ...]
    status: int


@dataclass(frozen=True)
class IssuedToken:
    """A token the server issued, with what it grants."""

    value: str = field(repr=False)
    username: str | None
    access: tuple[tuple[str, str, tuple[str, ...]], ...]
    expired: bool


class _Signer:
    """A throwaway CA and an ES256 signing certificate it issued."""

    def __init__(self, directory: Path) -> None:
        now = dt.datetime.now(dt.UTC)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aioras test token CA")])
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aioras test token signer")])
            )
            .issuer_name(ca_name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.root_bundle = directory / "token-ca.pem"
        self.root_bundle.write_bytes(self.ca_cert.public_bytes(serialization.Encoding.PEM))
        self.x5c = [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.kid = libtrust_key_id(self.key.public_key())

    def sign(self, claims: Mapping[str, Any]) -> str:
        header = {"typ": "JWT", "alg": "ES256", "kid": self.kid, "x5c": self.x5c}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = self.key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        # JWS wants the raw 64-byte r||s, not the DER sequence cryptography returns.
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


class TokenServer:
    """The token issuer, in a thread, on ``127.0.0.1`` (HTTPS when given a cert and key).

    ``users`` maps usernames to passwords; ``public_prefixes`` are repository name prefixes
    anonymous clients may pull. :meth:`registry_token_auth` is the ``token_auth`` mapping
    for :class:`aioras.testing.LocalRegistry`.
    """

    def __init__(
        self,
        directory: Path,
        *,
        users: Mapping[str, str] | None = None,
        public_prefixes: Iterable[str] = ("public/",),
        service: str = "aioras-test-registry",
        issuer: str = "aioras-test-issuer",
        expires_in: int | None = 300,
        response_keys: tuple[str, ...] = ("token", "access_token"),
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
    ) -> None:
        self.directory = directory
        self.users = dict(users or {})
        self.public_prefixes = tuple(public_prefixes)
        self.service = service
        self.issuer = issuer
        self.expires_in = expires_in
        self.response_keys = response_keys
        self.expire_next = 0
        self.requests: list[TokenRequest] = []
        self.issued: list[IssuedToken] = []
        self.refresh_tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._signer = _Signer(directory)
        self._tls = (tls_cert, tls_key) if tls_cert and tls_key else None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- where it is ---------------------------------------------------------------------
    @property
    def root_bundle(self) -> Path:
        """PEM of the CA the registry must trust (``auth.token.rootcertbundle``)."""
        return self._signer.root_bundle

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("token server not started")
        return int(self._server.server_address[1])

    @property
    def realm(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/token"

    def registry_token_auth(self) -> dict[str, str]:
        """``auth.token`` settings for a registry trusting this issuer."""
        return {
            "realm": self.realm,
            "service": self.service,
            "issuer": self.issuer,
            "rootcertbundle": str(self.root_bundle),
        }

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> TokenServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        if self._tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self._tls[0]), str(self._tls[1]))
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- policy and minting ----------------------------------------------------------------
    def issue_refresh_token(self, username: str) -> str:
        """An identity (refresh) token standing for ``username``, as ``docker login`` gets."""
        token = "rt-" + secrets.token_urlsafe(24)
        self.refresh_tokens[token] = username
        return token

    def grant(self, username: str | None, scopes: Iterable[str]) -> list[dict[str, Any]]:
        """The ``access`` claim: what ``username`` (None: anonymous) may do of ``scopes``."""
        merged: dict[tuple[str, str], set[str]] = {}
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            kind, name, actions = parsed
            if username is not None:
                allowed = set(actions) & ALL_ACTIONS
            elif kind == "repository" and name.startswith(self.public_prefixes):
                allowed = set(actions) & {"pull"}
            else:
                allowed = set()
            merged.setdefault((kind, name), set()).update(allowed)
        return [
            {"type": kind, "name": name, "actions": sorted(actions)}
            for (kind, name), actions in merged.items()
            if actions
        ]

    def mint(
        self, username: str | None, scopes: Iterable[str], *, expired: bool = False
    ) -> tuple[str, int]:
        """Sign a token for ``username`` covering what it may do of ``scopes``."""
        access = self.grant(username, scopes)
        now = int(time.time())
        lifetime = self.expires_in or 60
        exp = now - 300 if expired else now + lifetime
        claims = {
            "iss": self.issuer,
            "sub": username or "",
            "aud": self.service,
            "exp": exp,
            "nbf": min(now - 10, exp - 1),
            "iat": now,
            "jti": secrets.token_hex(12),
            "access": access,
        }
        value = self._signer.sign(claims)
        issued = IssuedToken(
            value=value,
            username=username,
            access=tuple((a["type"], a["name"], tuple(a["actions"])) for a in access),
            expired=expired,
        )
        with self._lock:
            self.issued.append(issued)
        return value, lifetime

    def _next_is_expired(self) -> bool:
        with self._lock:
            if self.expire_next > 0:
                self.expire_next -= 1
                return True
            return False

    def record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def token_values(self) -> list[str]:
        with self._lock:
            return [t.value for t in self.issued]


def _handler_for(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; the records hold what happened

        def _reply(self, status: int, doc: Mapping[str, Any]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="aioras-token"')
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, method: str, grant: str, user: str | None, scopes: list[str]) -> None:
            server.record(TokenRequest(method, grant, user, None, tuple(scopes), 401))
            self._reply(
                401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]}
            )

        def _issue(
            self,
            method: str,
            grant: str,
            username: str | None,
            service: str | None,
            scopes: list[str],
            *,
            oauth: bool,
        ) -> None:
            if service != server.service:
                server.record(TokenRequest(method, grant, username, service, tuple(scopes), 400))
                self._reply(400, {"errors": [{"code": "DENIED", "message": "unknown service"}]})
                return
            value, lifetime = server.mint(username, scopes, expired=server._next_is_expired())
            server.record(TokenRequest(method, grant, username, service, tuple(scopes), 200))
            doc: dict[str, Any] = {
                "issued_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
            }
            if oauth:
                doc.update(access_token=value, token_type="Bearer", scope=" ".join(scopes))
            else:
                doc.update({key: value for key in server.response_keys})
            if server.expires_in is not None:
                doc["expires_in"] = lifetime
            self._reply(200, doc)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
            service = (query.get("service") or [None])[0]
            auth = self.headers.get("Authorization", "")
            username: str | None = None
            grant = "anonymous"
            if auth:
                scheme, _, encoded = auth.partition(" ")
                try:
                    user, _, password = base64.b64decode(encoded).decode().partition(":")
                except ValueError:
                    user, password = "", ""
                if scheme.lower() != "basic" or server.users.get(user) != password or not user:
                    self._refuse("GET", "basic", user or None, scopes)
                    return
                username, grant = user, "basic"
            self._issue("GET", grant, username, service, scopes, oauth=False)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())

            def one(key: str) -> str | None:
                return (form.get(key) or [None])[0]

            scopes = [s for s in (one("scope") or "").split(" ") if s]
            grant = one("grant_type") or ""
            if grant == "refresh_token":
                username = server.refresh_tokens.get(one("refresh_token") or "")
            elif grant == "password":
                user = one("username") or ""
                username = user if user and server.users.get(user) == one("password") else None
            else:
                username = None
            if username is None or not one("client_id"):
                self._refuse("POST", grant or "none", None, scopes)
                return
            self._issue("POST", grant, username, one("service"), scopes, oauth=True)

    return Handler
