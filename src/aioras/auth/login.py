"""``login`` and ``logout``: check credentials, keep them, and save them in a Docker config.

``login`` sends ``GET /v2/`` with the credentials (answering whatever challenge the registry
makes, basic or bearer) and only when the registry accepts them writes
``auths.<host>.auth = base64(user:password)`` into the Docker ``config.json``. The file is
replaced atomically (a temporary file beside it, then ``os.replace``) and is readable by its
owner only (mode 0600). Each change is a read-modify-write under an exclusive lock on a
sidecar file (``config.json.lock``, ``flock``), re-reading the file once the lock is held, so
that concurrent logins and logouts, in threads, tasks or processes, never drop each other's
entries. When the config names a credential helper for the host
(``credHelpers`` or ``credsStore``), the helper stores the credentials instead and the file
keeps only an empty placeholder, as Docker does; ``logout`` erases them from both.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import anyio.to_thread

from .._files.atomic import file_lock as config_lock
from .._files.atomic import replace_file
from .._jsondoc import load_json
from ..container import parse_registry
from ..utils import readline
from .credentials import Credentials
from .credhelpers import CredentialHelper
from .dockerconfig import config_keys, helper_keys, helper_name, server_key

if TYPE_CHECKING:
    from ..remote.client import RegistryClient

T = TypeVar("T")

__all__ = [
    "config_lock",
    "login",
    "logout",
    "read_config",
    "registry_host",
    "update_config",
    "write_config",
]

logger = logging.getLogger(__name__)

LOGIN_SUCCEEDED = {"Status": "Login Succeeded"}
_SECRET_FIELDS = ("auth", "password", "identitytoken", "registrytoken")


def registry_host(hostname: str) -> str:
    """The API host of ``hostname``, which may be written as a URL (``https://host/v2/``)."""
    name = hostname.strip()
    if "://" in name:
        name = urlsplit(name).netloc
    name = name.split("/", 1)[0]
    return parse_registry(name)


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a Docker config file; ``{}`` when it does not exist.

    Raises ``ValueError`` when it exists but is not a JSON object, so that a damaged file is
    never overwritten with only the new entry.
    """
    try:
        with open(path, encoding="utf-8") as fd:
            text = fd.read()
    except FileNotFoundError:
        return {}
    if not text.strip():
        return {}
    try:
        doc = load_json(text)
    except ValueError as error:
        raise ValueError(f"Docker config {os.fspath(path)} is not valid JSON: {error}") from error
    if not isinstance(doc, dict):
        raise ValueError(f"Docker config {os.fspath(path)} is not a JSON object")
    return doc


def write_config(path: str | os.PathLike[str], doc: dict[str, Any]) -> None:
    """Replace the Docker config at ``path`` with ``doc``, atomically, mode 0600.

    A symlinked config is written through to its target.
    """
    target = Path(os.path.realpath(path))
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    replace_file(target, json.dumps(doc, indent="\t") + "\n", mode=0o600)


async def update_config(path: str | os.PathLike[str], change: Callable[[dict[str, Any]], T]) -> T:
    """Apply ``change`` to the Docker config at ``path`` and save it, under its lock.

    The file is read once the lock is held, so that what other writers saved meanwhile is
    kept; ``change`` edits the parsed document in place and returns a result (falsy: no
    change, nothing written). Raises ``ValueError`` when the file is not valid JSON.
    """
    async with config_lock(path):
        doc = await anyio.to_thread.run_sync(read_config, path)
        result = change(doc)
        if result:
            await anyio.to_thread.run_sync(write_config, path, doc)
        return result


def _config_path(registry: RegistryClient, config_path: str | os.PathLike[str] | None) -> str:
    return os.fspath(config_path or registry.environment.docker_config_file)


def _without_inline_credentials(auths: dict[str, Any], host: str) -> None:
    """Drop stored secrets for every spelling of ``host`` (a helper keeps them now)."""
    for key in config_keys(host):
        entry = auths.get(key)
        if isinstance(entry, dict):
            for field in _SECRET_FIELDS:
                entry.pop(field, None)


async def _check_credentials(
    registry: RegistryClient, host: str, credentials: Credentials, tls_verify: bool | str
) -> None:
    """Keep ``credentials`` for ``host`` if the registry accepts them; else put back the old.

    ``tls_verify`` other than True switches the registry's verification first (kept only
    when the check passes).
    """
    previous = registry.auth.explicit_credentials(host)
    previous_verify = registry.tls_verify
    registry.auth.set_credentials(credentials, host=host)
    try:
        if tls_verify is not True and tls_verify != previous_verify:
            await registry.set_tls_verify(tls_verify)
        await registry.ping(host)
    except BaseException:
        # Undo what was refused: later requests use what was configured before.
        registry.auth.set_credentials(previous or Credentials(), host=host)
        if registry.tls_verify != previous_verify:
            with anyio.CancelScope(shield=True):
                await registry.set_tls_verify(previous_verify)
        raise


async def login(
    registry: RegistryClient,
    username: str,
    password: str,
    password_stdin: bool = False,
    tls_verify: bool | str = True,
    hostname: str | None = None,
    config_path: str | os.PathLike[str] | None = None,
    *,
    insecure: bool | None = None,
) -> dict[str, str]:
    """Log ``registry`` in to ``hostname`` (default: its own) as ``username``.

    The credentials are checked first (``GET /v2/``, answering the registry's basic or
    bearer challenge); only when the registry accepts them are they kept for that host by
    ``registry`` and saved:

    - through the credential helper the config names for the host (``credHelpers``, else
      ``credsStore``; ``docker-credential-<name> store``), leaving an empty placeholder
      under ``auths`` as Docker does and no secret in the file;
    - else as ``auths.<host>.auth`` (base64 ``user:password``) in the config file.

    The file is replaced atomically and left readable by its owner only (mode 0600).

    ``password_stdin`` reads the password from standard input (the ``password`` argument
    is then ignored). ``hostname`` may be a host, ``host:port`` or a URL; Docker Hub's names
    are saved under its legacy key ``https://index.docker.io/v1/``. ``config_path`` is the
    Docker config to use (default: ``$DOCKER_CONFIG/config.json`` or
    ``~/.docker/config.json``); a custom one is also read for credentials from now on.
    ``tls_verify`` False or a CA bundle path switches the registry to that verification,
    for the check and, when the login succeeds, for later calls (as oras-py's login does);
    True (the default) keeps the registry's own setting.
    ``insecure``, when given, switches the registry to plain http (True) or https (False).

    Returns ``{"Status": "Login Succeeded"}``. Raises
    [`AuthenticationError`][aioras.exceptions.AuthenticationError] when the registry refuses the
    credentials (nothing is written and the refused credentials are dropped),
    [`ConnectError`][aioras.exceptions.ConnectError] when it cannot be reached or its certificate
    is not trusted, [`CredentialHelperError`][aioras.exceptions.CredentialHelperError] when the
    helper cannot store them, and ``ValueError`` when the username, password or hostname is missing
    or the existing config is not valid JSON.
    """
    if password_stdin:
        password = await anyio.to_thread.run_sync(readline)
    if not username or not password:
        raise ValueError("login needs a username and a password")
    name = hostname or registry.hostname
    if not name:
        raise ValueError("login needs a hostname (argument, or the registry's hostname)")
    host = registry_host(name)
    path = _config_path(registry, config_path)
    if insecure is not None:
        registry.insecure = insecure  # the URL scheme and the auth backend follow
    # Read first: a damaged config fails the login before anything is sent.
    doc = await anyio.to_thread.run_sync(read_config, path)

    credentials = Credentials(username=username, password=password)
    await _check_credentials(registry, host, credentials, tls_verify)

    key = server_key(host)
    helper = helper_name(doc, host)
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    if helper:
        await CredentialHelper(helper).store(key, credentials)

    def save(doc: dict[str, Any]) -> bool:
        auths = doc.get("auths")
        if not isinstance(auths, dict):
            auths = doc["auths"] = {}
        if helper:
            _without_inline_credentials(auths, host)
            auths.setdefault(key, {})
        else:
            auths[key] = {"auth": token}
        return True

    await update_config(path, save)
    if helper:
        logger.info("saved credentials for %s with credential helper %s", host, helper)
    else:
        logger.info("saved credentials for %s in %s", host, path)
    if config_path is not None:
        registry.load_configs(configs=[path])
    # Whatever an earlier lookup kept for this host is out of date now.
    registry.auth.forget(host)
    return dict(LOGIN_SUCCEEDED)


async def logout(
    registry: RegistryClient,
    hostname: str,
    *,
    config_path: str | os.PathLike[str] | None = None,
) -> bool:
    """Forget ``hostname``'s credentials and tokens and remove them from where they are saved.

    Every spelling of the host in ``auths`` (bare, ``https://``...) is removed from the
    config file, then the credential helper the config names for the host (if any) is told
    to erase them. Returns True when the file or the helper held something. Credentials set
    for all hosts (``set_basic_auth``) and other config files still apply. Raises
    [`CredentialHelperError`][aioras.exceptions.CredentialHelperError] when the helper cannot erase
    them (the file entry is removed first all the same) and ``ValueError`` when the config is not
    valid JSON.
    """
    host = registry_host(hostname)
    registry.auth.set_credentials(Credentials(), host=host)
    path = _config_path(registry, config_path)
    doc = await anyio.to_thread.run_sync(read_config, path)
    helper = helper_name(doc, host)
    helper_urls = helper_keys(doc, host) if helper else []

    def remove(doc: dict[str, Any]) -> bool:
        auths = doc.get("auths")
        if not isinstance(auths, dict):
            return False
        keys = [key for key in config_keys(host) if key in auths]
        for key in keys:
            del auths[key]
        return bool(keys)

    removed = await update_config(path, remove)
    try:
        if helper:
            erase = CredentialHelper(helper).erase
            for url in helper_urls:
                removed = await erase(url) or removed
    finally:
        registry.auth.forget(host)
    return removed
