"""oras-py's client names: ``OrasClient`` (sync) and ``AsyncOrasClient`` (async).

As in oras-py 0.2.43, the client *is* the registry: ``OrasClient`` is the synchronous
[`Registry`][aioras.sync.Registry] (every endpoint method, ``push``, ``pull``, ``login`` and
``logout``) and ``AsyncOrasClient`` the [`AsyncRegistry`][aioras.registry.AsyncRegistry], with
``login`` and ``logout`` added::

    client = aioras.client.OrasClient(hostname="127.0.0.1:5000", insecure=True)
    client.login(username="me", password="secret")
    client.push("127.0.0.1:5000/demo/hello:v1", files=["hello.txt"])
    client.get_manifest("127.0.0.1:5000/demo/hello:v1")

``client.remote`` is the client itself, for code written for the older wrapper shape.
"""

from __future__ import annotations

from .auth import Credentials
from .auth.login import login as _login
from .auth.login import logout as _logout
from .registry import AsyncRegistry
from .sync import Registry

__all__ = ["AsyncOrasClient", "OrasClient"]


class OrasClient(Registry):
    """A synchronous client: the [`Registry`][aioras.sync.Registry], under oras-py's name.

    Takes the registry's arguments (``hostname``, ``insecure``, ``tls_verify``,
    ``auth_backend``, then keyword options). Close it with [`close`][aioras.sync.Registry.close] or
    use it as a context manager.
    """

    @property
    def remote(self) -> OrasClient:
        """The client itself (older code reached the registry through this attribute)."""
        return self

    def set_token_auth(self, token: str) -> None:
        """Send ``Authorization: Bearer <token>`` (a registry token) to every host."""
        self.auth.set_credentials(Credentials(registry_token=token))


class AsyncOrasClient(AsyncRegistry):
    """The async client: the [`AsyncRegistry`][aioras.registry.AsyncRegistry] with login and logout.

    Use it as an async context manager or call [`aclose`][aioras.registry.AsyncRegistry.aclose] when
    done.
    """

    @property
    def remote(self) -> AsyncOrasClient:
        """The client itself (older code reached the registry through this attribute)."""
        return self

    def set_token_auth(self, token: str) -> None:
        """Send ``Authorization: Bearer <token>`` (a registry token) to every host."""
        self.auth.set_credentials(Credentials(registry_token=token))

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

        See `aioras.auth.login.login`. Returns ``{"Status": "Login Succeeded"}``;
        raises [`AuthenticationError`][aioras.exceptions.AuthenticationError] (and writes nothing)
        when the registry refuses them.
        """
        return await _login(
            self,
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
        return await _logout(self, hostname, config_path=config_path)
