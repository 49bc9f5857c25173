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
from typing import Any

import httpx

from .auth import Authenticator, Credentials
from .auth.login import login as _login
from .auth.login import logout as _logout
from .container import Container
from .operations.discover import ReferrerNode
from .operations.index import ManifestLike
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
        platform: str | None = None,
    ) -> list[str]:
        """Pull an artifact's files (for an index, those of ``platform``); see ``pull``."""
        return self.remote.pull(
            target,
            config_path=config_path,
            allowed_media_type=allowed_media_type,
            overwrite=overwrite,
            outdir=outdir,
            concurrency=concurrency,
            platform=platform,
        )

    def get_referrers(
        self, reference: ContainerLike, *, artifact_type: str | None = None
    ) -> list[dict[str, Any]]:
        """The descriptors of the manifests referring to ``reference``."""
        return self.remote.get_referrers(reference, artifact_type=artifact_type)

    def attach(
        self,
        subject_reference: ContainerLike,
        files: Sequence[str | os.PathLike[str]] = (),
        *,
        artifact_type: str,
        annotations: Mapping[str, str] | None = None,
        disable_path_validation: bool = False,
    ) -> dict[str, Any]:
        """Attach files to a manifest as an untagged OCI 1.1 artifact; return its descriptor."""
        return self.remote.attach(
            subject_reference,
            files,
            artifact_type=artifact_type,
            annotations=annotations,
            disable_path_validation=disable_path_validation,
        )

    def discover(
        self,
        reference: ContainerLike,
        *,
        depth: int | None = None,
        artifact_type: str | None = None,
    ) -> ReferrerNode:
        """The referrers tree of ``reference`` (to_dict() gives it as JSON)."""
        return self.remote.discover(reference, depth=depth, artifact_type=artifact_type)

    def delete_artifact(self, reference: ContainerLike) -> dict[str, Any]:
        """Delete a manifest, taking a referrer out of its subject's fallback index too."""
        return self.remote.delete_artifact(reference)

    def push_index(
        self,
        target: ContainerLike,
        manifests: Iterable[ManifestLike],
        *,
        annotations: Mapping[str, str] | None = None,
        artifact_type: str | None = None,
    ) -> dict[str, Any]:
        """Build and push an image index of ``manifests``; return its descriptor."""
        return self.remote.push_index(
            target, manifests, annotations=annotations, artifact_type=artifact_type
        )

    def update_index(
        self,
        target: ContainerLike,
        *,
        add: Iterable[ManifestLike] = (),
        remove: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Add, replace or remove entries of an index; return the new index's descriptor."""
        return self.remote.update_index(target, add=add, remove=remove)

    def resolve(self, reference: ContainerLike, *, platform: str | None = None) -> dict[str, Any]:
        """The descriptor ``reference`` names (an index's entry for ``platform``, if given)."""
        return self.remote.resolve(reference, platform=platform)

    def list_repositories(self, hostname: str | None = None, N: int | None = None) -> list[str]:
        """The repositories of a registry (its catalog); at most ``N``."""
        return self.remote.list_repositories(hostname, N)


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
        platform: str | None = None,
    ) -> list[str]:
        """Pull an artifact's files (for an index, those of ``platform``); see ``pull``."""
        return await self.remote.pull(
            target,
            config_path=config_path,
            allowed_media_type=allowed_media_type,
            overwrite=overwrite,
            outdir=outdir,
            concurrency=concurrency,
            platform=platform,
        )

    async def get_referrers(
        self, reference: ContainerLike, *, artifact_type: str | None = None
    ) -> list[dict[str, Any]]:
        """The descriptors of the manifests referring to ``reference``."""
        return await self.remote.get_referrers(reference, artifact_type=artifact_type)

    async def attach(
        self,
        subject_reference: ContainerLike,
        files: Sequence[str | os.PathLike[str]] = (),
        *,
        artifact_type: str,
        annotations: Mapping[str, str] | None = None,
        disable_path_validation: bool = False,
    ) -> dict[str, Any]:
        """Attach files to a manifest as an untagged OCI 1.1 artifact; return its descriptor."""
        return await self.remote.attach(
            subject_reference,
            files,
            artifact_type=artifact_type,
            annotations=annotations,
            disable_path_validation=disable_path_validation,
        )

    async def discover(
        self,
        reference: ContainerLike,
        *,
        depth: int | None = None,
        artifact_type: str | None = None,
    ) -> ReferrerNode:
        """The referrers tree of ``reference`` (to_dict() gives it as JSON)."""
        return await self.remote.discover(reference, depth=depth, artifact_type=artifact_type)

    async def delete_artifact(self, reference: ContainerLike) -> dict[str, Any]:
        """Delete a manifest, taking a referrer out of its subject's fallback index too."""
        return await self.remote.delete_artifact(reference)

    async def push_index(
        self,
        target: ContainerLike,
        manifests: Iterable[ManifestLike],
        *,
        annotations: Mapping[str, str] | None = None,
        artifact_type: str | None = None,
    ) -> dict[str, Any]:
        """Build and push an image index of ``manifests``; return its descriptor."""
        return await self.remote.push_index(
            target, manifests, annotations=annotations, artifact_type=artifact_type
        )

    async def update_index(
        self,
        target: ContainerLike,
        *,
        add: Iterable[ManifestLike] = (),
        remove: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Add, replace or remove entries of an index; return the new index's descriptor."""
        return await self.remote.update_index(target, add=add, remove=remove)

    async def resolve(
        self, reference: ContainerLike, *, platform: str | None = None
    ) -> dict[str, Any]:
        """The descriptor ``reference`` names (an index's entry for ``platform``, if given)."""
        return await self.remote.resolve(reference, platform=platform)

    async def list_repositories(
        self, hostname: str | None = None, N: int | None = None
    ) -> list[str]:
        """The repositories of a registry (its catalog); at most ``N``."""
        return await self.remote.list_repositories(hostname, N)
