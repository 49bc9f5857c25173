"""Run a real OCI registry on loopback for tests, demos and examples.

`LocalRegistry` starts the CNCF distribution registry (the Debian package
``docker-registry``) on a free ``127.0.0.1`` port, with its own temporary configuration,
storage directory and log file, and stops it again::

    from aioras.testing import LocalRegistry

    with LocalRegistry() as reg:
        ...  # push to f"{reg.host}/demo/hello:v1"

    async with LocalRegistry(htpasswd="users.htpasswd") as reg:
        ...

It needs nothing but the registry binary: install it with ``apt-get install docker-registry``
on Debian or Ubuntu, or put the upstream ``registry`` binary on ``PATH``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx

from ._retry import Retrying
from .exceptions import OrasError

__all__ = ["INSTALL_HINT", "LocalRegistry", "LocalRegistryError"]

logger = logging.getLogger(__name__)

#: How to get the registry binary; quoted in every "binary not found" error.
INSTALL_HINT = (
    "install the CNCF distribution registry with `apt-get install docker-registry` "
    "(Debian/Ubuntu package), or put its `registry` binary on PATH"
)

_DEFAULT_BINARIES = ("docker-registry", "registry")
_BIND_ATTEMPTS = 5
_POLL_INTERVAL = 0.05
_PROBE_TIMEOUT = 0.5
_STOP_TIMEOUT = 10.0
_LOG_TAIL_BYTES = 4096
_API_VERSION_HEADER = "Docker-Distribution-API-Version"
_PLAIN_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class LocalRegistryError(OrasError):
    """Raised when the local registry cannot be found, configured, started or reached.

    Startup failures carry the tail of the registry's own log in the message.
    """


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``extra`` into a copy of ``base``; a ``None`` value removes the key."""
    out = dict(base)
    for key, value in extra.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif isinstance(value, Mapping):
            out[key] = _merge({}, value)
        else:
            out[key] = value
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, os.PathLike)):
        # A JSON string is a valid YAML double-quoted scalar, so no character needs thought.
        return json.dumps(os.fspath(value))
    raise LocalRegistryError(f"cannot write {type(value).__name__} {value!r} into registry config")


def _emit(node: Mapping[str, Any], indent: int = 0) -> list[str]:
    """Block-style YAML for nested mappings of scalars, lists of scalars and lists of mappings."""
    pad = " " * indent
    lines: list[str] = []
    for key, value in node.items():
        head = f"{pad}{key if _PLAIN_KEY.fullmatch(str(key)) else _scalar(str(key))}:"
        if isinstance(value, Mapping):
            lines.extend([head, *_emit(value, indent + 2)] if value else [f"{head} {{}}"])
        elif isinstance(value, (list, tuple)):
            if all(not isinstance(v, Mapping) for v in value):
                lines.append(f"{head} [{', '.join(_scalar(v) for v in value)}]")
            else:
                lines.append(head)
                for item in value:
                    if not isinstance(item, Mapping):
                        lines.append(f"{pad}  - {_scalar(item)}")
                        continue
                    body = _emit(item, indent + 4)
                    lines.extend([f"{pad}  - {body[0].lstrip()}", *body[1:]] if body else [])
        else:
            lines.append(f"{head} {_scalar(value)}")
    return lines


def _to_yaml(config: Mapping[str, Any]) -> str:
    """Render a registry configuration mapping as YAML (no PyYAML needed)."""
    return "\n".join(_emit(config)) + "\n"


