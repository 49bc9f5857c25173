"""Docker credential helpers: ``docker-credential-<name> get|store|erase|list``, run async.

A Docker config names helpers in ``credsStore`` (one for every registry) and ``credHelpers``
(one per registry host). A helper is a program on ``PATH`` called
``docker-credential-<name>`` that takes the action as its only argument and talks JSON on
standard input and output:

- ``get``: reads a server URL, prints ``{"ServerURL", "Username", "Secret"}``; when it holds
  nothing for that URL it exits non-zero printing ``credentials not found in native keychain``.
- ``store``: reads ``{"ServerURL", "Username", "Secret"}``.
- ``erase``: reads a server URL.
- ``list``: prints ``{"<server URL>": "<username>", ...}``.

A ``Username`` of ``<token>`` means the ``Secret`` is an identity (OAuth2 refresh) token.

Helpers run as asynchronous subprocesses (`anyio.run_process`), so a slow keychain
never blocks the event loop. Nothing a helper prints is logged or put in an exception: its
output holds the secret, and its error output may too.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess

import anyio

from .._jsondoc import load_json
from ..exceptions import CredentialHelperError
from .credentials import Credentials

__all__ = [
    "IDENTITY_TOKEN_USERNAME",
    "CredentialHelper",
    "CredentialHelperError",
    "helper_program",
]

logger = logging.getLogger(__name__)

IDENTITY_TOKEN_USERNAME = "<token>"
"""The ``Username`` a helper reports when ``Secret`` is an identity token."""

DEFAULT_HELPER_TIMEOUT = 30.0

_NOT_FOUND_MARKER = b"credentials not found"
_HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_MAX_OUTPUT = 1024 * 1024


def helper_program(name: str) -> str:
    """``docker-credential-<name>``; raises
    [`CredentialHelperError`][aioras.exceptions.CredentialHelperError] for a bad name.

    Names are plain words (``desktop``, ``osxkeychain``, ``ecr-login``): a path separator
    would let a config file run an arbitrary program.
    """
    if not _HELPER_NAME.fullmatch(name):
        raise CredentialHelperError(f"invalid credential helper name {name!r}")
    return f"docker-credential-{name}"


class CredentialHelper:
    """One ``docker-credential-<name>`` program, found on ``PATH`` when run.

    Each action raises [`CredentialHelperError`][aioras.exceptions.CredentialHelperError] when the
    program cannot be started, runs longer than ``timeout`` seconds, exits with an unexpected status
    or prints something that is not the expected JSON.
    """

    def __init__(self, name: str, *, timeout: float = DEFAULT_HELPER_TIMEOUT) -> None:
        self.name = name
        self.program = helper_program(name)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"CredentialHelper({self.name!r})"

    async def _run(self, action: str, stdin: bytes) -> tuple[int, bytes]:
        try:
            with anyio.fail_after(self.timeout):
                status, out = await self._exchange(action, stdin)
        except TimeoutError:
            raise CredentialHelperError(
                f"credential helper {self.program} {action} did not finish within {self.timeout:g}s"
            ) from None
        except OSError as error:
            raise CredentialHelperError(
                f"cannot run credential helper {self.program} ({type(error).__name__}); "
                "is it installed and on PATH?"
            ) from None
        logger.debug("%s %s exited with status %d", self.program, action, status)
        return status, out

    async def _exchange(self, action: str, stdin: bytes) -> tuple[int, bytes]:
        # stderr is discarded, not shown: a helper may echo what it was given.
        async with await anyio.open_process(
            [self.program, action],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as process:
            if process.stdin is None or process.stdout is None:  # pragma: no cover
                raise OSError("no pipes to the credential helper")
            try:
                # Small enough for the pipe buffer, so this never waits on the reader.
                await process.stdin.send(stdin)
                await process.stdin.aclose()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the helper exited without reading; its status tells the rest
            chunks: list[bytes] = []
            size = 0
            async for chunk in process.stdout:
                if size < _MAX_OUTPUT:
                    chunks.append(chunk)
                    size += len(chunk)
            status = await process.wait()
        return status, b"".join(chunks)[:_MAX_OUTPUT]

    async def get(self, server_url: str) -> Credentials | None:
        """The credentials stored for ``server_url``, or None when the helper has none."""
        status, out = await self._run("get", server_url.encode())
        if status != 0:
            if _NOT_FOUND_MARKER in out.lower():
                return None
            raise CredentialHelperError(
                f"credential helper {self.program} get failed (exit status {status})"
            )
        try:
            doc = load_json(out)
        except ValueError:
            raise CredentialHelperError(
                f"credential helper {self.program} get printed something that is not JSON"
            ) from None
        if not isinstance(doc, dict):
            raise CredentialHelperError(
                f"credential helper {self.program} get printed JSON that is not an object"
            )
        username, secret = doc.get("Username"), doc.get("Secret")
        if not isinstance(secret, str) or not secret:
            return None
        if username == IDENTITY_TOKEN_USERNAME:
            return Credentials(identity_token=secret)
        if not isinstance(username, str) or not username:
            return None
        return Credentials(username=username, password=secret)

    async def store(self, server_url: str, credentials: Credentials) -> None:
        """Save ``credentials`` (username and password, or an identity token)."""
        if credentials.identity_token:
            username, secret = IDENTITY_TOKEN_USERNAME, credentials.identity_token
        elif credentials.has_basic:
            username, secret = credentials.username or "", credentials.password or ""
        else:
            raise ValueError("a credential helper stores a username and password or a token")
        payload = json.dumps({"ServerURL": server_url, "Username": username, "Secret": secret})
        status, _ = await self._run("store", payload.encode())
        if status != 0:
            raise CredentialHelperError(
                f"credential helper {self.program} store failed (exit status {status})"
            )

    async def erase(self, server_url: str) -> bool:
        """Remove what is stored for ``server_url``; False when there was nothing."""
        status, out = await self._run("erase", server_url.encode())
        if status == 0:
            return True
        if _NOT_FOUND_MARKER in out.lower():
            return False
        raise CredentialHelperError(
            f"credential helper {self.program} erase failed (exit status {status})"
        )

    async def list(self) -> dict[str, str]:
        """Server URLs the helper holds credentials for, mapped to their usernames."""
        status, out = await self._run("list", b"")
        if status != 0:
            raise CredentialHelperError(
                f"credential helper {self.program} list failed (exit status {status})"
            )
        try:
            doc = load_json(out or b"{}")
        except ValueError:
            raise CredentialHelperError(
                f"credential helper {self.program} list printed something that is not JSON"
            ) from None
        if not isinstance(doc, dict):
            raise CredentialHelperError(f"credential helper {self.program} list is not a map")
        return {str(k): str(v) for k, v in doc.items()}
