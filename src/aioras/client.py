"""oras-py's client shape: ``OrasClient`` (sync) and ``AsyncOrasClient`` (async).

Each wraps one registry object, reachable as ``client.remote``, and adds login and logout
to the common operations::

    client = aioras.client.OrasClient(hostname="127.0.0.1:5000", insecure=True)
    client.login(username="me", password="secret")
    client.push("127.0.0.1:5000/demo/hello:v1", files=["hello.txt"])
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType

import httpx

from .auth import Authenticator, Credentials
from .auth.login import login as _login
from .auth.login import logout as _logout
from .container import Container
from .operations.push import AnnotationSource, PushFiles, SubjectLike
from .registry import AsyncRegistry
from .sync import Registry

__all__ = ["AsyncOrasClient", "OrasClient"]

ContainerLike = str | Container


class OrasClient:
    """A synchronous client: push, pull, tags, login and logout on one :class:`Registry`.

    ``registry`` supplies a ready :class:`~aioras.sync.Registry` (the other arguments are
    then unused); otherwise one is built from ``hostname``, ``insecure``, ``tls_verify``
    and ``auth_backend``. Close it with :meth:`close` or use it as a context manager.
    """

    def __init__(
        self,
        hostname: str | None = None,
        registry: Registry | None = None,
        insecure: bool = False,
        tls_verify: bool | str = True,
        auth_backend: str | Authenticator = "token",
    ) -> None:
        self.remote = (
            registry
            if registry is not None
            else Registry(hostname, insecure, tls_verify, auth_backend)
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(remote={self.remote!r})"

    def __enter__(self) -> OrasClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the registry's connections (see :meth:`Registry.close`)."""
        self.remote.close()

    def version(self, return_items: bool = False) -> dict[str, str] | str:
        """The client's version, with Python's and the platform's when ``return_items``."""
        return self.remote.version(return_items)

    def set_basic_auth(self, username: str, password: str) -> None:
        """Use these basic credentials for every registry host."""
        self.remote.set_basic_auth(username, password)

    def set_token_auth(self, token: str) -> None:
        """Send ``Authorization: Bearer <token>`` (a registry token) to every host."""
        self.remote.auth.set_credentials(Credentials(registry_token=token))

    def login(
        self,
        username: str,
        password: str,
        password_stdin: bool = False,
        tls_verify: bool | str = True,
        hostname: str | None = None,
        config_path: str | None = None,
        *,
        insecure: bool | None = None,
    ) -> dict[str, str]:
        """Check the credentials against the registry, then keep and save them.

        See :func:`aioras.auth.login.login`. Returns ``{"Status": "Login Succeeded"}``;
        raises :class:`~aioras.exceptions.AuthenticationError` (and writes nothing) when
        the registry refuses them.
        """
        return self.remote.login(
            username,
            password,
            password_stdin,
            tls_verify,
            hostname,
            config_path,
            insecure=insecure,
        )

    def logout(self, hostname: str, *, config_path: str | None = None) -> bool:
        """Forget ``hostname``'s credentials and remove them from the Docker config."""
        return self.remote.logout(hostname, config_path=config_path)

    def get_tags(self, name: ContainerLike, N: int | None = None) -> list[str]:
        """List the tags of repository ``name``; at most ``N``."""
        return self.remote.get_tags(name, N)

    def delete_tags(self, name: ContainerLike, tags: str | Iterable[str]) -> list[str]:
        """Delete each of ``tags`` from ``name``; return those that were deleted."""
        return self.remote.delete_tags(name, tags)

    def push(
        self,
        target: ContainerLike,
        *,
        config_path: str | None = None,
        disable_path_validation: bool = False,
        files: PushFiles | None = None,
        manifest_config: str | None = None,
        annotation_file: AnnotationSource = None,
        manifest_annotations: Mapping[str, str] | None = None,
        subject: SubjectLike | None = None,
        do_chunked: bool = False,
        chunk_size: int | None = None,
        quiet: bool = False,
        artifact_type: str | None = None,
        concurrency: int | None = None,
    ) -> httpx.Response:
        """Push files as one artifact; see :func:`aioras.operations.push.push`."""
        return self.remote.push(
            target,
            config_path=config_path,
            disable_path_validation=disable_path_validation,
            files=files,
            manifest_config=manifest_config,
            annotation_file=annotation_file,
            manifest_annotations=manifest_annotations,
            subject=subject,
            do_chunked=do_chunked,
            chunk_size=chunk_size,
            quiet=quiet,
            artifact_type=artifact_type,
            concurrency=concurrency,
        )

    def pull(
        self,
        target: ContainerLike,
        *,
        config_path: str | None = None,
        allowed_media_type: Sequence[str] | None = None,
        overwrite: bool = True,
        outdir: str | os.PathLike[str] | None = None,
        concurrency: int | None = None,
    ) -> list[str]:
        """Pull an artifact's files; see :func:`aioras.operations.pull.pull`."""
        return self.remote.pull(
            target,
            config_path=config_path,
            allowed_media_type=allowed_media_type,
            overwrite=overwrite,
            outdir=outdir,
            concurrency=concurrency,
        )