class LocalRegistry:
    """A CNCF distribution registry process bound to ``127.0.0.1`` on a free port.

    Use it as a context manager (``with`` or ``async with``) or call `start` and
    `stop` (or `astart` / `astop`) yourself. Everything it writes lives in
    one temporary directory, removed at stop unless ``keep=True``.

    Options:

    - ``binary``: registry executable, a name on ``PATH`` or a path; by default
      ``docker-registry``, else ``registry``.
    - ``delete_enabled``: allow manifest and blob deletes (``storage.delete.enabled``).
    - ``htpasswd``: path of a bcrypt htpasswd file; turns on basic auth (``auth.htpasswd``).
    - ``tls_cert`` / ``tls_key``: PEM files; the registry serves HTTPS and `url` says so.
    - ``token_auth``: ``realm``, ``service``, ``issuer``, ``rootcertbundle`` (and any other key
      of ``auth.token``); turns on bearer-token auth.
    - ``extra_config``: deep-merged into the generated configuration last; a ``None`` value
      deletes a key.
    - ``startup_timeout``: seconds to wait for ``GET /v2/`` to answer.
    - ``log_level``: the registry's log level (``error``, ``warn``, ``info``, ``debug``).
    - ``keep``: leave the temporary directory (storage, config and log) in place at stop.
    """

    def __init__(
        self,
        *,
        binary: str | os.PathLike[str] | None = None,
        delete_enabled: bool = True,
        htpasswd: str | os.PathLike[str] | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        token_auth: Mapping[str, Any] | None = None,
        extra_config: Mapping[str, Any] | None = None,
        startup_timeout: float = 15.0,
        log_level: str = "info",
        keep: bool = False,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        if htpasswd is not None and token_auth is not None:
            raise ValueError("htpasswd and token_auth are mutually exclusive")
        self.binary = binary
        self.delete_enabled = delete_enabled
        self.htpasswd = Path(htpasswd).resolve() if htpasswd is not None else None
        self.tls_cert = Path(tls_cert).resolve() if tls_cert is not None else None
        self.tls_key = Path(tls_key).resolve() if tls_key is not None else None
        self.token_auth = dict(token_auth) if token_auth is not None else None
        self.extra_config = dict(extra_config) if extra_config is not None else None
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self.keep = keep

        self.port: int | None = None
        self.root_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._finalizer: weakref.finalize[Any, LocalRegistry] | None = None

    # -- where things are ---------------------------------------------------------------

    @property
    def scheme(self) -> str:
        """``https`` when TLS is configured, else ``http``."""
        return "https" if self.tls_cert is not None else "http"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry part of a reference."""
        if self.port is None:
            raise LocalRegistryError("the local registry is not running")
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https`` with TLS), without a trailing slash."""
        return f"{self.scheme}://{self.host}"

    @property
    def storage_dir(self) -> Path:
        """The filesystem storage root of the registry."""
        return self._dir() / "storage"

    @property
    def config_path(self) -> Path:
        """The YAML configuration the registry was started with."""
        return self._dir() / "config.yml"

    @property
    def log_path(self) -> Path:
        """The registry's stdout and stderr."""
        return self._dir() / "registry.log"

    @property
    def running(self) -> bool:
        """Whether the registry process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the registry, or ``None`` when not started."""
        return self._process.pid if self._process is not None else None

    def reference(self, name: str) -> str:
        """Prefix a repository reference with this registry's host: ``127.0.0.1:PORT/name``."""
        return f"{self.host}/{name.lstrip('/')}"

    def _dir(self) -> Path:
        if self.root_dir is None:
            raise LocalRegistryError("the local registry has not been started")
        return self.root_dir

    # -- configuration -----------------------------------------------------------------

    def find_binary(self) -> str:
        """Resolve the registry executable, or raise `LocalRegistryError` with the hint."""
        candidates = (os.fspath(self.binary),) if self.binary is not None else _DEFAULT_BINARIES
        for name in candidates:
            found = shutil.which(name)
            if found is not None:
                return found
        wanted = " or ".join(repr(c) for c in candidates)
        raise LocalRegistryError(
            f"registry binary {wanted} not found or not executable; {INSTALL_HINT}"
        )

    def build_config(self, port: int) -> dict[str, Any]:
        """The configuration mapping for a registry listening on ``port``."""
        storage: dict[str, Any] = {
            "filesystem": {"rootdirectory": os.fspath(self.storage_dir)},
            "delete": {"enabled": self.delete_enabled},
            "maintenance": {"uploadpurging": {"enabled": False}},
        }
        http: dict[str, Any] = {
            "addr": f"127.0.0.1:{port}",
            # A fixed secret silences the "generated random secret" warning.
            "secret": secrets.token_hex(16),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        }
        if self.tls_cert is not None and self.tls_key is not None:
            http["tls"] = {"certificate": os.fspath(self.tls_cert), "key": os.fspath(self.tls_key)}
        config: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": self.log_level, "fields": {"service": "registry"}},
            "storage": storage,
            "http": http,
            # No debug server (http.debug is left unset) and no storage health check.
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.htpasswd is not None:
            config["auth"] = {
                "htpasswd": {"realm": "aioras-local", "path": os.fspath(self.htpasswd)}
            }
        elif self.token_auth is not None:
            config["auth"] = {"token": dict(self.token_auth)}
        if self.extra_config:
            config = _merge(config, self.extra_config)
        return config

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> LocalRegistry:
        """Start the registry and wait until ``GET /v2/`` answers; returns ``self``."""
        if self._process is not None:
            raise LocalRegistryError("the local registry is already started")
        binary = self.find_binary()
        self.root_dir = Path(tempfile.mkdtemp(prefix="aioras-registry-"))
        self._finalizer = weakref.finalize(self, _cleanup, None, self.root_dir, self.keep)
        try:
            self.storage_dir.mkdir()
            binding = Retrying(_BIND_ATTEMPTS - 1, pause=False)
            while True:
                port = _free_port()
                self._launch(binary, port)
                if self._wait_ready():
                    logger.info("local registry %s ready (pid %s)", self.url, self.pid)
                    return self
                # Only a lost race for the port earns another try.
                if not binding.allows():
                    raise LocalRegistryError(
                        f"registry could not bind a free port in {_BIND_ATTEMPTS} attempts\n"
                        + self.log_tail()
                    )
                binding.failed(note=f"port {port} was taken")
        except BaseException:
            self.stop()
            raise

    def _launch(self, binary: str, port: int) -> None:
        self._reap()
        self.port = port
        self.config_path.write_text(_to_yaml(self.build_config(port)), encoding="utf-8")
        # REGISTRY_* variables override the config file; keep the caller's out of it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"--- {binary} serve {self.config_path} (port {port})\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                [binary, "serve", os.fspath(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.root_dir,
            )
        if self._finalizer is not None:
            self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _cleanup, self._process, self._dir(), self.keep)
        logger.debug("started %s serve %s (pid %d)", binary, self.config_path, self._process.pid)

    def _wait_ready(self) -> bool:
        """True once the registry answers; False if it lost the port; raises otherwise."""
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(verify=False, trust_env=False, timeout=_PROBE_TIMEOUT) as client:
            while True:
                returncode = self._process.poll()
                if returncode is not None:
                    if b"address already in use" in self._log_since_launch():
                        return False
                    raise LocalRegistryError(
                        f"registry exited with status {returncode} during startup\n"
                        + self.log_tail()
                    )
                try:
                    response = client.get(f"{self.url}/v2/")
                except httpx.TransportError:
                    pass
                else:
                    if (
                        response.status_code in (200, 401)
                        and _API_VERSION_HEADER in response.headers
                        and self._process.poll() is None
                    ):
                        return True
                if time.monotonic() > deadline:
                    raise LocalRegistryError(
                        f"registry did not answer GET {self.url}/v2/ within "
                        f"{self.startup_timeout:g}s\n" + self.log_tail()
                    )
                time.sleep(_POLL_INTERVAL)

    def _log_since_launch(self) -> bytes:
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read()

    def _reap(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            _terminate(process)

    def stop(self) -> None:
        """Stop the registry (SIGTERM, then SIGKILL) and remove its directory unless ``keep``.

        Safe to call more than once, and on a registry that failed to start.
        """
        self._reap()
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self.root_dir is not None and not self.keep:
            shutil.rmtree(self.root_dir, ignore_errors=True)
            logger.debug("removed %s", self.root_dir)
        self.port = None

    async def astart(self) -> LocalRegistry:
        """`start` in a worker thread, so the event loop keeps running."""
        return await anyio.to_thread.run_sync(self.start)

    async def astop(self) -> None:
        """`stop` in a worker thread."""
        await anyio.to_thread.run_sync(self.stop)

    def log_tail(self, max_bytes: int = _LOG_TAIL_BYTES) -> str:
        """The last ``max_bytes`` of the registry's log, or an empty string."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - max_bytes))
                tail = log.read()
        except (OSError, LocalRegistryError):
            return ""
        text = tail.decode("utf-8", "replace")
        return f"--- registry log ({self.log_path}):\n{text}" if text else ""

    # -- context managers --------------------------------------------------------------

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> LocalRegistry:
        return await self.astart()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.astop()

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"<LocalRegistry {state}>"


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            logger.warning("registry pid %d ignored SIGTERM; killing it", process.pid)
            process.kill()
            process.wait()


def _cleanup(process: subprocess.Popen[bytes] | None, root: Path, keep: bool) -> None:
    """Last resort when a started registry is garbage-collected or the interpreter exits."""
    if process is not None:
        with contextlib.suppress(OSError):
            _terminate(process)
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