class AsyncOrasClient:
    """The async twin of :class:`OrasClient`, wrapping one :class:`AsyncRegistry`.

    Use it as an async context manager or call :meth:`aclose` when done.
    """

    def __init__(
        self,
        hostname: str | None = None,
        registry: AsyncRegistry | None = None,
        insecure: bool = False,
        tls_verify: bool | str = True,
        auth_backend: str | Authenticator = "token",
    ) -> None:
        self.remote = (
            registry
            if registry is not None
            else AsyncRegistry(hostname, insecure, tls_verify, auth_backend)
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(remote={self.remote!r})"

    async def __aenter__(self) -> AsyncOrasClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the registry's connection pool."""
        await self.remote.aclose()

    def version(self, return_items: bool = False) -> dict[str, str] | str:
        """The client's version, with Python's and the platform's when ``return_items``."""
        return self.remote.version(return_items)

    def set_basic_auth(self, username: str, password: str) -> None:
        """Use these basic credentials for every registry host."""
        self.remote.set_basic_auth(username, password)

    def set_token_auth(self, token: str) -> None:
        """Send ``Authorization: Bearer <token>`` (a registry token) to every host."""
        self.remote.auth.set_credentials(Credentials(registry_token=token))

    async def login(
        self,
        username: str,
        password: str,
        password_stdin: bool = False,
        tls_verify: bool | str = True,
        hostname: str | None = None,
        config_path: str | None = None,
        *,
        insecure: bool | None = None,
    ) -> dict[str, str]:
        """Check the credentials against the registry, then keep and save them.

        See :func:`aioras.auth.login.login`.
        """
        return await _login(
            self.remote,
            username,
            password,
            password_stdin,
            tls_verify,
            hostname,
            config_path,
            insecure=insecure,
        )

    async def logout(self, hostname: str, *, config_path: str | None = None) -> bool:
        """Forget ``hostname``'s credentials and remove them from the Docker config."""
        return await _logout(self.remote, hostname, config_path=config_path)

    async def get_tags(self, name: ContainerLike, N: int | None = None) -> list[str]:
        """List the tags of repository ``name``; at most ``N``."""
        return await self.remote.get_tags(name, N)

    async def delete_tags(self, name: ContainerLike, tags: str | Iterable[str]) -> list[str]:
        """Delete each of ``tags`` from ``name``; return those that were deleted."""
        return await self.remote.delete_tags(name, tags)

    async def push(
        self,
        target: ContainerLike,
        *,
        config_path: str | None = None,
        disable_path_validation: bool = False,
        files: PushFiles | None = None,
        manifest_config: str | None = None,
        annotation_file: AnnotationSource = None,
        manifest_annotations: Mapping[str, str] | None = None,
        subject: SubjectLike | None = None,
        do_chunked: bool = False,
        chunk_size: int | None = None,
        quiet: bool = False,
        artifact_type: str | None = None,
        concurrency: int | None = None,
    ) -> httpx.Response:
        """Push files as one artifact; see :func:`aioras.operations.push.push`."""
        return await self.remote.push(
            target,
            config_path=config_path,
            disable_path_validation=disable_path_validation,
            files=files,
            manifest_config=manifest_config,
            annotation_file=annotation_file,
            manifest_annotations=manifest_annotations,
            subject=subject,
            do_chunked=do_chunked,
            chunk_size=chunk_size,
            quiet=quiet,
            artifact_type=artifact_type,
            concurrency=concurrency,
        )

    async def pull(
        self,
        target: ContainerLike,
        *,
        config_path: str | None = None,
        allowed_media_type: Sequence[str] | None = None,
        overwrite: bool = True,
        outdir: str | os.PathLike[str] | None = None,
        concurrency: int | None = None,
    ) -> list[str]:
        """Pull an artifact's files; see :func:`aioras.operations.pull.pull`."""
        return await self.remote.pull(
            target,
            config_path=config_path,
            allowed_media_type=allowed_media_type,
            overwrite=overwrite,
            outdir=outdir,
            concurrency=concurrency,
        )
